"""Export: decision state per record, filters, duplicates, the CSV layouts, labels kept on import."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from db.formats import FileFormatError, export_records, import_files
from db.formats.common import make_record
from base.output import neutralise
from db.formats.export import ExportError
from db.protocol import set_protocol
from db.state import current_decisions
from db.store import StoreError

LABELLED = ("record_id,title,abstract,included\n"
            "a1,Relevant paper,About tea,1\n"
            "a2,Irrelevant paper,About coffee,0\n"
            "a3,Unseen paper,About water,\n"
            "a4,Also unseen,About juice,-1\n")


def _store_with(store, titles):
    return [store.add_record(make_record(title=t, authors=["Doe, J."], year=2020)) for t in titles]


def _decide(store, rid, who, value, stage="title-abstract", reason=None, note=None):
    return store.log_event("decision", record_id=rid, reviewer=who, stage=stage, value=value,
                           reason=reason, note=note)


def test_current_decisions(store) -> None:
    a, b, c, d, e, f = _store_with(store, list("abcdef"))
    _decide(store, a, "alice", "include")
    _decide(store, a, "bob", "include")
    _decide(store, b, "alice", "include")
    _decide(store, b, "bob", "exclude")                       # disagreement
    _decide(store, c, "alice", "include")
    _decide(store, c, "bob", "exclude")
    store.log_event("resolution", record_id=c, reviewer="carol", stage="title-abstract",
                    value="exclude", data={"method": "third-reviewer"})
    first = _decide(store, d, "alice", "exclude")
    _decide(store, d, "alice", "maybe")                       # a later decision replaces
    gone = _decide(store, e, "alice", "include")
    store.log_event("undo", reviewer="alice", undoes=gone)    # undone: undecided again
    back = _decide(store, f, "alice", "exclude")
    undo = store.log_event("undo", reviewer="alice", undoes=back)
    store.log_event("undo", reviewer="alice", undoes=undo)    # redo
    _decide(store, a, "alice", "exclude", stage="full-text")
    assert first
    # two reviewers per record (the protocol's default): one decision is a partial state
    assert current_decisions(store, "title-abstract") == {
        a: "include", b: "conflict", c: "exclude", d: "1 of 2 reviewers: maybe",
        f: "1 of 2 reviewers: exclude"}
    assert current_decisions(store, "full-text") == {
        a: "1 of 2 reviewers: exclude", b: "awaiting title-abstract",
        c: "excluded at title-abstract", d: "awaiting title-abstract",
        e: "awaiting title-abstract", f: "awaiting title-abstract"}


@pytest.mark.parametrize("decision,expected", [
    ("include", ["in"]), ("exclude", ["out"]), ("partial", ["unsure"]), ("conflict", ["split"]),
    ("undecided", ["fresh"]), (None, ["in", "out", "unsure", "split", "fresh"]),
])
def test_decision_filter(store, decision, expected) -> None:
    ids = dict(zip(["in", "out", "unsure", "split", "fresh"],
                   _store_with(store, ["in", "out", "unsure", "split", "fresh"])))
    _decide(store, ids["in"], "alice", "include")
    _decide(store, ids["in"], "bob", "maybe")
    _decide(store, ids["out"], "alice", "exclude", reason="wrong design")
    _decide(store, ids["out"], "bob", "exclude")
    _decide(store, ids["unsure"], "alice", "maybe")
    _decide(store, ids["split"], "alice", "include")
    _decide(store, ids["split"], "bob", "exclude")
    res = export_records(store, "jsonl", decision=decision)
    rows = [json.loads(line) for line in res.text.splitlines()]
    assert [r["title"] for r in rows] == expected
    assert res.n_records == len(expected)


def test_duplicates_left_out_unless_all(store) -> None:
    keep, dup = _store_with(store, ["Original", "Copy"])
    store.db["records"].update(dup, {"duplicate_of": keep})
    assert [json.loads(x)["title"] for x in export_records(store, "jsonl").text.splitlines()] == ["Original"]
    every = export_records(store, "jsonl", include_duplicates=True)
    assert [json.loads(x)["title"] for x in every.text.splitlines()] == ["Original", "Copy"]


def test_csv_neutralises_formulas_and_reads_them_back(store, tmp_path: Path) -> None:
    titles = ["=HYPERLINK(\"http://x\",\"click\")", "+1 trial", "-2 design", "@SUM(A1)",
              "Plain title"]
    _store_with(store, titles)
    text = export_records(store, "csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["title"] for r in rows] == [
        "'=HYPERLINK(\"http://x\",\"click\")", "'+1 trial", "'-2 design", "'@SUM(A1)", "Plain title"]
    assert neutralise("\tcmd") == "'\tcmd" and neutralise("\rcmd") == "'\rcmd"
    assert neutralise(None) == "" and neutralise(2020) == "2020"
    f = tmp_path / "back.csv"
    f.write_text(text)
    from db.store import open_store
    again = open_store(None)
    import_files(again, [f], role="database")
    assert [r.title for _, r in again.records()] == titles


def test_csv_columns_carry_decisions_reasons_notes(store) -> None:
    (rid,) = _store_with(store, ["Trial"])
    _decide(store, rid, "alice", "exclude", reason="wrong population", note="adults\nonly")
    _decide(store, rid, "bob", "exclude", reason="wrong design")
    store.log_event("note", record_id=rid, reviewer="carol", note="ask the author")
    (row,) = csv.DictReader(io.StringIO(export_records(store, "csv").text))
    assert (row["decision"], row["reasons"], row["notes"]) == (
        "exclude", "wrong population; wrong design", "alice: adults only | carol: ask the author")
    assert list(row)[:4] == ["record_id", "title", "abstract", "authors"]


def test_asreview_layout_and_labels_kept(store, tmp_path: Path) -> None:
    f = tmp_path / "labelled.csv"
    f.write_text(LABELLED)
    store.add_reviewer("asreview-export")
    set_protocol(store, reviewers_per_record=1)  # the file's labels are final decisions
    (res,) = import_files(store, [f], role="database", source="ASReview",
                          labels_reviewer="asreview-export")
    assert (res.n_read, res.n_labels, res.warnings) == (4, 2, ())
    events = store.events("kind = 'decision'")
    assert [(e["reviewer"], e["stage"], e["value"]) for e in events] == [
        ("asreview-export", "title-abstract", "include"), ("asreview-export", "title-abstract", "exclude")]
    text = export_records(store, "asreview").text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["record_id", "title", "abstract", "authors", "year", "doi", "pmid", "journal",
                       "keywords", "included"]
    assert [(r[1], r[-1]) for r in rows[1:]] == [
        ("Relevant paper", "1"), ("Irrelevant paper", "0"), ("Unseen paper", ""), ("Also unseen", "")]
    sources = [r[0] for r in store.db.execute("SELECT source_record_id FROM sources ORDER BY id")]
    assert sources == ["a1", "a2", "a3", "a4"]


def test_labels_need_a_known_reviewer(store, tmp_path: Path) -> None:
    f = tmp_path / "labelled.csv"
    f.write_text(LABELLED)
    with pytest.raises(StoreError, match="Unknown reviewer 'nobody': add them with `cluster reviewers add nobody`."):
        import_files(store, [f], role="database", labels_reviewer="nobody")
    assert store.db["records"].count == 0
    (res,) = import_files(store, [f], role="database")
    assert res.warnings == ("labelled.csv: 2 screening labels were not kept; import again with "
                            "--labels-reviewer NAME to keep them as decisions.",)
    assert store.db["events"].count == 0


def test_reimport_adds_nothing(store, tmp_path: Path) -> None:
    f = tmp_path / "a.ris"
    f.write_text("TY  - JOUR\nTI  - Same\nER  - \n")
    copy = tmp_path / "copy-of-a.ris"
    copy.write_bytes(f.read_bytes())
    (first,) = import_files(store, [f], role="database")
    assert (first.n_added, first.already_imported) == (1, False)
    second, third = import_files(store, [f, copy], role="other")
    assert (second.n_added, second.already_imported, third.already_imported) == (0, True, True)
    assert (store.db["records"].count, store.db["searches"].count) == (1, 1)


def test_identical_records_in_one_file_are_not_merged(store, tmp_path: Path) -> None:
    f = tmp_path / "twice.ris"
    f.write_text("TY  - JOUR\nID  - r1\nTI  - Same\nDO  - 10.1/a\nER  - \n"
                 "TY  - JOUR\nID  - r2\nTI  - Same\nDO  - 10.1/a\nER  - \n")
    (res,) = import_files(store, [f], role="database", source="Embase")
    assert res.n_added == 2 and store.db["records"].count == 2
    rows = list(store.db.execute("SELECT role, service, source_record_id, search_id FROM sources"))
    assert rows == [("database", "Embase", "r1", res.search_id), ("database", "Embase", "r2", res.search_id)]


def test_bad_export_arguments(store) -> None:
    with pytest.raises(ExportError, match=r"^Unknown export format 'docx': choose one of ris, bibtex, csv, jsonl, asreview\.$"):
        export_records(store, "docx")
    with pytest.raises(ExportError, match=r"^Unknown decision 'yes'"):
        export_records(store, "ris", decision="yes")
    with pytest.raises(FileFormatError, match="No files given"):
        import_files(store, [], role="database")
