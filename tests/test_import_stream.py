"""Imports read as streams: records written a batch at a time while the file is
still being read, memory bounded by the batch, and still all-or-nothing."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import db.formats as formats
import db.formats.common as common
from db.formats import FileFormatError, import_files, read_file

ROOT = Path(__file__).resolve().parents[1]


def _csv(path: Path, n: int, *, abstract: str = "Words about care on a ward.") -> Path:
    path.write_text("title,abstract,authors,year\n" + "".join(
        f"Compassion training trial {i},\"{abstract} {i}\",Liu R.,2010\n" for i in range(1, n + 1)),
        encoding="utf-8")
    return path


def _counts(db_path: Path) -> list[int]:
    con = sqlite3.connect(db_path)
    try:
        return [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("records", "searches", "sources", "events")]
    finally:
        con.close()


def test_records_are_written_while_the_file_is_still_being_read(store, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 1000)
    monkeypatch.setattr(common, "CHUNK", 2**14)
    big = _csv(tmp_path / "big.csv", 6000)
    written_when_read: dict[int, int] = {}
    real = formats._READERS["csv"]

    def watched(text, name, reading):
        for n, item in enumerate(real(text, name, reading), 1):
            if n in (1000, 3500, 6000):
                written_when_read[n] = store.db.execute("SELECT count(*) FROM records").fetchone()[0]
            yield item

    monkeypatch.setitem(formats._READERS, "csv", watched)
    (res,) = import_files(store, [big], role="database")
    # the 3,500th record is read after three batches of 1,000 were handed to the writing
    # thread, which may still be writing the third (a batch behind at most); never more
    assert written_when_read[1000] == 0
    assert 2000 <= written_when_read[3500] <= 3000
    assert 4000 <= written_when_read[6000] <= 5000
    assert (res.n_read, res.n_in_file, res.n_added) == (6000, 6000, 6000)
    assert res.sha256 == hashlib.sha256(big.read_bytes()).hexdigest()
    assert [r[0] for r in store.db.execute(
        "SELECT rank FROM sources ORDER BY id LIMIT 3")] == [1, 2, 3]


def test_an_import_holds_a_batch_not_the_file(store, tmp_path, monkeypatch):
    import tracemalloc

    monkeypatch.setattr(formats, "IMPORT_BATCH", 200)
    monkeypatch.setattr(common, "CHUNK", 2**15)
    monkeypatch.setattr(common, "HEAD", 2**15)
    abstract = "Nurses’ care, and words about a ward. " * 12  # non-ASCII: two bytes a character
    # batches of 200 are 2.5 % of the file: the import holds two (one written while the
    # next is parsed) and the reader's pieces of text
    big = _csv(tmp_path / "big.csv", 8000, abstract=abstract)
    tracemalloc.start()
    try:
        held = read_file(big)  # every record in memory at once
        whole = tracemalloc.get_traced_memory()[1]
        del held
        tracemalloc.reset_peak()
        (res,) = import_files(store, [big], role="database")
        streamed = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert res.n_added == 8000 and store.db["records"].count == 8000
    assert streamed < whole / 5, (streamed, whole)
    assert streamed < big.stat().st_size, (streamed, big.stat().st_size)


def test_a_failure_at_the_last_record_writes_nothing(run, db_path, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 10)
    records = "".join(f"<record><titles><title>Trial {i}</title></titles></record>"
                      for i in range(1, 36))
    cut = tmp_path / "cut.xml"  # the export stops inside its last record
    cut.write_text(f"<xml><records>{records}<record><titles><title>Trial 36")
    good = _csv(tmp_path / "first.csv", 25)
    result = run("import", str(good), str(cut), expect=1)
    assert result.output.strip().splitlines()[-1] == (
        "Error: cut.xml is not well-formed XML at line 1, column 2032 (truncated or damaged "
        "export): export it again.")
    # three batches of the XML file were written before its end was reached, and the CSV
    # before it: nothing of either is left
    assert _counts(db_path) == [0, 0, 0, 0]
    cut.write_text(f"<xml><records>{records}</records></xml>")
    out = run("import", str(good), str(cut)).output
    assert out.splitlines() == [
        "first.csv: 25 records read (csv), 25 added (search 1).",
        "cut.xml: 35 records read (endnote-xml), 35 added (search 2)."]
    assert _counts(db_path) == [60, 2, 60, 0]


def test_a_late_empty_reading_and_a_reimport_keep_their_counts(store, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 7)
    f = tmp_path / "a.ris"
    f.write_text("".join(f"TY  - JOUR\nTI  - Record {i}\nER  - \n" for i in range(1, 30))
                 + "TY  - JOUR\nER  - \nTY  - JOUR\nTI  - Lost\n")
    (first,) = import_files(store, [f], role="database")
    assert (first.n_read, first.n_in_file, first.n_added) == (30, 31, 30)
    assert first.warnings == (
        "a.ris: the record starting at line 92 has no ER end tag; it was read up to the end of "
        "the file.",
        "a.ris holds 31 records (TY and ER lines) but 31 were read.",
        "a.ris: record(s) 30 have no title, author, abstract or identifier and were not "
        "imported.") or first.warnings
    (again,) = import_files(store, [f], role="other")
    assert (again.already_imported, again.format, again.n_read, again.n_in_file,
            again.n_added) == (True, "ris", first.n_read, first.n_in_file, 0)


@pytest.mark.parametrize("encoding,text", [
    ("utf-8", "title,abstract\r\nCafé – “trial”,Naïve\r\rsecond line\r\n\ufeffΩ,x\r\n"),
    ("utf-8-sig", "title,abstract\nÉtude,é\n"),
    ("cp1252", "title,abstract\r\nCafé – trial,naïve €\r\n"),
    ("latin-1", "title,abstract\nCafé \x81 trial,x\n"),
    ("utf-16", "title,abstract\r\nCafé 𝛾 trial,x\r\n"),
])
def test_a_file_read_in_tiny_chunks_reads_as_one_read_whole(tmp_path, monkeypatch, encoding,
                                                             text):
    f = tmp_path / "a.csv"
    f.write_bytes(text.encode(encoding))
    whole = read_file(f).result
    monkeypatch.setattr(common, "CHUNK", 3)  # every character and CRLF split some time
    chunked = read_file(f)
    assert chunked.result == whole
    assert chunked.sha256 == hashlib.sha256(f.read_bytes()).hexdigest()
    assert whole.records[0].title == common.decode(f.read_bytes(), "a.csv").split("\n")[1] \
        .split(",")[0].strip()


def test_cesu_surrogates_split_between_chunks_are_joined(tmp_path, monkeypatch):
    # U+1F600 written as two UTF-8-encoded surrogates (CESU-8), and a lone one
    f = tmp_path / "a.ris"
    f.write_bytes(b"TY  - JOUR\nTI  - Smile \xed\xa0\xbd\xed\xb8\x80 and \xed\xa0\xbd alone\nER  - \n")
    monkeypatch.setattr(common, "CHUNK", 4)
    (rec,) = read_file(f).result.records
    assert rec.title == "Smile \U0001F600 and \ufffd alone"


def test_an_id_list_with_a_stranger_past_its_start_is_refused(store, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "HEAD", 64)
    f = tmp_path / "ids.txt"
    f.write_text("".join(f"{31000000 + i}\n" for i in range(30)) + "not an identifier\n")
    with pytest.raises(FileFormatError, match=r"^ids\.txt line 31 \('not an identifier'\) is "
                                              r"not a PMID or DOI, though the lines above it are"):
        import_files(store, [f], role="database")
    assert store.db["records"].count == 0


def test_an_import_killed_mid_file_leaves_nothing(tmp_path):
    big = _csv(tmp_path / "big.csv", 15000, abstract="Words about care on a ward. " * 20)
    db_path = tmp_path / "review.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)
    subprocess.run([sys.executable, "-m", "cli", "init", "--db", str(db_path)], env=env,
                   cwd=tmp_path, check=True, capture_output=True, timeout=120)
    proc = subprocess.Popen([sys.executable, "-m", "cli", "import", str(big), "--quiet",
                             "--db", str(db_path)], env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wal = db_path.with_name(db_path.name + "-wal")
    deadline = time.monotonic() + 120
    # pages of the open transaction spill into the WAL once SQLite's cache is full
    while proc.poll() is None and time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size > 2 * 2**20:
            break
        time.sleep(0.01)
    assert proc.poll() is None, "the import ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert _counts(db_path) == [0, 0, 0, 0]
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()


def test_the_import_bar_follows_the_estimated_total():
    from cli import Bar

    with Bar(False, "Importing", unit="records") as bar:
        bar(10, 15)
        bar(20, 40)
        assert (bar.bar.length, bar.pos) == (40, 20)
        bar(37, 37)
        assert (bar.bar.length, bar.pos) == (37, 37)


def test_labels_of_a_file_larger_than_a_batch_become_decisions_in_order(store, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 4)
    f = tmp_path / "labelled.csv"
    f.write_text("title,included\n" + "".join(
        f"Trial {i},{'' if i % 3 == 0 else i % 2}\n" for i in range(1, 11)))
    store.add_reviewer("asreview")
    (res,) = import_files(store, [f], role="database", labels_reviewer="asreview")
    assert (res.n_added, res.n_labels, res.warnings) == (10, 7, ())
    events = store.events("kind = 'decision'")
    assert [(e["record_id"], e["value"]) for e in events] == [
        (1, "include"), (2, "exclude"), (4, "exclude"), (5, "include"), (7, "include"),
        (8, "exclude"), (10, "exclude")]
    assert {e["reviewer"] for e in events} == {"asreview"}
    assert len({e["id"] for e in events}) == 7


def _writer_threads() -> list[str]:
    import threading

    return [t.name for t in threading.enumerate() if t.name == "import-writer"]


def test_a_write_failing_in_the_writing_thread_is_raised_and_writes_nothing(
        store, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 10)
    store.db.execute("CREATE TRIGGER refuse BEFORE INSERT ON records "
                     "WHEN NEW.title = 'Compassion training trial 45' "
                     "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    with pytest.raises(sqlite3.IntegrityError, match="^refused$"):
        import_files(store, [_csv(tmp_path / "a.csv", 50)], role="database")
    assert [store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("records", "searches", "sources")] == [0, 0, 0]
    assert _writer_threads() == []


def test_an_interrupt_while_reading_leaves_nothing_and_no_thread(store, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "IMPORT_BATCH", 10)
    real = formats._READERS["csv"]

    def interrupted(text, name, reading):
        for n, item in enumerate(real(text, name, reading), 1):
            if n == 35:  # three batches handed to the writing thread
                raise KeyboardInterrupt
            yield item

    monkeypatch.setitem(formats._READERS, "csv", interrupted)
    with pytest.raises(KeyboardInterrupt):
        import_files(store, [_csv(tmp_path / "a.csv", 50)], role="database")
    assert [store.db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("records", "searches", "sources")] == [0, 0, 0]
    assert _writer_threads() == []


def test_a_store_in_memory_is_written_from_its_own_thread(tmp_path, monkeypatch):
    from db.store import open_store

    monkeypatch.setattr(formats, "IMPORT_BATCH", 10)
    memory = open_store(None)  # bound to this thread: a writing thread could not use it
    (res,) = import_files(memory, [_csv(tmp_path / "a.csv", 25)], role="database")
    assert res.n_added == 25
    assert [r[0] for r in memory.db.execute("SELECT title FROM records WHERE id IN (1, 25)")] == [
        "Compassion training trial 1", "Compassion training trial 25"]
