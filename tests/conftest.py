"""Shared test fixtures: the ../shared data folder, a temporary store, the CLI."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path inside ../shared; the calling test skips when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"../shared is absent ({'/'.join(parts)} not found): real-data test skipped")
    return path


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "review.db"


@pytest.fixture
def store(db_path: Path):
    from db.store import open_store

    s = open_store(db_path)
    yield s
    s.close()


@pytest.fixture
def run(db_path: Path, monkeypatch):
    """Invoke the CLI against the test's store; returns the click Result."""
    from cli import cli

    monkeypatch.delenv("CLUSTER_DB", raising=False)
    runner = CliRunner()

    def _run(*args: str, input: str | None = None, expect: int | None = 0):
        result = runner.invoke(cli, [*args, "--db", str(db_path)] if "--db" not in args
                               and not args[0:1] == ("--version",) and _takes_db(args) else list(args),
                               input=input, catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, (result.output, getattr(result, "stderr", ""))
        return result

    return _run


def _takes_db(args: tuple[str, ...]) -> bool:
    """Commands that have a --db option (everything but a few)."""
    from cli import cli

    cmd = cli
    for a in args:
        if a.startswith("-"):
            break
        sub = getattr(cmd, "commands", {}).get(a)
        if sub is None and isinstance(cmd, click.Group):
            try:  # a group may take an argument in place of a subcommand's name
                _, sub, _ = cmd.resolve_command(click.Context(cmd), [a])
            except click.UsageError:
                sub = None
        if sub is None:
            break
        cmd = sub
    return any(p.name == "db_path" for p in getattr(cmd, "params", []))


@pytest.fixture
def fresh_prioritiser():
    """Nothing fitted in memory before or after the test, as in a new process."""
    from screeners import prioritise

    def clear() -> None:
        prioritise._FEATURES.clear()
        prioritise._MODELS.clear()
        prioritise._ESTIMATES.clear()

    clear()
    yield
    clear()


def screening_rows(n: int, includes: int) -> list[tuple[str, str, int]]:
    """(title, abstract, label) of `n` records of a shared labelled set, the first
    `includes` of its includes first (a sample with both labels)."""
    import csv

    path = shared_path("data", "screening", "Appenzeller-Herzog_2019.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [(r["title"], r["abstract"], int(r["label_included"])) for r in csv.DictReader(fh)]
    inc = [r for r in rows if r[2] == 1][:includes]
    return inc + [r for r in rows if r[2] == 0][: n - len(inc)]
