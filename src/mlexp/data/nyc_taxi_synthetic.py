"""Synthetic yellow-taxi months in TLC's published formats, seeded, with the post's anomalies.

Normal trips last a log-normal time (median about 11 minutes, capped at 4 hours) at a
log-normal speed; fares follow the 2019 meter. On top come exact numbers of anomalous rows
(a rate times the size, at least one; each kind on its own rows): meters left running for
1 to 24 hours, trips of one to three days, zero and negative durations, a missing
timestamp, an unparsable one (text in CSV; missing in Parquet, whose timestamp columns
cannot hold text), zero distances, and what practitioners' rules look for: pickups outside
the month (2008, 2088, the neighbouring months), refunds (every amount negative) and speeds
of 150 to 2,000 mph. The counts come back with the table, so a test knows what the rules
must find. CSV is written as TLC's 2019 files are: CRLF, a blank line after the header.
7.6 million rows (one real month) take seconds: every column is drawn as one numpy array.
"""

from __future__ import annotations

import calendar
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from mlexp.data.nyc_taxi import DROPOFF, PICKUP

ANOMALIES = (
    "meter_left_on",
    "multi_day",
    "zero_duration",
    "negative_duration",
    "null_timestamp",
    "unparsable_timestamp",
    "zero_distance",
    # what real months hold besides the post's anomalies (drawn after the rest, so adding them leaves
    # every other row as it was)
    "pickup_outside_month",
    "negative_fare",
    "implausible_speed",
)
# share of pickups per hour of the day, midnight first: a New York weekday's shape
HOURLY = np.array([3.6, 2.6, 1.9, 1.4, 1.1, 1.0, 2.0, 3.6, 4.6, 4.7, 4.5, 4.6, 4.9, 4.9, 5.1, 5.1, 5.0, 5.6, 6.4])
HOURLY = np.concatenate([HOURLY, [6.5, 6.0, 5.7, 5.4, 4.6]])
UNPARSABLE_TEXT = ("2019-13-01 00:00:00", "0000-00-00 00:00:00", "N/A", "24:61:00")


def _choice(rng: np.random.Generator, values: list[float], weights: list[float], n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return np.asarray(values)[rng.choice(len(values), size=n, p=p / p.sum())]


def _anomaly_rows(rng: np.random.Generator, n: int, rates: Mapping[str, float]) -> dict[str, np.ndarray]:
    unknown = sorted(set(rates) - set(ANOMALIES))
    if unknown:
        raise ValueError(f"unknown anomaly kinds {unknown}; known: {', '.join(ANOMALIES)}")
    # at least one row of each kind asked for, so small test months still hold every anomaly
    counts = {kind: max(1, round(rates[kind] * n)) if rates.get(kind, 0.0) > 0 else 0 for kind in ANOMALIES}
    if sum(counts.values()) > n:
        raise ValueError(f"anomaly rates {dict(rates)} ask for more rows than the {n} generated")
    rows = rng.permutation(n)[: sum(counts.values())]
    bounds = np.cumsum([0, *counts.values()])
    return {kind: np.sort(rows[bounds[i] : bounds[i + 1]]) for i, kind in enumerate(ANOMALIES)}


@dataclass(frozen=True)
class Month:
    """A generated month: the trips (bad timestamps null), the anomaly counts, the unparsable rows."""

    table: pa.Table
    counts: dict[str, int]
    unparsable: dict[str, np.ndarray]


def generate(n_rows: int, seed: int, month: str, rates: Mapping[str, float]) -> Month:
    """`n_rows` trips with pickups in `month` ("2019-01"), anomalies at `rates` (a share of the rows)."""
    rng = np.random.default_rng(seed)
    n = n_rows
    year, number = (int(part) for part in month.split("-"))
    start = np.datetime64(f"{month}-01T00:00:00", "s")
    days = calendar.monthrange(year, number)[1]
    offset = rng.integers(0, days, n) * 86400 + _choice(rng, list(range(24)), list(HOURLY), n) * 3600
    pickup = start + (offset + rng.integers(0, 3600, n)).astype("timedelta64[s]")
    duration = np.clip(rng.lognormal(np.log(660), 0.75, n), 30, 4 * 3600).astype(np.int64)
    speed_mph = np.clip(rng.lognormal(np.log(10), 0.45, n), 2, 45)
    distance = np.round(duration / 3600 * speed_mph, 2)
    anomalies = _anomaly_rows(rng, n, rates)
    duration[anomalies["meter_left_on"]] = rng.integers(3600, 86400, len(anomalies["meter_left_on"]))
    duration[anomalies["multi_day"]] = rng.integers(86400, 3 * 86400, len(anomalies["multi_day"]))
    duration[anomalies["zero_duration"]] = 0
    duration[anomalies["negative_duration"]] = -rng.integers(1, 3600, len(anomalies["negative_duration"]))
    distance[anomalies["zero_distance"]] = 0.0
    dropoff = pickup + duration.astype("timedelta64[s]")

    payment = _choice(rng, [1, 2, 3, 4], [72, 27, 0.6, 0.4], n)
    fare = np.round((2.5 + 2.5 * distance + 0.25 * np.minimum(duration, 4 * 3600) / 60) * 2) / 2
    hour = (offset // 3600) % 24
    extra = np.where((hour >= 20) | (hour < 6), 0.5, np.where((hour >= 16) & (hour < 20), 1.0, 0.0))
    tip = np.where(payment == 1, np.round(fare * rng.uniform(0.1, 0.3, n), 2), 0.0)
    tolls = np.where(rng.random(n) < 0.05, 5.76, 0.0)
    congestion = np.where(rng.random(n) < 0.9, 2.5, 0.0) if (year, number) >= (2019, 2) else np.zeros(n)
    zones = rng.pareto(1.2, 265) + 0.01
    columns = {
        "VendorID": _choice(rng, [1, 2], [37, 63], n).astype(np.int64),
        PICKUP: pickup,
        DROPOFF: dropoff,
        "passenger_count": _choice(rng, [0, 1, 2, 3, 4, 5, 6], [1, 70, 15, 4, 2, 5, 3], n).astype(float),
        "trip_distance": distance,
        "RatecodeID": _choice(rng, [1, 2, 3, 4, 5, 99], [97, 2, 0.2, 0.1, 0.6, 0.1], n).astype(float),
        "store_and_fwd_flag": (rng.random(n) < 0.005).astype(np.int8),
        "PULocationID": 1 + rng.choice(265, size=n, p=zones / zones.sum()),
        "DOLocationID": 1 + rng.choice(265, size=n, p=zones / zones.sum()),
        "payment_type": payment.astype(np.int64),
        "fare_amount": fare,
        "extra": extra,
        "mta_tax": np.full(n, 0.5),
        "tip_amount": tip,
        "tolls_amount": tolls,
        "improvement_surcharge": np.full(n, 0.3),
        "total_amount": np.round(fare + extra + 0.5 + tip + tolls + 0.3 + congestion, 2),
        "congestion_surcharge": congestion,
        # TLC's Parquet files carry airport_fee from 2019 on, empty before its 2021 introduction
        "airport_fee": np.where(rng.random(n) < 0.08, 1.25, 0.0) if year >= 2021 else np.full(n, np.nan),
    }
    unparsable = _blank_timestamps(columns, rng, anomalies)
    _practitioners_anomalies(columns, rng, anomalies, start, days)
    arrays = {name: pa.array(values, from_pandas=True) for name, values in columns.items()}  # NaN: null
    flags = pa.DictionaryArray.from_arrays(arrays["store_and_fwd_flag"], pa.array(["N", "Y"]))
    arrays["store_and_fwd_flag"] = flags.cast(pa.string())
    table = pa.table(arrays)
    return Month(table, {k: len(v) for k, v in anomalies.items()}, unparsable)


def _blank_timestamps(
    columns: dict[str, np.ndarray], rng: np.random.Generator, anomalies: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Blank the pickup or the dropoff of the rows with a bad timestamp; returns the unparsable ones."""
    unparsable = {}
    for kind in ("null_timestamp", "unparsable_timestamp"):
        rows = anomalies[kind]
        side = rng.integers(0, 2, len(rows))
        for number, name in enumerate((PICKUP, DROPOFF)):
            columns[name][rows[side == number]] = np.datetime64("NaT")
            if kind == "unparsable_timestamp":
                unparsable[name] = rows[side == number]
    return unparsable


def _practitioners_anomalies(
    columns: dict[str, np.ndarray], rng: np.random.Generator, anomalies: dict[str, np.ndarray], start, days: int
) -> None:
    """Pickups outside the month (TLC's 2008, 2088, the month before and after), refunds, impossible speeds."""
    rows = anomalies["pickup_outside_month"]
    if len(rows):
        duration = columns[DROPOFF][rows] - columns[PICKUP][rows]
        year = np.timedelta64(365 * 86400, "s")
        month = np.timedelta64(days * 86400, "s")
        shifts = np.array([-11 * year, 69 * year, -month, month])
        picked = columns[PICKUP][rows] + shifts[rng.integers(0, len(shifts), len(rows))]
        columns[PICKUP][rows] = picked
        columns[DROPOFF][rows] = picked + duration
    # a refund: TLC records every amount negated
    rows = anomalies["negative_fare"]
    for name in ("fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount", "improvement_surcharge"):
        columns[name][rows] = -np.abs(columns[name][rows])
    for name in ("congestion_surcharge", "total_amount"):
        columns[name][rows] = -np.abs(columns[name][rows])
    # a distance typed wrong: 150 to 2,000 mph over the trip's real duration
    rows = anomalies["implausible_speed"]
    seconds = (columns[DROPOFF][rows] - columns[PICKUP][rows]).astype(np.int64)
    columns["trip_distance"][rows] = np.round(seconds / 3600 * rng.uniform(150, 2000, len(rows)), 2) + 0.01


def _write_tlc_csv(table: pa.Table, path: Path) -> None:
    """CSV as TLC's 2019 files are: CRLF line endings, a blank line after the header, nothing quoted."""
    options = pa_csv.WriteOptions(include_header=False, quoting_style="none")
    with path.open("wb") as out:
        out.write((",".join(table.column_names) + "\r\n\r\n").encode())
        for offset in range(0, len(table), 500_000):
            buffer = io.BytesIO()
            pa_csv.write_csv(table.slice(offset, 500_000), buffer, options)
            # no generated value holds a line ending, so every "\n" ends a row
            out.write(buffer.getvalue().replace(b"\n", b"\r\n"))


def write(month: Month, path: Path, format: str) -> Path:
    """Write as TLC publishes: Parquet with microsecond timestamps, or CSV with text timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    table = month.table
    for name in (PICKUP, DROPOFF):
        if format == "parquet":
            column = table[name].cast(pa.timestamp("us"))
        else:
            column = table[name].cast(pa.string())
            rows = month.unparsable.get(name, np.array([], dtype=np.int64))
            mask = np.zeros(len(table), dtype=bool)
            mask[rows] = True
            text = [UNPARSABLE_TEXT[i % len(UNPARSABLE_TEXT)] for i in range(len(rows))]
            column = pc.replace_with_mask(column, pa.array(mask), pa.array(text, pa.string()))
        table = table.set_column(table.schema.get_field_index(name), name, column)
    if format == "parquet":
        pq.write_table(table, partial, compression="snappy")
    elif format == "csv":
        _write_tlc_csv(table, partial)
    else:
        raise ValueError(f"format {format!r}: choose parquet or csv")
    partial.replace(path)
    return path
