"""nova_infant.core."""
