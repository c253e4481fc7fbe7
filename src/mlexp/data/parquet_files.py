"""A file named as Parquet that is not one: one line saying what it looks like, and the fix.

A Parquet file starts and ends with the bytes PAR1. DuckDB's own error ("No magic bytes found at end of file")
says neither what the file is nor what to do about it: a CSV saved under a .parquet name, a gzip or ZIP download
not unpacked, the error page a failed download saves (HTML or XML), a download cut short. A Parquet file gzipped
whole (yellow_tripdata_2024-01.parquet.gz) is told by the start of what it unpacks to, whatever its name.
"""

from __future__ import annotations

import gzip
import shlex
import zlib
from pathlib import Path

MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
# enough of the start to tell text from binary, and to show the first line
SAMPLE_BYTES = 4096
# the control characters text holds: tab, line feed, form feed, carriage return
TEXT_CONTROLS = "\t\n\f\r"


def not_parquet(path: Path) -> str | None:
    """One line naming what a file given as Parquet is instead, and the fix; None when it has Parquet's markers."""
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
        handle.seek(max(path.stat().st_size - len(MAGIC), 0))
        tail = handle.read()
    if head.startswith(MAGIC) and tail == MAGIC:
        return None
    problem = f"{path}: not a Parquet file (no PAR1 marker at its {'end' if head.startswith(MAGIC) else 'start'})"
    if head.startswith(MAGIC):
        return f"{problem}: it starts as one but its end is missing (a download cut short?); download it again"
    if head.startswith(GZIP_MAGIC):
        return gzipped_parquet(path) or (
            f"{problem}: it is gzip-compressed; if it holds a CSV, rename it to .csv.gz, else unpack it "
            "(gunzip) and give the Parquet file inside"
        )
    if head.startswith(ZIP_MAGIC):
        return f"{problem}: it is a ZIP archive; unzip it and give the Parquet file inside"
    first = first_text_line(head)
    if first is None:
        return f"{problem}, nor text; give the real Parquet file"
    if first.lstrip().startswith("<"):
        return (
            f"{problem}: it is a web page or XML, as a failed download saves one (first line {first!r}); "
            "download the file again"
        )
    looks = "text, a CSV by its first line" if "," in first else "text, its first line"
    return f"{problem}: it is {looks} {first!r}; rename it to .csv, or give the real Parquet file"


def is_gzip(path: Path) -> bool:
    """Whether a file is gzip-compressed, by its first bytes (a .csv.gz, or a file so compressed under any name)."""
    with path.open("rb") as handle:
        return handle.read(len(GZIP_MAGIC)) == GZIP_MAGIC


def holds_gzipped_parquet(path: Path) -> bool:
    """Whether a file is a Parquet file compressed whole with gzip: it unpacks to Parquet's first bytes."""
    if not is_gzip(path):
        return False
    try:
        with gzip.open(path, "rb") as unpacked:
            return unpacked.read(len(MAGIC)) == MAGIC
    except (OSError, EOFError, zlib.error):  # a gzip header over damaged data: no Parquet to tell
        return False


def gzipped_parquet(path: Path) -> str | None:
    """One line saying a file is a Parquet file compressed whole with gzip, and how to unpack it; None otherwise."""
    if not holds_gzipped_parquet(path):
        return None
    problem = f"{path}: a gzip-compressed Parquet file, which DuckDB reads only unpacked"
    if path.suffix.lower() == ".gz":
        unpacked = path.with_suffix("")
        return f"{problem}; unpack it with `gunzip {shlex.quote(str(path))}`, then point dataset.path at {unpacked}"
    # gunzip refuses a name without .gz; renamed first, the file unpacks to its own name and dataset.path stays
    packed = shlex.quote(f"{path}.gz")
    return f"{problem}; unpack it in place with `mv {shlex.quote(str(path))} {packed} && gunzip {packed}`"


def first_text_line(head: bytes) -> str | None:
    """The first line (at most 80 characters) of bytes that read as UTF-8 text, or None for binary."""
    data = head.removeprefix(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(data) - 3:  # not merely a character cut at the sample's end
            return None
        text = data[: error.start].decode("utf-8")
    if any(not char.isprintable() and char not in TEXT_CONTROLS for char in text):
        return None
    return (text.splitlines() or [""])[0][:80]
