"""A simulation loads scikit-learn's liblinear without its package start-up
(so without `scipy.stats`, `sklearn.metrics` or `sklearn.linear_model`), gets
the same numbers, leaves scikit-learn importable as usual afterwards, and falls
back to the ordinary import when the compiled module cannot be loaded that way."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "screening_small.csv"
HEAVY = ("scipy.stats._stats_py", "sklearn.metrics", "sklearn.linear_model", "sklearn.svm._classes",
         "sklearn.preprocessing")


def _python(code: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_simulate_command_imports_none_of_the_heavy_modules():
    got = _python(
        "import json, sys\n"
        "from cli import main\n"
        "sys.argv = ['cluster']\n"
        "try:\n"
        f"    sys.argv += ['simulate', {str(DATA)!r}, '--seed', '2', '--quiet']\n"
        "    main()\n"
        "except SystemExit as e:\n"
        "    assert not e.code, e.code\n"
        "import importlib.machinery as machinery\n"
        "loaded = sorted(n for n in sys.modules if n.split('.')[0] == 'sklearn')\n"
        "ext = tuple(machinery.EXTENSION_SUFFIXES)\n"
        "compiled = [n for n in loaded\n"
        "            if str(getattr(sys.modules[n], '__file__', '')).endswith(ext)]\n"
        f"print(json.dumps({{'heavy': [n for n in {HEAVY!r} if n in sys.modules],\n"
        "    'liblinear': 'sklearn.svm._liblinear' in loaded,\n"
        "    'python_modules': [n for n in loaded if n not in compiled],\n"
        "    'stats': 'scipy.stats' in sys.modules, 'sqlite': 'sqlite_utils' in sys.modules}))\n")
    # the compiled solver and the compiled modules it links against (with this
    # release sklearn._cyutility and sklearn.utils._cython_blas): no package, and
    # no Python module of scikit-learn, ran
    # nor the store's SQLite layer: a simulation reads a file and writes nothing
    assert got == {"heavy": [], "liblinear": True, "python_modules": [], "stats": False,
                   "sqlite": False}


def test_scikit_learn_imports_as_usual_after_the_light_load():
    got = _python(
        "import json, sys\n"
        "import numpy as np\n"
        "from screeners import quickimport, fastfit\n"
        "lib = quickimport.liblinear()\n"
        "assert 'sklearn' not in sys.modules\n"
        "import sklearn, sklearn.svm\n"
        "from sklearn.svm import LinearSVC, _base\n"
        "X = np.array([[0.0, 1.0], [1.0, 0.0], [0.9, 0.1], [0.1, 0.8]])\n"
        "m = LinearSVC(C=1.0, random_state=0).fit(X, [0, 1, 1, 0])\n"
        "print(json.dumps({'spec': sklearn.__spec__ is not None,\n"
        "    'same': _base.liblinear is lib, 'pred': m.predict(X).tolist(),\n"
        "    'direct': fastfit.uses_direct_path()}))\n")
    assert got == {"spec": True, "same": True, "pred": [0, 1, 1, 0],
                   "direct": {"svc": True, "cnb": True}}


def test_a_failed_light_load_leaves_nothing_behind_and_the_ordinary_import_is_taken():
    got = _python(
        "import json, sys\n"
        "from screeners import quickimport, fastfit\n"
        "seen = {}\n"
        "def links_elsewhere(name, path):\n"
        "    seen['placeholder'] = sys.modules['sklearn'].__spec__ is None\n"
        "    import sklearn.utils._cython_blas\n"
        "    raise ImportError('links against something else')\n"
        "quickimport._load_compiled = links_elsewhere\n"
        "light = quickimport._load_without_package_start_up\n"
        "def watched(name):\n"
        "    try:\n"
        "        return light(name)\n"
        "    finally:\n"
        "        seen['left'] = sorted(m for m in sys.modules if m.startswith('sklearn'))\n"
        "quickimport._load_without_package_start_up = watched\n"
        "lib = quickimport.liblinear()\n"
        "print(json.dumps({'name': lib.__name__, 'svm': 'sklearn.svm' in sys.modules,\n"
        "    'real': sys.modules['sklearn'].__spec__ is not None, **seen,\n"
        "    'direct': fastfit.uses_direct_path()}))\n")
    assert got == {"name": "sklearn.svm._liblinear", "svm": True, "real": True,
                   "placeholder": True, "left": [], "direct": {"svc": True, "cnb": True}}


def test_falls_back_to_the_ordinary_import():
    got = _python(
        "import json, sys\n"
        "from screeners import quickimport, fastfit\n"
        "def missing(*a):\n"
        "    raise ImportError('moved')\n"
        "quickimport._compiled_module_file = missing\n"
        "lib = quickimport.liblinear()\n"
        "print(json.dumps({'name': lib.__name__, 'svm': 'sklearn.svm' in sys.modules,\n"
        "    'direct': fastfit.uses_direct_path()}))\n")
    assert got == {"name": "sklearn.svm._liblinear", "svm": True,
                   "direct": {"svc": True, "cnb": True}}


def test_an_imported_svm_package_gives_its_own_module():
    got = _python(
        "import json, sys\n"
        "import sklearn.svm\n"
        "from sklearn.svm import _base\n"
        "from screeners import quickimport\n"
        "print(json.dumps({'same': quickimport.liblinear() is _base.liblinear}))\n")
    assert got == {"same": True}
