"""Numbers a paper prints, read through the commands a team uses: final decisions in
exports, full-text reason conflicts, how resolutions were reached, where stopping
figures mean something, and check samples limited to a source."""

from __future__ import annotations

import csv
import io
import json

from screenkit import FT, TA, both_decide, make_review

from screeners.decisions import decide, mark_fulltext


def _partly_screened(store) -> list[int]:
    """Two reviewers per record: 1 included by both, 2 by alice only, 3 excluded by both,
    4 in conflict, 5 not seen; 1 and 6 reach full text, where 1 cannot be retrieved and
    6 is included by both."""
    ids = make_review(store, 6)
    both_decide(store, ids[0], "include", "include")
    decide(store, ids[1], "alice", TA, "include")
    both_decide(store, ids[2], "exclude", "exclude")
    both_decide(store, ids[3], "include", "exclude")
    both_decide(store, ids[5], "include", "maybe")
    mark_fulltext(store, ids[0], "not-retrieved", "no library access")
    mark_fulltext(store, ids[5], "retrieved")
    both_decide(store, ids[5], "include", "include", stage=FT)
    return ids


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_exports_carry_final_decisions_only_and_name_partial_states(store, run):
    ids = _partly_screened(store)
    # alice's lone include on record 2 is not a decision of the team
    included = _csv(run("export", "--format", "csv", "--decision", "include").output)
    assert [int(r["record_id"]) for r in included] == [ids[0], ids[5]]
    rows = _csv(run("export", "--format", "asreview").output)
    assert [(int(r["record_id"]), r["included"]) for r in rows] == [
        (ids[0], "1"), (ids[1], ""), (ids[2], "0"), (ids[3], ""), (ids[4], ""), (ids[5], "1")]
    rows = _csv(run("export", "--format", "csv").output)
    assert [r["decision"] for r in rows] == [
        "include", "1 of 2 reviewers: include", "exclude", "conflict", "undecided", "include"]
    partial = _csv(run("export", "--format", "csv", "--decision", "partial").output)
    assert [int(r["record_id"]) for r in partial] == [ids[1]]
    ris = run("export", "--format", "ris", "--decision", "include").output
    assert ris.count("ER  - ") == 2
    assert "KW  - cluster title-abstract decision: 1 of 2 reviewers: include" in run(
        "export", "--format", "ris", "--decision", "partial").output


def test_full_text_export_says_why_records_have_no_full_text_decision(store, run):
    ids = _partly_screened(store)
    rows = _csv(run("export", "--format", "csv", "--stage", "full-text").output)
    assert [r["decision"] for r in rows] == [
        "not retrieved", "awaiting title-abstract", "excluded at title-abstract",
        "awaiting title-abstract", "awaiting title-abstract", "include"]
    rows = _csv(run("export", "--format", "asreview", "--stage", "full-text").output)
    assert [(int(r["record_id"]), r["included"]) for r in rows] == [
        (ids[0], ""), (ids[1], ""), (ids[2], "0"), (ids[3], ""), (ids[4], ""), (ids[5], "1")]
    assert run("export", "--format", "csv", "--stage", "full-text", "--decision",
               "undecided").output.splitlines()[1:] == []


def _at_full_text(store) -> list[int]:
    ids = make_review(store, 3)
    for rid in ids:
        both_decide(store, rid, "include", "include")
        mark_fulltext(store, rid, "retrieved")
    return ids


def test_a_full_text_reason_disagreement_is_a_conflict_resolved_with_a_reason(store, run):
    a, b, c = _at_full_text(store)
    decide(store, a, "alice", FT, "exclude", reason="wrong study design")
    decide(store, a, "bob", FT, "exclude", reason="wrong population")
    both_decide(store, b, "exclude", "exclude", stage=FT)  # both "wrong outcome"
    both_decide(store, c, "include", "include", stage=FT)
    assert run("conflicts", "--stage", "full-text").output.splitlines() == [
        f"Record {a}: Study 1: compassion training for nurses",
        "  alice: exclude (wrong study design)",
        "  bob: exclude (wrong population)",
        "1 open conflict(s) at full-text.",
    ]
    flow = json.loads(run("flow", "--json").output)["columns"]["other"]
    assert (flow["assessed"], flow["excluded"], flow["fulltext_awaiting"],
            flow["excluded_reasons"]) == (2, 1, 1, {"wrong outcome": 1})
    err = run("conflicts", "--stage", "full-text", "--resolver", "carol", "--record", str(a),
              "--exclude", expect=1)
    assert err.stderr.startswith("Error: A full-text exclusion needs a reason from the "
                                 "protocol's list: ")
    out = run("conflicts", "--stage", "full-text", "--resolver", "carol", "--record", str(a),
              "--exclude", "--reason", "wrong population").output
    assert out == (f"Record {a} resolved at full-text: exclude (wrong population) by carol "
                   "(arbiter).\n")
    flow = json.loads(run("flow", "--json").output)["columns"]["other"]
    assert (flow["assessed"], flow["excluded"], flow["fulltext_awaiting"],
            flow["excluded_reasons"]) == (3, 2, 0, {"wrong outcome": 1, "wrong population": 1})
    assert run("conflicts", "--stage", "full-text").output == "No open conflicts at full-text.\n"


def test_resolutions_say_whether_an_arbiter_or_the_reviewers_together_decided(store, run,
                                                                             tmp_path):
    a, b, *_ = make_review(store, 4)
    both_decide(store, a, "include", "exclude")
    both_decide(store, b, "exclude", "include")
    out = run("conflicts", "--resolver", "carol", "--record", str(a), "--include").output
    assert out == f"Record {a} resolved at title-abstract: include by carol (arbiter).\n"
    js = json.loads(run("conflicts", "--resolver", "alice", "--record", str(b), "--exclude",
                        "--method", "consensus", "--json").output)
    assert (js["resolver"], js["method"], js["decided_by"]) == (
        "alice", "consensus", ["alice", "bob"])
    assert [(e["reviewer"], e["data"]) for e in store.events("kind = 'resolution'")] == [
        ("carol", {"method": "arbiter", "decided_by": ["carol"]}),
        ("alice", {"method": "consensus", "decided_by": ["alice", "bob"]})]
    run("report", "-o", str(tmp_path / "methods.md"))
    md = (tmp_path / "methods.md").read_text()
    assert "Conflicts resolved: 1 by arbiter (carol), 1 by consensus (alice, bob)." in md


def test_a_resolution_logged_as_third_reviewer_reads_as_an_arbiter(store, run, tmp_path):
    (a,) = make_review(store, 1)
    both_decide(store, a, "include", "exclude")
    store.log_event("resolution", record_id=a, reviewer="carol", stage=TA, value="include",
                    data={"method": "third-reviewer"})
    run("report", "-o", str(tmp_path / "methods.md"))
    assert "Conflicts resolved: 1 by arbiter (carol)." in (tmp_path / "methods.md").read_text()


def test_relevant_records_left_is_unknown_before_the_first_include(store, run):
    ids = make_review(store, 8)
    for rid in ids[:3]:
        both_decide(store, rid, "exclude", "exclude")
    js = json.loads(run("status", "--estimate", "--json").output)
    assert (js["screened"], js["includes_found"], js["estimated_relevant_left"]) == (3, 0, None)
    assert ("Estimated relevant records left: unknown (no include yet)\n"
            in run("status", "--estimate").output)
    assert "Estimated relevant records left: not estimated (add --estimate)\n" in run("status").output
    both_decide(store, ids[3], "include", "include")
    left = json.loads(run("status", "--estimate", "--json").output)["estimated_relevant_left"]
    assert isinstance(left, float) and 0 < left < 4


def test_status_at_full_text_reports_retrieval_and_assessment_not_a_stopping_rule(store, run):
    ids = make_review(store, 9)
    for rid in ids[:8]:
        both_decide(store, rid, "include", "include")
    mark_fulltext(store, ids[0], "not-retrieved", "no library access")
    for rid in ids[1:6]:
        mark_fulltext(store, rid, "retrieved")
    both_decide(store, ids[1], "include", "include", stage=FT)
    both_decide(store, ids[2], "exclude", "exclude", stage=FT)
    both_decide(store, ids[3], "include", "exclude", stage=FT)
    decide(store, ids[4], "alice", FT, "include")
    out = run("status", "--stage", "full-text").output
    assert out.splitlines() == [
        "Stage full-text: 8 reports sought: 5 retrieved, 1 not retrieved, 2 awaiting retrieval",
        "Reports assessed: 1 included, 1 excluded, 1 in conflict, 1 decided by some reviewers, "
        "1 awaiting assessment",
    ]
    assert json.loads(run("status", "--stage", "full-text", "--json").output) == {
        "stage": "full-text", "sought": 8, "retrieved": 5, "not_retrieved": 1,
        "awaiting_retrieval": 2, "included": 1, "excluded": 1, "conflicts": 1,
        "partly_assessed": 1, "awaiting_assessment": 1}
    err = run("stop", "--rule", "consecutive", "--stage", "full-text", "--force", expect=1)
    assert err.stderr == (
        "Error: Stopping rules apply at title-abstract screening only, not at full-text: every "
        "report sought at full text is retrieved and assessed, or recorded as not retrieved.\n")
    assert store.events("kind = 'automation'") == []


def _with_index_articles(store) -> list[int]:
    ids = make_review(store, 10)
    sid = store.start_search(kind="import", service="PubMed list", role="index")
    for rid in ids[:4]:
        store.add_source(rid, sid, role="index", service="PubMed list")
    return ids


def test_check_sample_limited_to_a_source_role_or_source(store, run):
    ids = _with_index_articles(store)
    run("reviewers", "add", "dan")
    out = run("sample", "--fraction", "0.5", "--reviewer", "carol", "--seed", "3",
              "--role", "index", "--json").output
    js = json.loads(out)
    assert js["population"] == 4 and len(js["records"]) == 2
    assert set(js["records"]) <= set(ids[:4])
    assert {e["record_id"] for e in store.events("kind = 'assign'")} == set(js["records"])
    assigned = store.events("kind = 'assign'")
    # one sample is one batch: one undo takes it back
    assert {json.dumps(e["data"], sort_keys=True) for e in assigned} == {
        '{"batch": "%s", "fraction": 0.5, "role": "index", "seed": 3}' % assigned[0]["id"]}
    js = json.loads(run("sample", "--fraction", "1", "--reviewer", "dan", "--seed", "3",
                        "--source", "pubmed list", "--json").output)
    assert (js["population"], js["records"]) == (4, ids[:4])
    js = json.loads(run("sample", "--fraction", "1", "--reviewer", "dan", "--seed", "3",
                        "--role", "other", "--json").output)
    assert (js["population"], js["records"]) == (10, ids)
    err = run("sample", "--fraction", "0.1", "--reviewer", "carol", "--seed", "3",
              "--role", "database", expect=1)
    assert err.stderr == ("Error: There are no records at title-abstract with source role "
                          "'database' to sample from.\n")
