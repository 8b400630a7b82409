"""Screening states derived from the event log: dual review, undo, resolution, automation."""

import pytest

from base.record import Record
from db.events import FULL_TEXT as FT
from db.events import TITLE_ABSTRACT as TA
from db.flow import compute_flow
from db.protocol import set_protocol
from db.state import (CONFLICT, EXCLUDED, INCLUDED, PENDING, current_decisions, stage_states,
                      standing_events, training_labels)
from db.store import DuplicateLinkError


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


def test_duplicate_links_in_a_loop_are_one_error_everywhere(store):
    """Screening states, a decision's record and the flow follow `duplicate_of` the same way."""
    a, b, c = _records(store, 3)
    store.add_source(c, None, role="database", service="MEDLINE")
    store.db["records"].update(a, {"duplicate_of": b})
    store.db["records"].update(b, {"duplicate_of": a})
    message = (f"Records {a}, {b} are marked as duplicates in a loop or of a missing record: "
               "undo the merge that linked them and deduplicate again.")
    for read in (lambda: stage_states(store, TA), lambda: store.canonical_id(a),
                 lambda: store.canonical_map(), lambda: compute_flow(store)):
        with pytest.raises(DuplicateLinkError) as err:
            read()
        assert str(err.value) == message
        assert err.value.record_ids == (a, b)
    assert store.canonical_id(c) == c


def test_duplicate_of_a_missing_record_is_named(store):
    a, b = _records(store, 2)
    store.db.execute("PRAGMA foreign_keys = OFF")
    store.db["records"].update(b, {"duplicate_of": a})
    store.db["records"].delete(a)
    with pytest.raises(DuplicateLinkError, match=rf"^Records {b} are marked as duplicates in a "
                                                 "loop or of a missing record"):
        stage_states(store, TA)
    with pytest.raises(DuplicateLinkError, match=rf"^Records {b} are marked"):
        store.canonical_id(b)


def test_a_chain_of_duplicates_ends_at_its_canonical_record(store):
    a, b, c = _records(store, 3)
    store.db["records"].update(c, {"duplicate_of": b})
    store.db["records"].update(b, {"duplicate_of": a})
    assert store.canonical_map() == {b: a, c: a}
    assert [store.canonical_id(r) for r in (a, b, c)] == [a, a, a]
    store.log_event("decision", record_id=c, reviewer="ann", stage=TA, value="include")
    assert stage_states(store, TA)[a].decisions["ann"].value == "include"


def test_standing_events_drop_undone_ones_and_sort_by_time(store):
    a, = _records(store, 1)
    late = store.log_event("note", record_id=a, reviewer="ann", note="late", ts="2024-02-01T00:00:00")
    early = store.log_event("note", record_id=a, reviewer="bob", note="early",
                            ts="2024-01-01T00:00:00")
    gone = store.log_event("note", record_id=a, reviewer="ann", note="gone",
                           ts="2024-01-15T00:00:00")
    store.log_event("undo", reviewer="ann", undoes=gone)
    assert [e["id"] for e in standing_events(store, "kind = 'note'")] == [early, late]


def test_an_include_and_a_maybe_export_as_include_not_as_a_conflict(store):
    """The export's decision is read from the stage state, which counts include + maybe as
    included; it used to compare the two values itself and call them a conflict. Two
    maybes advance the record too: its final decision is include."""
    a, b = _records(store, 2)
    for rid, va, vb in ((a, "include", "maybe"), (b, "maybe", "maybe")):
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA, value=va)
        store.log_event("decision", record_id=rid, reviewer="bob", stage=TA, value=vb)
    assert stage_states(store, TA)[a].status == INCLUDED
    assert current_decisions(store, TA) == {a: "include", b: "include"}



def _mixed_log(store):
    """A small review with every kind of event the states read: two searches (one of them
    removed), a merge, undone and redone decisions, a resolution, a stopping rule's
    exclusions, and full-text decisions and retrievals."""
    from db.searches import remove_search

    set_protocol(store, reviewers_per_record=2)
    kept = store.start_search(kind="import", service="Embase", role="database")
    gone = store.start_search(kind="import", service="Scopus", role="database")
    ids = []
    for i in range(40):
        rid = store.add_record(Record(title=f"Record {i}"))
        store.add_source(rid, gone if i >= 34 else kept, role="database",
                         service="Scopus" if i >= 34 else "Embase")
        ids.append(rid)
    store.db["records"].update(ids[5], {"duplicate_of": ids[4]})
    store.db["records"].update(ids[6], {"duplicate_of": ids[5]})
    remove_search(store, gone)
    for n, rid in enumerate(ids[:24]):
        for who in ("ann", "bob"):
            value = "exclude" if (n + (who == "bob")) % 5 else "include"
            store.log_event("decision", record_id=rid, reviewer=who, stage=TA, value=value)
    for n, rid in enumerate(ids[:24]):
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA, value="include")
        if n % 3 == 0:
            last = standing_events(store, "kind = 'decision' AND reviewer = 'ann'")[-1]["id"]
            undo = store.log_event("undo", reviewer="ann", undoes=last)
            if n % 6 == 0:
                store.log_event("undo", reviewer="ann", undoes=undo)  # redone
    store.log_event("decision", record_id=ids[35], reviewer="ann", stage=TA, value="include")
    store.log_event("resolution", record_id=ids[1], reviewer="cat", stage=TA, value="include")
    for rid in ids[24:30]:
        store.log_event("automation", record_id=rid, stage=TA, value="exclude",
                        data={"rule": "consecutive"})
    store.log_event("decision", record_id=ids[27], reviewer="bob", stage=TA, value="include")
    for rid in list(stage_states(store, FT))[:4]:
        store.log_event("fulltext", record_id=rid, value="retrieved")
        store.log_event("decision", record_id=rid, reviewer="ann", stage=FT, value="exclude",
                        reason="wrong population")
    return ids


def test_states_of_touched_records_and_counts_agree_with_each_record_read_alone(store):
    """`stage_view` builds states only for records some event touched and counts the rest:
    every record's state, and the status figures, are those each record's own events give
    (`record_decisions`) and those of the whole stage's states."""
    from db.state import effective_decisions, record_decisions, stage_view
    from screeners.stopping import status

    ids = _mixed_log(store)
    for stage in (TA, FT):
        states = stage_states(store, stage)
        view = stage_view(store, stage)
        assert view.states() == states
        assert all(st.status == PENDING and not st.decisions for rid, st in states.items()
                   if rid not in view.touched)
        labels = current_decisions(store, stage)
        alone = {rid: record_decisions(store, rid)[stage] for rid in states}
        assert {rid: labels.get(rid, "undecided") for rid in states} == alone
    ta = stage_states(store, TA)
    assert ids[35] not in ta and ids[5] not in ta and len(ta) == 32  # removed, merged
    decided = {rid for rid, _ in effective_decisions(store, TA)}
    st = status(store)
    assert (st.total, st.final, st.pending) == (
        len(ta), sum(s.final for s in ta.values()),
        sum(1 for rid, s in ta.items() if s.status == PENDING and rid not in decided))
    assert (st.total, st.screened, st.final, st.pending, st.includes_found) == (32, 23, 11, 4, 20)


def test_labels_at_each_stage_are_those_of_every_record_state(store):
    """`current_decisions` reads only the touched records' states; the labels are those the
    whole stage's states give, record by record."""
    from db.state import _before_full_text, _label, fulltext_states

    _mixed_log(store)
    ta, ft = stage_states(store, TA), stage_states(store, FT)
    retrieval = fulltext_states(store)
    want_ta = {rid: label for rid, st in ta.items() if (label := _label(st, None, 2))}
    want_ft = {rid: _before_full_text(st) for rid, st in ta.items() if st.status != INCLUDED}
    want_ft.update({rid: label for rid, st in ft.items()
                    if (label := _label(st, retrieval.get(rid), 2))})
    assert current_decisions(store, TA) == want_ta and len(want_ta) == 28
    assert current_decisions(store, FT) == want_ft and len(want_ft) == 32
