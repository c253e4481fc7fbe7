"""Sweeps: Hydra multirun with a run above the trials that records the best one."""

# set by the sweep callback in the launching process; sweep jobs inherit them
SWEEP_RUN_ENV = "MLEXP_SWEEP_RUN_ID"
SWEEP_NAME_ENV = "MLEXP_SWEEP_NAME"
