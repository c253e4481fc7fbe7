"""Deployment targets for a finished trial's model."""
