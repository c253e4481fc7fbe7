"""MXNet's operator functions from the compiled cache are the ones MXNet compiles itself, in every process."""

from __future__ import annotations

import json
import marshal
import subprocess
import sys
from pathlib import Path

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
    header = whole[: whole.index(b"\n") + 1]
    codes_only = {key: code for key, (code, _) in marshal.loads(whole[len(header) :]).items()}  # another layout
    for damaged in (whole[:1000], header + marshal.dumps(codes_only), b"another format" + whole[len(header) :]):
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
