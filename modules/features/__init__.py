"""nova_infant.features."""
