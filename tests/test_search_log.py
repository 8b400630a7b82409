"""Database exports with their PRISMA-S details, and logged changes to a search:
`cluster import --platform --searched --query-file --limits`, `cluster searches relabel`,
`remove` and `edit`, read back through `cluster searches`, the flow and the report."""

from __future__ import annotations

import contextlib
import json
import sqlite3

import pytest

from clikit import one_sentence
from db.store import open_store

EMBASE = """TY  - JOUR
TI  - Compassion training for nurses: a trial
AU  - Smith, Jane
PY  - 2020
DO  - 10.1000/embase.1
ER  - 

TY  - JOUR
TI  - Mindful self-compassion in midwives
AU  - Jones, Ann
PY  - 2021
DO  - 10.1000/embase.2
ER  - 
"""

WHO = """TY  - RPRT
TI  - Compassionate care: a WHO framework
PY  - 2019
ER  - 
"""

STRATEGY = "1 exp compassion/\n2 (nurs* or midwi*).tw.\n3 1 and 2\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "embase.ris").write_text(EMBASE)
    (tmp_path / "who.ris").write_text(WHO)
    (tmp_path / "embase.txt").write_text(STRATEGY)
    return tmp_path


@contextlib.contextmanager
def _store(db_path):
    store = open_store(db_path)
    try:
        yield store
    finally:
        store.close()


def _flow(run):
    return json.loads(run("flow", "--json").stdout)


def _imported(run, files, *extra, expect=0):
    return run("import", str(files / "embase.ris"), "--as", "database", "--source", "Embase",
               *extra, expect=expect)


def test_import_keeps_platform_date_strategy_and_limits(run, files):
    _imported(run, files, "--platform", "Ovid", "--searched", "2025-05-01", "--query-file",
              str(files / "embase.txt"), "--limits", "English; 2000-current")
    (row,) = json.loads(run("searches", "--json").stdout)
    assert (row["source"], row["platform"], row["searched"], row["query"], row["limits_text"]) \
        == ("Embase", "Ovid", "2025-05-01", STRATEGY.strip(), "English; 2000-current")
    table = run("searches").stdout.splitlines()
    assert table[0].split() == ["id", "searched", "role", "source", "platform", "strategy",
                                "seed", "query", "found", "kept", "new", "status"]
    assert table[2].split()[:5] == ["1", "2025-05-01", "database", "Embase", "Ovid"]
    markdown = run("searches", "--markdown").stdout
    assert ("### Databases\n\n#### Embase via Ovid\n\n- Search: 1, file embase.ris\n"
            "- Date searched: 2025-05-01\n- Records found: 2\n- Limits: English; 2000-current\n"
            "- Search strategy, as run:\n\n```\n" + STRATEGY.strip() + "\n```\n") in markdown
    report = run("report").stdout
    assert "#### Embase via Ovid" in report
    assert "- database: Embase: 2025-05-01\n" in report


def test_an_import_without_a_search_date_is_not_given_the_import_date(run, files):
    _imported(run, files)
    report = run("report").stdout
    assert "### Date of the last search per strategy\n\n- database: Embase: not recorded\n" \
        in report
    assert ("- Date searched: not recorded (add it: `cluster searches edit 1 --searched "
            "YYYY-MM-DD`)") in run("searches", "--markdown").stdout
    assert "| database | import | Embase | 1 | 2 | 2 | 2 | not recorded |" in report


@pytest.mark.parametrize("args,message", [
    (("--searched", "2025-13-01"), "The date searched '2025-13-01' is not a date: give it as "
                                   "YYYY-MM-DD, e.g. 2025-05-01."),
    (("--searched", "1 May 2025"), "The date searched '1 May 2025' is not a date: give it as "
                                   "YYYY-MM-DD, e.g. 2025-05-01."),
    (("--searched", "2999-01-01"), "The date searched 2999-01-01 is in the future: give the "
                                   "date the search was run."),
    (("--query-file", "missing.txt"), "The query file missing.txt does not exist: check the "
                                      "path."),
])
def test_bad_details_are_one_sentence_and_nothing_imported(run, files, db_path, args,
                                                           message, monkeypatch):
    monkeypatch.chdir(files)
    assert one_sentence(_imported(run, files, *args, expect=1)) == "Error: " + message
    assert not db_path.exists() or sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM searches").fetchone() == (0,)


def test_an_empty_query_file_is_refused(run, files):
    (files / "empty.txt").write_text("  \n")
    result = _imported(run, files, "--query-file", str(files / "empty.txt"), expect=1)
    assert one_sentence(result) == f"Error: The query file {files / 'empty.txt'} is empty: save " \
                                   f"the strategy in it."


def test_relabel_moves_a_search_to_its_prisma_row_and_undo_moves_it_back(run, files, db_path):
    run("import", str(files / "who.ris"), "--as", "other", "--source", "WHO")
    before = _flow(run)["prisma"]
    assert (before["citations_results"], before["website_results"]) == (1, 0)
    out = run("searches", "relabel", "1", "--as", "website", "--source", "WHO website").stdout
    eid = out.split("(event ")[1].rstrip(").\n")
    assert out == f"Search 1 is now website: WHO website (event {eid}).\n"
    flow = _flow(run)
    assert (flow["prisma"]["citations_results"], flow["prisma"]["website_results"]) == (0, 1)
    assert [(s["role"], s["label"]) for s in flow["identification"]] == [
        ("website", "WHO website")]
    # the sources table is as the import wrote it: the log says what changed
    assert sqlite3.connect(db_path).execute("SELECT role, service FROM sources").fetchall() == [
        ("other", "WHO")]
    with _store(db_path) as store:
        (event,) = store.events("kind = 'search'")
        assert (event["value"], event["data"]["search_id"], event["data"]["was"]) == (
            "relabel", 1, {"role": "other", "source": "WHO"})
        store.log_event("undo", reviewer="alice", undoes=eid)
    after = _flow(run)
    assert (after["prisma"]["citations_results"], after["prisma"]["website_results"]) == (1, 0)


def test_removing_a_search_takes_its_own_records_out_of_the_flow_decisions_stay(run, files,
                                                                               db_path):
    _imported(run, files)
    run("import", str(files / "who.ris"), "--as", "website", "--source", "WHO website")
    run("reviewers", "add", "alice")
    run("protocol", "set", "--reviewers-per-record", "1")
    run("decide", "3", "--reviewer", "alice", "--include")
    run("decide", "1", "--reviewer", "alice", "--exclude")
    flow = _flow(run)
    assert (flow["prisma"]["website_results"], flow["prisma"]["database_results"]) == (1, 2)
    out = run("searches", "remove", "2").stdout
    eid = out.split("(event ")[1].rstrip(").\n")
    flow = _flow(run)
    assert (flow["prisma"]["website_results"], flow["prisma"]["database_results"]) == (0, 2)
    assert [s["label"] for s in flow["identification"]] == ["Embase"]
    assert flow["prisma"]["other_sought_reports"] == 0
    assert sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM events WHERE kind = 'decision'").fetchone() == (2,)
    listed = {r["id"]: r["status"] for r in json.loads(run("searches", "--json").stdout)}
    assert listed == {1: "done", 2: "removed"}
    assert "- search 2 (website: WHO website)" in run("report").stdout
    assert one_sentence(run("searches", "remove", "2", expect=1)) == (
        "Error: Search 2 is already removed; nothing changed.")
    with _store(db_path) as store:
        store.log_event("undo", reviewer="alice", undoes=eid)
    assert _flow(run)["prisma"]["website_results"] == 1


def test_a_record_another_search_also_found_stays_when_one_search_is_removed(run, files,
                                                                            db_path):
    _imported(run, files)
    (files / "again.ris").write_text(EMBASE.split("ER  - ")[0] + "ER  - \n")
    run("import", str(files / "again.ris"), "--as", "database", "--source", "CINAHL")
    run("dedup", "-q")
    before = _flow(run)
    assert [(s["label"], s["identified"], s["duplicates"]) for s in before["identification"]] \
        == [("CINAHL", 1, 1), ("Embase", 2, 0)]
    run("searches", "remove", "2")
    after = _flow(run)
    assert [(s["label"], s["identified"], s["duplicates"]) for s in after["identification"]] \
        == [("Embase", 2, 0)]
    assert after["prisma"]["records_screened"] == 2


def test_edit_adds_details_later_logged_and_undoable(run, files, db_path):
    _imported(run, files)
    out = run("searches", "edit", "1", "--platform", "Ovid", "--searched", "2025-05-01",
              "--query-file", str(files / "embase.txt")).stdout
    eid = out.split("(event ")[1].rstrip(").\n")
    assert out == f"Search 1: platform, searched, query recorded (event {eid}).\n"
    (row,) = json.loads(run("searches", "--json").stdout)
    assert (row["platform"], row["searched"], row["query"]) == ("Ovid", "2025-05-01",
                                                                STRATEGY.strip())
    with _store(db_path) as store:
        (event,) = store.events("kind = 'search'")
        assert event["data"]["was"] == {"platform": None, "searched": None, "query": None}
        store.log_event("undo", reviewer="alice", undoes=eid)
    (row,) = json.loads(run("searches", "--json").stdout)
    assert (row["platform"], row["searched"], row["query"]) == (None, None, None)


@pytest.mark.parametrize("args,message", [
    (("searches", "relabel", "9", "--as", "website"),
     "There is no search 9 in this store: `cluster searches` lists them."),
    (("searches", "relabel", "1"), "Nothing to change: give --as ROLE and/or --source NAME."),
    (("searches", "relabel", "1", "--as", "database", "--source", "Embase"),
     "Search 1 is already database: Embase; nothing changed."),
    (("searches", "edit", "1"),
     "Nothing to change: give --platform, --searched, --query-file or --limits."),
    (("searches", "edit", "1", "--searched", "May"),
     "The date searched 'May' is not a date: give it as YYYY-MM-DD, e.g. 2025-05-01."),
    (("searches", "remove", "9"),
     "There is no search 9 in this store: `cluster searches` lists them."),
])
def test_changes_that_cannot_be_made_are_one_sentence_and_not_logged(run, files, db_path, args,
                                                                     message):
    _imported(run, files)
    assert one_sentence(run(*args, expect=1)) == "Error: " + message
    assert sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM events WHERE kind = 'search'").fetchone() == (0,)


def test_changes_report_as_json(run, files):
    _imported(run, files)
    js = json.loads(run("searches", "relabel", "1", "--source", "Embase.com", "--json").stdout)
    assert (js["search"]["id"], js["search"]["source"], js["search"]["original_source"],
            js["search"]["changes"]) == (1, "Embase.com", "Embase", [js["event_id"]])


def test_the_event_log_names_search_changes(run, files):
    _imported(run, files)
    run("searches", "relabel", "1", "--as", "register", "--source", "CENTRAL")
    run("searches", "edit", "1", "--platform", "Cochrane Library")
    run("searches", "remove", "1")
    summaries = [e["summary"] for e in json.loads(run("log", "--json").stdout)
                 if e["kind"] == "search"]
    assert sorted(summaries) == sorted([
        "search 1 relabelled: database: Embase -> register: CENTRAL",
        "search 1 details: platform = Cochrane Library",
        "search 1 removed from the flow"])


def test_records_only_a_removed_search_found_leave_the_screening_queue(run, files, db_path):
    from screeners.session import pending

    _imported(run, files)
    run("import", str(files / "who.ris"), "--as", "website", "--source", "WHO website")
    run("reviewers", "add", "alice")
    with _store(db_path) as store:
        assert pending(store, "alice", "title-abstract") == [1, 2, 3]
    assert json.loads(run("status", "--json").stdout)["total"] == 3
    run("searches", "remove", "2")
    with _store(db_path) as store:
        assert pending(store, "alice", "title-abstract") == [1, 2]
    assert json.loads(run("status", "--json").stdout)["total"] == 2
    assert one_sentence(run("decide", "3", "--reviewer", "alice", "--include", expect=1)) == (
        "Error: Record 3 was found only by searches since removed, so it takes no part in "
        "screening: undo the removal (`cluster undo EVENT_ID`) to screen it.")
