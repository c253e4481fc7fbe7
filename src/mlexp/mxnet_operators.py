"""MXNet's operator functions, compiled once per machine rather than at every import.

At import MXNet writes the Python source of a function for each of its operators (mx.nd.*, mx.sym.* and their
NumPy forms, about 2,600) and compiles it: more than half of MXNet's start-up (0.47 of 0.84 s here), paid by
every trial and by every sweep worker. The two modules that do it (OPERATOR_MODULES) get, while MXNet loads,
an `exec` that takes the compiled code from a file in the user's cache folder, keyed by the source MXNet wrote
less the operator's handle (an address, different in each process, which is put back into the code's
constants): a source that is not there (another MXNet build, a new operator) is compiled as MXNet would, and
the file is written again with what this import used. Code objects belong to one Python bytecode version, whose
magic number heads the file. Only a folder that no other user can write is read (its code runs here); any
problem with the file means compiling, as without it.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import marshal
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

OPERATOR_MODULES = ("mxnet.ndarray.register", "mxnet.symbol.register")  # where MXNet execs each operator's source
CACHE_ENV = "XDG_CACHE_HOME"
# an operator's function passes its operator's handle, an address in this process, to one of these as a literal
_HANDLE_TAKERS = ("_imperative_invoke(", "_symbol_creator(")


def cache_file() -> Path | None:
    """The cache file in $XDG_CACHE_HOME/mlexp or ~/.cache/mlexp; None without a home folder to put it in."""
    try:
        base = os.environ.get(CACHE_ENV) or Path.home() / ".cache"
    except (RuntimeError, KeyError):  # no HOME and no password entry: a bare container user
        return None
    return Path(base, "mlexp", f"mxnet-operators.{sys.implementation.cache_tag}.marshal")


def _private(folder: Path) -> bool:
    """A folder of this user's that no one else may write: code read from it is as safe as the user's own."""
    try:
        info = folder.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


class CompiledOperators:
    """The code objects of operator sources, read from the cache file and written back when it lacked one."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.known = self._read() if path is not None else {}
        self.used: dict[str, tuple[CodeType, int | None]] = {}
        self.compiled = 0

    def _read(self) -> dict[str, tuple[CodeType, int | None]]:
        assert self.path is not None
        if not _private(self.path.parent):
            return {}
        try:
            data = self.path.read_bytes()
        except OSError:
            return {}
        magic = importlib.util.MAGIC_NUMBER
        if not data.startswith(magic):
            return {}
        try:
            codes = marshal.loads(data[len(magic) :])
        except (EOFError, ValueError, TypeError):
            return {}
        return codes if isinstance(codes, dict) else {}

    def code(self, source: str) -> CodeType:
        key, handle = _without_handle(source)
        known = self.known.get(key)
        if known is None:
            # as exec compiles a string in MXNet's module: no __future__ flags of ours
            known = compile(source, "<string>", "exec", dont_inherit=True), handle
            self.compiled += 1
        self.used[key] = known
        code, compiled_with = known
        return code if compiled_with == handle else _with_constant(code, compiled_with, handle)

    def exec_in(self, module: ModuleType) -> Callable[..., None]:
        """The `exec` of `module` while MXNet loads: the built-in one, with compiled code for a source string."""

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
        if self.path is None or not self.used or (not self.compiled and len(self.used) == len(self.known)):
            return
        folder = self.path.parent
        with contextlib.suppress(OSError):
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(folder):
            return
        partial = self.path.with_name(f"{self.path.name}.{os.getpid()}.partial")
        try:
            partial.write_bytes(importlib.util.MAGIC_NUMBER + marshal.dumps(self.used))
            os.replace(partial, self.path)  # readers see the old file or the whole new one
        except OSError:
            partial.unlink(missing_ok=True)


def _without_handle(source: str) -> tuple[str, int | None]:
    """The source with its operator handle's digits taken out (the same in every process), and the handle."""
    for taker in _HANDLE_TAKERS:
        start = source.rfind(taker) + len(taker)
        end = source.find(",", start)
        if start >= len(taker) and source[start:end].isdigit():
            return source[:start] + "{handle}" + source[end:], int(source[start:end])
    return source, None


def _with_constant(code: CodeType, old: int | None, new: int | None) -> CodeType:
    """`code` with the integer constant `old` replaced by `new`, in it and in the code it holds (functions)."""
    consts = tuple(
        new if type(c) is int and c == old else _with_constant(c, old, new) if isinstance(c, CodeType) else c
        for c in code.co_consts
    )
    return code.replace(co_consts=consts)


class _Loader(importlib.abc.Loader):
    """The module's own loader, with `exec` in the module's namespace before its code runs."""

    def __init__(self, loader: importlib.abc.Loader, operators: CompiledOperators) -> None:
        self.loader, self.operators = loader, operators

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.exec = self.operators.exec_in(module)  # type: ignore[attr-defined]
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
        for name in OPERATOR_MODULES:  # later operator libraries (mx.library.load) compile as MXNet does
            vars(sys.modules.get(name, ModuleType(name))).pop("exec", None)
    operators.save()
