"""mlexp: declarative, config-driven ML experiments (Hydra + MLflow + DVC)."""

__version__ = "0.1.0"
