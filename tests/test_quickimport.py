"""A simulation loads scikit-learn's liblinear without `scipy.stats`,
`sklearn.metrics` or `sklearn.linear_model`, gets the same numbers, and falls
back to the ordinary import when the compiled module cannot be loaded."""

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
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules],\n"
        "    'liblinear': 'sklearn.svm._liblinear' in sys.modules,\n"
        "    'stats': type(sys.modules['scipy.stats']).__name__}))\n")
    assert got == {"heavy": [], "liblinear": True, "stats": "_ImportedOnFirstUse"}


def test_stand_in_gives_the_real_scipy_stats_on_first_use():
    got = _python(
        "import json, sys\n"
        "from screeners import quickimport\n"
        "lib = quickimport.liblinear()\n"
        "before = type(sys.modules['scipy.stats']).__name__\n"
        "import scipy.stats\n"
        "from scipy.stats import hypergeom\n"
        "ranks = scipy.stats.rankdata([3.0, 1.0, 2.0]).tolist()\n"
        "print(json.dumps({'name': lib.__name__, 'before': before, 'ranks': ranks,\n"
        "    'after': type(sys.modules['scipy.stats']).__name__,\n"
        "    'sf': round(float(hypergeom.sf(0, 10, 3, 2)), 6)}))\n")
    assert got == {"name": "sklearn.svm._liblinear", "before": "_ImportedOnFirstUse",
                   "ranks": [3.0, 1.0, 2.0], "after": "module", "sf": 0.533333}


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


def test_a_module_imported_already_is_left_alone():
    got = _python(
        "import json, sys\n"
        "import scipy.stats\n"
        "real = sys.modules['scipy.stats']\n"
        "from screeners import quickimport\n"
        "quickimport.liblinear()\n"
        "print(json.dumps({'same': sys.modules['scipy.stats'] is real}))\n")
    assert got == {"same": True}
