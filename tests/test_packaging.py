"""The built wheel installs exactly the project's top-level modules, and no tests."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_top_level(tmp_path):
    try:
        import setuptools  # noqa: F401  (needed to build without network)
    except ImportError:
        pytest.skip("setuptools is not installed in this environment: cannot build a wheel offline")
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, timeout=240,
    )
    assert out.returncode == 0, out.stderr
    wheel = next(tmp_path.glob("*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if ".dist-info" not in n.split("/")[0]}
    top = {t[:-3] if t.endswith(".py") else t for t in top}
    assert top == {"base", "cli", "cluster", "connectors", "db", "screeners"}
    assert not any(n.startswith("tests/") for n in names)
    # the extraction forms `cluster form set realist|general` reads
    assert {"screeners/extraction/forms/realist.toml",
            "screeners/extraction/forms/general.toml"} <= set(names)
