"""Output paths: no option that writes a file can overwrite the review store or a
file beside it, links are written through and special files are never replaced."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from db.files import store_files
from base.output import OutputError, write_file
from clikit import invoke

RIS = """TY  - JOUR
TI  - Compassion training for nurses: a realist review
AU  - Smith, Anna
AU  - Jones, Kim
JO  - Nurse Education Today
PY  - 2019
AB  - Compassion training for nurses in hospital wards.
DO  - 10.1000/comp.1
ER  - 

TY  - JOUR
TI  - Empathy and burnout in junior doctors
AU  - Brown, Lee
JO  - Medical Education
PY  - 2020
AB  - Empathy declines during the first year of practice.
DO  - 10.1000/emp.2
ER  - 
"""


def make_store(folder: Path, name: str = "x.db") -> Path:
    db = folder / name
    ris = folder / "records.ris"
    ris.write_text(RIS, encoding="utf-8")
    for args in (("reviewers", "add", "alice", "bob"), ("import", str(ris), "--as", "index"),
                 ("decide", "1", "--reviewer", "alice", "--include"),
                 ("decide", "1", "--reviewer", "bob", "--exclude"),
                 ("decide", "2", "--reviewer", "alice", "--exclude")):
        result = invoke(*args, "--db", str(db))
        assert result.exit_code == 0, result.output
    return db


def health(db: Path) -> tuple[str, int, bytes]:
    """What must survive: SQLite's own check, the decision count, the file's first bytes."""
    con = sqlite3.connect(db)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        n = con.execute("SELECT count(*) FROM events WHERE kind = 'decision'").fetchone()[0]
    finally:
        con.close()
    return ok, n, db.read_bytes()[:16]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return make_store(tmp_path)


#: every command option that writes a file, with OUT where the path goes
WRITERS = [
    ("export", "--format", "ris", "-o", "OUT"),
    ("export", "--format", "csv", "-o", "OUT"),
    ("contacts", "-o", "OUT"),
    ("flow", "--svg", "OUT"),
    ("flow", "--png", "OUT"),
    ("dedup", "--export-pairs", "OUT"),
    ("decisions", "export", "OUT"),
]


def _args(cmd: tuple[str, ...], out: Path, db: Path) -> list[str]:
    return [str(out) if a == "OUT" else a for a in cmd] + ["--db", str(db)]


@pytest.mark.parametrize("cmd", WRITERS, ids=lambda c: " ".join(c[:-1]))
def test_an_output_naming_the_store_is_refused_and_the_store_survives(db: Path, cmd) -> None:
    before = health(db)
    assert before[:2] == ("ok", 3)
    result = invoke(*_args(cmd, db, db))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {db} is the review store {db}: choose another file for the output.\n"
    assert health(db) == before


@pytest.mark.parametrize("cmd", WRITERS, ids=lambda c: " ".join(c[:-1]))
def test_a_link_to_the_store_is_refused(db: Path, cmd) -> None:
    link = db.parent / "out.ris"
    link.symlink_to(db.name)
    before = health(db)
    result = invoke(*_args(cmd, link, db))
    assert result.exit_code == 1
    assert result.stderr == (f"Error: {link} leads to the review store {db}: choose another "
                             f"file for the output.\n")
    assert health(db) == before and link.is_symlink()


def test_a_hard_link_to_the_store_is_refused(db: Path) -> None:
    twin = db.parent / "twin.ris"
    os.link(db, twin)
    result = invoke("export", "--format", "ris", "-o", str(twin), "--db", str(db))
    assert result.stderr == f"Error: {twin} is the review store {db}: choose another file for the output.\n"
    assert health(db)[:2] == ("ok", 3)


@pytest.mark.parametrize("suffix, what", [
    ("-wal", "the write-ahead log of the review store"),
    ("-shm", "the shared-memory file of the review store"),
    ("-journal", "the rollback journal of the review store"),
    (".features.sqlite", "the feature cache of the review store"),
])
def test_the_files_beside_the_store_are_refused(db: Path, suffix: str, what: str) -> None:
    out = Path(str(db) + suffix)
    result = invoke("export", "--format", "ris", "-o", str(out), "--db", str(db))
    assert result.exit_code == 1
    assert result.stderr == f"Error: {out} is {what} {db}: choose another file for the output.\n"
    assert not out.exists()


def test_the_http_cache_and_its_log_are_refused(db: Path) -> None:
    cache = db.parent / "x.http-cache.sqlite"
    for out, what in ((cache, "the HTTP cache of the review store"),
                      (Path(f"{cache}-wal"), "the write-ahead log of the HTTP cache of the review store")):
        result = invoke("contacts", "-o", str(out), "--db", str(db))
        assert result.stderr == f"Error: {out} is {what} {db}: choose another file for the output.\n"
        assert not out.exists()


def test_store_files_are_the_names_the_code_uses(db: Path) -> None:
    from cli import connector_settings
    from screeners.feature_cache import cache_path
    from db.store import open_store

    s = open_store(db)
    try:
        names = {p for p, _ in store_files(db)}
        assert cache_path(s) in names
        assert connector_settings(str(db)).cache_path in names
        assert {Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}-journal")} <= names
    finally:
        s.close()


def test_report_refuses_a_store_named_like_its_diagram(tmp_path: Path) -> None:
    db = make_store(tmp_path, "methods.png")
    before = health(db)
    result = invoke("report", "-o", str(tmp_path / "methods.md"), "--db", str(db))
    assert result.stderr == f"Error: {db} is the review store {db}: choose another file for the output.\n"
    assert health(db) == before
    # nothing of the report was written before the refusal
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("methods.")) == ["methods.png"]


def test_report_refuses_the_store_itself(tmp_path: Path) -> None:
    db = make_store(tmp_path, "review.md")
    before = health(db)
    result = invoke("report", "-o", str(db), "--db", str(db))
    assert result.stderr == f"Error: {db} is the review store {db}: choose another file for the output.\n"
    assert health(db) == before


def test_simulate_outputs_spare_the_dataset_and_the_store(tmp_path: Path) -> None:
    data = tmp_path / "labels.csv"
    data.write_text("record_id,title,abstract,label_included\n1,a,b,1\n2,c,d,0\n3,e,f,0\n",
                    encoding="utf-8")
    db = make_store(tmp_path)
    before = health(db)
    result = invoke("simulate", str(data), "--order-out", str(data))
    assert result.stderr == (f"Error: {data} is the dataset {data}: choose another file for "
                             f"the output.\n")
    result = invoke("simulate", str(data), "--order-out", str(db), env={"CLUSTER_DB": str(db)})
    assert result.stderr == f"Error: {db} is the review store {db}: choose another file for the output.\n"
    assert health(db) == before
    assert data.read_text(encoding="utf-8").startswith("record_id,title")


@pytest.mark.parametrize("cmd", [WRITERS[0], WRITERS[2], WRITERS[3], WRITERS[6]],
                         ids=lambda c: " ".join(c[:-1]))
def test_a_link_to_another_file_is_written_through(db: Path, cmd) -> None:
    target = db.parent / "elsewhere" / "kept.txt"
    target.parent.mkdir()
    target.write_text("old\n", encoding="utf-8")
    link = db.parent / "link.out"
    link.symlink_to(target)
    result = invoke(*_args(cmd, link, db))
    assert result.exit_code == 0, result.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() != b"old\n" and len(target.read_bytes()) > 20
    assert sorted(p.name for p in target.parent.iterdir()) == ["kept.txt"]


@pytest.mark.parametrize("cmd", WRITERS, ids=lambda c: " ".join(c[:-1]))
def test_dev_null_stays_a_device(db: Path, cmd) -> None:
    result = invoke(*_args(cmd, Path("/dev/null"), db))
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_full_device_is_one_sentence_and_stays_a_device(db: Path) -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("this system has no /dev/full")
    result = invoke("decisions", "export", "/dev/full", "--db", str(db))
    assert result.exit_code == 1
    assert result.stderr == "Error: Cannot write /dev/full (No space left on device).\n"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_a_regular_file_is_replaced_whole_keeping_its_mode(db: Path) -> None:
    out = db.parent / "included.ris"
    out.write_text("x" * 100_000, encoding="utf-8")
    out.chmod(0o640)
    result = invoke("export", "--format", "ris", "-o", str(out), "--db", str(db))
    assert result.exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert text.count("TY  - JOUR") == 2 and "x" not in text.split("ER  -")[-1]
    assert stat.S_IMODE(out.stat().st_mode) == 0o640
    assert [p.name for p in db.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_new_file_gets_the_usual_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        write_file(tmp_path / "new.txt", "hello\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("old\n", encoding="utf-8")

    def fail(fh) -> None:
        fh.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OutputError, match=r"^Cannot write .*out\.txt \(No space left on device\)\.$"):
        write_file(out, fail)
    assert out.read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_export_dash_is_standard_output(db: Path) -> None:
    result = invoke("export", "--format", "ris", "-o", "-", "--db", str(db))
    assert result.exit_code == 0 and result.stdout.count("TY  - JOUR") == 2
    assert not (Path.cwd() / "-").exists()


def test_decisions_export_dash_is_standard_output(db: Path) -> None:
    result = invoke("decisions", "export", "-", "--db", str(db))
    assert result.exit_code == 0
    assert [json.loads(line)["value"] for line in result.stdout.splitlines()] == [
        "include", "exclude", "exclude"]
    assert not (Path.cwd() / "-").exists()
