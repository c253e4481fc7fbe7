"""The rules across tabular_regression's config keys (the task's `constraints`), and the arithmetic its stages share
with them.

Their own module, not the package's `__init__`: a stage's DVC dependencies are the modules it imports, and a range or
a help text edited in `__init__` must not re-run the stages.
"""

import math

from mlexp.config.constraints import Constraint


def training_rows(rows: int, train_fraction: float) -> int:
    """How many of `rows` the split gives training (the rest are the test set)."""
    return int(round(train_fraction * rows))


def split_leaves_both(rows: int | None, train_fraction: float) -> bool:
    """Whether `rows` split at `train_fraction` leave a training row and a test row (null rows: every row of the
    data, which the prepare stage judges; a sample larger than the data takes fewer, and can only do worse)."""
    return rows is None or 0 < training_rows(rows, train_fraction) < rows


def fewest_rows(train_fraction: float) -> int:
    """The fewest rows a split at `train_fraction` (between 0 and 1) leaves a training row and a test row.

    Each side needs a share of at least half a row, so none fewer than 0.5 / the smaller share; from there, the first
    count that does (a count that does, every larger one does too).
    """
    rows = max(2, math.floor(0.5 / min(train_fraction, 1 - train_fraction)) - 1)
    while not split_leaves_both(rows, train_fraction):
        rows += 1
    return rows


CONSTRAINTS = (
    Constraint(
        ("dataset.n_rows", "preprocessing.train_test_split"),
        split_leaves_both,
        "dataset.n_rows rows split at preprocessing.train_test_split must leave a training row and a test row",
        lambda _, train_fraction: (
            f"give dataset.n_rows={fewest_rows(train_fraction)} or more (the fewest a split at {train_fraction} "
            "leaves both), or a split nearer 0.5"
        ),
    ),
)
