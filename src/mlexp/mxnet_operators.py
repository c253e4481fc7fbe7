"""MXNet's operator functions, compiled once per user, Python and MXNet build rather than at every import.

At import MXNet writes the Python source of a function for each of its operators (mx.nd.*, mx.sym.* and their
NumPy forms, about 2,600) and compiles it: more than half of MXNet's start-up (0.84 -> 0.36 s here without it),
paid by every trial and by every sweep worker. The two modules that do it (OPERATOR_MODULES) get, while MXNet
loads, an `exec` that takes the compiled code from a file in the user's cache folder. Its entries are keyed by
a digest of the source MXNet wrote less the operator's handle (an address, different in each process, which is
put back into the code's constants); a source that is not there (a new operator) is compiled as MXNet would,
and the file is written again with what this import used. The file is per Python bytecode version, -O level
and MXNet build (its name says which). It is read only when it and its folder belong to the user and no one
else can write them (its code runs here), and any problem with it means compiling, as without it; deleting it
is always safe; MLEXP_MXNET_OPERATOR_CACHE=0 turns it off (MXNet then compiles every import, as it does alone).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import marshal
import os
import stat
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from mlexp.user_cache import cache_folder, make_private_folder, owned_privately, private_folder

OPERATOR_MODULES = ("mxnet.ndarray.register", "mxnet.symbol.register")  # where MXNet execs each operator's source
SWITCH_ENV = "MLEXP_MXNET_OPERATOR_CACHE"  # 0: off
# the file: this line, a CRC-32 of the rest (4 bytes), marshal of {digest: (code, handle it was compiled with)}
FORMAT = b"mlexp-mxnet-operators-3 " + importlib.util.MAGIC_NUMBER + b"\n"
STALE_PARTIAL_S = 3600  # a partial file this old was left by a process that died while writing it
STALE_CACHE_S = 30 * 86400  # another build's file unused this long (an old virtualenv's): removed
# an operator's function passes its operator's handle, an address in this process, to one of these as a literal
_HANDLE_TAKERS = ("_imperative_invoke(", "_symbol_creator(")

Entry = tuple[CodeType, int | None]  # the code, and the operator handle it was compiled with


def cache_file() -> Path | None:
    """This Python's and this MXNet's file in $XDG_CACHE_HOME/mlexp or ~/.cache/mlexp; None when turned off, or
    without a home folder."""
    if os.environ.get(SWITCH_ENV) == "0":
        return None
    try:
        spec = importlib.util.find_spec("mxnet")
    except (ImportError, ValueError):  # a module in sys.modules without a spec
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(spec.submodule_search_locations[0])
    try:
        library_path = _library(package)
        library = library_path.stat()
        folder = cache_folder()
    except Exception:  # no library MXNet could load (libinfo: RuntimeError); no HOME and no password entry
        return None
    build = f"{package}:{library_path}:{library.st_size}:{library.st_mtime_ns}"
    build = hashlib.blake2b(build.encode(), digest_size=6).hexdigest()
    name = f"mxnet-operators.{sys.implementation.cache_tag}.opt{sys.flags.optimize}.{build}.marshal"
    return folder / name


def _library(package: Path) -> Path:
    """The libmxnet MXNet will load, as MXNet's own libinfo finds it (MXNET_LIBRARY_PATH, LD_LIBRARY_PATH, the
    package). libinfo is run from its file: importing mxnet.libinfo would import MXNet. Its warnings about those
    variables are dropped here (MXNet's import gives them right after); like MXNet's, a warning sets up logging's
    default handler if the program has none."""
    spec = importlib.util.spec_from_file_location("_mlexp_mxnet_libinfo", package / "libinfo.py")
    assert spec is not None and spec.loader is not None
    libinfo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(libinfo)
    unsaid = logging.Filter("_mlexp_nothing")  # passes no record of the root logger, which libinfo warns with
    logging.root.addFilter(unsaid)
    try:
        return Path(os.path.abspath(libinfo.find_lib_path()[0]))
    finally:
        logging.root.removeFilter(unsaid)


def _read(path: Path) -> dict[bytes, Entry]:
    """The file's entries; none if it is not the user's private file, or not one this code wrote whole."""
    try:
        if not private_folder(path.parent):
            return {}
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)  # a FIFO there must not block
    except OSError:
        return {}
    try:
        info = os.fstat(descriptor)
        if not (stat.S_ISREG(info.st_mode) and owned_privately(info)):
            return {}
        with os.fdopen(descriptor, "rb", closefd=False) as file:
            data = file.read()
    except OSError:
        return {}
    finally:
        os.close(descriptor)
    body = data[len(FORMAT) + 4 :]
    if not data.startswith(FORMAT) or data[len(FORMAT) : len(FORMAT) + 4] != _checksum(body):
        return {}  # another format, or damaged: a flipped bit can still unmarshal, into other code
    try:
        entries = marshal.loads(body)
    except Exception:  # marshal raises EOFError, ValueError, TypeError, even SystemError
        return {}
    if not isinstance(entries, dict):
        return {}
    if time.time() - info.st_mtime > STALE_CACHE_S / 30:  # in use: not another build's file to remove (daily touch)
        with contextlib.suppress(OSError):
            os.utime(path)
    return {key: entry for key, entry in entries.items() if _is_entry(key, entry)}


def _checksum(body: bytes) -> bytes:
    return zlib.crc32(body).to_bytes(4, "big")


def _is_entry(key: object, entry: object) -> bool:
    return (
        isinstance(key, bytes)
        and isinstance(entry, tuple)
        and len(entry) == 2
        and isinstance(entry[0], CodeType)
        and (entry[1] is None or type(entry[1]) is int)
    )


def _without_handle(source: str) -> tuple[str, int | None]:
    """The source with its operator handle's digits taken out (the same in every process), and the handle."""
    for taker in _HANDLE_TAKERS:
        start = source.rfind(taker) + len(taker)
        end = source.find(",", start)
        if start >= len(taker) and source[start:end].isdigit():
            return source[:start] + "{handle}" + source[end:], int(source[start:end])
    return source, None


def _replaced(code: CodeType, old: int, new: int) -> tuple[CodeType, int]:
    """`code` with the integer constant `old` replaced by `new`, in it and in the code it holds; how many were."""
    consts, count = [], 0
    for constant in code.co_consts:
        if type(constant) is int and constant == old:
            constant, found = new, 1
        elif isinstance(constant, CodeType):
            constant, found = _replaced(constant, old, new)
        else:
            found = 0
        consts.append(constant)
        count += found
    return code.replace(co_consts=tuple(consts)), count


def _for_handle(entry: Entry, handle: int | None) -> CodeType | None:
    """The entry's code with this process's operator handle; None when that cannot be made (compile it then)."""
    code, compiled_with = entry
    if compiled_with == handle:
        return code
    if compiled_with is None or handle is None:
        return None
    code, replaced = _replaced(code, compiled_with, handle)
    return code if replaced == 1 else None  # the handle, and only it


class CompiledOperators:
    """The code objects of operator sources, from the cache file, and written back to it when it lacked one."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.from_file = _read(path) if path is not None else {}
        self.this_import: dict[bytes, Entry] = {}
        self.compiled = 0

    def code(self, source: str) -> CodeType:
        without, handle = _without_handle(source)
        key = hashlib.blake2b(without.encode(), digest_size=16).digest()
        entry = self.from_file.get(key)
        code = _for_handle(entry, handle) if entry is not None else None
        if entry is None or code is None:
            # as exec compiles a string in MXNet's module: no __future__ flags of ours
            code = compile(source, "<string>", "exec", dont_inherit=True)
            entry = code, handle
            self.compiled += 1
        self.this_import[key] = entry
        return code

    def exec_for_mxnet(self, namespace: dict[str, Any]) -> Callable[..., None]:
        """The `exec` of a module whose namespace this is, while MXNet loads: the built-in, with compiled code for
        a source string."""

        def exec_compiled(source: Any, globals: Any = None, locals: Any = None, /) -> None:
            if isinstance(source, str):
                source = self.code(source)
            if globals is None:  # the built-in's defaults: the calling frame's namespaces
                frame = sys._getframe(1)
                globals, locals = frame.f_globals, frame.f_locals if locals is None else locals
            builtins.exec(source, globals, locals)

        return exec_compiled

    def save(self) -> None:
        """Write the file when this import compiled a source or left one unused (it then holds what MXNet uses)."""
        unchanged = not self.compiled and len(self.this_import) == len(self.from_file)
        if self.path is None or not self.this_import or unchanged:
            return
        folder = self.path.parent
        if not make_private_folder(folder):
            return
        try:
            descriptor, partial = tempfile.mkstemp(dir=folder, prefix=f"{self.path.name}.", suffix=".partial")
        except OSError:
            return
        body = marshal.dumps(self.this_import)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(FORMAT + _checksum(body) + body)
            os.replace(partial, self.path)  # readers see the old file or the whole new one
        except OSError:
            Path(partial).unlink(missing_ok=True)
        _remove_stale(folder)


def _remove_stale(folder: Path) -> None:
    """Partial files of processes that died writing them; other builds' files left unused for a month."""
    now = time.time()
    for path in folder.glob("mxnet-operators.*"):
        age = STALE_PARTIAL_S if path.name.endswith(".partial") else STALE_CACHE_S
        with contextlib.suppress(OSError):
            if now - path.stat().st_mtime > age:
                path.unlink()


class _Loader(importlib.abc.Loader):
    """The module's own loader, with `exec` in the module's namespace before its code runs."""

    def __init__(self, loader: importlib.abc.Loader, operators: CompiledOperators) -> None:
        self.loader, self.operators = loader, operators

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.exec = self.operators.exec_for_mxnet(vars(module))  # type: ignore[attr-defined]
        self.loader.exec_module(module)

    def __getattr__(self, name: str) -> Any:  # get_source, get_code…: what inspect and tracebacks ask of a loader
        return getattr(self.loader, name)


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, operators: CompiledOperators) -> None:
        self.operators = operators

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in OPERATOR_MODULES:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader, self.operators)
        return spec


def _restore(module: ModuleType) -> None:
    """The module as MXNet made it: the built-in exec (operator libraries loaded later compile as MXNet does),
    its own loader (ours holds the cache's megabytes)."""
    vars(module).pop("exec", None)
    if isinstance(module.__loader__, _Loader):
        module.__loader__ = module.__loader__.loader
    if module.__spec__ is not None and isinstance(module.__spec__.loader, _Loader):
        module.__spec__.loader = module.__spec__.loader.loader


@contextlib.contextmanager
def compiled_operators() -> Iterator[CompiledOperators]:
    """Around MXNet's import: its operator functions from the cache file, which is then brought up to date."""
    operators = CompiledOperators(cache_file())
    finder = _Finder(operators)
    sys.meta_path.insert(0, finder)
    try:
        yield operators
    finally:
        sys.meta_path.remove(finder)
        for name in OPERATOR_MODULES:
            if (module := sys.modules.get(name)) is not None:
                _restore(module)
    operators.save()
    operators.from_file, operators.this_import = {}, {}
