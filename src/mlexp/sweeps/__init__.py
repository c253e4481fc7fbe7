"""Sweeps: Hydra multirun with a run above the trials that records the best one."""
