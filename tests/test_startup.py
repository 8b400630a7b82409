"""What a command loads: one that needs no model loads no scikit-learn, and a
simulation (a file in, figures out) loads no SQLite layer."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "screening_small.csv"


def _loaded_after(tmp_path: Path, *commands: list[str]) -> dict:
    """Run each command in one fresh interpreter, in turn; which packages were loaded."""
    code = (
        "import json, sys\n"
        "from cli import main\n"
        f"for args in {[list(c) for c in commands]!r}:\n"
        "    sys.argv = ['cluster', *args]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as e:\n"
        "        assert not e.code, (args, e.code)\n"
        "print(json.dumps({'sklearn': sorted(n for n in sys.modules if n.split('.')[0] == 'sklearn'),\n"
        "                  'sqlite': 'sqlite_utils' in sys.modules}))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CLUSTER_DB": str(tmp_path / "review.db")}
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_help_loads_no_scikit_learn(tmp_path):
    assert _loaded_after(tmp_path, ["--help"]) == {"sklearn": [], "sqlite": False}


def test_commands_without_a_model_load_no_scikit_learn(tmp_path):
    got = _loaded_after(tmp_path, ["init"], ["reviewers", "add", "ann", "ben"],
                        ["protocol", "set", "--question", "Does it help?"],
                        ["protocol", "show"], ["searches"])
    assert got == {"sklearn": [], "sqlite": True}


def test_simulate_loads_no_sqlite_layer(tmp_path):
    got = _loaded_after(tmp_path, ["simulate", str(DATA), "--seed", "2", "--quiet"])
    assert got["sqlite"] is False and "sklearn.svm" in got["sklearn"]
