"""RIS and BibTeX (and CSV) round trips: import -> export -> import gives the same records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from db.formats import export_records, import_files
from db.formats.common import make_record, person_names
from db.store import open_store
from tests.conftest import shared_path

FIELDS = ("title", "authors", "year", "doi", "journal", "volume", "issue", "pages", "abstract")
EXT = {"ris": "ris", "bibtex": "bib", "csv": "csv"}


def _fields(store) -> list[tuple]:
    """The compared fields; authors as the people they name, since an export
    writes "Family, Given" and splits author strings that list several people."""
    return [tuple(tuple(person_names(r.authors)) if f == "authors" else getattr(r, f)
                  for f in FIELDS) for _, r in store.records()]


def _round_trip(store, fmt: str, tmp: Path):
    out = tmp / f"export.{EXT[fmt]}"
    out.write_text(export_records(store, fmt).text, encoding="utf-8")
    again = open_store(None)
    (res,) = import_files(again, [out], role="database", source="round-trip")
    return again, res


@pytest.fixture(scope="module")
def corpus_store():
    """Every corpus file imported once into one in-memory store."""
    base = shared_path("fixtures", "files")
    entries = json.loads((base / "index.json").read_text())
    store = open_store(None)
    import_files(store, [base / e["path"] for e in entries], role="database")
    return store, entries


@pytest.mark.shared
@pytest.mark.parametrize("fmt", ["ris", "bibtex"])
def test_whole_corpus_round_trips(fmt: str, corpus_store, tmp_path: Path) -> None:
    store, entries = corpus_store
    again, res = _round_trip(store, fmt, tmp_path)
    assert res.format == fmt
    assert res.n_read == sum(e["records"] for e in entries) == 1695
    before, after = _fields(store), _fields(again)
    assert len(before) == len(after)
    for a, b in zip(before, after):
        assert a == b


def test_ris_round_trip_keeps_ids_and_decision_notes(tmp_path: Path) -> None:
    store = open_store(None)
    rec = make_record(title="Tea & cake: a 50% trial", authors=["O'Neil, Ann B.", "Müller, J."],
                      year=2019, doi="https://doi.org/10.1000/ABC_1", journal="J Tea", volume="3",
                      issue="2", pages="101-9", abstract="Background ~ 12 cups -- daily.",
                      pmid="123456")
    rid = store.add_record(rec)
    store.add_reviewer("alice")
    store.log_event("decision", record_id=rid, reviewer="alice", stage="title-abstract",
                    value="exclude", reason="wrong population", note="check the protocol")
    text = export_records(store, "ris").text
    assert "N1  - cluster title-abstract decision: 1 of 2 reviewers: exclude (reasons: wrong population)" in text
    assert "N1  - cluster note: alice: check the protocol" in text
    assert "KW  - cluster exclusion reason: wrong population" in text
    assert "PM  - 123456" in text
    for fmt in ("ris", "bibtex"):
        again, _ = _round_trip(store, fmt, tmp_path)
        (back,) = [r for _, r in again.records()]
        assert tuple(getattr(back, f) for f in FIELDS) == (
            "Tea & cake: a 50% trial", ("O'Neil, Ann B.", "Müller, J."), 2019, "10.1000/abc_1",
            "J Tea", "3", "2", "101-109", "Background ~ 12 cups -- daily.")
        assert back.pmid == "123456"
    bib = export_records(store, "bibtex").text
    assert "note = {cluster title-abstract decision: 1 of 2 reviewers: exclude (reasons: wrong population)" in bib


# --- property: any record made of ordinary bibliographic text survives ------------------

_chars = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs"),
                       exclude_characters="\u2028\u2029\x85")
_text = st.text(_chars, min_size=1, max_size=40).map(lambda s: " ".join(s.split())).filter(
    lambda s: s and any(c.isalnum() for c in s))
_name = st.text(st.characters(categories=("L",)), min_size=1, max_size=12)
_author = st.builds(lambda fam, giv: f"{fam}, {giv}", _name, st.text(
    st.characters(categories=("L",)), min_size=1, max_size=10).map(str.capitalize))
_doi = st.builds(lambda a, b: f"10.{a}/{b}", st.integers(1000, 99999),
                 st.text("abcdefghijklmnopqrstuvwxyz0123456789._-", min_size=1, max_size=15)
                 .filter(lambda s: s[-1].isalnum()))
_pages = st.builds(lambda a, n: f"{a}-{a + n}" if n else str(a), st.integers(1, 5000),
                   st.integers(0, 900))


@st.composite
def records(draw):
    record = make_record(
        title=draw(_text), authors=draw(st.lists(_author, max_size=4)),
        year=draw(st.integers(1500, 2099)), doi=draw(st.one_of(st.none(), _doi)),
        journal=draw(st.one_of(st.none(), _text)),
        volume=draw(st.one_of(st.none(), st.integers(1, 999).map(str))),
        issue=draw(st.one_of(st.none(), st.integers(1, 99).map(str))),
        pages=draw(st.one_of(st.none(), _pages)), abstract=draw(st.one_of(st.none(), _text)),
    )
    # text that is only markup ("<b>") is no title once cleaned, and such a record is not kept
    assume(record.title)
    return record


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(recs=st.lists(records(), min_size=1, max_size=4), fmt=st.sampled_from(["ris", "bibtex"]))
def test_generated_records_round_trip(recs, fmt, tmp_path: Path) -> None:
    store = open_store(None)
    for r in recs:
        store.add_record(r)
    again, res = _round_trip(store, fmt, tmp_path)
    assert res.n_read == len(recs)
    assert _fields(again) == _fields(store)


def test_bibtex_reads_dois_and_urls_verbatim(tmp_path: Path) -> None:
    # "--" in a DOI is two hyphens, not a dash; escaped specials are undone
    bib = tmp_path / "in.bib"
    bib.write_text("@article{a,\n  title = {A},\n  doi = {10.1000/--0},\n"
                   "  url = {https://example.org/a\\_b--c}\n}\n", encoding="utf-8")
    store = open_store(None)
    import_files(store, [bib], role="database", source="test")
    assert store.db.execute("SELECT doi, url FROM records").fetchone() == (
        "10.1000/--0", "https://example.org/a_b--c")
    store.close()
