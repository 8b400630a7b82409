"""Screening states derived from the event log: dual review, undo, resolution, automation."""

from base.record import Record
from screeners.protocol import set_protocol
from screeners.state import CONFLICT, EXCLUDED, INCLUDED, PENDING, stage_states, training_labels

TA, FT = "title-abstract", "full-text"


def _records(store, n):
    return [store.add_record(Record(title=f"Record {i}")) for i in range(n)]


def test_dual_review_states(store):
    a, b, c, d = _records(store, 4)
    for rid, va, vb in ((a, "include", "maybe"), (b, "exclude", "exclude"), (c, "include", "exclude")):
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA, value=va)
        store.log_event("decision", record_id=rid, reviewer="bob", stage=TA, value=vb)
    store.log_event("decision", record_id=d, reviewer="ann", stage=TA, value="include")
    st = stage_states(store, TA)
    assert [st[i].status for i in (a, b, c, d)] == [INCLUDED, EXCLUDED, CONFLICT, PENDING]
    # only the included record reaches full text
    assert list(stage_states(store, FT)) == [a]
    # a conflict counts as relevant until resolved (the first decision logged is include)
    assert training_labels(store, TA) == {a: 1, b: 0, c: 1, d: 1}


def test_undo_and_resolution(store):
    a, = _records(store, 1)
    e1 = store.log_event("decision", record_id=a, reviewer="ann", stage=TA, value="exclude")
    store.log_event("decision", record_id=a, reviewer="bob", stage=TA, value="include")
    assert stage_states(store, TA)[a].status == CONFLICT
    store.log_event("undo", reviewer="ann", undoes=e1)
    assert stage_states(store, TA)[a].status == PENDING
    store.log_event("decision", record_id=a, reviewer="ann", stage=TA, value="exclude",
                    reason="wrong population")
    store.log_event("resolution", record_id=a, reviewer="cat", stage=TA, value="exclude",
                    data={"method": "third-reviewer"})
    s = stage_states(store, TA)[a]
    assert (s.status, s.reason, s.resolution.reviewer) == (EXCLUDED, "wrong population", "cat")


def test_single_reviewer_protocol_and_automation(store):
    a, b = _records(store, 2)
    set_protocol(store, reviewers_per_record=1)
    store.log_event("decision", record_id=a, reviewer="ann", stage=TA, value="include")
    store.log_event("automation", record_id=b, stage=TA, value="exclude",
                    data={"rule": "hypergeometric"})
    st = stage_states(store, TA)
    assert st[a].status == INCLUDED
    assert (st[b].status, st[b].automated, st[b].reason) == (EXCLUDED, True, "hypergeometric")
    assert training_labels(store, TA) == {a: 1}


def test_decision_on_duplicate_counts_for_canonical(store):
    a, b = _records(store, 2)
    store.db["records"].update(b, {"duplicate_of": a})
    store.log_event("decision", record_id=b, reviewer="ann", stage=TA, value="exclude")
    store.log_event("decision", record_id=a, reviewer="bob", stage=TA, value="exclude")
    st = stage_states(store, TA)
    assert list(st) == [a] and st[a].status == EXCLUDED
