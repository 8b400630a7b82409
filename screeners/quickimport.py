"""scikit-learn's liblinear solver without the second of start-up its package
imports bring along.

`import sklearn.svm` imports all of `sklearn.linear_model` and
`sklearn.metrics`, and `import sklearn` alone imports `scipy.stats`, which
builds hundreds of docstrings on import. A `cluster simulate` of a small
dataset spends a third of its time there, and the default model needs none of
it: only the compiled liblinear module.

`liblinear()` loads that one compiled module from its file. Its own imports
still run scikit-learn's package start-up, so while they do, `scipy.stats` is
a stand-in module that imports the real one the first time anything is looked
up in it. Code that uses `scipy.stats` later gets the real module, one import
late. If any step fails (a scikit-learn release moved or renamed the file),
the module comes from the ordinary import instead.
"""

from __future__ import annotations

import functools
import importlib
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

_LIBLINEAR = "sklearn.svm._liblinear"


class _ImportedOnFirstUse(types.ModuleType):
    """Stands in for a module until an attribute is looked up in it."""

    def __getattr__(self, attr: str) -> Any:
        real = self.__dict__.get("_real_module")
        if real is None:
            if sys.modules.get(self.__name__) is self:
                del sys.modules[self.__name__]
            real = importlib.import_module(self.__name__)
            self.__dict__["_real_module"] = real
        return getattr(real, attr)


def _defer(name: str) -> None:
    """Put a stand-in for module `name` in sys.modules unless it is imported
    already."""
    if name not in sys.modules:
        sys.modules[name] = _ImportedOnFirstUse(name)


def _compiled_module_file(package: str, stem: str) -> Path:
    spec = importlib.util.find_spec(package.split(".")[0])
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"{package} is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)), *package.split(".")[1:])
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = folder / (stem + suffix)
        if candidate.is_file():
            return candidate
    raise ImportError(f"no compiled {stem} module in {folder}")


def _load_compiled(name: str) -> types.ModuleType:
    package, _, stem = name.rpartition(".")
    path = _compiled_module_file(package, stem)
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def light_import(name: str) -> types.ModuleType:
    """`importlib.import_module(name)` for a scikit-learn module that needs
    none of `scipy.stats` itself (its package start-up then leaves it for
    later)."""
    if name not in sys.modules:
        _defer("scipy.stats")
    return importlib.import_module(name)


@functools.lru_cache(maxsize=1)
def liblinear() -> Any:
    """scikit-learn's compiled liblinear module (`sklearn.svm._liblinear`)."""
    if _LIBLINEAR in sys.modules:
        return sys.modules[_LIBLINEAR]
    if "sklearn.svm" in sys.modules:
        from sklearn.svm import _liblinear
        return _liblinear
    _defer("scipy.stats")
    try:
        module = _load_compiled(_LIBLINEAR)
        if not callable(getattr(module, "train_wrap", None)):
            raise ImportError("liblinear has no train_wrap")
        return module
    except Exception:
        sys.modules.pop(_LIBLINEAR, None)
        from sklearn.svm import _liblinear
        return _liblinear
