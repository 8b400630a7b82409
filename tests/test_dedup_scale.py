"""Deduplication of a large store: records read one at a time, keys kept, merges written at once."""

from __future__ import annotations

import pytest

from base.record import Record
from cluster.dedup import deduplicate
from cluster.dedup import apply
from cluster.dedup.apply import pending_pairs, run_dedup
from db.store import StoreError, open_store
from test_dedup_keys import WORKS, _add, _golden_records


def _outcome(store) -> tuple:
    dup = store.db.execute("SELECT id, duplicate_of, title, abstract FROM records ORDER BY id").fetchall()
    merges = [(e["data"]["canonical"], e["data"]["members"], e["data"]["rule"], e["data"]["score"],
               e["data"]["filled"], e["data"]["before"]) for e in store.events("kind = 'merge'")]
    keys = store.db.execute("SELECT * FROM dedup_keys ORDER BY record_id").fetchall()
    return dup, merges, pending_pairs(store), keys


def test_a_run_decodes_whole_records_only_for_the_members_of_its_clusters(db_path, monkeypatch):
    store = open_store(db_path)
    ids = _add(store, *WORKS)
    decoded = []
    real = apply.row_to_record

    def counting(row):
        decoded.append(row["id"])
        return real(row)

    monkeypatch.setattr(apply, "row_to_record", counting)
    summary = run_dedup(store)
    # two works of two records each; the other two records are never decoded whole
    assert (summary.records_in, summary.clusters, summary.duplicates_marked) == (6, 2, 2)
    assert sorted(decoded) == ids[:4]
    store.close()


def test_reading_the_cluster_records_one_at_a_time_merges_as_in_one_batch(tmp_path, monkeypatch):
    records = _golden_records()
    outcomes = []
    for batch in (1, 500):
        monkeypatch.setattr(apply, "READ_BATCH", batch)
        store = open_store(tmp_path / f"{batch}.db")
        _add(store, *records)
        run_dedup(store)
        outcomes.append(_outcome(store))
        store.close()
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[0][1]) == 49


def test_a_run_on_a_store_finds_the_clusters_of_the_records_in_memory(db_path):
    records = _golden_records()
    store = open_store(db_path)
    ids = _add(store, *records)
    first = run_dedup(store)
    expected = deduplicate(records)
    assert (first.clusters, first.duplicates_marked) == (len(expected.clusters), expected.n_duplicates)
    marked = dict(store.db.execute("SELECT id, duplicate_of FROM records WHERE duplicate_of IS NOT NULL"))
    assert marked == {ids[m]: ids[c.canonical] for c in expected.clusters
                      for m in c.members if m != c.canonical}
    store.close()


def test_an_incremental_run_merges_what_one_run_over_all_records_merges(tmp_path):
    records = _golden_records()
    outcomes = []
    for split in (len(records), 90):
        store = open_store(tmp_path / f"{split}.db")
        _add(store, *records[:split])
        run_dedup(store)
        if split < len(records):
            _add(store, *records[split:])
            again = run_dedup(store)
            assert again.new_records == len(records) - split
        merged = store.db.execute("SELECT id, duplicate_of FROM records ORDER BY id").fetchall()
        outcomes.append(merged)
        store.close()
    assert outcomes[0] == outcomes[1]


def test_log_events_writes_what_log_event_writes(store):
    rid = _add(store, WORKS[0])[0]
    one = store.log_event("merge", record_id=rid, data={"merge_id": "m1", "members": [1, 2]},
                          event_id="e1", ts="2026-01-01T00:00:00+00:00")
    many = store.log_events("merge", [
        {"record_id": rid, "data": {"merge_id": "m2", "members": [3, 4]}, "event_id": "e2",
         "ts": "2026-01-01T00:00:00+00:00"},
        {"record_id": rid, "data": {"merge_id": "m3", "members": [5, 6]}, "event_id": "e3",
         "ts": "2026-01-01T00:00:00+00:00"},
    ])
    assert (one, many) == ("e1", 2)
    rows = store.db.execute("SELECT id, ts, kind, record_id, data, review_id FROM events "
                            "WHERE kind = 'merge' ORDER BY seq").fetchall()
    review = store.review_id
    assert rows == [
        ("e1", "2026-01-01T00:00:00+00:00", "merge", rid, '{"members": [1, 2], "merge_id": "m1"}', review),
        ("e2", "2026-01-01T00:00:00+00:00", "merge", rid, '{"members": [3, 4], "merge_id": "m2"}', review),
        ("e3", "2026-01-01T00:00:00+00:00", "merge", rid, '{"members": [5, 6], "merge_id": "m3"}', review),
    ]


def test_log_events_refuses_a_bad_event_and_writes_none_of_the_batch(store):
    rid = _add(store, WORKS[0])[0]
    before = store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    with pytest.raises(StoreError) as caught:
        with store.transaction():
            store.log_events("merge", [{"record_id": rid, "data": {"merge_id": "m1"}}, {"data": {}}])
    assert str(caught.value) == "The event was not logged: a merge event needs a record id."
    assert store.db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == before


def test_a_run_with_nothing_new_counts_the_records_without_title(db_path):
    store = open_store(db_path)
    _add(store, *WORKS, Record(title="  ", year=2001), Record(year=2002))
    first = run_dedup(store)
    again = run_dedup(store)
    assert (first.records_in, first.records_without_title) == (8, 2)
    assert (again.records_in, again.new_records, again.records_without_title) == (6, 0, 2)
    store.close()
