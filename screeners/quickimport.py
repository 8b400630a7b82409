"""scikit-learn's liblinear solver without the second of start-up its package
imports bring along.

`import sklearn.svm` imports all of `sklearn.linear_model` and
`sklearn.metrics`, and `import sklearn` alone imports `scipy.stats`, which
builds hundreds of docstrings on import. A `cluster simulate` of a small
dataset spent a third of its time there, and the default model needs none of
it: only the compiled liblinear module and the two compiled helpers it links
against.

`liblinear()` loads those three compiled modules from their files. While it
does, the packages above them (`sklearn`, `sklearn.utils`, `sklearn.svm`) are
empty placeholders that only say where their files are, so no package start-up
runs; the placeholders are gone again before `liblinear()` returns, and a later
`import sklearn` runs the real start-up as usual. Other threads wait (the
import lock is held) so none of them ever sees a placeholder.

If that fails (a scikit-learn release moved a file or links against another
module), nothing loaded under a placeholder is kept and the module comes from
the ordinary import, start-up and all.
"""

from __future__ import annotations

import _imp
import functools
import importlib.machinery
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

_LIBLINEAR = "sklearn.svm._liblinear"
_PACKAGES = ("sklearn", "sklearn.utils", "sklearn.svm")


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


def _load_compiled(name: str, path: Path) -> types.ModuleType:
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


def _load_without_package_start_up(name: str) -> types.ModuleType:
    """Load compiled module `name` of scikit-learn with placeholders for the
    packages above it and above the compiled modules it imports."""
    package, _, stem = name.rpartition(".")
    path = _compiled_module_file(package, stem)
    root = path.parents[len(package.split(".")) - 1]
    _imp.acquire_lock()
    placed = []
    before = set(sys.modules)
    try:
        for above in _PACKAGES:
            if above not in sys.modules:
                placeholder = types.ModuleType(above)
                placeholder.__path__ = [str(root.joinpath(*above.split(".")[1:]))]
                placeholder.__package__ = above
                sys.modules[above] = placeholder
                placed.append(above)
        return _load_compiled(name, path)
    except BaseException:
        # nothing loaded under a placeholder outlives a failed attempt
        for loaded in set(sys.modules) - before:
            if loaded.split(".")[0] == _PACKAGES[0]:
                del sys.modules[loaded]
        raise
    finally:
        for above in placed:
            sys.modules.pop(above, None)
        _imp.release_lock()


@functools.lru_cache(maxsize=1)
def liblinear() -> Any:
    """scikit-learn's compiled liblinear module (`sklearn.svm._liblinear`)."""
    if _LIBLINEAR in sys.modules:
        return sys.modules[_LIBLINEAR]
    if "sklearn.svm" in sys.modules:
        from sklearn.svm import _liblinear
        return _liblinear
    try:
        module = _load_without_package_start_up(_LIBLINEAR)
        if not callable(getattr(module, "train_wrap", None)):
            raise ImportError("liblinear has no train_wrap")
        return module
    except Exception:
        sys.modules.pop(_LIBLINEAR, None)
    from sklearn.svm import _liblinear
    return _liblinear
