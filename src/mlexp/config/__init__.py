"""Structured-config schemas and the checks run on a composed config before any work."""

from mlexp.config.schema import register_schemas

__all__ = ["register_schemas"]
