"""A standard output that takes no more text: a full disk ends in one sentence, a
reader that has gone (`cluster status | head -0`) ends quietly, as Unix tools do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli

ROOT = Path(__file__).resolve().parents[1]
RIS = """TY  - JOUR
TI  - Compassion training for nurses
AU  - Smith, Anna
AU  - Jones, Kim
PY  - 2019
AB  - Compassion training for nurses in hospital wards.
ER  - 
"""
FULL = "Error: cannot write the output: no space left on device."

#: every command that prints, as the drill ran them
PRINTING = [
    ("status",), ("status", "--json"), ("flow",), ("flow", "--json"), ("flow", "--csv"), ("report",),
    ("searches",), ("searches", "--markdown"), ("export", "--format", "ris"),
    ("export", "--format", "csv"), ("conflicts",), ("agreement",), ("reviewers", "list"),
    ("find", "compassion"), ("contacts",), ("protocol", "show"), ("init",), ("--help",),
    ("--version",),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("stdout")
    path = folder / "review.db"
    (folder / "a.ris").write_text(RIS, encoding="utf-8")
    for args in (("reviewers", "add", "alice", "bob"), ("import", str(folder / "a.ris"), "--as", "index"),
                 ("decide", "1", "--reviewer", "alice", "--include"),
                 ("decide", "1", "--reviewer", "bob", "--exclude")):
        result = CliRunner().invoke(cli, [*args, "--db", str(path)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    return path


def _run_all(db: Path, stdout_for) -> list[tuple[tuple[str, ...], int, str]]:
    """Each of PRINTING in its own process (all at once), stdout from `stdout_for()`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)
    procs = []
    for cmd in PRINTING:
        args = [*cmd] if cmd[0].startswith("--") else [*cmd, "--db", str(db)]
        out = stdout_for()
        procs.append((cmd, subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                                            stdout=out, stderr=subprocess.PIPE)))
        os.close(out)
    return [(cmd, p.wait(timeout=120), p.stderr.read().decode()) for cmd, p in procs]


def test_a_full_stdout_is_one_sentence_for_every_command(db: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("this system has no /dev/full")
    results = _run_all(db, lambda: os.open("/dev/full", os.O_WRONLY))
    for cmd, code, err in results:
        assert "Traceback" not in err, (cmd, err)
        assert code == 1 and err == FULL + "\n", (cmd, code, err)


def test_a_reader_that_has_gone_ends_quietly(db: Path) -> None:
    def closed_pipe() -> int:
        read, write = os.pipe()
        os.close(read)
        return write

    for cmd, code, err in _run_all(db, closed_pipe):
        assert (code, err) == (1, ""), (cmd, code, err)


def test_a_full_stdout_keeps_what_the_command_saved(db: Path, tmp_path: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("this system has no /dev/full")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "cli", "reviewers", "add", "carol", "--db",
                               str(db)], cwd=ROOT, env=env, stdout=full, stderr=subprocess.PIPE)
    assert proc.returncode == 1 and proc.stderr.decode() == FULL + "\n"
    listed = CliRunner().invoke(cli, ["reviewers", "list", "--db", str(db)]).stdout
    assert listed == "alice\nbob\ncarol\n"
