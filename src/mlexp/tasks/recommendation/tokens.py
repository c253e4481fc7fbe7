"""IDs and metadata values as tokens of one vocabulary: what the metadata-aware recipe embeds.

A categorical string is one token per value (a multi-valued field, "player_03|player_17", one per
value); a number is one of five quantile bins of the training data; a missing value is no token.
Token 0 pads, 1 stands for a user and 2 for an item the training data never saw (cold start).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlexp.data.personalize_datasets import MULTI_VALUE_SEPARATOR

PAD, UNKNOWN_USER, UNKNOWN_ITEM = 0, 1, 2
BINS = 5


@dataclass
class Vocabulary:
    fields: dict[str, list[str]]  # users / items / interactions -> the fields used
    numeric_edges: dict[str, list[float]] = field(default_factory=dict)  # "side.FIELD" -> bin edges
    index: dict[str, int] = field(
        default_factory=lambda: {"<pad>": PAD, "<user>": UNKNOWN_USER, "<item>": UNKNOWN_ITEM}
    )

    def add(self, token: str) -> None:
        self.index.setdefault(token, len(self.index))

    def value_tokens(self, side: str, name: str, value: object) -> list[str]:
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return []
        key = f"{side}.{name}"
        if key in self.numeric_edges:
            edges = np.asarray(self.numeric_edges[key], dtype="float64")
            return [f"{key}=bin{int(np.searchsorted(edges, float(str(value)), side='right'))}"]
        return [f"{key}={part}" for part in str(value).split(MULTI_VALUE_SEPARATOR) if part]

    def ids(self, tokens: list[str]) -> list[int]:
        return [self.index[t] for t in tokens if t in self.index]

    @classmethod
    def build(cls, fields: dict[str, list[str]], frames: dict[str, pd.DataFrame], user_ids, item_ids) -> Vocabulary:
        vocabulary = cls(fields)
        for user in user_ids:
            vocabulary.add(f"user:{user}")
        for item in item_ids:
            vocabulary.add(f"item:{item}")
        for side, names in fields.items():
            for name in names:
                column = frames[side][name]
                if pd.api.types.is_numeric_dtype(column):
                    values = column.dropna().astype(float).to_numpy()
                    quantiles = np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1]) if len(values) else []
                    vocabulary.numeric_edges[f"{side}.{name}"] = sorted(set(float(q) for q in quantiles))
                for value in column.dropna().unique():
                    for token in vocabulary.value_tokens(side, name, value):
                        vocabulary.add(token)
        return vocabulary

    def user_tokens(self, user_id: str, metadata: dict[str, object]) -> list[int]:
        first = self.index.get(f"user:{user_id}", UNKNOWN_USER)
        rest = [t for name in self.fields["users"] for t in self.value_tokens("users", name, metadata.get(name))]
        return [first, *self.ids(rest)]

    def context_tokens(self, context: dict[str, object]) -> list[int]:
        names = self.fields["interactions"]
        return self.ids([t for name in names for t in self.value_tokens("interactions", name, context.get(name))])

    def item_matrix(self, items: pd.DataFrame) -> np.ndarray:
        """One row of token ids per item (its ID first), padded with 0."""
        rows = []
        for record in items.to_dict("records"):
            rest = [t for name in self.fields["items"] for t in self.value_tokens("items", name, record.get(name))]
            rows.append([self.index.get(f"item:{record['ITEM_ID']}", UNKNOWN_ITEM), *self.ids(rest)])
        return pad(rows)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"fields": self.fields, "numeric_edges": self.numeric_edges, "index": self.index}))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        raw = json.loads(path.read_text())
        return cls(raw["fields"], raw["numeric_edges"], raw["index"])


def pad(rows: list[list[int]], width: int | None = None) -> np.ndarray:
    width = max(1, width or max((len(r) for r in rows), default=1))
    out = np.zeros((len(rows), width), dtype="int32")
    for i, row in enumerate(rows):
        out[i, : min(len(row), width)] = row[:width]
    return out
