"""The packages type-check with no error under the project's mypy settings (setup.cfg).

mypy runs in-process through its public API, on the files the `[mypy]` section
lists, so a new module is checked as soon as it joins a package. Its cache sits
in pytest's cache folder: a cold run takes about half a minute, a warm one a
couple of seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[1]


def test_packages_have_no_type_errors(request: pytest.FixtureRequest,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # the `files` of the configuration are relative to the project folder
    monkeypatch.chdir(ROOT)
    # without pytest's cache plugin (-p no:cacheprovider) mypy uses its own .mypy_cache
    pytest_cache = getattr(request.config, "cache", None)
    cache = pytest_cache.mkdir("mypy") if pytest_cache is not None else None
    args = ["--config-file", str(ROOT / "setup.cfg"), "--no-error-summary"]
    if cache is not None:
        args += ["--cache-dir", str(cache)]
    report, errors, status = api.run(args)
    assert (status, report, errors) == (0, "", ""), f"mypy found type errors:\n{report}{errors}"
