"""Large CSV files whose records are made in a second process beside the reading one:
the same rows as one process writes, in the same order, still all-or-nothing, and no
process left behind however the import ends."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import db.formats as formats
import db.formats.common as common
import db.formats.convert as convert
from db.formats import FileFormatError, import_files
from db.formats.convert import ConversionError, Split
from db.formats.tabular import csv_rows
from db.store import open_store
from conftest import shared_path
from import_faults import PARENT

ROOT = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

#: every column but the times and random ids, in the order written
_TABLES = {
    "records": "SELECT * FROM records ORDER BY id",
    "sources": "SELECT id, record_id, search_id, role, service, rank, source_record_id "
               "FROM sources ORDER BY id",
    "searches": "SELECT id, kind, service, role, query, params, file_name, sha256, format, "
                "limits, status, n_found, n_kept, n_added, error, notes FROM searches ORDER BY id",
    "events": "SELECT seq, kind, record_id, reviewer, stage, value, reason, note, data "
              "FROM events ORDER BY seq",
}


def _rows(db: Path) -> dict[str, list[tuple]]:
    con = sqlite3.connect(db)
    try:
        out = {t: con.execute(sql).fetchall() for t, sql in _TABLES.items()}
    finally:
        con.close()
    out["records"] = [r[:-1] for r in out["records"]]  # created_at, the last column
    return out


def _counts(db: Path) -> list[int]:
    return [len(rows) for rows in _rows(db).values()]


def _import(db: Path, files: list[Path], *, two: bool, monkeypatch, progress=None,
            labels_reviewer: str | None = None) -> tuple:
    """Import into a fresh store at `db`, the records made in two processes or in one."""
    monkeypatch.setattr(formats, "PARALLEL_FROM_BYTES", 0 if two else 2**40)
    store = open_store(db)
    try:
        if labels_reviewer:
            store.add_reviewer(labels_reviewer)
        return import_files(store, files, role="database", labels_reviewer=labels_reviewer,
                            progress=progress)
    finally:
        store.close()


def _import_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("import-")]


def _children() -> list[int]:
    """The processes this one started and has not reaped."""
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == me:
                found.append(int(entry.name))
    return found


#: a CSV with what a reader must warn of or leave out, around rows in every batch of 7
_TRICKY = (
    "title,abstract,authors,year,journal,doi,pmid,included,notes\n"
    + "".join(f"Trial {i},\"Care, on a ward {i}.\",\"Liu R.; Adler D.G.\",20{i % 20:02d},"
              f"BMJ,10.1/t{i},{1000 + i},{'' if i % 3 == 0 else i % 2},\n" for i in range(1, 20))
    + ",,,2001,,,,1,\n"  # nothing to screen by: left out
    + "Packed,,,,\"Health Policy (2014) 3:3 (152-160). Date of Publication: 2014\",,,,\n"
    + "Only a caption line\n"
    + f"{'Long ' * 2100},,,,,,,0,\n"  # a title over its cap: cut
    + "Rayyan row,,,,,,,,\"RAYYAN-INCLUSION: {\"\"Ann\"\"=>\"\"Included\"\"}\"\n"
    + "Extra cells,,,,,,,,,surplus,more\n"
    + ",,,,,,,,\n"
    + "".join(f"Later trial {i},,\"Ng, A\",2020,,,,{i % 2},\n" for i in range(1, 30))
    + ",,,1999,,,,,\n"
)


def test_two_processes_write_the_rows_one_process_writes(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 7)
    f = tmp_path / "tricky.csv"
    f.write_text(_TRICKY, encoding="utf-8")
    one = _import(tmp_path / "one.db", [f], two=False, monkeypatch=monkeypatch,
                  labels_reviewer="asreview")
    two = _import(tmp_path / "two.db", [f], two=True, monkeypatch=monkeypatch,
                  labels_reviewer="asreview")
    assert two == one
    (res,) = two
    # 54 rows with cells (one is a caption, one has none), two of them empty records
    assert (res.n_read, res.n_in_file, res.n_added, res.n_labels) == (52, 54, 52, 44)
    assert res.warnings == (
        "tricky.csv line 23: 'Only a caption line' has no delimiter; it was read as a "
        "caption, not a record.",
        "tricky.csv line 26: the row has 11 cells but the header has 9; the extra cells were "
        "ignored.",
        "tricky.csv: fields too long for a reference were cut: record 22's title (10,499 "
        "characters, 10,000 kept).",
        "tricky.csv: record(s) 20, 54 have no title, author, abstract or identifier and were "
        "not imported.")
    rows = _rows(tmp_path / "two.db")
    assert rows == _rows(tmp_path / "one.db")
    assert [len(t) for t in rows.values()] == [52, 52, 1, 44]
    assert [(r[0], r[1][:6], len(r[1])) for r in rows["records"][19:21]] == [
        (20, "Packed", 6), (21, "Long L", 10_000)]
    assert _import_threads() == [] and _children() == []


def test_the_shared_csv_exports_read_the_same_in_two_processes(tmp_path, monkeypatch):
    folder = shared_path("fixtures", "files", "csv")
    monkeypatch.setattr(formats, "IMPORT_BATCH", 3)
    files = sorted(folder.iterdir())
    assert len(files) >= 10
    one = _import(tmp_path / "one.db", files, two=False, monkeypatch=monkeypatch)
    two = _import(tmp_path / "two.db", files, two=True, monkeypatch=monkeypatch)
    assert two == one
    assert _rows(tmp_path / "two.db") == _rows(tmp_path / "one.db")
    assert sum(r.n_added for r in two) == len(_rows(tmp_path / "two.db")["records"]) > 100


def test_the_shared_ris_exports_read_the_same_in_two_processes(tmp_path, monkeypatch):
    folder = shared_path("fixtures", "files", "ris")
    monkeypatch.setattr(formats, "IMPORT_BATCH", 3)
    # the files told as RIS, whatever their names (some are MEDLINE or Web of Science)
    files = sorted(f for f in folder.iterdir() if formats._open(f).format == "ris")
    assert len(files) >= 15
    one = _import(tmp_path / "one.db", files, two=False, monkeypatch=monkeypatch)
    two = _import(tmp_path / "two.db", files, two=True, monkeypatch=monkeypatch)
    assert two == one
    assert _rows(tmp_path / "two.db") == _rows(tmp_path / "one.db")
    assert sum(r.n_added for r in two) == len(_rows(tmp_path / "two.db")["records"]) > 100


#: a RIS file with labels, a record with no ER line, one with no TY line and an empty one
_TRICKY_RIS = (
    "".join(f"TY  - JOUR\nTI  - Trial {i}\nAU  - Liu, R.\nPY  - 2010\n"
            f"N1  - {'ASReview_relevant' if i % 2 else 'ASReview_irrelevant'}\nER  - \n"
            for i in range(1, 12))
    + "TY  - JOUR\nTI  - Unended\n"
    + "TY  - JOUR\nPY  - 2001\nER  - \n"
    + "TI  - Headless\nER  - \n"
    + f"TY  - JOUR\nTI  - {'Long ' * 2100}\nER  - \n"
    + "".join(f"TY  - JOUR\nTI  - Later {i}\nER  - \n" for i in range(1, 9))
)


def test_a_ris_file_reads_the_same_in_two_processes(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 4)
    f = tmp_path / "tricky.ris"
    f.write_text(_TRICKY_RIS, encoding="utf-8")
    one = _import(tmp_path / "one.db", [f], two=False, monkeypatch=monkeypatch,
                  labels_reviewer="asreview")
    two = _import(tmp_path / "two.db", [f], two=True, monkeypatch=monkeypatch,
                  labels_reviewer="asreview")
    assert two == one
    (res,) = two
    assert (res.format, res.n_read, res.n_in_file, res.n_added, res.n_labels) == (
        "ris", 21, 23, 21, 11)
    assert res.warnings == (
        "tricky.ris: the record starting at line 67 has no ER end tag; it was closed at "
        "line 69.",
        "tricky.ris holds 23 records (TY and ER lines) but 22 were read; not recovered: "
        "record 14 (line 72: no TY line before it).",
        "tricky.ris: fields too long for a reference were cut: record 14's title (10,499 "
        "characters, 10,000 kept).",
        "tricky.ris: record(s) 13 have no title, author, abstract or identifier and were not "
        "imported.")
    assert _rows(tmp_path / "two.db") == _rows(tmp_path / "one.db")
    assert _import_threads() == [] and _children() == []


def test_records_made_here_when_no_second_process_starts(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 7)
    monkeypatch.setattr(convert._Child, "start", classmethod(lambda cls, *a: None))
    f = tmp_path / "tricky.csv"
    f.write_text(_TRICKY, encoding="utf-8")
    one = _import(tmp_path / "one.db", [f], two=False, monkeypatch=monkeypatch)
    two = _import(tmp_path / "two.db", [f], two=True, monkeypatch=monkeypatch)
    assert two == one and _rows(tmp_path / "two.db") == _rows(tmp_path / "one.db")


def _numbered(path: Path, n: int, special: dict[int, str]) -> Path:
    path.write_text("title,year\n" + "".join(
        f"{special.get(i, 'Trial')} {i},2010\n" for i in range(1, n + 1)))
    return path


@pytest.mark.parametrize("in_child", [0, 100])  # every batch made here, or there
def test_the_first_bad_record_in_the_files_order_is_told_and_nothing_written(
        tmp_path, monkeypatch, in_child):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 5)
    monkeypatch.setenv("PYTHONPATH", str(TESTS))  # the second process finds import_faults
    monkeypatch.setitem(formats._SPLITS, "csv", Split(csv_rows, "import_faults:record_or_fail"))
    good = _numbered(tmp_path / "good.csv", 12, {})
    # the first batch goes to the second process, the later ones to whichever is free
    bad = _numbered(tmp_path / "bad.csv", 60, {3: "FAIL", 18: "FAIL", 58: "FAIL"})
    with pytest.raises(FileFormatError) as caught:
        _import(tmp_path / "r.db", [good, bad], two=True, monkeypatch=monkeypatch)
    assert str(caught.value) == "bad.csv could not be read as csv (no record in 'FAIL 3')."
    assert _counts(tmp_path / "r.db") == [0, 0, 0, 0]
    monkeypatch.setattr(convert, "IN_CHILD", in_child)
    late = _numbered(tmp_path / "late.csv", 60, {58: "FAIL"})
    with pytest.raises(FileFormatError, match=r"^late.csv could not be read as csv \(no "
                                              r"record in 'FAIL 58'\)\.$"):
        _import(tmp_path / "s.db", [good, late], two=True, monkeypatch=monkeypatch)
    assert _counts(tmp_path / "s.db") == [0, 0, 0, 0]
    assert _import_threads() == [] and _children() == []


def test_a_record_failing_before_a_damaged_row_is_told_first(tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 5)
    monkeypatch.setenv("PYTHONPATH", str(TESTS))

    def damaged(text, name, reading):  # cutting the file into rows fails at a row
        for row in csv_rows(text, name, reading):
            if row[0]["title"] == "Damaged":
                raise RuntimeError("a damaged row")
            yield row

    f = tmp_path / "d.csv"
    f.write_text("title,year\n" + "".join(f"Trial {i},2010\n" for i in range(1, 43))
                 + "FAIL here,2010\nDamaged,2010\nTrial 45,2010\n")
    monkeypatch.setitem(formats._SPLITS, "csv", Split(damaged, "import_faults:record_or_fail"))
    with pytest.raises(FileFormatError, match=r"^d.csv could not be read as csv \(no record "
                                              r"in 'FAIL here'\)\.$"):
        _import(tmp_path / "a.db", [f], two=True, monkeypatch=monkeypatch)
    monkeypatch.setitem(formats._SPLITS, "csv", Split(damaged, "db.formats.tabular:csv_record"))
    with pytest.raises(FileFormatError, match=r"^d.csv could not be read as csv \(a damaged "
                                              r"row\)\.$"):
        _import(tmp_path / "b.db", [f], two=True, monkeypatch=monkeypatch)
    assert _counts(tmp_path / "a.db") == _counts(tmp_path / "b.db") == [0, 0, 0, 0]
    assert _import_threads() == [] and _children() == []


def test_a_second_process_killed_ends_the_import_in_one_sentence(run, db_path, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 5)
    monkeypatch.setattr(formats, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setenv("PYTHONPATH", str(TESTS))
    monkeypatch.setenv(PARENT, str(os.getpid()))
    monkeypatch.setitem(formats._SPLITS, "csv", Split(csv_rows, "import_faults:record_or_die"))
    f = _numbered(tmp_path / "a.csv", 40, {2: "DIE"})  # in the first batch: the child's
    result = run("import", str(f), expect=1)
    assert result.output.strip().splitlines()[-1] == (
        "Error: The process making the records of a.csv was killed (SIGKILL); nothing was "
        "imported: run the import again.")
    assert _counts(db_path) == [0, 0, 0, 0]
    assert _import_threads() == [] and _children() == []
    with pytest.raises(ConversionError):
        _import(tmp_path / "b.db", [f], two=True, monkeypatch=monkeypatch)


def test_two_processes_report_progress_and_hold_batches_not_the_file(store, tmp_path,
                                                                     monkeypatch):
    import tracemalloc

    monkeypatch.setattr(formats, "IMPORT_BATCH", 200)
    monkeypatch.setattr(formats, "PARALLEL_FROM_BYTES", 0)
    monkeypatch.setattr(common, "CHUNK", 2**15)
    monkeypatch.setattr(common, "HEAD", 2**15)
    abstract = "Nurses’ care, and words about a ward. " * 12

    def write(path: Path, n: int) -> Path:
        path.write_text("title,abstract,authors,year\n" + "".join(
            f"Compassion training trial {i},\"{abstract} {i}\",Liu R.,2010\n"
            for i in range(1, n + 1)), encoding="utf-8")
        return path

    # the modules an import loads are loaded before memory is counted
    import_files(store, [write(tmp_path / "small.csv", 10)], role="database")
    big = write(tmp_path / "big.csv", 16000)
    seen: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        held = formats.read_file(big)  # every record in memory at once
        whole = tracemalloc.get_traced_memory()[1]
        del held
        tracemalloc.reset_peak()
        (res,) = import_files(store, [big], role="database",
                              progress=lambda done, total: seen.append((done, total)))
        streamed = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.n_added == 16000 and store.db["records"].count == 16010
    # batches of 200 are 1.25 % of the file: the importing process holds those waiting for
    # the child (as entries, then as rows), those made here and not yet written, and the two
    # being written (one process alone holds about half as much)
    assert streamed < whole / 6, (streamed, whole)
    done = [d for d, _ in seen]
    assert done == sorted(done) and done[-1] == 16000 and len(set(done)) == 80
    assert all(total >= d for d, total in seen)


def _cli(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)
    return subprocess.Popen([sys.executable, "-m", "cli", *args], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def large_csv(tmp_path_factory) -> Path:
    """A CSV large enough for `cluster import` to make its records in two processes, and
    to take several seconds, so a signal sent half a second in finds it under way on a
    loaded machine."""
    path = tmp_path_factory.mktemp("large") / "large.csv"
    abstract = "Words about care on a ward, and the nurses who give it. " * 10
    with path.open("w", encoding="utf-8") as f:
        f.write("title,abstract,authors,year\n")
        i = 0
        while f.tell() < formats.PARALLEL_FROM_BYTES * 4:
            f.writelines(f"Compassion training trial {i + k},\"{abstract}{i + k}\",Liu R.,2010\n"
                         for k in range(1000))
            i += 1000
    return path


def _child_of(pid: int, timeout: float = 60) -> int:
    """The process `pid` started, once it has."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if stat.rsplit(")", 1)[1].split()[1] == str(pid):
                    return int(entry.name)
        time.sleep(0.02)
    raise AssertionError("no second process was started")


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return True
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return True  # ended, not yet reaped by whoever adopted it
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find processes")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_an_import_interrupted_or_killed_leaves_nothing_and_no_process(tmp_path, large_csv, sig):
    db = tmp_path / "review.db"
    assert _cli("init", "--db", str(db), cwd=tmp_path).wait(timeout=120) == 0
    proc = _cli("import", str(large_csv), "--quiet", "--db", str(db), cwd=tmp_path)
    child = _child_of(proc.pid)
    time.sleep(0.5)  # batches under way in both processes
    assert proc.poll() is None, "the import ended before it could be stopped"
    os.kill(proc.pid, sig)
    out, err = proc.communicate(timeout=60)
    if sig == signal.SIGINT:
        assert proc.returncode == 130
        assert err.strip().splitlines() == [
            "Error: Interrupted: the steps already finished are saved and nothing half-done was "
            "kept; run the command again to go on."]
    assert _gone(child), "the second process outlived the import"
    assert _counts(db) == [0, 0, 0, 0]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
