"""The values that read as null though written (trip_rows.py's `unread`), counted per marker as they stream past: rows
per value, and each value's first row."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc


@dataclass
class Tally:
    """The values of one marker (`TripRows.unread`) that read as null though written: rows per value, and each
    value's first row's position in its file (0: the first row), where known."""

    counts: Counter[str] = field(default_factory=Counter)
    firsts: dict[str, int] = field(default_factory=dict)

    def add(self, value: str, rows: int, position: int | None) -> None:
        self.counts[value] += rows
        if position is not None and position < self.firsts.get(value, position + 1):
            self.firsts[value] = position

    def first(self, values: Collection[str] | None = None) -> int | None:
        """The position of the first row holding one of `values` (None: any value), or None when unknown."""
        known = self.firsts if values is None else {v: at for v, at in self.firsts.items() if v in values}
        return min(known.values(), default=None)


def count_unread(values: pa.Array, unread: dict[str, Tally], offset: int) -> None:
    """A batch's UNREAD lists into `unread` (marker -> Tally); `offset`: the rows before the batch."""
    if values.null_count == len(values):
        return
    found = pc.list_flatten(values)
    rows = pc.add(pc.list_parent_indices(values).cast(pa.int64()), offset)
    table = pa.table({"marker": found.field("marker"), "value": found.field("value"), "row": rows})
    for group in table.group_by(["marker", "value"]).aggregate([("row", "min"), ("row", "count")]).to_pylist():
        unread.setdefault(group["marker"], Tally()).add(group["value"], group["row_count"], group["row_min"])
