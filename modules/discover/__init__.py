"""Thin DISCOVER adapters (``Processor`` subclasses) around the plain functions of this package."""
