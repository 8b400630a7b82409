"""The review store: creation, migrations, refusal of foreign files, append-only log."""

import sqlite3

import pytest

from base.record import Record
from db.store import StoreError, open_store


def test_init_creates_store_in_wal_mode(run, db_path):
    result = run("init")
    assert "Review store ready" in result.output
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"records", "searches", "sources", "events", "reviewers", "meta"} <= tables


def test_event_log_is_append_only(store):
    eid = store.log_event("note", record_id=1, reviewer="alice", note="hello")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("UPDATE events SET note = 'changed' WHERE id = ?", [eid])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.execute("DELETE FROM events")
    assert [e["note"] for e in store.events()] == ["hello"]


def test_not_a_store_is_refused(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="SQLite database but not a cluster review store"):
        open_store(other)
    text = tmp_path / "notes.db"
    text.write_text("hello")
    with pytest.raises(StoreError, match="not an SQLite database"):
        open_store(text)


def test_newer_schema_is_refused(db_path):
    s = open_store(db_path)
    s.db["_sqlite_migrations"].insert({"migration_set": "cluster", "name": "m999_future",
                                       "applied_at": "2030"})
    s.close()
    with pytest.raises(StoreError, match="newer version of cluster"):
        open_store(db_path)


def test_cli_error_is_one_sentence(run, tmp_path):
    bad = tmp_path / "x.db"
    bad.write_bytes(b"\x00\x01binary")
    result = run("init", "--db", str(bad), expect=1)
    assert result.output.strip().startswith("Error: ")
    assert "Traceback" not in result.output


def test_transaction_rolls_back_everything(store):
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_record(Record(title="A"))
            raise RuntimeError("boom")
    assert list(store.records()) == []


def test_record_round_trip(store):
    rec = Record(title="T", authors=("Smith, J", "Doe, A"), year=2020, doi="10.1/x",
                 language=("en",), pub_types=("Journal Article",), source_id="R1")
    rid = store.add_record(rec)
    back = store.get_record(rid)
    assert back.authors == ("Smith, J", "Doe, A")
    assert back.source_id == "R1"
    assert back.doi == "10.1/x"


def test_every_command_has_help():
    from cli import cli

    def walk(cmd, path):
        assert (cmd.help or "").strip(), f"{' '.join(path)} has no help text"
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, path + [name])

    walk(cli, ["cluster"])


def test_canonical_map_follows_writes_here_and_commits_elsewhere(db_path):
    store = open_store(db_path)
    a, b, c = (store.add_record(Record(title=t)) for t in "ABC")
    assert store.canonical_map() == {}
    store.conn.execute("UPDATE records SET duplicate_of = ? WHERE id = ?", [a, b])
    assert store.canonical_map() == {b: a}
    got = store.canonical_map()
    got[c] = a  # a caller's copy: changing it changes nothing kept
    assert store.canonical_map() == {b: a}
    other = open_store(db_path)
    with other.transaction():
        other.conn.execute("UPDATE records SET duplicate_of = ? WHERE id = ?", [b, c])
    other.close()
    assert store.canonical_map() == {b: a, c: a}
    store.close()
