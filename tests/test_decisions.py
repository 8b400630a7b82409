"""Screening decisions: validation, duplicates, undo, notes, scores, conflicts,
full text, check subsamples, and merging decision logs between copies."""

from __future__ import annotations

import json
import shutil

import pytest
from screenkit import FT, TA, both_decide, make_review, snapshot

from base.errors import ClusterError
from base.record import Record
from db.state import CONFLICT, EXCLUDED, INCLUDED, effective_decisions, stage_states
from db.store import open_store
from screeners.decisions import (add_note, appraise, conflicts, decide, export_decisions,
                                 fulltext_states, import_decisions, mark_fulltext, resolve, sample,
                                 undo_last)
from screeners.session import pending


def test_decide_logs_one_event(store):
    a, *_ = make_review(store, 3)
    result = decide(store, a, "alice", TA, "include", note="clearly on topic")
    (e,) = store.events("kind = 'decision'")
    assert (e["id"], e["record_id"], e["reviewer"], e["stage"], e["value"], e["note"]) == (
        result.event_id, a, "alice", TA, "include", "clearly on topic")
    assert e["review_id"] == store.review_id
    assert result.message == f"Record {a}: include by alice at title-abstract."


@pytest.mark.parametrize("args, message", [
    (dict(record_id=1, reviewer="zed", stage=TA, value="include"),
     "Unknown reviewer 'zed': add them with `cluster reviewers add zed`."),
    (dict(record_id=99, reviewer="alice", stage=TA, value="include"),
     "Record 99 is not in this store."),
    (dict(record_id=1, reviewer="alice", stage=TA, value="exclude", reason="too boring"),
     "Reason 'too boring' is not in the protocol's list: wrong population; wrong intervention; "
     "wrong comparator; wrong outcome; wrong study design; wrong publication type; "
     "not in English; duplicate report; full text not available."),
    (dict(record_id=1, reviewer="alice", stage=TA, value="include", reason="wrong outcome"),
     "A reason goes with an exclusion only: drop the reason or exclude."),
    (dict(record_id=1, reviewer="alice", stage=TA, value="yes"),
     "Unknown decision 'yes': use one of include, exclude, maybe."),
    (dict(record_id=1, reviewer="alice", stage="abstract", value="include"),
     "Unknown stage 'abstract': use title-abstract or full-text."),
    (dict(record_id=2, reviewer="alice", stage=FT, value="include"),
     "Record 2 has not passed title-abstract screening, so it has no full-text stage yet."),
    (dict(record_id=1, reviewer="alice", stage=FT, value="exclude"),
     "A full-text exclusion needs a reason from the protocol's list: wrong population; "
     "wrong intervention; wrong comparator; wrong outcome; wrong study design; "
     "wrong publication type; not in English; duplicate report; full text not available."),
    (dict(record_id=1, reviewer="alice", stage=FT, value="exclude", reason="wrong populations"),
     "Reason 'wrong populations' is not in the protocol's list: wrong population; "
     "wrong intervention; wrong comparator; wrong outcome; wrong study design; "
     "wrong publication type; not in English; duplicate report; full text not available."),
])
def test_bad_decisions_are_refused_and_write_nothing(store, args, message):
    make_review(store, 3)
    both_decide(store, 1, "include", "include")  # record 1 reaches full text
    before = snapshot(store)
    with pytest.raises(ClusterError) as err:
        decide(store, **args)
    assert str(err.value) == message
    assert snapshot(store) == before


def test_full_text_exclusion_uses_the_protocols_spelling(store):
    make_review(store, 2)
    both_decide(store, 1, "include", "maybe")
    r = decide(store, 1, "alice", FT, "exclude", reason="  Wrong Outcome ")
    assert r.reason == "wrong outcome"
    assert store.events("kind = 'decision' AND stage = ?", [FT])[0]["reason"] == "wrong outcome"


def test_decision_on_a_duplicate_applies_to_its_canonical_record(store):
    a, b, c = make_review(store, 3)
    store.db["records"].update(c, {"duplicate_of": b})
    store.db["records"].update(b, {"duplicate_of": a})
    result = decide(store, c, "alice", TA, "exclude")
    assert (result.record_id, result.requested_id, result.redirected) == (a, c, True)
    assert result.message == (
        f"Record {c} is a duplicate of record {a}, so the decision applies to record {a}. "
        f"Record {a}: exclude by alice at title-abstract.")
    (e,) = store.events("kind = 'decision'")
    assert (e["record_id"], e["data"]) == (a, {"requested_record_id": c})
    decide(store, a, "bob", TA, "exclude")
    assert stage_states(store, TA)[a].status == EXCLUDED


def test_cli_decide_says_so_for_a_duplicate(run, store):
    a, b = make_review(store, 2)
    store.db["records"].update(b, {"duplicate_of": a})
    out = run("decide", str(b), "--reviewer", "bob", "--maybe").output
    assert out.strip() == (f"Record {b} is a duplicate of record {a}, so the decision applies "
                           f"to record {a}. Record {a}: maybe by bob at title-abstract.")


@pytest.mark.parametrize("args, message", [
    (["decide", "1", "--reviewer", "zed", "--include"],
     "Error: Unknown reviewer 'zed': add them with `cluster reviewers add zed`."),
    (["decide", "42", "--reviewer", "alice", "--include"], "Error: Record 42 is not in this store."),
    (["decide", "1", "--reviewer", "alice", "--include", "--exclude"],
     "Error: Give exactly one of --include, --exclude or --maybe."),
    (["decide", "1", "--reviewer", "alice", "--exclude", "--reason", "meh"],
     "Error: Reason 'meh' is not in the protocol's list: wrong population; wrong intervention; "
     "wrong comparator; wrong outcome; wrong study design; wrong publication type; "
     "not in English; duplicate report; full text not available."),
    (["undo", "--reviewer", "alice"], "Error: alice has no event to undo."),
    (["conflicts", "--resolver", "carol", "--record", "1", "--include"],
     "Error: Record 1 is not in conflict at title-abstract (it is pending): there is nothing "
     "to resolve."),
    (["fulltext", "1", "--retrieved"],
     "Error: Record 1 has not passed title-abstract screening, so it has no full-text stage yet."),
])
def test_cli_bad_input_is_one_sentence_and_writes_nothing(run, store, args, message):
    make_review(store, 2)
    before = snapshot(store)
    result = run(*args, expect=1)
    assert result.stderr.strip() == message
    assert result.stdout == ""
    assert snapshot(store) == before


def test_undo_takes_back_the_latest_decision_only(store):
    a, b, c = make_review(store, 3)
    decide(store, a, "alice", TA, "include")
    decide(store, b, "alice", TA, "exclude")
    decide(store, c, "bob", TA, "include")
    u = undo_last(store, "alice", TA)
    assert (u.record_id, u.value) == (b, "exclude")
    assert u.message == f"Undid alice's exclude on record {b} at title-abstract."
    assert pending(store, "alice", TA) == [b, c]
    assert undo_last(store, "alice", TA).record_id == a
    before = snapshot(store)
    with pytest.raises(ClusterError, match=r"^alice has no decision to undo at title-abstract\.$"):
        undo_last(store, "alice", TA)
    assert snapshot(store) == before
    assert pending(store, "bob", TA) == [a, b]  # bob's decision untouched


def test_notes_and_appraisal_scores(store):
    make_review(store, 2)
    both_decide(store, 1, "include", "include")
    add_note(store, 1, "alice", "  check the protocol paper  ")
    assert [(n["reviewer"], n["note"]) for n in store.events("kind = 'note'")] == [
        ("alice", "check the protocol paper")]
    with pytest.raises(ClusterError, match=r"^The note is empty: type some text to save a note\.$"):
        add_note(store, 1, "alice", "   ")
    first = appraise(store, 1, "alice", relevance=4)
    second = appraise(store, 1, "alice", rigour=2)
    assert (first.relevance, first.rigour, second.relevance, second.rigour) == (4, None, 4, 2)
    assert store.events("kind = 'appraisal'")[-1]["data"] == {"relevance": 4, "rigour": 2}
    before = snapshot(store)
    with pytest.raises(ClusterError, match=r"^The rigour score must be a whole number from 1 to 5, not 6\.$"):
        appraise(store, 1, "alice", rigour=6)
    with pytest.raises(ClusterError, match="has not passed title-abstract"):
        appraise(store, 2, "alice", relevance=3)
    assert snapshot(store) == before


def test_conflicts_list_both_decisions_and_notes_then_resolve(store, run):
    a, b = make_review(store, 2)
    decide(store, a, "alice", TA, "include", note="nurses are health staff")
    decide(store, a, "bob", TA, "exclude", reason="wrong population")
    add_note(store, a, "bob", "students, not staff")
    both_decide(store, b, "include", "maybe")
    (c,) = conflicts(store, TA)
    assert c.record_id == a
    assert [(d["reviewer"], d["value"], d["reason"], d["note"]) for d in c.decisions] == [
        ("alice", "include", None, "nurses are health staff"),
        ("bob", "exclude", "wrong population", None)]
    assert [(n["reviewer"], n["note"]) for n in c.notes] == [("bob", "students, not staff")]
    out = run("conflicts").output
    assert out.splitlines() == [
        f"Record {a}: Study 1: compassion training for nurses",
        "  alice: include — note: nurses are health staff",
        "  bob: exclude (wrong population)",
        "  note by bob: students, not staff",
        "1 open conflict(s) at title-abstract.",
    ]
    err = run("conflicts", "--resolver", "bob", "--record", str(a), "--include", expect=1)
    assert err.stderr.strip() == (
        f"Error: bob screened record {a}, so cannot resolve it as the arbiter: choose another "
        "resolver, or give --method consensus if the reviewers agreed together.")
    out = run("conflicts", "--resolver", "carol", "--record", str(a), "--exclude", "--reason",
              "wrong population").output
    assert out.strip() == (f"Record {a} resolved at title-abstract: exclude (wrong population) "
                           "by carol (arbiter).")
    (e,) = store.events("kind = 'resolution'")
    assert (e["reviewer"], e["value"], e["reason"], e["data"]) == (
        "carol", "exclude", "wrong population", {"method": "arbiter", "decided_by": ["carol"]})
    st = stage_states(store, TA)
    assert (st[a].status, st[b].status) == (EXCLUDED, INCLUDED)
    assert conflicts(store, TA) == []
    js = json.loads(run("conflicts", "--json").output)
    assert js == []


def test_decide_conflicts_and_resolve_print_their_results_as_json(store, run):
    a, = make_review(store, 1)
    dup = store.add_record(Record(title="Study 1 again"))
    store.db["records"].update(dup, {"duplicate_of": a})
    js = json.loads(run("decide", str(dup), "--reviewer", "alice", "--include", "--json").output)
    (e,) = store.events("kind = 'decision'")
    assert js == {"event_id": e["id"], "record_id": a, "requested_record_id": dup,
                  "reviewer": "alice", "stage": TA, "value": "include", "reason": None}
    decide(store, a, "bob", TA, "exclude", reason="wrong population")
    assert json.loads(run("conflicts", "--json").output) == [{
        "record_id": a, "title": "Study 1: compassion training for nurses", "stage": TA,
        "decisions": [
            {"reviewer": "alice", "value": "include", "reason": None, "note": None},
            {"reviewer": "bob", "value": "exclude", "reason": "wrong population", "note": None}],
        "notes": []}]
    js = json.loads(run("conflicts", "--resolver", "carol", "--record", str(a), "--exclude",
                        "--method", "arbiter", "--json").output)
    (r,) = store.events("kind = 'resolution'")
    assert js == {"event_id": r["id"], "record_id": a, "value": "exclude", "reason": None,
                  "resolver": "carol", "method": "arbiter", "decided_by": ["carol"]}


def test_resolution_at_full_text_needs_a_listed_reason(store):
    make_review(store, 1)
    both_decide(store, 1, "include", "include")
    both_decide(store, 1, "include", "exclude", stage=FT)
    assert stage_states(store, FT)[1].status == CONFLICT
    before = snapshot(store)
    with pytest.raises(ClusterError, match="^A full-text exclusion needs a reason"):
        resolve(store, 1, FT, "exclude", "carol", "consensus")
    assert snapshot(store) == before
    resolve(store, 1, FT, "exclude", "carol", "consensus", reason="wrong study design")
    st = stage_states(store, FT)[1]
    assert (st.status, st.reason) == (EXCLUDED, "wrong study design")


def test_fulltext_retrieval_states(store, run):
    a, b = make_review(store, 2)
    both_decide(store, a, "include", "maybe")
    assert run("fulltext", str(a), "--sought").output.strip() == f"Record {a}: full text sought."
    err = run("fulltext", str(a), "--not-retrieved", expect=1)
    assert err.stderr.strip() == "Error: Say why the report could not be retrieved with a reason."
    out = run("fulltext", str(a), "--not-retrieved", "--reason", "author did not reply").output
    assert out.strip() == f"Record {a}: full text not retrieved (author did not reply)."
    assert fulltext_states(store) == {a: "not-retrieved"}
    mark_fulltext(store, a, "retrieved")
    assert fulltext_states(store) == {a: "retrieved"}
    assert [(e["value"], e["reason"]) for e in store.events("kind = 'fulltext'")] == [
        ("sought", None), ("not-retrieved", "author did not reply"), ("retrieved", None)]


def test_sample_assigns_a_reproducible_check_subsample(store, run):
    ids = make_review(store, 30, reviewers=("alice", "bob", "dan"))
    first = sample(store, 0.1, "dan", seed=7)
    assert len(first.chosen) == 3 and first.population == 30
    assert set(first.chosen) <= set(ids) and first.newly_assigned == first.chosen
    again = sample(store, 0.1, "dan", seed=7)
    assert (again.chosen, again.newly_assigned) == (first.chosen, ())
    assert len(store.events("kind = 'assign'")) == 3
    # dan's queue is his subsample only; alice still sees every record
    assert pending(store, "dan", TA) == list(first.chosen)
    assert pending(store, "alice", TA) == ids
    js = json.loads(run("sample", "--fraction", "0.1", "--reviewer", "dan", "--seed", "7",
                        "--json").output)
    assert (js["records"], js["newly_assigned"]) == (list(first.chosen), [])
    err = run("sample", "--fraction", "1.5", "--reviewer", "dan", "--seed", "7", expect=1)
    assert err.stderr.strip() == "Error: The fraction must be above 0 and at most 1, not 1.5."


# --- export / import -------------------------------------------------------------------


@pytest.fixture
def copies(tmp_path):
    """A review store and three copies of it, as handed to reviewers on separate machines."""
    base = tmp_path / "base.db"
    s = open_store(base)
    make_review(s, 8)
    s.close()
    paths = {}
    for name in ("alice", "bob", "merged1", "merged2"):
        paths[name] = tmp_path / f"{name}.db"
        shutil.copy(base, paths[name])
    return paths


def _screen_copy(path, reviewer, values):
    s = open_store(path)
    for rid, v in enumerate(values, 1):
        decide(s, rid, reviewer, TA, v)
    add_note(s, 1, reviewer, f"{reviewer} was here")
    undo_last(s, reviewer, TA)
    decide(s, 8, reviewer, TA, "maybe")
    return s


def test_export_import_is_idempotent_and_order_independent(copies, tmp_path):
    a = _screen_copy(copies["alice"], "alice", ["include", "exclude", "include", "exclude",
                                                  "maybe", "exclude", "include", "include"])
    b = _screen_copy(copies["bob"], "bob", ["include", "exclude", "exclude", "exclude",
                                              "include", "include", "include", "exclude"])
    fa, fb = tmp_path / "alice.jsonl", tmp_path / "bob.jsonl"
    assert export_decisions(a, fa) == 11  # 8 decisions, note, undo, redo
    assert export_decisions(b, fb) == 11
    m1, m2 = open_store(copies["merged1"]), open_store(copies["merged2"])
    r = import_decisions(m1, fa)
    assert (r.added, r.already_present) == (11, 0)
    import_decisions(m1, fb)
    import_decisions(m2, fb)
    import_decisions(m2, fa)
    again = import_decisions(m1, fa)
    assert (again.added, again.already_present) == (0, 11)
    for m in (m1, m2):
        assert len(m.events("kind = 'decision'")) == 18
    s1 = {rid: st.status for rid, st in stage_states(m1, TA).items()}
    s2 = {rid: st.status for rid, st in stage_states(m2, TA).items()}
    assert s1 == s2 == {1: INCLUDED, 2: EXCLUDED, 3: CONFLICT, 4: EXCLUDED, 5: INCLUDED,
                        6: CONFLICT, 7: INCLUDED, 8: INCLUDED}
    from screeners.agreement import agreement
    assert [p.to_dict() for p in agreement(m1, TA)] == [p.to_dict() for p in agreement(m2, TA)]

def test_the_later_of_two_decisions_on_two_copies_counts_in_any_import_order(copies, tmp_path):
    # alice screened record 1 on her laptop, then again (differently) on the server copy
    laptop, server = open_store(copies["alice"]), open_store(copies["bob"])
    decide(laptop, 1, "alice", TA, "include")
    decide(server, 1, "alice", TA, "exclude", reason="wrong population")
    f1, f2 = tmp_path / "laptop.jsonl", tmp_path / "server.jsonl"
    export_decisions(laptop, f1)
    export_decisions(server, f2)
    m1, m2 = open_store(copies["merged1"]), open_store(copies["merged2"])
    for m, files in ((m1, (f1, f2)), (m2, (f2, f1))):
        for f in files:
            import_decisions(m, f)
        d = effective_decisions(m, TA)[(1, "alice")]
        assert (d.value, d.reason) == ("exclude", "wrong population")


def test_import_from_another_review_is_refused(copies, tmp_path, run):
    other = open_store(tmp_path / "other.db")
    make_review(other, 8)
    decide(other, 1, "alice", TA, "include")
    f = tmp_path / "other.jsonl"
    export_decisions(other, f)
    target = open_store(copies["merged1"])
    before = snapshot(target)
    with pytest.raises(ClusterError) as err:
        import_decisions(target, f)
    assert str(err.value) == (f"other.jsonl holds decisions from a different review "
                              f"({other.review_id}), not this one ({target.review_id}): "
                              "nothing was imported.")
    assert snapshot(target) == before


def test_import_refuses_malformed_files_whole(copies, tmp_path):
    a = _screen_copy(copies["alice"], "alice", ["include"] * 8)
    f = tmp_path / "a.jsonl"
    export_decisions(a, f)
    lines = f.read_text().splitlines()
    target = open_store(copies["merged1"])
    before = snapshot(target)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines[:3] + ["{not json"] + lines[3:]) + "\n")
    with pytest.raises(ClusterError, match=r"^Line 4 of bad\.jsonl is not a decision event"):
        import_decisions(target, bad)
    e = json.loads(lines[0])
    e["record_id"] = 999
    bad.write_text(json.dumps(e) + "\n")
    with pytest.raises(ClusterError, match=r"^bad\.jsonl refers to record 999, which is not in "
                                           r"this store: nothing was imported\.$"):
        import_decisions(target, bad)
    assert snapshot(target) == before


def test_import_adds_unknown_reviewers(copies, tmp_path, run):
    s = open_store(copies["alice"])
    s.add_reviewer("erin")
    decide(s, 2, "erin", TA, "include")
    f = tmp_path / "erin.jsonl"
    export_decisions(s, f)
    target = open_store(copies["merged1"])
    out = run("decisions", "import", str(f), "--db", str(copies["merged1"])).output
    assert out.strip() == f"Imported 1 event(s) from {f} (0 already present); new reviewers: erin."
    assert "erin" in target.reviewer_names()
    out = run("decisions", "export", str(tmp_path / "m.jsonl"), "--db",
              str(copies["merged1"])).output
    assert out.strip() == f"Wrote 1 event(s) to {tmp_path / 'm.jsonl'}."


def test_decision_on_canonical_and_duplicate_counts_once_per_reviewer(store):
    a, b = make_review(store, 2)
    dup = store.add_record(Record(title="Study 1: compassion training for nurses"))
    store.db["records"].update(dup, {"duplicate_of": a})
    decide(store, a, "alice", TA, "include")
    decide(store, dup, "alice", TA, "exclude")  # her later word on the same work
    assert stage_states(store, TA)[a].decisions["alice"].value == "exclude"
    assert pending(store, "alice", TA) == [b]


# --- the decisions file format round-trips whatever a reviewer typed --------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as hst  # noqa: E402

_actions = hst.lists(hst.tuples(
    hst.sampled_from(["decide", "note", "undo", "appraise"]),
    hst.integers(1, 3), hst.sampled_from(["alice", "bob"]),
    hst.sampled_from(["include", "exclude", "maybe"]),
    hst.text(min_size=1, max_size=30).filter(lambda t: t.strip()),
    hst.integers(1, 5)), max_size=12)


@pytest.fixture(scope="module")
def base_copy(tmp_path_factory):
    path = tmp_path_factory.mktemp("base") / "base.db"
    s = open_store(path)
    make_review(s, 3)
    both_decide(s, 1, "include", "include")
    s.close()
    return path


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=_actions)
def test_export_import_round_trip(base_copy, tmp_path, actions):
    import uuid

    src_path, dst_path = (tmp_path / f"{uuid.uuid4().hex}.db" for _ in range(2))
    shutil.copy(base_copy, src_path)
    shutil.copy(base_copy, dst_path)
    src, dst = open_store(src_path), open_store(dst_path)
    for s in (src, dst):
        s.db.execute("PRAGMA synchronous=OFF")  # the format is under test, not the disk
    for kind, rid, who, value, text, score in actions:
        try:
            if kind == "decide":
                decide(src, rid, who, TA, value, note=text)
            elif kind == "note":
                add_note(src, rid, who, text)
            elif kind == "undo":
                undo_last(src, who, TA)
            else:
                appraise(src, rid, who, relevance=score)
        except ClusterError:
            pass  # refused actions write nothing and are not exported
    f = tmp_path / f"{uuid.uuid4().hex}.jsonl"
    export_decisions(src, f)
    import_decisions(dst, f)

    def rows(s):
        return sorted(tuple((k, json.dumps(v, sort_keys=True)) for k, v in e.items() if k != "seq")
                      for e in s.events())

    assert rows(src) == rows(dst)
    assert import_decisions(dst, f).added == 0
    src.close()
    dst.close()
