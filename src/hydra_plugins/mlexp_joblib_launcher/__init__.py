"""mlexp's joblib launcher as a Hydra plugin: Hydra runs launchers only from the hydra_plugins package."""
