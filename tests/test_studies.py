"""Reports of one study: `cluster study link`, `list` and `unlink`, and the flow that counts them."""

from __future__ import annotations

import json

from db.store import open_store
from screenkit import FT, both_decide, make_review


def _included(db_path, n: int = 4) -> list[int]:
    s = open_store(db_path)
    ids = make_review(s, n)
    for rid in ids:
        both_decide(s, rid, "include", "include")
        both_decide(s, rid, "include", "include", FT)
    s.close()
    return ids


def _studies(run) -> tuple[int, int]:
    flow = json.loads(run("flow", "--json").output)
    return flow["new_studies"], flow["new_reports"]


def test_study_list_names_each_study_its_reports_and_who_linked_them(run, db_path):
    ids = _included(db_path)
    run("study", "link", str(ids[0]), str(ids[1]), "--key", "smith2019", "--reviewer", "alice")
    run("study", "link", str(ids[2]), str(ids[3]), "--key", "jones2020")
    listed = json.loads(run("study", "list", "--json").output)
    s = open_store(db_path)
    tags = {e["record_id"]: e for e in s.events("kind = 'tag'")}
    s.close()
    assert [(x["key"], [r["record_id"] for r in x["records"]]) for x in listed] == [
        ("jones2020", [ids[2], ids[3]]), ("smith2019", [ids[0], ids[1]])]
    first = listed[1]["records"][0]
    assert first == {"record_id": ids[0], "title": "Study 1: compassion training for nurses",
                     "linked_by": "alice", "linked_at": tags[ids[0]]["ts"],
                     "event_id": tags[ids[0]]["id"], "from": "link"}
    text = run("study", "list").output.splitlines()
    assert text[0] == "jones2020: 2 reports"
    assert text[1].startswith(f"  #{ids[2]}  Study 3: mindfulness for teachers  (linked by "
                              "unnamed ")
    assert text[-1] == "2 studies."
    assert _studies(run) == (2, 4)


def test_study_unlink_makes_records_studies_of_their_own_and_undo_links_them_again(run, db_path):
    ids = _included(db_path)
    run("study", "link", *map(str, ids[:3]), "--key", "smith2019")
    assert _studies(run) == (2, 4)
    out = run("study", "unlink", str(ids[2]), "--reviewer", "bob").output
    assert out.strip() == f"Record {ids[2]} is no longer a report of study smith2019."
    assert _studies(run) == (3, 4)
    listed = json.loads(run("study", "list", "--json").output)
    assert [r["record_id"] for r in listed[0]["records"]] == [ids[0], ids[1]]
    # the unlink is an event like any other: undo links the record again
    assert run("undo", "--reviewer", "bob").output.strip() == (
        f"Undid the unlinking of record {ids[2]} from their study.")
    assert _studies(run) == (2, 4)
    left = json.loads(run("study", "unlink", "--key", "smith2019", "--json").output)
    assert left == [{"record_id": r, "study": "smith2019"} for r in ids[:3]]
    assert _studies(run) == (4, 4)
    assert run("study", "list", "--json").output.strip() == "[]"


def test_a_study_named_by_an_import_can_be_unlinked(run, db_path):
    ids = _included(db_path, 2)
    s = open_store(db_path)
    with s.transaction():
        for rid in ids:
            s.update_record(rid, s.get_record(rid).replace(extra={"study": "trial-7"}))
    s.close()
    listed = json.loads(run("study", "list", "--json").output)
    assert [(r["record_id"], r["from"], r["event_id"]) for r in listed[0]["records"]] == [
        (ids[0], "import", None), (ids[1], "import", None)]
    assert _studies(run) == (1, 2)
    run("study", "unlink", str(ids[1]))
    assert _studies(run) == (2, 2)


def test_study_unlink_refusals(run, db_path):
    ids = _included(db_path, 2)
    cases = [
        (("study", "unlink", str(ids[0])),
         f"Error: Record {ids[0]} is not linked to a study: nothing was unlinked."),
        (("study", "unlink", "--key", "nope"),
         "Error: No study 'nope' in this store: `cluster study list` names them."),
        (("study", "unlink",), "Error: Name the records to unlink, or a study with --key."),
        (("study", "unlink", "99"), "Error: Record 99 is not in this store."),
    ]
    for args, message in cases:
        assert run(*args, expect=1).stderr.strip() == message
    for cmd in ("list", "unlink"):
        assert f"Example: cluster study {cmd}" in run("study", cmd, "--help").output
