"""A store in trouble: a full disk, a damaged or foreign file, a bad event, readers racing writers.

Each failure ends in one `Error:` sentence and a non-zero exit, and leaves the
store as it was before the command.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import db.store as store_module
from db.store import StoreError, open_store
from clikit import invoke, one_sentence
from screenkit import damage_a_page

BIG_RIS = "".join(f"TY  - JOUR\nTI  - Record number {i} {'word ' * 200}\nER  - \n"
                  for i in range(300))
FULL = ("Error: The disk holding {db} is full; nothing of the step under way was written: "
        "free some space and run the command again.")


def counts(db: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(db)
    try:
        return tuple(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                     for t in ("records", "searches", "events"))
    finally:
        con.close()


def capped(monkeypatch, extra_pages: int = 2) -> None:
    """Stores the CLI opens can grow by `extra_pages` pages only: a disk that is nearly full."""
    real = store_module.open_store

    def opened(path, **kw):
        store = real(path, **kw)
        pages = store.db.execute("PRAGMA page_count").fetchone()[0]
        store.db.execute(f"PRAGMA max_page_count = {pages + extra_pages}")
        return store

    monkeypatch.setattr(store_module, "open_store", opened)


# --- a full disk ----------------------------------------------------------------------------


def test_a_failure_after_sqlite_rolled_back_itself_keeps_its_own_message(store) -> None:
    # on a full disk SQLite rolls the whole transaction back before the error reaches us
    with pytest.raises(sqlite3.OperationalError, match="^database or disk is full$"):
        with store.transaction():
            store.db.execute("INSERT INTO meta (key, value) VALUES ('a', '1')")
            store.db.conn.execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
    assert not store.db.conn.in_transaction
    assert store.get_meta("a") is None
    with store.transaction():  # and the store goes on working
        store.set_meta("a", "2")
    assert store.get_meta("a") == "2"


def test_nested_transaction_on_a_full_disk_keeps_its_own_message(store) -> None:
    with pytest.raises(sqlite3.OperationalError, match="^database or disk is full$"):
        with store.transaction():
            store.set_meta("outer", "1")
            with store.transaction():
                store.db.conn.execute("ROLLBACK")
                raise sqlite3.OperationalError("database or disk is full")
    assert store.get_meta("outer") is None and not store.db.conn.in_transaction


def test_import_onto_a_full_store_writes_nothing(tmp_path: Path) -> None:
    from db.formats import import_files

    f = tmp_path / "big.ris"
    f.write_text(BIG_RIS)
    store = open_store(tmp_path / "review.db")
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(sqlite3.OperationalError, match="^database or disk is full$"):
        import_files(store, [f], role="database")
    assert not store.db.conn.in_transaction
    assert [store.db[t].count for t in ("records", "searches", "sources")] == [0, 0, 0]
    store.db.execute("PRAGMA max_page_count = 1073741823")
    (res,) = import_files(store, [f], role="database")  # space again: the same import lands
    assert (res.n_read, store.db["records"].count) == (300, 300)
    store.close()


def test_full_disk_during_import_is_one_sentence(tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "review.db"
    assert invoke("init", "--db", str(db)).exit_code == 0
    f = tmp_path / "big.ris"
    f.write_text(BIG_RIS)
    capped(monkeypatch)
    result = invoke("import", str(f), "--db", str(db))
    assert result.exit_code == 1
    assert one_sentence(result) == FULL.format(db=db)
    assert counts(db) == (0, 0, 0)


def test_full_disk_while_writing_a_file_is_one_sentence(tmp_path: Path, monkeypatch) -> None:
    import errno

    db = tmp_path / "review.db"
    assert invoke("init", "--db", str(db)).exit_code == 0
    ris = tmp_path / "a.ris"
    ris.write_text("TY  - JOUR\nTI  - One\nER  - \n")
    assert invoke("import", str(ris), "--db", str(db)).exit_code == 0

    def no_space(*_args, **_kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    import db.formats as formats

    monkeypatch.setattr(formats, "export_records", no_space)
    result = invoke("export", "--format", "ris", "-o", str(tmp_path / "out.ris"), "--db", str(db))
    assert result.exit_code == 1
    assert one_sentence(result) == ("Error: The disk is full: free some space and run the "
                                    "command again.")


# --- events are checked before they enter the append-only log ---------------------------------


@pytest.mark.parametrize("fields, problem", [
    ({"reviewer": None}, "a decision event needs a reviewer"),
    ({"reviewer": "  "}, "a decision event needs a reviewer"),
    ({"record_id": None}, "a decision event needs a record id"),
    ({"stage": "abstract"}, "its stage 'abstract' is not one of title-abstract, full-text"),
    ({"value": "yes"}, "its value 'yes' is not one of include, exclude, maybe"),
    ({"record_id": "1"}, "its record_id '1' is not a record number"),
])
def test_an_incomplete_event_never_enters_the_log(store, fields, problem) -> None:
    from base.record import Record

    rid = store.add_record(Record(title="A record"))
    event = {"record_id": rid, "reviewer": "alice", "stage": "title-abstract", "value": "include",
             **fields}
    with pytest.raises(StoreError) as info:
        store.log_event("decision", **event)
    assert str(info.value) == f"The event was not logged: {problem}."
    assert store.db["events"].count == 0


def test_decisions_file_with_a_null_reviewer_is_refused(tmp_path: Path) -> None:
    import json

    db = tmp_path / "review.db"
    ris = tmp_path / "a.ris"
    ris.write_text("TY  - JOUR\nTI  - One\nER  - \n")
    assert invoke("import", str(ris), "--db", str(db)).exit_code == 0
    assert invoke("reviewers", "add", "alice", "--db", str(db)).exit_code == 0
    assert invoke("decide", "1", "--reviewer", "alice", "--include", "--db", str(db)).exit_code == 0
    exported = tmp_path / "alice.jsonl"
    assert invoke("decisions", "export", str(exported), "--db", str(db)).exit_code == 0
    event = json.loads(exported.read_text(encoding="utf-8").splitlines()[0])
    event.update({"id": "another-copy-1", "reviewer": None})
    edited = tmp_path / "edited.jsonl"
    edited.write_text(json.dumps(event) + "\n", encoding="utf-8")
    result = invoke("decisions", "import", str(edited), "--db", str(db))
    assert result.exit_code == 1
    assert one_sentence(result) == ("Error: Line 1 of edited.jsonl is not a valid event (a decision "
                                    "event needs a reviewer): nothing was imported.")
    assert counts(db)[2] == 1


# --- a damaged or foreign store ----------------------------------------------------------------


def _store_with_records(tmp_path: Path, n: int = 1) -> Path:
    db = tmp_path / "review.db"
    ris = tmp_path / "a.ris"
    ris.write_text("".join(f"TY  - JOUR\nTI  - Record {i} {'text ' * 300}\nER  - \n"
                           for i in range(n)))
    assert invoke("import", str(ris), "--db", str(db)).exit_code == 0
    assert invoke("reviewers", "add", "alice", "--db", str(db)).exit_code == 0
    return db


COMMANDS = (("status",), ("flow", "--json"), ("report",), ("import", "{ris}"), ("export", "--format", "ris"),
            ("decide", "1", "--reviewer", "alice", "--include"), ("dedup",), ("find", "record"),
            ("conflicts",), ("agreement",), ("reviewers", "list"), ("searches",))


def test_a_store_without_its_migrations_table_is_one_sentence_on_every_command(tmp_path) -> None:
    db = _store_with_records(tmp_path)
    con = sqlite3.connect(db)
    con.execute("DROP TABLE _sqlite_migrations")
    con.commit()
    con.close()
    for args in COMMANDS:
        args = tuple(a.format(ris=tmp_path / "a.ris") for a in args)
        result = invoke(*args, "--db", str(db))
        assert result.exit_code == 1, args
        assert one_sentence(result) == (f"Error: {db} is a damaged review store (its table "
                                        "_sqlite_migrations is missing): restore it from a backup "
                                        "or a copy."), args


def test_a_store_missing_a_table_is_one_sentence(tmp_path) -> None:
    db = _store_with_records(tmp_path)
    con = sqlite3.connect(db)
    con.execute("DROP TABLE reviewers")
    con.commit()
    con.close()
    result = invoke("status", "--db", str(db))
    assert result.exit_code == 1
    assert one_sentence(result) == (f"Error: {db} is a damaged review store (its table reviewers "
                                    "is missing): restore it from a backup or a copy.")


def test_a_file_that_is_not_sqlite_is_one_sentence_on_every_command(tmp_path) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("my notes, not a store\n" * 20)
    for args in COMMANDS:
        args = tuple(a.format(ris=tmp_path / "a.ris") for a in args)
        (tmp_path / "a.ris").write_text("TY  - JOUR\nTI  - One\nER  - \n")
        result = invoke(*args, "--db", str(db))
        assert result.exit_code == 1, args
        assert one_sentence(result) == (f"Error: {db} is not a cluster review store (not an SQLite "
                                        "database)."), args
    assert db.read_text() == "my notes, not a store\n" * 20


def test_decide_refuses_a_damaged_store_and_writes_nothing(tmp_path: Path) -> None:
    db = _store_with_records(tmp_path, n=200)
    damage_a_page(db)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA quick_check").fetchone()[0] != "ok"
    n_events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    result = invoke("decide", "1", "--reviewer", "alice", "--include", "--db", str(db))
    assert result.exit_code == 1
    err = one_sentence(result)
    assert err.startswith(f"Error: The review store {db} is damaged (")
    assert err.endswith("); nothing was written: restore it from a backup or a copy.")
    con = sqlite3.connect(db)
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == n_events
    con.close()


# --- reads of several tables see one snapshot --------------------------------------------------


def test_flow_reads_one_snapshot_while_an_import_lands(tmp_path: Path, monkeypatch) -> None:
    import db.flow as flow_module
    from db.flow import compute_flow

    db = _store_with_records(tmp_path, n=3)
    real = flow_module._canonical_of

    def canonical_then_an_import_lands(store):
        canon = real(store)
        # another command imports a record and its provenance between two reads of the flow
        other = open_store(db)
        with other.transaction():
            from base.record import Record

            rid = other.add_record(Record(title="Arrived meanwhile"))
            other.add_source(rid, None, role="database", service="late")
        other.close()
        return canon

    monkeypatch.setattr(flow_module, "_canonical_of", canonical_then_an_import_lands)
    store = open_store(db)
    flow = compute_flow(store)
    assert sum(s.identified for s in flow.sources) == 3
    monkeypatch.setattr(flow_module, "_canonical_of", real)
    assert sum(s.identified for s in compute_flow(store).sources) == 4
    store.close()
