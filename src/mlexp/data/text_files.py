"""Text data files as users have them: a file that is not UTF-8 is one line saying what it is and how to re-save it.

Excel saves CSV as Windows-1252 ("CSV (Comma delimited)") or UTF-16 ("Unicode Text"); a binary file given by
mistake (a Parquet or a zip renamed) has NUL bytes, and so has UTF-16 saved without its byte order mark, which is
valid UTF-8 byte by byte. Each gets its own fix rather than Python's UnicodeDecodeError. A file that is not a CSV
(`excel=False`: JSON Lines, say) gets the same lines without the Excel advice, its iconv example named by its suffix.
"""

from __future__ import annotations

from pathlib import Path

from mlexp.errors import DataError

UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def not_utf8(path: Path, line: int, data: bytes, error: UnicodeDecodeError, excel: bool = True) -> str:
    """One line saying that a file is not UTF-8: where, which byte, what it likely is, and how to fix it."""
    byte = data[error.start : error.start + 1].hex()
    where = f"{path}: line {line}: expected UTF-8 text, found the byte 0x{byte}"
    if line == 1 and data.startswith(UTF16_MARKS):
        saved_by = " (as Excel's 'Unicode Text' saves it)" if excel else ""
        return f"{where}: the file is UTF-16{saved_by}; re-save it as UTF-8, e.g. {_iconv('utf-16', path, excel)}"
    if b"\x00" in data:
        return _with_nul_is(where, data, path, excel)
    return (
        f"{where}: the file is not UTF-8 (Latin-1 or Windows-1252{', as Excel saves CSV' if excel else ''}?); re-save "
        f"it as UTF-8, e.g. {_iconv('cp1252', path, excel)}"
    )


def _iconv(encoding: str, path: Path, excel: bool) -> str:
    """The command re-saving the file as UTF-8 (and Excel's way, for a CSV)."""
    if excel:
        return f'`iconv -f {encoding} -t utf-8 in.csv > out.csv`, or in Excel as "CSV UTF-8"'
    return f"`iconv -f {encoding} -t utf-8 in{path.suffix} > out{path.suffix}`"


def with_nul(path: Path, data: bytes, excel: bool = True) -> str:
    """One line for text that decodes as UTF-8 yet holds NUL bytes, which no text file does."""
    line = data.count(b"\n", 0, max(data.find(b"\x00"), 0)) + 1
    return _with_nul_is(f"{path}: line {line}: expected UTF-8 text, found a NUL byte", data, path, excel)


def _with_nul_is(where: str, data: bytes, path: Path, excel: bool) -> str:
    """What a file with NUL bytes is: UTF-16 saved without its byte order mark (every other byte of ASCII text is
    NUL), else binary."""
    sample = data[: min(len(data), 4096) // 2 * 2]  # whole UTF-16 code units
    for encoding, nul_half in (("utf-16le", sample[1::2]), ("utf-16be", sample[0::2])):
        if nul_half and nul_half.count(0) >= 0.9 * len(nul_half):
            return (
                f"{where}: the file is {encoding.upper()} without a byte order mark; re-save it as UTF-8, e.g. "
                f"{_iconv(encoding, path, excel)}"
            )
    kind = "a text (CSV) file" if excel else "a text file"
    return f"{where}: the file is binary, not {kind}; point the dataset at the text file"


def decode_utf8(path: Path, data: bytes, excel: bool = True) -> str:
    """The file's bytes as text (a UTF-8 byte order mark dropped); one line naming the first line that is not UTF-8,
    or holds a NUL byte (valid UTF-8, but UTF-16 or binary). `excel`: a CSV, which Excel may have saved."""
    if b"\x00" in data and not data.startswith(UTF16_MARKS):  # told from the whole file: a line's NULs may be odd
        raise DataError(with_nul(path, data, excel))
    try:
        return data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError as error:
        start = data.rfind(b"\n", 0, error.start) + 1
        end = data.find(b"\n", error.start)
        line_bytes = data[start : end if end >= 0 else len(data)]
        moved = UnicodeDecodeError(error.encoding, line_bytes, error.start - start, error.end - start, error.reason)
        raise DataError(not_utf8(path, data.count(b"\n", 0, error.start) + 1, line_bytes, moved, excel)) from None
