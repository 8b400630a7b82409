"""Every CSV cluster writes shows a formula-like cell as text (the OWASP rule), and
cluster reads its own CSV back as it was."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from base.record import Record
from base.output import csv_text, neutralise, unneutralise
from db.store import open_store
from clikit import invoke

LIVE = ("=HYPERLINK(\"http://evil.example\",\"click\")", "+cmd|' /C calc'!A0", "@SUM(1+1)",
        "-2+3+cmd|' /C calc'!A0", "\t=1+1", "\r=1+1")
TRIGGERS = "=+-@\t\r"


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_no_live_formula(rows: list[list[str]]) -> None:
    for row in rows:
        for cell in row:
            assert not cell or cell[0] not in TRIGGERS or neutralise(cell) == cell, cell


@pytest.mark.parametrize("cell", LIVE)
def test_a_formula_gets_a_quote(cell: str) -> None:
    assert neutralise(cell) == "'" + cell
    assert unneutralise(neutralise(cell)) == cell


@pytest.mark.parametrize("cell", ["-5", "+3", "-0.25", "1e-3", "-1.5E+2", 7, -5, 2.5, None, "",
                                  "plain text", "'quoted", "a=b"])
def test_numbers_and_plain_text_are_left_alone(cell) -> None:
    expected = "" if cell is None else str(cell)
    assert neutralise(cell) == expected
    assert unneutralise(expected) == expected


def test_a_quote_already_there_survives_the_round_trip() -> None:
    assert neutralise("'=1") == "''=1" and unneutralise("''=1") == "'=1"


@given(st.text())
def test_round_trip(text: str) -> None:
    assert unneutralise(neutralise(text)) == text
    shown = neutralise(text)
    assert not shown or shown[0] not in TRIGGERS or shown == text  # only numbers stay bare


@given(st.lists(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",))),
                         min_size=2, max_size=2), max_size=5))
def test_csv_text_reads_back(rows) -> None:
    text = csv_text(["a", "b"], rows)
    back = cells(text)
    assert back[0] == ["a", "b"]
    assert [[unneutralise(c) for c in r] for r in back[1:]] == [
        ["" if c is None else c for c in r] for r in rows]


def _index_article_with_formula_names(db: Path, tmp_path: Path) -> None:
    ris = tmp_path / "index.ris"
    ris.write_text("TY  - JOUR\nTI  - Compassion training\nAU  - =cmd|' /C calc'!A0\n"
                   "AU  - @SUM(1+1)\nPY  - 2019\nER  - \n", encoding="utf-8")
    assert invoke("import", str(ris), "--as", "index", "--db", str(db)).exit_code == 0


def test_contacts_csv_is_neutralised(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    _index_article_with_formula_names(db, tmp_path)
    out = tmp_path / "contacts.csv"
    assert invoke("contacts", "-o", str(out), "--db", str(db)).exit_code == 0
    rows = cells(out.read_text(encoding="utf-8"))
    assert [r[4] for r in rows] == ["name", "'=cmd|' /C calc'!A0", "'@SUM(1+1)"]
    assert [r[2] for r in rows[1:]] == ["2019", "2019"]  # a number column stays a number
    assert_no_live_formula(rows)


def _pair_with_formula_titles(db: Path) -> None:
    s = open_store(db)
    with s.transaction():
        s.add_record(Record(title="=HYPERLINK(\"http://evil.example\",\"exercise for depression in "
                                  "older adults\")", year=2012))
        s.add_record(Record(title="=HYPERLINK(\"http://evil.example\",\"exercise for depression in "
                                  "older people: a trial\")", year=2012))
    s.close()


def test_dedup_pairs_are_neutralised_and_read_back(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    _pair_with_formula_titles(db)
    assert invoke("dedup", "--quiet", "--db", str(db)).exit_code == 0
    out = tmp_path / "pairs.csv"
    result = invoke("dedup", "--export-pairs", str(out), "--db", str(db))
    assert result.stdout.startswith(f"1 pairs written to {out}")
    rows = cells(out.read_text(encoding="utf-8"))
    header, row = rows[0], rows[1]
    title_a = row[header.index("a_title")]
    assert title_a.startswith("'=HYPERLINK(")
    assert row[header.index("a")] == "1" and row[header.index("b")] == "2"
    assert_no_live_formula(rows)
    # a person fills the decision column as a spreadsheet would keep it
    row[header.index("decision")] = "different"
    buf = io.StringIO()
    csv.writer(buf).writerows([header, row])
    out.write_text(buf.getvalue(), encoding="utf-8")
    result = invoke("dedup", "--import-pairs", str(out), "--db", str(db))
    assert result.stdout.strip() == "0 pairs merged, 1 kept apart, 0 skipped; 0 pairs left for review."


def test_a_decision_a_spreadsheet_kept_quoted_is_understood(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    _pair_with_formula_titles(db)
    invoke("dedup", "--quiet", "--db", str(db))
    out = tmp_path / "pairs.csv"
    invoke("dedup", "--export-pairs", str(out), "--db", str(db))
    rows = cells(out.read_text(encoding="utf-8"))
    rows[1][rows[0].index("decision")] = "same"
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    out.write_text(buf.getvalue(), encoding="utf-8")
    result = invoke("dedup", "--import-pairs", str(out), "--db", str(db))
    assert result.stdout.strip() == "1 pairs merged, 0 kept apart, 0 skipped; 0 pairs left for review."


def test_flow_csv_goes_through_the_one_writer(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    ris = tmp_path / "search.ris"
    ris.write_text("TY  - JOUR\nTI  - Compassion training\nPY  - 2019\nER  - \n", encoding="utf-8")
    assert invoke("import", str(ris), "--source", "=HYPERLINK(1)", "--db", str(db)).exit_code == 0
    rows = {r[0]: r[-1] for r in cells(invoke("flow", "--csv", "--db", str(db)).stdout)}
    assert rows["database_specific_results"] == "'=HYPERLINK(1), 1"
    assert rows["database_results"] == "1"


def test_export_csv_neutralises_and_import_reads_it_back(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    _index_article_with_formula_names(db, tmp_path)
    out = tmp_path / "records.csv"
    assert invoke("export", "--format", "csv", "-o", str(out), "--db", str(db)).exit_code == 0
    rows = cells(out.read_text(encoding="utf-8"))
    assert rows[1][rows[0].index("authors")] == "'=cmd|' /C calc'!A0; @SUM(1+1)"
    again = tmp_path / "again.db"
    assert invoke("import", str(out), "--db", str(again)).exit_code == 0
    s = open_store(again)
    try:
        assert [r.authors for _, r in s.records()] == [("=cmd|' /C calc'!A0", "@SUM(1+1)")]
    finally:
        s.close()
