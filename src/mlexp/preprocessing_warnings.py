"""The warnings a shared Pre-processing printed, kept with its component and repeated by every trial that reuses it.

A reused Pre-processing does not run again, so without its warnings a trial on the same bad file (another model
on it, say) would never say that rows were skipped or read as null. The lines are mlexp's own about the data:
its warnings and the inputs a stage skipped, as the stage printed them on stderr.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

# `mlexp: warning: ` is console.warn's form; `mlexp: skipped ` names an input a stage left out (a bad document)
REPEATED_PREFIXES = ("mlexp: warning: ", "mlexp: skipped ")
_LINE_ENDS = re.compile(r"\r\n|\n|\r")


class _KeptLines:
    """A text stream that writes everything to `stream` and keeps the whole lines that start with a repeated
    prefix."""

    def __init__(self, stream: TextIO, kept: list[str]) -> None:
        self.stream = stream
        self.kept = kept
        self._line = ""
        self._lock = threading.Lock()  # MLflow and tqdm write from their own threads too

    def write(self, text: str) -> int:
        written = self.stream.write(text)
        with self._lock:
            *whole, self._line = _LINE_ENDS.split(self._line + text)
            self.kept.extend(line for line in whole if line.startswith(REPEATED_PREFIXES))
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)  # flush, encoding, isatty, fileno, ... of the real stream


@contextmanager
def warnings_printed() -> Iterator[list[str]]:
    """The warning lines printed on stderr meanwhile, in their order (filled as they are printed)."""
    kept: list[str] = []
    stderr = sys.stderr
    sys.stderr = _KeptLines(stderr, kept)  # type: ignore[assignment]
    try:
        yield kept
    finally:
        sys.stderr = stderr


def repeat(lines: list[str], source_trial: str) -> None:
    """Print again the warning lines of the Pre-processing of `source_trial` that this trial reuses."""
    for line in lines:
        print(f"{line} (from the reused pre-processing of trial {source_trial})", file=sys.stderr, flush=True)
