"""`cluster undo` for every kind of event: each undo is a new event, a batch goes back
whole, and every count (flow, status, agreement, conflicts, exports) follows."""

from __future__ import annotations

import csv
import io
import json

import pytest

from base.errors import ClusterError
from base.record import Record
from db.events import KINDS, UNDOABLE
from db.state import standing_events, standing_merges, undone_ids
from db.store import open_store
from db.undo import undo_event, undo_last
from screenkit import FT, TA, both_decide, make_review, snapshot
from screeners.decisions import (add_note, appraise, assigned_records, current_appraisal, decide,
                                 export_decisions, sample)


@pytest.fixture
def review(db_path):
    """Five records: 1 included by alice and bob, 2 excluded by both, 3 in conflict,
    4 and 5 unscreened; carol is the third reviewer."""
    s = open_store(db_path)
    ids = make_review(s, 5)
    both_decide(s, ids[0], "include", "include")
    both_decide(s, ids[1], "exclude", "exclude")
    both_decide(s, ids[2], "include", "exclude")
    s.close()
    return ids


def _flow(run) -> dict:
    return json.loads(run("flow", "--json").output)["columns"]["other"]


def _export(run, stage: str = TA) -> dict[int, str]:
    text = run("export", "--format", "csv", "--stage", stage, "-o", "-").output
    return {int(r["record_id"]): r["decision"] for r in csv.DictReader(io.StringIO(text))}


def _events(db_path, where: str, params=()) -> list[dict]:
    s = open_store(db_path)
    try:
        return s.events(where, params)
    finally:
        s.close()


# --- decisions ------------------------------------------------------------------------


def test_undo_takes_back_the_reviewers_last_decision_and_every_count_follows(run, review, db_path):
    before = _flow(run)
    assert (before["screened"], before["screen_excluded"], before["screen_awaiting"],
            before["sought"]) == (5, 1, 3, 1)
    status = json.loads(run("status", "--json").output)
    assert (status["screened"], status["final"]) == (3, 2)
    kappa = json.loads(run("agreement", "--json").output)
    assert [(p["reviewer_a"], p["reviewer_b"], p["records"], p["disagreements"])
            for p in kappa] == [("alice", "bob", 3, 1)]
    out = run("undo", "--reviewer", "bob").output
    assert out.strip() == f"Undid bob's exclude on record {review[2]} at title-abstract."
    # bob's exclude on record 3 is gone: no conflict, alice's include alone is partial
    assert run("conflicts").output.strip() == "No open conflicts at title-abstract."
    assert _export(run)[review[2]] == "1 of 2 reviewers: include"
    assert [(p["records"], p["disagreements"])
            for p in json.loads(run("agreement", "--json").output)] == [(2, 0)]
    after = _flow(run)
    assert (after["screen_excluded"], after["screen_awaiting"], after["sought"]) == (1, 3, 1)
    # the next undo goes one further back: bob's exclude on record 2
    assert run("undo", "--reviewer", "bob").output.strip() == (
        f"Undid bob's exclude on record {review[1]} at title-abstract.")
    assert _flow(run)["screen_excluded"] == 0
    status = json.loads(run("status", "--json").output)
    assert (status["screened"], status["final"]) == (3, 1)
    assert len(_events(db_path, "kind = 'undo' AND reviewer = 'bob'")) == 2


def test_undo_json_names_the_new_event_and_the_one_taken_back(run, review, db_path):
    [last] = _events(db_path, "kind = 'decision' AND reviewer = 'alice' AND record_id = ?",
                     [review[2]])
    out = json.loads(run("undo", "--reviewer", "alice", "--json").output)
    [undo] = _events(db_path, "kind = 'undo'")
    assert out == {"undo_ids": [undo["id"]], "undone": [last["id"]], "kind": "decision",
                   "amends": "screening", "redo": False, "records": [review[2]], "reviewer": "alice", "batch": None,
                   "message": f"Undid alice's include on record {review[2]} at title-abstract."}
    assert (undo["undoes"], undo["record_id"], undo["stage"]) == (last["id"], review[2], TA)


def test_undoing_an_undo_redoes(run, review, db_path):
    run("undo", "--reviewer", "bob")
    [undo] = _events(db_path, "kind = 'undo'")
    out = run("undo", undo["id"], "--reviewer", "bob").output
    assert out.strip() == f"Redid bob's exclude on record {review[2]} at title-abstract."
    assert "1 open conflict(s) at title-abstract." in run("conflicts").output
    # an undo that was redone stands no more: it cannot be redone twice
    err = run("undo", undo["id"], expect=1)
    assert err.stderr.strip() == f"Error: Event {undo['id']} (undo) was already undone."
    # undoing the redo takes the decision back again
    redo = _events(db_path, "kind = 'undo' AND undoes = ?", [undo["id"]])[0]
    assert run("undo", redo["id"]).output.strip() == (
        f"Undid bob's exclude on record {review[2]} at title-abstract.")
    assert run("conflicts").output.strip() == "No open conflicts at title-abstract."


def test_undo_stage_and_kind_choose_among_the_reviewers_events(run, review, db_path):
    s = open_store(db_path)
    add_note(s, review[0], "alice", "check the dose")
    s.close()
    out = run("undo", "--reviewer", "alice", "--kind", "decision").output
    assert out.strip() == f"Undid alice's include on record {review[2]} at title-abstract."
    assert len(_events(db_path, "kind = 'note'")) == 1
    assert run("undo", "--reviewer", "alice", "--stage", "full-text", expect=1).stderr.strip() == (
        "Error: alice has no event to undo at full-text.")
    assert run("undo", "--reviewer", "alice").output.strip() == (
        f"Undid alice's note on record {review[0]}.")


# --- stopping rules: one batch --------------------------------------------------------


def test_a_stopping_rules_exclusions_go_back_as_one_batch(run, review, db_path):
    out = run("stop", "--rule", "consecutive", "--force", "--reviewer", "carol").output
    auto = _events(db_path, "kind = 'automation'")
    assert len(auto) == 2 and f"To take them all back: cluster undo {auto[0]['id']}" in out
    assert {e["data"]["batch"] for e in auto} == {auto[0]["id"]}
    assert _flow(run)["excluded_automatic"] == 2
    assert _export(run)[review[4]] == "exclude"
    out = run("undo", "--reviewer", "carol").output
    assert out.strip() == ("Undid carol's 2 automated exclusions at title-abstract "
                           "(consecutive rule).")
    flow = _flow(run)
    assert (flow["excluded_automatic"], flow["screen_awaiting"]) == (0, 3)
    assert _export(run)[review[4]] == "undecided"
    undos = _events(db_path, "kind = 'undo'")
    assert sorted(u["undoes"] for u in undos) == sorted(e["id"] for e in auto)
    # the undos are a batch too: naming any one redoes them all
    out = json.loads(run("undo", undos[1]["id"], "--json").output)
    assert (out["redo"], len(out["undone"]), out["kind"]) == (True, 2, "undo")
    assert _flow(run)["excluded_automatic"] == 2


def test_a_batch_is_undone_by_the_id_of_any_of_its_events(run, review, db_path):
    run("stop", "--rule", "consecutive", "--force")
    auto = _events(db_path, "kind = 'automation'")
    out = run("undo", auto[1]["id"][:8]).output
    assert out.strip() == "Undid the 2 automated exclusions at title-abstract (consecutive rule)."
    assert _flow(run)["excluded_automatic"] == 0
    assert _events(db_path, "kind = 'undo'")[0]["reviewer"] is None


def test_a_stopping_run_logged_before_batches_is_still_one_batch(store):
    ids = make_review(store, 6)
    other = store.log_event("note", record_id=ids[0], reviewer="alice", note="x")
    data = {"rule": "consecutive", "met": True}
    run1 = [store.log_event("automation", record_id=r, stage=TA, value="exclude",
                            reviewer="carol", data=data) for r in ids[1:4]]
    store.log_event("note", record_id=ids[0], reviewer="alice", note="y")
    run2 = [store.log_event("automation", record_id=r, stage=TA, value="exclude",
                            reviewer="carol", data=data) for r in ids[4:]]
    out = undo_event(store, run1[1], "carol")
    assert set(out.undone) == set(run1)
    standing = {e["id"] for e in standing_events(store, "kind = 'automation'")}
    assert standing == set(run2) and other not in undone_ids(store)


# --- resolutions ----------------------------------------------------------------------


def test_undoing_a_resolution_reopens_the_conflict(run, review, db_path):
    run("conflicts", "--resolver", "carol", "--record", str(review[2]), "--include")
    assert run("conflicts").output.strip() == "No open conflicts at title-abstract."
    assert (_flow(run)["sought"], _export(run)[review[2]]) == (2, "include")
    out = run("undo", "--reviewer", "carol").output
    assert out.strip() == f"Undid carol's resolution (include) of record {review[2]} at title-abstract."
    listed = json.loads(run("conflicts", "--json").output)
    assert [c["record_id"] for c in listed] == [review[2]]
    assert (_flow(run)["sought"], _export(run)[review[2]]) == (1, "conflict")


# --- study links ----------------------------------------------------------------------


def test_undo_takes_back_a_study_link_not_the_decision_before_it(run, db_path):
    s = open_store(db_path)
    ids = make_review(s, 3)
    for rid in ids:
        both_decide(s, rid, "include", "include")
        both_decide(s, rid, "include", "include", FT)
    s.close()
    run("study", "link", str(ids[0]), str(ids[1]), "--key", "smith2019", "--reviewer", "alice")
    flow = json.loads(run("flow", "--json").output)
    assert (flow["new_studies"], flow["new_reports"]) == (2, 3)
    out = run("undo", "--reviewer", "alice").output
    assert out.strip() == f"Undid the link of records {ids[0]}, {ids[1]} as reports of study smith2019."
    flow = json.loads(run("flow", "--json").output)
    assert (flow["new_studies"], flow["new_reports"]) == (3, 3)
    assert len(_events(db_path, "kind = 'decision' AND reviewer = 'alice'")) == 6
    assert run("study", "list").output.strip() == (
        "No records are linked as reports of a study (cluster study link 12 57 --key KEY).")


# --- tags -----------------------------------------------------------------------------


def test_a_searchs_tags_go_back_together(run, db_path):
    s = open_store(db_path)
    make_review(s, 5)
    s.close()
    out = run("find", "compassion OR empathy", "--tag", "theory", "--reviewer", "alice").output
    assert out.strip().endswith("2 record(s); 2 newly tagged 'theory'.")
    assert run("undo", "--reviewer", "alice").output.strip() == (
        "Undid the tag 'theory' on records 1, 2.")
    s = open_store(db_path)
    assert standing_events(s, "kind = 'tag'") == []
    s.close()
    # tags taken back are given again by the next search
    again = run("find", "compassion OR empathy", "--tag", "theory").output
    assert again.strip().endswith("2 newly tagged 'theory'.")


# --- merges and pair verdicts ---------------------------------------------------------


def _two_copies(store) -> None:
    title = "Ischemic preconditioning in chronically hypoxic neonatal rat heart"
    with store.transaction():
        store.add_reviewer("alice")
        for service, doi in (("pubmed", "10.1203/pr.52.4.561"), ("embase", "10.1203/pr.52.4.561")):
            sid = store.start_search(kind="file", service=service, role="database")
            rid = store.add_record(Record(title=title, year=2002, doi=doi, authors=("Ostadal, B",)))
            store.add_source(rid, sid, role="database", service=service)
        sid = store.start_search(kind="file", service="embase", role="database")
        rid = store.add_record(Record(title="Statins and the heart: a review", year=2010))
        store.add_source(rid, sid, role="database", service="embase")


def test_a_merge_is_listed_and_undone_by_its_event_id(run, db_path):
    s = open_store(db_path)
    _two_copies(s)
    s.close()
    run("dedup", "--quiet")
    [merge] = json.loads(run("dedup", "--list", "--json").output)
    assert (merge["canonical"], merge["members"], merge["score"], merge["rule"],
            merge["reviewer"]) == (1, [1, 2], 0.95, "identifier+title", None)
    listing = run("dedup", "--list").output.splitlines()
    assert listing[:2] == [f"merge {merge['merge_id']}",
                           f"  record 1 <- 2  (identifier+title, score 0.950; "
                           f"dedup run {merge['ts'][:16].replace('T', ' ')})"]
    assert listing[-1] == "1 merge stands: split one with cluster dedup --undo MERGE_ID."
    json_flow = json.loads(run("flow", "--json").output)
    assert json_flow["columns"]["databases"]["duplicates"] == 1
    out = run("undo", merge["event_id"], "--reviewer", "alice").output
    assert out.strip() == f"Undid merge {merge['merge_id']}: record 2 stands apart from record 1 again."
    assert json.loads(run("dedup", "--list", "--json").output) == []
    assert run("dedup", "--list").output.strip() == "0 merges stand."
    assert json.loads(run("flow", "--json").output)["columns"]["databases"]["duplicates"] == 0
    err = run("dedup", "--undo", merge["merge_id"], expect=1)
    assert err.stderr.strip() == f"Error: Merge {merge['merge_id']} was already undone."
    # a split merge is not joined again by undoing its undo, nor by the next run
    [undo] = _events(db_path, "kind = 'undo'")
    refused = run("undo", undo["id"], expect=1)
    assert refused.stderr.strip() == (
        f"Error: Event {undo['id']} split a merge, and a split is not merged again by undo: "
        "decide the pair same (`cluster dedup --import-pairs`).")
    s = open_store(db_path)
    s.add_record(Record(title="Another record entirely about soil", year=2001))
    s.close()
    assert json.loads(run("dedup", "--json", "--quiet").output)["duplicates_marked"] == 0


def test_dedup_undo_and_undo_by_merge_id_are_one_undo(run, db_path):
    s = open_store(db_path)
    _two_copies(s)
    s.close()
    merge_id = json.loads(run("dedup", "--json", "--quiet").output)["merge_ids"][0]
    out = run("undo", merge_id, "--json").output
    assert json.loads(out)["kind"] == "merge"
    s = open_store(db_path)
    assert standing_merges(s) == []
    assert s.db.execute("SELECT count(*) FROM records WHERE duplicate_of IS NOT NULL"
                        ).fetchone()[0] == 0
    s.close()


def test_a_pair_verdict_and_a_manual_merge_go_back_and_the_pair_waits_again(store):
    from cluster.dedup.apply import decide_pairs, pending_pairs, run_dedup

    with store.transaction():
        store.add_reviewer("alice")
        for title in ("Exercise training for depression in older adults: a randomized trial",
                      "Exercise training for depression in older people: a randomized controlled trial"):
            sid = store.start_search(kind="file", service="x", role="database")
            rid = store.add_record(Record(title=title, year=2012))
            store.add_source(rid, sid, role="database", service="x")
    run_dedup(store)
    [pair] = pending_pairs(store)
    decide_pairs(store, [(pair.a, pair.b, "different")], reviewer="alice")
    assert pending_pairs(store) == []
    out = undo_last(store, "alice")
    assert out.message == f"Undid alice's verdict 'different' on records {pair.a} and {pair.b}."
    assert pending_pairs(store) == [pair]
    decide_pairs(store, [(pair.a, pair.b, "same")], reviewer="alice")
    assert (len(standing_merges(store)), pending_pairs(store)) == (1, [])
    out = undo_last(store, "alice")
    assert out.message.startswith("Undid merge ") and out.message.endswith(
        f"record {pair.b} stands apart from record {pair.a} again (and alice's verdict same).")
    assert len(out.undone) == 2
    assert standing_merges(store) == [] and pending_pairs(store) == [pair]
    assert store.db.execute("SELECT count(*) FROM records WHERE duplicate_of IS NOT NULL"
                            ).fetchone()[0] == 0


# --- notes, scores, full text, check samples ------------------------------------------


def test_undoing_a_note_removes_it_from_conflicts_and_exports(run, review, db_path):
    s = open_store(db_path)
    add_note(s, review[2], "carol", "ask the authors")
    s.close()
    assert "note by carol: ask the authors" in run("conflicts").output
    text = run("export", "--format", "csv", "-o", "-").output
    assert "carol: ask the authors" in text
    assert run("undo", "--reviewer", "carol").output.strip() == (
        f"Undid carol's note on record {review[2]}.")
    assert "note by carol" not in run("conflicts").output
    assert "ask the authors" not in run("export", "--format", "csv", "-o", "-").output


def test_undoing_scores_brings_back_the_ones_before(store):
    ids = make_review(store, 2)
    both_decide(store, ids[0], "include", "include")
    appraise(store, ids[0], "alice", relevance=4)
    appraise(store, ids[0], "alice", rigour=2)
    assert current_appraisal(store, ids[0], "alice") == {"relevance": 4, "rigour": 2}
    out = undo_last(store, "alice")
    assert out.message == f"Undid alice's scores for record {ids[0]} at full-text."
    assert current_appraisal(store, ids[0], "alice") == {"relevance": 4}


def test_undoing_a_full_text_state_changes_the_flow(run, review, db_path):
    run("fulltext", str(review[0]), "--not-retrieved", "--reason", "no access", "--reviewer", "carol")
    flow = _flow(run)
    assert (flow["sought"], flow["not_retrieved"]) == (1, 1)
    assert _export(run, FT)[review[0]] == "not retrieved"
    assert run("undo", "--reviewer", "carol").output.strip() == (
        f"Undid full text not retrieved for record {review[0]}.")
    flow = _flow(run)
    assert (flow["sought"], flow["not_retrieved"]) == (1, 0)
    assert _export(run, FT)[review[0]] == "undecided"


def test_undoing_a_check_sample_unassigns_it(store):
    ids = make_review(store, 10, reviewers=("alice", "bob", "dan"))
    first = sample(store, 0.3, "dan", seed=7)
    assert assigned_records(store, "dan", TA) == set(first.chosen) and len(first.chosen) == 3
    undo_event(store, store.events("kind = 'assign'")[-1]["id"], "dan")
    assert assigned_records(store, "dan", TA) == set()
    assert len(sample(store, 0.3, "dan", seed=7).newly_assigned) == 3
    assert set(ids) >= assigned_records(store, "dan", TA)


# --- every registered kind, refusals ------------------------------------------------------


def _one_event(store, kind: str, rid: int) -> str:
    fields = {
        "decision": {"reviewer": "alice", "stage": TA, "value": "include"},
        "resolution": {"reviewer": "carol", "stage": TA, "value": "include"},
        "automation": {"stage": TA, "value": "exclude", "reviewer": "carol"},
        "assign": {"reviewer": "dan", "stage": TA},
        "fulltext": {"stage": FT, "value": "sought", "reviewer": "carol"},
        "appraisal": {"reviewer": "alice", "stage": FT, "data": {"relevance": 3}},
        "note": {"reviewer": "alice", "note": "n"},
        "tag": {"value": "theory", "reviewer": "alice"},
        "merge": {"reviewer": "alice", "data": {"merge_id": "m", "canonical": rid,
                                                "members": [rid]}},
        "pair_decision": {"reviewer": "alice", "value": "different",
                          "data": {"a": rid, "b": rid + 1}},
        "search": {"reviewer": "alice", "value": "remove", "data": {"search": "s1",
                                                                   "search_id": 1}},
        "answer": {"reviewer": "alice", "stage": "extraction", "value": "level",
                   "data": {"answer": "ward"}},
        "consensus": {"reviewer": "carol", "stage": "extraction", "value": "level",
                      "data": {"answer": "ward", "method": "consensus"}},
    }.get(kind, {"reviewer": "alice"})
    return store.log_event(kind, record_id=rid, **fields)


@pytest.mark.parametrize("kind", sorted(UNDOABLE))
def test_every_undoable_kind_is_undone_by_id_and_by_reviewer(store, kind):
    ids = make_review(store, 3, reviewers=("alice", "carol", "dan"))
    eid = _one_event(store, kind, ids[0])
    who = store.events("id = ?", [eid])[0]["reviewer"]
    out = undo_last(store, who)
    assert out.undone == (eid,) and eid in undone_ids(store)
    assert standing_events(store, "kind = ?", [kind]) == []
    assert kind in KINDS


def test_refusals_write_nothing(run, review, db_path):
    s = open_store(db_path)
    protocol = s.events("kind = 'protocol'")[0]["id"]
    before = snapshot(s)
    s.close()
    cases = [
        (("undo",), "Error: Give --reviewer NAME to take back their last event, or the EVENT_ID "
                    "of the event to undo."),
        (("undo", "nope"), "Error: No event with id 'nope' in this store: `cluster log` lists "
                           "the event ids."),
        (("undo", protocol), f"Error: Event {protocol} is a protocol event, which cannot be undone: "
                             f"undoable kinds are {', '.join(UNDOABLE)}."),
        (("undo", "--reviewer", "zed"), "Error: Unknown reviewer 'zed': add them with "
                                        "`cluster reviewers add zed`."),
        (("undo", "--reviewer", "alice", "--kind", "protocol"),
         f"Error: Events of kind 'protocol' cannot be undone: undoable kinds are "
         f"{', '.join(UNDOABLE)}."),
        (("undo", protocol, "--kind", "decision"),
         "Error: --kind and --stage choose the reviewer's last event: give them without an "
         "EVENT_ID."),
    ]
    for args, message in cases:
        assert run(*args, expect=1).stderr.strip() == message
    s = open_store(db_path)
    assert snapshot(s) == before
    s.close()


def test_an_ambiguous_id_start_is_refused(store):
    make_review(store, 1)
    ids = [store.log_event("note", record_id=1, reviewer="alice", note="n",
                           event_id=f"abcdef12-{i}") for i in range(2)]
    with pytest.raises(ClusterError, match=r"^2 events have ids starting 'abcdef12': give more "
                                           r"of the id\.$"):
        undo_event(store, "abcdef12")
    assert undo_event(store, "abcdef12-1").undone == (ids[1],)


def test_a_decisions_file_carries_no_undo_of_a_merge(store, tmp_path):
    ids = make_review(store, 2)
    decide(store, ids[0], "alice", TA, "include")
    merge = store.log_event("merge", record_id=ids[0], data={
        "merge_id": "m", "canonical": ids[0], "members": [ids[0], ids[1]]})
    undo_event(store, merge, "alice")
    undo_last(store, "alice")
    path = tmp_path / "d.jsonl"
    # the decision and its undo travel; the merge's undo does not (merges do not)
    assert export_decisions(store, path) == 2
    kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines()]
    assert kinds.count("undo") == 1


def test_undoing_an_extraction_answer_brings_back_the_one_before(store):
    from screeners.extraction.answers import standing_answers

    ids = make_review(store, 1)
    for answer in ("ward", "hospital"):
        store.log_event("answer", record_id=ids[0], reviewer="alice", stage="extraction",
                        value="level", data={"answer": answer})
    out = undo_last(store, "alice", stage="extraction")
    assert out.message == f"Undid alice's answer to level on record {ids[0]}."
    assert standing_answers(store)[(ids[0], "alice")]["level"].value == "ward"


def test_undoing_a_search_removal_puts_its_records_back_in_the_flow(store):
    from db.flow import compute_flow
    from db.searches import remove_search

    make_review(store, 4)
    before = compute_flow(store).screening.identified
    sid = store.db.execute("SELECT id FROM searches").fetchone()[0]
    remove_search(store, sid, reviewer="alice")
    assert compute_flow(store).screening.identified == before - 4
    out = undo_last(store, "alice")
    assert out.message == f"Undid alice's removal of search {sid}."
    assert compute_flow(store).screening.identified == before == 4
