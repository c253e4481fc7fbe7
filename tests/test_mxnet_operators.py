"""MXNet's operator functions from the compiled cache are the ones MXNet compiles itself, in every process."""

from __future__ import annotations

import json
import logging
import marshal
import os
import subprocess
import sys
import time
from pathlib import Path

from mlexp import mxnet_operators

# MXNet loaded as mlexp loads it; every operator source MXNet wrote and the code it got, checked against MXNet's
# own compilation of that source (a code object equals another of the same source, constants included)
IMPORT_AND_CHECK = """
import json, sys
from mlexp import mxnet_operators
from mlexp.mxnet_import import import_mxnet

given = []
code_of = mxnet_operators.CompiledOperators.code
def recording(self, source):
    code = code_of(self, source)
    given.append((source, code))
    return code
mxnet_operators.CompiledOperators.code = recording
save = mxnet_operators.CompiledOperators.save
def counting(self):
    print(json.dumps({"compiled": self.compiled, "from_file": len(given) - self.compiled}))
    save(self)
mxnet_operators.CompiledOperators.save = counting

mx = import_mxnet()
def same(code, source):
    compiled = compile(source, "<string>", "exec")
    return code == compiled and (code.co_filename, code.co_qualname) == (compiled.co_filename, compiled.co_qualname)
wrong = [s.splitlines()[1] for s, code in given if not same(code, s)]
net = mx.gluon.nn.Dense(3, in_units=2)
net.initialize(mx.init.Constant(0.5))
print(json.dumps({
    "operators": len(given),
    "wrong": wrong[:3],
    "exec left in MXNet": [m for m in mxnet_operators.OPERATOR_MODULES if "exec" in vars(sys.modules[m])],
    "loaders left": [
        m for m in mxnet_operators.OPERATOR_MODULES
        for loader in (sys.modules[m].__loader__, sys.modules[m].__spec__.loader)
        if isinstance(loader, mxnet_operators._Loader)
    ],
    "dense": net(mx.nd.array([[1.0, 2.0]])).asnumpy().tolist(),
    "np": float(mx.np.array([1.0, 2.0, 6.0]).mean()),
    "symbol": mx.sym.FullyConnected(mx.sym.var("x"), num_hidden=2).list_arguments(),
}))
"""


def _mxnet_import(cache: Path, *flags: str, **env: str) -> tuple[dict, dict]:
    env = {"XDG_CACHE_HOME": str(cache), "PATH": "/usr/bin:/bin", **env}
    done = subprocess.run(
        [sys.executable, *flags, "-c", IMPORT_AND_CHECK], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    counts, found = (json.loads(line) for line in done.stdout.splitlines())
    return counts, found


def _works(found: dict) -> None:
    assert found["operators"] > 2000 and found["wrong"] == [] and found["exec left in MXNet"] == []
    assert found["loaders left"] == []
    assert found["dense"] == [[1.5, 1.5, 1.5]] and found["np"] == 3.0
    assert found["symbol"] == ["x", "fullyconnected0_weight", "fullyconnected0_bias"]


def test_the_second_import_takes_every_operator_from_the_cache_with_this_process_handles(tmp_path):
    cold, found = _mxnet_import(tmp_path)
    _works(found)
    assert cold["compiled"] == found["operators"] and cold["from_file"] == 0
    cache = tmp_path / "mlexp"
    assert cache.stat().st_mode & 0o777 == 0o700
    [written] = cache.iterdir()
    warm, found = _mxnet_import(tmp_path)  # another process: every operator handle is another address
    _works(found)
    assert warm == {"compiled": 0, "from_file": found["operators"]}
    assert written.stat().st_mtime_ns == next(cache.iterdir()).stat().st_mtime_ns  # nothing new: not rewritten


def test_a_damaged_or_foreign_cache_file_is_compiled_over(tmp_path):
    _mxnet_import(tmp_path)
    [written] = (tmp_path / "mlexp").iterdir()
    whole = written.read_bytes()
    body = whole[len(mxnet_operators.FORMAT) + 4 :]
    codes_only = marshal.dumps({key: code for key, (code, _) in marshal.loads(body).items()})  # another layout
    another_layout = mxnet_operators.FORMAT + mxnet_operators._checksum(codes_only) + codes_only
    for damaged in (whole[:1000], another_layout, b"another format" + whole[len(mxnet_operators.FORMAT) :]):
        written.write_bytes(damaged)
        counts, found = _mxnet_import(tmp_path)
        _works(found)
        assert counts["compiled"] == found["operators"]
    assert _mxnet_import(tmp_path)[0]["compiled"] == 0


def test_only_a_private_file_in_a_private_folder_is_read(tmp_path):
    _mxnet_import(tmp_path)
    cache = tmp_path / "mlexp"
    [written] = cache.iterdir()
    written.chmod(0o666)  # anyone's code could be in it
    counts, found = _mxnet_import(tmp_path)
    _works(found)
    assert counts["from_file"] == 0
    [written] = cache.iterdir()  # written again, privately
    assert written.stat().st_mode & 0o777 == 0o600 and _mxnet_import(tmp_path)[0]["compiled"] == 0
    cache.chmod(0o777)
    assert _mxnet_import(tmp_path)[0]["from_file"] == 0
    written.unlink()
    _mxnet_import(tmp_path)
    assert not list(cache.iterdir())  # nor written there


def test_optimised_python_and_the_off_switch_keep_apart_from_the_cache(tmp_path):
    _mxnet_import(tmp_path)
    counts, found = _mxnet_import(tmp_path, "-O")  # assertions compiled out: code of its own
    _works(found)
    assert counts["compiled"] == found["operators"] and len(list((tmp_path / "mlexp").iterdir())) == 2
    counts, found = _mxnet_import(tmp_path / "off", MLEXP_MXNET_OPERATOR_CACHE="0")
    _works(found)
    assert counts["compiled"] == found["operators"] and not (tmp_path / "off").exists()


def _operators_file(folder: Path) -> Path:
    """A small file in the cache's format, as save() writes it: one entry."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    operators = mxnet_operators.CompiledOperators(folder / "mxnet-operators.test.marshal")
    operators.code("def f(x):\n    return _imperative_invoke(1234, x, 1)\n")
    operators.save()
    return operators.path


def test_the_cache_reader_takes_only_a_whole_private_regular_file(tmp_path):
    path = _operators_file(tmp_path / "cache")
    assert len(mxnet_operators._read(path)) == 1
    whole = path.read_bytes()
    path.write_bytes(whole[:-1] + bytes([whole[-1] ^ 1]))  # one bit flipped: it may still unmarshal
    assert mxnet_operators._read(path) == {}
    path.write_bytes(whole)
    path.chmod(0o620)  # the group may write it
    assert mxnet_operators._read(path) == {}
    path.chmod(0o600)
    link = path.with_name("link.marshal")
    link.symlink_to(path)
    assert mxnet_operators._read(link) == {}
    fifo = path.with_name("fifo.marshal")
    os.mkfifo(fifo)
    assert mxnet_operators._read(fifo) == {}  # without O_NONBLOCK this waits for a writer for ever
    folder = path.with_name("folder.marshal")
    folder.mkdir()
    assert mxnet_operators._read(folder) == {}


def test_the_cache_file_is_per_python_and_build_and_a_relative_cache_home_is_not_used(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")
    path = mxnet_operators.cache_file()
    assert path is not None and path.parent == Path.home() / ".cache" / "mlexp"
    assert path.name.startswith(f"mxnet-operators.{sys.implementation.cache_tag}.opt{sys.flags.optimize}.")
    # another build, as MXNet finds it: through MXNET_LIBRARY_PATH or LD_LIBRARY_PATH, each with a file of its own
    other, elsewhere = tmp_path / "libmxnet-other.so", tmp_path / "lib" / "libmxnet.so"
    elsewhere.parent.mkdir()
    for library in (other, elsewhere):
        library.write_bytes(b"\0" * 16)
        os.utime(library, ns=(0, 0))  # the same size and time: only the path tells them apart
    monkeypatch.setenv("MXNET_LIBRARY_PATH", str(other))
    by_variable = mxnet_operators.cache_file()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MXNET_LIBRARY_PATH", other.name)  # relative, though it exists here: MXNet ignores it
    assert mxnet_operators.cache_file() == path
    monkeypatch.setenv("LD_LIBRARY_PATH", str(elsewhere.parent))
    by_search_path = mxnet_operators.cache_file()
    monkeypatch.setenv("MXNET_LIBRARY_PATH", str(tmp_path / "missing.so"))  # MXNet warns and looks elsewhere
    with caplog.at_level(logging.WARNING):
        assert mxnet_operators.cache_file() == by_search_path
    assert not caplog.records and not logging.root.filters  # MXNet's import says it, once; no filter left behind
    assert len({path, by_variable, by_search_path}) == 3 and None not in (by_variable, by_search_path)
    monkeypatch.delenv("LD_LIBRARY_PATH")
    monkeypatch.setenv("MLEXP_MXNET_OPERATOR_CACHE", "0")
    assert mxnet_operators.cache_file() is None


def test_other_builds_files_unused_for_a_month_are_removed_and_a_file_in_use_is_kept(tmp_path):
    path = _operators_file(tmp_path)
    month = time.time() - mxnet_operators.STALE_CACHE_S - 60
    other, partial = tmp_path / "mxnet-operators.other-build.marshal", tmp_path / "mxnet-operators.x.partial"
    other.touch()
    partial.touch()
    for old in (path, other, partial):
        os.utime(old, (month, month))
    assert len(mxnet_operators._read(path)) == 1  # read: in use, so touched
    _operators_file(tmp_path / "second").rename(tmp_path / "mxnet-operators.second.marshal")
    operators = mxnet_operators.CompiledOperators(tmp_path / "mxnet-operators.third.marshal")
    operators.code("x = 1\n")
    operators.save()
    assert sorted(p.name for p in tmp_path.glob("mxnet-operators.*")) == [
        "mxnet-operators.second.marshal",
        "mxnet-operators.test.marshal",
        "mxnet-operators.third.marshal",
    ]
