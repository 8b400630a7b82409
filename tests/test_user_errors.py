"""Mistakes a user can make, each ending in one sentence on stderr and a non-zero exit.

Each test reproduces a failure seen when the CLI was driven by hand: a store
that cannot be written, a store another command is writing, Ctrl-C, files
that cannot be read or written, two runs of one command at the same time.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli as cli_module
from cli import cli
from db.store import open_store

REPO = Path(__file__).resolve().parents[1]
RIS = """TY  - JOUR
TI  - Blue light and sleep in shift workers
AU  - Smith, Anna
PY  - 2019
DO  - 10.1000/blue.1
ER  - 
"""


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def one_sentence(result) -> str:
    """The error line; fails unless the whole of stderr is that one line."""
    err = result.stderr.strip()
    assert "Traceback" not in result.output, result.output
    assert len(err.splitlines()) == 1, err
    assert err.startswith("Error: "), err
    return err


def as_root_without_override() -> bool:
    # root reads and writes whatever the permission bits say
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def made(tmp_path: Path) -> Path:
    db = tmp_path / "review.db"
    assert invoke("init", "--db", str(db)).exit_code == 0
    assert invoke("reviewers", "add", "alice", "--db", str(db)).exit_code == 0
    ris = tmp_path / "a.ris"
    ris.write_text(RIS, encoding="utf-8")
    assert invoke("import", str(ris), "--db", str(db)).exit_code == 0
    return db


def test_store_in_a_folder_that_cannot_be_written(tmp_path: Path, monkeypatch) -> None:
    # SQLite answers "unable to open database file" when it cannot create the file
    def refuse(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr("db.store.sqlite3.connect", refuse)
    db = tmp_path / "new.db"
    result = invoke("init", "--db", str(db))
    assert result.exit_code == 1
    assert one_sentence(result) == (
        f"Error: Cannot open the review store {db} (unable to open database file): check that "
        f"you may write to it and to its folder.")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.pop("CLUSTER_DB", None)
    return env

