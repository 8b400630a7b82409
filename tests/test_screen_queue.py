"""A screening key press keeps the queue up to date from the events it logs, never
deriving it from the whole store again, and always equal to a fresh derivation."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from screenkit import FT, TA, damage_a_page, make_review

import screeners.session as session_module
from db.store import Store, StoreError, open_store
from screeners.decisions import add_note, decide, mark_fulltext, undo_last
from screeners.session import (ScreeningSession, own_decisions, pending, population,
                               progress)


@pytest.fixture
def no_prioritiser(monkeypatch):
    monkeypatch.setitem(sys.modules, "screeners.prioritise", None)


def _queue(store: Store, reviewer: str, stage: str) -> tuple:
    return (pending(store, reviewer, stage), own_decisions(store, reviewer, stage),
            population(store, reviewer, stage), progress(store, reviewer, stage).text)


def _same_as_fresh(store: Store, reviewer: str = "alice", stage: str = TA) -> tuple:
    """The sitting's queue, checked against one derived on a new connection."""
    kept = _queue(store, reviewer, stage)
    fresh_store = open_store(store.path, create=False)
    try:
        assert kept == _queue(fresh_store, reviewer, stage)
    finally:
        fresh_store.close()
    return kept


def test_the_queue_after_each_action_equals_a_fresh_derivation(tmp_path, no_prioritiser):
    store = open_store(tmp_path / "review.db")
    make_review(store, 10)
    s = ScreeningSession(store, "alice", TA, background=False)
    _same_as_fresh(store)
    s.decide("include")
    s.decide("exclude")
    s.note("a note")
    decide(store, 5, "bob", TA, "include")  # another reviewer's decision changes nothing
    assert _same_as_fresh(store)[1] == {1: "include", 2: "exclude"}
    s.undo()
    assert _same_as_fresh(store)[1] == {1: "include"}
    assert s.current == 2
    # a decision from a copy of the review, dated before alice's own: hers still stands
    store.log_event("decision", record_id=1, reviewer="alice", stage=TA, value="exclude",
                    ts="2000-01-01T00:00:00+00:00")
    assert _same_as_fresh(store)[1] == {1: "include"}
    # one dated after it replaces it
    store.log_event("decision", record_id=1, reviewer="alice", stage=TA, value="maybe",
                    ts="2999-01-01T00:00:00+00:00")
    assert _same_as_fresh(store)[1] == {1: "maybe"}
    # an undo that came (from another copy) before the decision it takes back
    store.log_event("undo", undoes="later-decision", reviewer="alice", stage=TA)
    store.log_event("decision", record_id=3, reviewer="alice", stage=TA, value="exclude",
                    event_id="later-decision")
    assert 3 not in _same_as_fresh(store)[1]
    # record 9 merged into 8: a decision logged on the duplicate counts for 8
    with store.transaction():
        store.conn.execute("UPDATE records SET duplicate_of = 8 WHERE id = 9")
    store.log_event("decision", record_id=9, reviewer="alice", stage=TA, value="exclude")
    pend, mine, pop, line = _same_as_fresh(store)
    assert mine == {1: "maybe", 8: "exclude"}
    assert pop == [1, 2, 3, 4, 5, 6, 7, 8, 10] and pend == [2, 3, 4, 5, 6, 7, 10]
    assert line == "screened 2/9 · includes 0 · estimated relevant left ?"
    s.decide("include")
    assert _same_as_fresh(store)[1] == {1: "maybe", 2: "include", 8: "exclude"}
    assert s.current == 3
    store.close()


def test_the_full_text_queue_follows_decisions_and_retrieval(tmp_path, no_prioritiser):
    store = open_store(tmp_path / "review.db")
    make_review(store, 6)
    for rid in (1, 2, 3, 4):
        for who in ("alice", "bob"):
            decide(store, rid, who, TA, "include")
    for rid in (1, 2, 3):
        mark_fulltext(store, rid, "retrieved")
    s = ScreeningSession(store, "alice", FT, background=False)
    assert _same_as_fresh(store, stage=FT)[0] == [1, 2, 3]
    s.decide("exclude", reason="wrong outcome")
    assert _same_as_fresh(store, stage=FT)[0] == [2, 3]
    mark_fulltext(store, 4, "retrieved")
    assert _same_as_fresh(store, stage=FT)[0] == [2, 3, 4]
    decide(store, 5, "alice", TA, "include")
    decide(store, 5, "bob", TA, "include")
    mark_fulltext(store, 5, "retrieved")
    assert _same_as_fresh(store, stage=FT)[0] == [2, 3, 4, 5]
    store.close()


def test_a_key_press_derives_neither_the_population_nor_the_decisions_again(
        tmp_path, no_prioritiser, monkeypatch):
    store = open_store(tmp_path / "review.db")
    make_review(store, 8)
    s = ScreeningSession(store, "alice", TA, background=False)
    calls: list[str] = []
    for module, name in ((session_module, "_population"),
                         (session_module, "effective_decisions")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name,
                            lambda *a, _real=real, _name=name, **k: (calls.append(_name),
                                                                     _real(*a, **k))[1])
    real_map = Store._read_canonical_map
    monkeypatch.setattr(Store, "_read_canonical_map",
                        lambda self: (calls.append("canonical_map"), real_map(self))[1])
    for value in ("include", "exclude", "maybe"):
        s.decide(value)
        s.card()
        s.progress()
    s.note("why not")
    assert s.progress().text == "screened 3/8 · includes 1 · estimated relevant left ?"
    assert calls == []
    s.undo()  # an undo changes which decisions stand: derived again, once
    assert s.progress().text == "screened 2/8 · includes 1 · estimated relevant left ?"
    assert calls == ["effective_decisions"]
    store.close()


def test_the_card_is_kept_between_redraws_until_something_is_written(tmp_path,
                                                                      no_prioritiser):
    store = open_store(tmp_path / "review.db")
    make_review(store, 3)
    s = ScreeningSession(store, "alice", TA, background=False)
    first = s.card()
    assert s.card() is first
    add_note(store, 1, "alice", "seen before")
    again = s.card()
    assert again is not first and again.my_notes == ("seen before",)
    store.close()


def test_records_signature_counts_records_and_duplicate_links(tmp_path):
    store = open_store(tmp_path / "review.db")
    make_review(store, 6)
    with store.transaction():
        store.conn.execute("UPDATE records SET duplicate_of = 2 WHERE id IN (4, 5)")
    assert store.records_signature() == (6, 6, 2, 4.0)
    store.close()


def test_the_duplicate_map_is_read_again_only_when_the_records_change(tmp_path, monkeypatch):
    store = open_store(tmp_path / "review.db")
    make_review(store, 6)
    reads = []
    real = Store._read_canonical_map
    monkeypatch.setattr(Store, "_read_canonical_map",
                        lambda self: (reads.append(1), real(self))[1])
    with store.transaction():
        store.conn.execute("UPDATE records SET duplicate_of = 2 WHERE id = 4")
        store.conn.execute("UPDATE records SET duplicate_of = 4 WHERE id = 5")
    assert store.canonical_map() == {4: 2, 5: 2}
    decide(store, 1, "alice", TA, "include")
    assert store.canonical_map() == {4: 2, 5: 2} and len(reads) == 1
    # another connection unmerges record 5
    other = sqlite3.connect(store.path)
    other.execute("UPDATE records SET duplicate_of = NULL WHERE id = 5")
    other.commit()
    other.close()
    assert store.canonical_map() == {4: 2} and len(reads) == 2
    store.close()


def _store_with_long_records(tmp_path: Path) -> Path:
    store = open_store(tmp_path / "review.db")
    make_review(store, 40)
    with store.transaction():
        store.conn.execute("UPDATE records SET abstract = ? || abstract", ["text " * 400])
    store.close()
    return tmp_path / "review.db"


def test_the_first_write_takes_the_early_check_and_reads_no_page_itself(tmp_path):
    db = _store_with_long_records(tmp_path)
    store = open_store(db, create=False)
    said: list[str] = []
    store.conn.set_trace_callback(said.append)
    store.check_integrity_soon()
    decide(store, 1, "alice", TA, "include")
    assert not [sql for sql in said if "quick_check" in sql]
    assert said and store.conn.execute("SELECT count(*) FROM events WHERE kind = 'decision'"
                                       ).fetchone()[0] == 1
    store.close()


def test_the_early_check_still_refuses_a_damaged_store(tmp_path):
    db = _store_with_long_records(tmp_path)
    damage_a_page(db)
    store = open_store(db, create=False)
    n_events = store.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    store.check_integrity_soon()
    with pytest.raises(StoreError) as err:
        decide(store, 1, "alice", TA, "include")
    assert str(err.value).startswith(f"The review store {db} is damaged (")
    assert str(err.value).endswith("); nothing was written: restore it from a backup or a copy.")
    assert store.conn.execute("SELECT count(*) FROM events").fetchone()[0] == n_events
    store.close()


def test_an_undo_of_another_reviewer_keeps_alices_queue(tmp_path, no_prioritiser):
    store = open_store(tmp_path / "review.db")
    make_review(store, 4)
    s = ScreeningSession(store, "alice", TA, background=False)
    s.decide("include")
    decide(store, 2, "bob", TA, "exclude")
    undo_last(store, "bob", TA)
    assert _same_as_fresh(store)[1] == {1: "include"}
    assert s.current == 2
    store.close()


def test_the_full_text_records_are_derived_again_only_after_title_abstract_events(
        tmp_path, monkeypatch):
    import screeners.decisions as decisions_module
    from screeners.decisions import full_text_records

    store = open_store(tmp_path / "review.db")
    make_review(store, 5)
    for rid in (1, 2):
        for who in ("alice", "bob"):
            decide(store, rid, who, TA, "include")
    derived = []
    real = decisions_module.stage_records
    monkeypatch.setattr(decisions_module, "stage_records",
                        lambda *a: (derived.append(a[1]), real(*a))[1])
    assert full_text_records(store) == (1, 2) and derived == [FT]
    mark_fulltext(store, 1, "retrieved")
    decide(store, 1, "alice", FT, "include")
    add_note(store, 2, "alice", "full text only", FT)
    assert full_text_records(store) == (1, 2) and derived == [FT]
    decide(store, 3, "alice", TA, "include")
    decide(store, 3, "bob", TA, "include")
    assert full_text_records(store) == (1, 2, 3) and derived == [FT, FT]
    store.close()
