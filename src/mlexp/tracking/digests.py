"""Data versions, as DVC records them in dvc.lock: the MD5 of a file's bytes; of a folder, `<MD5>.dir`.

Reading a month of trips again costs about 1.7 CPU s per GB, and a trial reads its inputs and writes its
outputs anyway, so a file is hashed at most once, and where possible beside other work:
- `file_digest` keeps digests on disk under each file's identity, for the next command;
- `prefetch` hashes a trial's input files on a thread as the trial starts, while its libraries import;
- `DigestingFile` hashes a file as it is written (on a thread of its own), and `remember` keeps the digest
  for this process, so recording the output does not read it back.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import queue
import re
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlexp.interrupts import wait_obeying_signals
from mlexp.paths import project_root

# a file written this recently is not put in the digest cache (file_digest)
DIGEST_SETTLE_S = 2
# this process's digests by resolved path: (identity, digest) of the files it wrote (remember) and hashed
_KNOWN: dict[str, tuple[str, str]] = {}
# digests being computed ahead by `prefetch`, by resolved path
_PENDING: dict[str, Future[tuple[str, str]]] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class _Listing:
    """A file or folder as seen once: its identity and, for the digest, the files and their stats."""

    identity: str
    files: list[Path]
    stats: list[os.stat_result]


def _listing(path: Path) -> _Listing:
    """Who a file or folder is: its resolved path, and each file's device, inode, size and modification and
    change times. Any write to a file changes its times, so a changed file has a new identity."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    stats = [file.stat() for file in files]
    if not path.is_dir():
        return _Listing(_file_identity(path, stats[0]), files, stats)
    # "dvc-dir": folders are hashed as DVC hashes them (`_folder_md5`) since 2026-12-04; not an older entry
    listed = [
        [str(f.relative_to(path)), s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns]
        for f, s in zip(files, stats)
    ]
    return _Listing(json.dumps([str(path.resolve()), "dvc-dir", *listed]), files, stats)


def _file_identity(file: Path, s: os.stat_result) -> str:
    return json.dumps([str(file.resolve()), False, ["", s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns]])


def _known(path: Path, identity: str) -> str | None:
    found = _KNOWN.get(str(path.resolve()))
    return found[1] if found is not None and found[0] == identity else None


def file_digest(path: Path, cache: Path | None = None) -> str:
    """The data version of a file or folder, as DVC records it in dvc.lock: the MD5 of a file's bytes; for a
    folder, `<MD5 of the list of its files' paths and MD5s>.dir`, as `dvc add` records it (DVC also skips
    what .dvcignore names, and .git and .dvc folders: this hashes every file).

    The digest is kept in `cache` (default: the project's .mlexp/file_digests/) and in this process under
    the file's identity (`_listing`), so an unchanged file is not read again. A file modified within the
    last DIGEST_SETTLE_S seconds is not kept: a second write in the same clock tick could otherwise keep the
    times and size of the first (git's "racily clean" case). A digest `prefetch` is computing is waited for
    and used while the file's identity is the one it started from (so that race is accepted there, for a
    trial's input files, between the command's start and the first stage's record of them).
    """
    pending = _PENDING.get(str(path.resolve()))
    if pending is not None:
        # a month of trips takes seconds to read: a Ctrl-C meanwhile is obeyed at once
        wait_obeying_signals(lambda most: not wait([pending], most).not_done, None)
        if pending.exception() is None:  # a failed prefetch leaves the work to `_digest`
            identity, digest = pending.result()
            if identity == _listing(path).identity:  # unchanged since the prefetch started reading it
                return digest
    return _digest(path, cache)


def _digest(path: Path, cache: Path | None) -> str:
    seen = _listing(path)
    known = _known(path, seen.identity)
    if known is not None:
        return known
    entry = (cache or project_root() / ".mlexp" / "file_digests") / hashlib.sha256(seen.identity.encode()).hexdigest()
    try:
        cached = entry.read_text()
        if re.fullmatch(r"[0-9a-f]{32}(\.dir)?", cached):
            return cached
    except OSError:
        pass
    digest = _folder_md5(path, seen) if path.is_dir() else _md5(path)
    settled = time.time_ns() - DIGEST_SETTLE_S * 10**9
    if all(max(s.st_mtime_ns, s.st_ctime_ns) < settled for s in seen.stats):
        _KNOWN[str(path.resolve())] = (seen.identity, digest)
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            partial = entry.with_name(f"{entry.name}.{os.getpid()}.partial")
            partial.write_text(digest)
            partial.replace(entry)
        except OSError:
            pass  # a read-only project still gets its digests, computed each time
    return digest


def _md5(file: Path) -> str:
    digest = hashlib.md5()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _folder_md5(folder: Path, seen: _Listing) -> str:
    """DVC's hash of a folder (dvc_data's Tree.digest): the MD5 of the JSON list of {md5, relpath} of its
    files, sorted by path, plus ".dir". A file this process wrote and `remember`ed is not read again."""
    listed = []
    for file, s in zip(seen.files, seen.stats):
        md5 = _known(file, _file_identity(file, s)) or _md5(file)
        listed.append({"md5": md5, "relpath": file.relative_to(folder).as_posix()})
    listed.sort(key=lambda item: item["relpath"])
    return hashlib.md5(json.dumps(listed, sort_keys=True).encode("utf-8")).hexdigest() + ".dir"


def prefetch(paths: Iterable[Path]) -> None:
    """Start hashing `paths` on a thread (hashlib releases the GIL, so it runs beside imports and queries);
    `file_digest` of one of them then waits for its result instead of reading the file a second time."""
    with _LOCK:
        todo = [path for path in paths if path.is_file() and not _computing(str(path.resolve()))]
        futures: list[Future[tuple[str, str]]] = [Future() for _ in todo]
        _PENDING.update({str(path.resolve()): future for path, future in zip(todo, futures)})
    if not todo:
        return

    def work() -> None:
        for path, future in zip(todo, futures):
            try:
                identity = _listing(path).identity
                future.set_result((identity, _digest(path, None)))
            except BaseException as error:  # noqa: BLE001 - handed to whoever waits for this digest
                future.set_exception(error)

    try:
        threading.Thread(target=work, name="mlexp-digest-prefetch", daemon=True).start()
    except RuntimeError as error:  # no thread to be had: whoever asks hashes the file itself
        for future in futures:
            future.set_exception(error)


def _computing(resolved: str) -> bool:
    pending = _PENDING.get(resolved)
    return pending is not None and not pending.done()


def remember(path: Path, digest: str) -> None:
    """Keep the MD5 of a file this process has just written (`DigestingFile`) for `file_digest`, in this process
    only: its writer knows its bytes, so no settling time applies, but another process must read it itself."""
    _KNOWN[str(path.resolve())] = (_listing(path).identity, digest)


_END = None
CHUNK_BYTES = 4 << 20


class DigestingFile(io.RawIOBase):
    """A new file opened for writing whose MD5 is computed from the bytes as they are written.

    Writing to disk and hashing happen on a thread of its own, so a writer that encodes (pyarrow's Parquet
    writer) goes on while the last bytes are hashed: on two cores the MD5 of the cleaned trips (0.3 s)
    leaves the stage's time. `hexdigest()` is the file's MD5 once it is closed. An error writing is raised
    by every later write and by close, and leaves no digest.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self._file = path.open("wb")
        self._md5 = hashlib.md5()
        self._position = 0
        self._buffer = bytearray()
        self._queue: queue.Queue[bytearray | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name="mlexp-digesting-file", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (chunk := self._queue.get()) is not _END:
            assert chunk is not None
            if self._error is None:
                try:
                    self._file.write(chunk)
                    self._md5.update(chunk)
                except BaseException as error:  # noqa: BLE001 - raised in the writer's thread
                    self._error = error

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError(f"write to {self._file.name}, which is closed")
        if self._error is not None:
            raise self._error
        # copied (the caller may reuse its buffer once this returns) into chunks of a few MB: a Parquet
        # writer's many small writes (page headers of tens of bytes) would each cost a thread hand-off
        view = memoryview(data)
        self._buffer += view
        self._position += view.nbytes
        if len(self._buffer) >= CHUNK_BYTES:
            self._queue.put(self._buffer)
            self._buffer = bytearray()
        return view.nbytes

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._buffer:
                self._queue.put(self._buffer)
            self._queue.put(_END)
            self._thread.join()
            try:
                self._file.close()  # the last bytes reach the disk here: an error is the file's as any other
            except BaseException as error:  # noqa: BLE001 - kept, then raised below
                self._error = self._error or error
        finally:
            super().close()
        if self._error is not None:
            raise self._error

    def __exit__(self, *raised: Any) -> None:
        """As close, but an exception already leaving the `with` block is not replaced by the file's own error
        (the digest is refused all the same)."""
        try:
            self.close()
        except BaseException:
            if raised[0] is None:
                raise

    def hexdigest(self) -> str:
        if not self.closed:
            raise ValueError("the digest of a file still being written")
        if self._error is not None:
            raise ValueError(f"no digest: writing {self._file.name} failed ({self._error})")
        return self._md5.hexdigest()
