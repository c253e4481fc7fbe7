"""Text data files as users have them: a file that is not UTF-8 is one line saying what it is and how to re-save it.

Excel saves CSV as Windows-1252 ("CSV (Comma delimited)") or UTF-16 ("Unicode Text"); a binary file given by
mistake (a Parquet or a zip renamed) has NUL bytes. Each gets its own fix rather than Python's UnicodeDecodeError.
"""

from __future__ import annotations

from pathlib import Path

from mlexp.errors import DataError

UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def not_utf8(path: Path, line: int, data: bytes, error: UnicodeDecodeError) -> str:
    """One line saying that a file is not UTF-8: where, which byte, what it likely is, and how to fix it."""
    byte = data[error.start : error.start + 1].hex()
    where = f"{path}: line {line}: expected UTF-8 text, found the byte 0x{byte}"
    if line == 1 and data.startswith(UTF16_MARKS):
        return (
            f"{where}: the file is UTF-16 (as Excel's 'Unicode Text' saves it); re-save it as UTF-8, e.g. "
            '`iconv -f utf-16 -t utf-8 in.csv > out.csv`, or in Excel as "CSV UTF-8"'
        )
    if b"\x00" in data:
        return f"{where}: the file is binary, not a text (CSV) file; point the dataset at the text file"
    return (
        f"{where}: the file is not UTF-8 (Latin-1 or Windows-1252, as Excel saves CSV?); re-save it as UTF-8, e.g. "
        '`iconv -f cp1252 -t utf-8 in.csv > out.csv`, or in Excel as "CSV UTF-8"'
    )


def decode_utf8(path: Path, data: bytes) -> str:
    """The file's bytes as text (a UTF-8 byte order mark dropped); one line naming the first line that is not UTF-8."""
    try:
        return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as error:
        start = data.rfind(b"\n", 0, error.start) + 1
        end = data.find(b"\n", error.start)
        line_bytes = data[start : end if end >= 0 else len(data)]
        moved = UnicodeDecodeError(error.encoding, line_bytes, error.start - start, error.end - start, error.reason)
        raise DataError(not_utf8(path, data.count(b"\n", 0, error.start) + 1, line_bytes, moved)) from None
