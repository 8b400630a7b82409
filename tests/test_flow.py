"""PRISMA 2020 flow: the review this tool follows, the template, the invariants, the diagram."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from base.record import Record
from db.diagram import Box, Diagram, Line, layout, overflows, to_svg
from db.flow import (TEMPLATE_ROWS, FlowError, compute_flow, link_study, prisma_fields,
                     template_rows)
from db.protocol import set_protocol
from db.state import INCLUDED, stage_states
from db.store import DuplicateLinkError, open_store
from tests.prisma_csv import assert_csv_adds_up
from tests.review_world import build_review_file

TA, FT = "title-abstract", "full-text"

#: the data rows of the PRISMA2020 R package's template, in its order
EXPECTED_ROWS = (
    "previous_studies previous_reports database_results database_specific_results "
    "register_results register_specific_results website_results organisation_results "
    "citations_results duplicates excluded_automatic excluded_other records_screened "
    "records_excluded dbr_sought_reports dbr_notretrieved_reports other_sought_reports "
    "other_notretrieved_reports dbr_assessed dbr_excluded other_assessed other_excluded "
    "new_studies new_reports total_studies total_reports"
).split()


@pytest.fixture(scope="module")
def review_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("review") / "review.db"
    return path, build_review_file(path)


# --- acceptance: the review this tool follows ------------------------------------------


def test_review_flow_json_screen_other(run, review_db):
    # only index articles and CLUSTER routes: drawn screen-other without --layout, the index
    # articles (a new review) screened with the other-methods records
    path, _ = review_db
    data = json.loads(run("flow", "--json", "--db", str(path)).output)
    assert (data["layout"], data["review_type"]) == ("screen-other", "new")
    s = data["screening"]
    assert (s["identified"], s["duplicates"], s["screened"], s["screen_excluded"]) == \
        (3096, 105, 2991, 2938)
    assert (s["sought"], s["not_retrieved"], s["assessed"], s["excluded"],
            s["reports_included"]) == (53, 0, 53, 8, 45)
    assert s["excluded_reasons"] == {"wrong intervention": 5, "wrong study design": 3}
    other, prev = data["columns"]["other"], data["columns"]["previous"]
    assert (other["screened"], other["sought"], other["excluded"], other["reports_included"]) == \
        (2991, 53, 8, 45)
    assert (prev["identified"], prev["screened"], prev["reports_included"]) == (0, 0, 0)
    assert (data["previous_studies"], data["new_studies"], data["total_studies"],
            data["total_reports"]) == (0, 45, 45, 45)
    assert data["complete"] is True
    routes = {r["source"]: (r["identified"], r["duplicates"]) for r in data["identification"]}
    assert routes == {"index": (42, 0), "cited-by": (925, 105), "references": (800, 0),
                      "lead-author": (700, 0), "related": (629, 0)}


def test_review_flow_csv_matches_template(run, review_db):
    path, _ = review_db
    out = run("flow", "--csv", "--db", str(path)).output
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["data", "node", "box", "description", "boxtext", "tooltips", "url", "n"]
    assert [r["data"] for r in rows] == EXPECTED_ROWS
    n = {r["data"]: r["n"] for r in rows}
    assert n == {
        "previous_studies": "0", "previous_reports": "0", "database_results": "0",
        "database_specific_results": "0", "register_results": "0",
        "register_specific_results": "0", "website_results": "0", "organisation_results": "0",
        "citations_results": "3096", "duplicates": "105", "excluded_automatic": "0",
        "excluded_other": "0", "records_screened": "2991", "records_excluded": "2938",
        "dbr_sought_reports": "53", "dbr_notretrieved_reports": "0", "other_sought_reports": "0",
        "other_notretrieved_reports": "0", "dbr_assessed": "53",
        "dbr_excluded": "wrong intervention, 5; wrong study design, 3", "other_assessed": "0",
        "other_excluded": "0", "new_studies": "45", "new_reports": "45", "total_studies": "45",
        "total_reports": "45",
    }
    dbr = next(r for r in rows if r["data"] == "dbr_excluded")
    assert (dbr["node"], dbr["box"], dbr["url"]) == ("node14", "box9", "dbrexcludedrecords.html")
    assert_csv_adds_up(n)


def test_review_as_an_update_counts_previous_plus_new(run, review_db, tmp_path):
    # the same review as an update: the 42 index articles are the previous studies, not
    # screened again; new studies are the 3 found by the searches; total = 42 + 3 in
    # both layouts (the previous screen-other layout gave previous 42, new 45, total 45)
    path, _ = review_db
    copy = tmp_path / "update.db"
    copy.write_bytes(path.read_bytes())
    run("protocol", "set", "--review-type", "update", "--db", str(copy))
    for lay in ("screen-other", "standard"):
        out = run("flow", "--layout", lay, "--csv", "--db", str(copy)).output
        n = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(out))}
        assert (n["previous_studies"], n["previous_reports"], n["new_studies"],
                n["new_reports"], n["total_studies"], n["total_reports"]) == \
            ("42", "42", "3", "3", "45", "45"), lay
        assert n["citations_results"] == "3054"
        assert_csv_adds_up(n)
    assert (n["records_screened"], n["other_sought_reports"]) == ("0", "11")  # standard
    out = run("flow", "--layout", "screen-other", "--csv", "--db", str(copy)).output
    n = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(out))}
    assert (n["duplicates"], n["records_screened"], n["records_excluded"],
            n["dbr_sought_reports"]) == ("105", "2949", "2938", "11")


def test_review_flow_standard_layout(review_db):
    path, _ = review_db
    store = open_store(path)
    f = prisma_fields(compute_flow(store, "standard"))
    assert (f["previous_studies"], f["records_screened"], f["other_sought_reports"],
            f["other_assessed"], f["other_excluded"], f["new_studies"], f["total_studies"],
            f["total_reports"]) == (0, 0, 53, 53, "wrong intervention, 5; wrong study design, 3",
                                    45, 45, 45)
    store.close()


def test_review_table_and_diagrams(run, review_db, tmp_path):
    path, _ = review_db
    svg, png = tmp_path / "flow.svg", tmp_path / "flow.png"
    out = run("flow", "--layout", "screen-other", "--svg", str(svg), "--png", str(png),
              "--db", str(path)).output
    assert "records_screened            2,991" in out
    assert "Citation searching, forward (cited by)" in out
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()
            if ln.startswith(("  previous ", "  other "))}
    assert rows["other"] == ["2,991", "2,938", "0", "53", "0", "0", "53", "8", "45"]
    assert rows["previous"] == ["0", "0", "0", "0", "0", "0", "0", "0", "0"]
    texts = " | ".join(t.text or "" for t in ET.parse(svg).getroot().iter()
                       if t.tag.endswith("text"))
    assert "Records screened (n = 2,991)" in texts
    assert "wrong intervention (n = 5)" in texts
    assert "from other methods (n = 45)" in texts
    assert "previous version" not in texts  # a new review has no previous-studies column
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


# --- the template ----------------------------------------------------------------------


def test_template_rows_names_and_order(store):
    assert list(TEMPLATE_ROWS) == EXPECTED_ROWS
    rid = store.add_record(Record(title="Only one"))
    store.add_source(rid, None, role="database", service="MEDLINE")
    rows = template_rows(compute_flow(store))
    assert [r["data"] for r in rows] == EXPECTED_ROWS
    assert rows[3]["n"] == "MEDLINE, 1"  # database_specific_results
    assert rows[0]["node"] == "node5" and rows[0]["url"] == "previous_studies.html"
    full = [(r["data"], r["box"]) for r in template_rows(compute_flow(store), titles=True)]
    assert len(full) == 32 and full[:2] == [("NA", "prevstud"), ("previous_studies", "box1")]
    assert full[3] == ("NA", "newstud") and full[8] == ("NA", "othstud")
    assert full[-3:] == [("identification", "identification"), ("screening", "screening"),
                         ("included", "included")]


# --- counting rules -------------------------------------------------------------------


def _add(store, role="database", service="MEDLINE", strategy=None, title="r"):
    rid = store.add_record(Record(title=title))
    store.add_source(rid, None, role=role, service=service, strategy=strategy)
    return rid


def _decide(store, rid, stage, value, reason=None):
    for who in ("ann", "bob"):
        store.log_event("decision", record_id=rid, reviewer=who, stage=stage, value=value,
                        reason=reason)


def test_automation_other_removal_not_retrieved_and_awaiting(store):
    a, b, c, d, e, f = (_add(store, title=str(i)) for i in range(6))
    store.log_event("automation", record_id=a, stage=TA, value="exclude",
                    data={"rule": "hypergeometric", "recall": 0.95, "p": 0.04})
    store.log_event("automation", record_id=b, stage=TA, value="exclude",
                    data={"rule": "retracted", "category": "other"})
    _decide(store, c, TA, "exclude", "wrong population")
    for rid in (d, e):
        _decide(store, rid, TA, "include")
    store.log_event("fulltext", record_id=d, value="not-retrieved", reason="no library access")
    store.log_event("decision", record_id=f, reviewer="ann", stage=TA, value="include")
    fl = compute_flow(store)
    s = fl.screening
    assert (s.identified, s.excluded_automatic, s.excluded_other, s.screened) == (6, 1, 1, 4)
    assert (s.screen_excluded, s.screen_awaiting, s.sought) == (1, 1, 2)
    assert (s.not_retrieved, s.fulltext_awaiting, s.assessed) == (1, 1, 0)
    assert fl.complete is False
    _decide(store, e, FT, "exclude", None)
    s = compute_flow(store).screening
    assert (s.assessed, s.excluded, s.excluded_reasons) == (1, 1, (("Reason not recorded", 1),))


def test_several_reports_of_one_study_count_once(store):
    ids = [_add(store, title=str(i)) for i in range(3)]
    k = store.add_record(Record(title="from import", extra={"study": "S9"}))
    store.add_source(k, None, role="register", service="ClinicalTrials.gov")
    for rid in ids + [k]:
        _decide(store, rid, TA, "include")
        _decide(store, rid, FT, "include")
    link_study(store, ids[:2], "S1", reviewer="ann")
    fl = compute_flow(store)
    assert (fl.new_reports, fl.new_studies, fl.total_studies) == (4, 3, 3)
    assert prisma_fields(fl)["register_specific_results"] == "ClinicalTrials.gov, 1"
    with pytest.raises(FlowError, match="Record 999 is not in this store"):
        link_study(store, [999], "S2")


def test_duplicates_count_per_source_row(store):
    a = _add(store, service="MEDLINE")
    b = _add(store, service="Embase")
    c = _add(store, role="other", service="OpenAlex", strategy="cited-by")
    store.add_source(a, None, role="other", service="PubMed", strategy="references")
    store.db["records"].update(b, {"duplicate_of": a})
    fl = compute_flow(store)
    rows = {s.key: (s.identified, s.duplicates) for s in fl.sources}
    # a is kept from MEDLINE; its Embase copy and its backward-citation retrieval are duplicates
    assert rows == {"MEDLINE": (1, 0), "Embase": (1, 1), "cited-by": (1, 0), "references": (1, 1)}
    assert (fl.screening.duplicates, fl.columns["other"].duplicates) == (1, 1)
    assert fl.columns["databases"].screened == 1 and fl.columns["other"].screened == 1
    assert c in fl.study_of


# --- broken invariants are errors naming the records ----------------------------------


def test_record_without_provenance_is_named(run, store, db_path):
    _add(store)
    orphan = store.add_record(Record(title="no source"))
    with pytest.raises(FlowError, match=rf"Records {orphan} have no provenance") as err:
        compute_flow(store)
    assert err.value.record_ids == (orphan,)
    store.close()  # the CLI opens the file itself
    result = run("flow", expect=1)
    assert f"Error: Records {orphan} have no provenance" in result.output


def test_not_retrieved_yet_included_is_named(store):
    rid = _add(store)
    _decide(store, rid, TA, "include")
    store.log_event("fulltext", record_id=rid, value="not-retrieved")
    _decide(store, rid, FT, "include")
    with pytest.raises(FlowError, match=rf"Records {rid} are marked as full text not retrieved"):
        compute_flow(store)


def test_duplicate_loop_is_named(store):
    a, b = _add(store), _add(store)
    store.db["records"].update(a, {"duplicate_of": b})
    store.db["records"].update(b, {"duplicate_of": a})
    with pytest.raises(DuplicateLinkError,
                       match=rf"Records {a}, {b} are marked as duplicates in a loop"):
        compute_flow(store)


def test_cli_refuses_bad_options(run, tmp_path, store):
    _add(store)
    store.close()
    assert "Choose one of --json and --csv" in run("flow", "--json", "--csv", expect=1).output
    missing = tmp_path / "nowhere" / "x.svg"
    assert f"Cannot write {missing}: the folder" in run("flow", "--svg", str(missing),
                                                        expect=1).output
    assert "No review store" in run("flow", "--db", str(tmp_path / "none.db"), expect=1).output
    assert "should end in .md" in run("report", "-o", str(tmp_path / "m.txt"), expect=1).output
    for cmd in (("flow",), ("report",), ("study", "link")):
        assert "Example: cluster " + " ".join(cmd) in run(*cmd, "--help").output
    assert "Unknown reviewer 'zed'" in run("study", "link", "1", "--key", "S", "--reviewer", "zed",
                                           expect=1).output


def test_study_link_command(run, store, db_path):
    ids = [_add(store, title=str(i)) for i in range(2)]
    for rid in ids:
        _decide(store, rid, TA, "include")
        _decide(store, rid, FT, "include")
    store.close()
    out = run("study", "link", *map(str, ids), "--key", "smith2019").output
    reopened = open_store(db_path)
    lead = reopened.events("kind = 'tag'")[0]["id"]
    reopened.close()
    assert out.strip() == (f"Records {ids[0]}, {ids[1]} are now reports of study smith2019 "
                           f"(undo: cluster undo {lead}).")
    data = json.loads(run("flow", "--json").output)
    assert (data["new_studies"], data["new_reports"]) == (1, 2)


# --- invariants under random stores ---------------------------------------------------

SOURCES = st.sampled_from([
    ("index", "previous review", None), ("database", "MEDLINE", None),
    ("database", "Embase", None), ("register", "CT.gov", None),
    ("other", "OpenAlex", "cited-by"), ("other", "Crossref", "references"),
    ("other", "PubMed", "lead-author"), ("other", "PubMed", "related"),
    ("other", "team", "author-contact"), ("other", "web", "website"),
])
VOTE = st.sampled_from([None, "include", "exclude", "maybe"])
RECORD = st.fixed_dictionaries({
    "sources": st.lists(SOURCES, min_size=1, max_size=3),
    "dup_of": st.one_of(st.none(), st.integers(0, 30)),
    "ta": st.tuples(VOTE, VOTE), "resolve": st.sampled_from([None, "include", "exclude"]),
    "auto": st.sampled_from([None, "rule", "other"]),
    "fulltext": st.sampled_from([None, "sought", "retrieved", "not-retrieved"]),
    "ft": st.tuples(VOTE, VOTE), "study": st.sampled_from([None, "A", "B"]),
})


def _build_random(store, specs):
    ids = []
    for i, spec in enumerate(specs):
        rid = store.add_record(Record(title=f"r{i}"))
        for role, service, strategy in spec["sources"]:
            store.add_source(rid, None, role=role, service=service, strategy=strategy)
        if spec["dup_of"] is not None and spec["dup_of"] < i:
            store.db["records"].update(rid, {"duplicate_of": ids[spec["dup_of"]]})
        for who, v in zip(("ann", "bob"), spec["ta"]):
            if v:
                store.log_event("decision", record_id=rid, reviewer=who, stage=TA, value=v,
                                reason="wrong population" if v == "exclude" else None)
        if spec["resolve"]:
            store.log_event("resolution", record_id=rid, stage=TA, value=spec["resolve"],
                            reviewer="cat")
        if spec["auto"]:
            store.log_event("automation", record_id=rid, stage=TA, value="exclude",
                            data={"rule": "stop", **({"category": "other"}
                                                     if spec["auto"] == "other" else {})})
        if spec["fulltext"]:
            store.log_event("fulltext", record_id=rid, value=spec["fulltext"])
        for who, v in zip(("ann", "bob"), spec["ft"]):
            if v:
                store.log_event("decision", record_id=rid, reviewer=who, stage=FT, value=v,
                                reason="wrong outcome" if v == "exclude" else None)
        if spec["study"]:
            store.log_event("tag", record_id=rid, value=f"study:{spec['study']}")
        ids.append(rid)
    return ids


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RECORD, min_size=1, max_size=14), st.sampled_from(["new", "update"]))
def test_invariants_hold_on_random_stores(specs, review_type):
    store = open_store(None)
    _build_random(store, specs)
    set_protocol(store, review_type=review_type)
    n_sources = store.db["sources"].count
    canonical = [r for r, in store.db.execute("SELECT id FROM records WHERE duplicate_of IS NULL")]
    ft_states = stage_states(store, FT)
    last_ft = {}
    for e in store.events("kind = 'fulltext'"):
        last_ft[store.canonical_id(e["record_id"])] = e["value"]  # as decisions on duplicates
    contradiction = {r for r, s in ft_states.items()
                     if s.status == INCLUDED and last_ft.get(r) == "not-retrieved"}
    for lay in ("standard", "screen-other"):
        if contradiction:
            with pytest.raises(FlowError) as err:
                compute_flow(store, lay)
            assert set(err.value.record_ids) == contradiction
            continue
        fl = compute_flow(store, lay)
        assert sum(s.identified for s in fl.sources) == n_sources
        assert sum(s.duplicates for s in fl.sources) == n_sources - len(canonical)
        cols = fl.columns.values()
        assert sum(c.identified - c.duplicates for c in cols) == len(canonical)
        for c in [*cols, fl.screening]:
            assert c.identified - c.duplicates - c.excluded_automatic - c.excluded_other == \
                c.screened
            assert c.screened - c.screen_excluded - c.screen_awaiting == c.sought
            assert c.sought - c.not_retrieved - c.fulltext_awaiting == c.assessed
            assert c.assessed - c.excluded == c.reports_included
            assert sum(k for _, k in c.excluded_reasons) == c.excluded
        included = {r for r, s in ft_states.items() if s.status == INCLUDED}
        assert sum(c.reports_included for c in cols) == len(included)
        assert list(prisma_fields(fl)) == EXPECTED_ROWS
        assert fl.total_reports == fl.previous_reports + fl.new_reports
        assert fl.total_studies == fl.previous_studies + fl.new_studies
        prev = fl.columns["previous"]
        assert fl.new_reports == len(included) - prev.reports_included
        if lay == "screen-other":
            assert fl.screening.screened + fl.screening.excluded_automatic + \
                fl.screening.excluded_other == len(canonical) - (prev.identified - prev.duplicates)
            assert fl.screening.reports_included == fl.new_reports
        if review_type == "new":
            assert fl.previous_studies == fl.previous_reports == 0
        svg = to_svg(layout(fl))
        root = ET.fromstring(svg.encode())
        texts = " ".join(t.text or "" for t in root.iter() if t.tag.endswith("text"))
        for key, value in prisma_fields(fl).items():
            if lay == "screen-other" and key.startswith("other_"):
                continue  # no other-methods screening boxes in this layout
            if review_type == "new" and key.startswith("previous_"):
                continue  # a new review draws no previous-studies column
            if isinstance(value, int):
                assert f"(n = {value:,})" in texts, key
    store.close()


def test_diagram_text_stays_inside_its_boxes(store):
    long_db = "Cumulative Index to Nursing and Allied Health Literature Plus with Full Text (EBSCOhost)"
    for i, (role, service) in enumerate([("database", long_db), ("database", "MEDLINE"),
                                         ("register", "WHO International Clinical Trials Registry "
                                                      "Platform search portal")]):
        rid = _add(store, role=role, service=service, title=str(i))
        _decide(store, rid, TA, "include")
        _decide(store, rid, FT, "exclude", "the intervention was not a compassion training "
                                           "programme but a general wellbeing course")
    for lay in ("standard", "screen-other"):
        assert overflows(layout(compute_flow(store, lay))) == []
    # the check itself sees a line that does not fit
    tight = Box("box1", 10, 10, 60, 40, (Line("Records identified from databases (n = 1,234)"),))
    assert overflows(Diagram(200, 100, (tight,), (), (), "t")) == [
        "box1: Records identified from databases (n = 1,234)"]


def test_imported_files_are_counted_by_role_and_source(run, tmp_path):
    def ris(name, titles):
        path = tmp_path / name
        path.write_text("".join(f"TY  - JOUR\nTI  - {t}\nPY  - 2020\nER  - \n\n" for t in titles))
        return str(path)

    run("import", ris("embase.ris", ["Compassion training for nurses"]), "--as", "database",
        "--source", "Embase")
    run("import", ris("letters.ris", ["An unpublished evaluation", "A second report"]),
        "--as", "other", "--source", "author contact")
    run("import", ris("previous.ris", ["An index article"]), "--as", "index")
    n = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(run("flow", "--csv").output))}
    assert (n["database_results"], n["database_specific_results"], n["organisation_results"],
            n["citations_results"], n["previous_studies"], n["records_screened"]) == \
        ("1", "Embase, 1", "2", "1", "0", "1")


def test_import_roles_fill_the_templates_other_methods_rows(run, tmp_path):
    def ris(name, titles):
        path = tmp_path / name
        path.write_text("".join(f"TY  - JOUR\nTI  - {t}\nPY  - 2020\nER  - \n\n" for t in titles))
        return str(path)

    run("import", ris("who.ris", ["Guidance on staff wellbeing"]), "--as", "website",
        "--source", "WHO website")
    run("import", ris("nhs.ris", ["A trust report", "A second trust report"]), "--as",
        "organisation", "--source", "NHS England")
    run("import", ris("handsearch.ris", ["A reference list find"]), "--as", "citation",
        "--source", "reference lists")
    run("import", ris("ct.ris", ["A registered trial"]), "--as", "register", "--source", "CT.gov")
    data = json.loads(run("flow", "--json").output)
    rows = {(r["role"], r["label"], r["template_row"], r["identified"])
            for r in data["identification"]}
    assert rows == {("website", "WHO website", "website_results", 1),
                    ("organisation", "NHS England", "organisation_results", 2),
                    ("citation", "reference lists", "citations_results", 1),
                    ("register", "CT.gov", "register_results", 1)}
    n = data["prisma"]
    assert (n["website_results"], n["organisation_results"], n["citations_results"],
            n["register_results"], n["database_results"]) == (1, 2, 1, 1, 0)
    svg = tmp_path / "flow.svg"
    run("flow", "--svg", str(svg))
    texts = " | ".join(t.text or "" for t in ET.parse(svg).getroot().iter()
                       if t.tag.endswith("text"))
    assert "WHO website (n = 1)" in texts and "NHS England (n = 2)" in texts
