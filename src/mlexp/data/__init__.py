"""Loaders for the real published dataset formats, one module per dataset."""
