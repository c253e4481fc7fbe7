"""A file named as Parquet that is not one: one line saying what it looks like, and the fix.

A Parquet file starts and ends with the bytes PAR1. DuckDB's own error ("No magic bytes found at end of file")
says neither what the file is nor what to do about it: a CSV saved under a .parquet name, a gzip or ZIP download
not unpacked, the error page a failed download saves (HTML or XML), a download cut short.
"""

from __future__ import annotations

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
        return (
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
