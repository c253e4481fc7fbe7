"""MXNet, imported without what it loads only for features no task here uses.

Every trial and sweep worker of an MXNet task pays MXNet's start-up. MXNet imports these inside a `try` that
goes on without them: scikit-learn for the legacy FeedForward API's base class (mxnet.model), scipy.stats
for quantisation's entropy calibration (mxnet.contrib.quantization, mxnet.test_utils), scipy.sparse for
NDArray <-> SciPy conversion (mxnet.ndarray.sparse, mxnet.ndarray.utils). Together with setuptools'
distutils shim (MXNet only compares versions with distutils.version; the shim's distutils loads setuptools
and pkg_resources for it), they are about a third of MXNet's start-up: 1.31 -> 0.84 s here.

What MXNet kept as None in their place becomes a stand-in for the SciPy module, so its SciPy features work
once anything loads SciPy: converting a SciPy matrix to an NDArray and back, entropy calibration. Left as
MXNet leaves it: mx.model.FeedForward (deprecated) is not a scikit-learn estimator. While MXNet loads (about
a second), other threads of the process cannot import the skipped modules either.

MXNet's operator functions come compiled from a cache file (mlexp.mxnet_operators): 0.84 -> 0.36 s.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
from types import ModuleType, SimpleNamespace

from mlexp.mxnet_operators import compiled_operators

SKIPPED_BY_MXNET = ("sklearn", "scipy.stats", "scipy.sparse")
# (module, the name it binds a SciPy module to, or None without it) in MXNet 1.9
_SCIPY_IN_MXNET = (
    ("mxnet.ndarray.sparse", "spsp", "scipy.sparse"),
    ("mxnet.ndarray.utils", "spsp", "scipy.sparse"),
    ("mxnet.contrib.quantization", "stats", "scipy.stats"),
    ("mxnet.test_utils", "ss", "scipy.stats"),
)


class _Skipped(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        if any(fullname == name or fullname.startswith(name + ".") for name in SKIPPED_BY_MXNET):
            raise ImportError(f"{fullname} is not loaded while MXNet loads")


class _NoMatrix:
    """What no object is an instance of: SciPy matrices before scipy.sparse loads."""


class SciPyWhenUsed(ModuleType):
    """A SciPy module for MXNet, imported when MXNet first uses it.

    MXNet asks `isinstance(x, spsp.csr.csr_matrix)` of every array it makes: until scipy.sparse is loaded no
    such matrix can exist, so that question is answered without loading SciPy.
    """

    def __getattr__(self, name: str) -> object:
        if self.__name__ == "scipy.sparse" and name == "csr" and self.__name__ not in sys.modules:
            return SimpleNamespace(csr_matrix=_NoMatrix)
        return getattr(importlib.import_module(self.__name__), name)


def import_mxnet() -> ModuleType:
    """MXNet, loaded without the modules in SKIPPED_BY_MXNET that nothing has loaded yet (see above)."""
    if "mxnet" in sys.modules:
        return importlib.import_module("mxnet")
    shims = [(i, f) for i, f in enumerate(sys.meta_path) if type(f).__module__ == "_distutils_hack"]
    for _, shim in reversed(shims):
        sys.meta_path.remove(shim)
    skipped = _Skipped()
    sys.meta_path.insert(0, skipped)
    try:
        with compiled_operators():
            mxnet = importlib.import_module("mxnet")
    finally:
        sys.meta_path.remove(skipped)
        for index, shim in shims:
            sys.meta_path.insert(index, shim)
    for module, attribute, scipy_module in _SCIPY_IN_MXNET:
        loaded = sys.modules.get(module)
        if loaded is not None and getattr(loaded, attribute, "") is None:
            setattr(loaded, attribute, SciPyWhenUsed(scipy_module))
    return mxnet
