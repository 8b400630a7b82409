"""BibTeX and RIS exports read by programs that did not write them.

pybtex (strict) reads the BibTeX; a line grammar reads the RIS; every record
is compared with the store. The corpus test imports every real file in
../shared/fixtures/files through the CLI.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from base.record import Record
from db.formats import export_records, import_files
from db.formats.bibtex import citation_keys
from db.formats.common import PersonName, make_record, person_names
from db.store import open_store
from tests.conftest import shared_path
from tests.export_readers import (
    latex_text, mismatches, read_bibtex_pybtex, read_ris_lines, ris_grammar_errors,
)


def _field(bib: str, name: str) -> list[str]:
    """The raw values of one field, as written between the outer braces."""
    prefix = f"\t{name} = {{"
    return [line[len(prefix):-2] for line in bib.splitlines() if line.startswith(prefix)]


def _store(*records: Record):
    store = open_store(None)
    for r in records:
        store.add_record(r)
    return store


# --- the whole corpus ------------------------------------------------------------------


@pytest.mark.shared
def test_whole_corpus_exports_read_back(run, db_path: Path, tmp_path: Path) -> None:
    base = shared_path("fixtures", "files")
    entries = json.loads((base / "index.json").read_text())
    run("import", "-q", *[str(base / e["path"]) for e in entries])
    bib, ris = tmp_path / "all.bib", tmp_path / "all.ris"
    run("export", "--format", "bibtex", "-o", str(bib))
    run("export", "--format", "ris", "-o", str(ris))
    store = open_store(db_path)
    records = dict(store.records())
    store.close()
    assert len(records) == sum(e["records"] for e in entries) == 1695

    bib_text = bib.read_text(encoding="utf-8")
    read, complaints = read_bibtex_pybtex(bib_text, strict=True)  # the first complaint raises
    assert (len(read), complaints) == (1695, [])
    assert mismatches(records, read) == Counter()
    assert bib_text.count("-{}-") == 17  # literal double hyphens in titles and abstracts only
    assert not [v for v in _field(bib_text, "doi") if "\\" in v]

    ris_text = ris.read_text(encoding="utf-8")
    assert ris_grammar_errors(ris_text) == []
    read = read_ris_lines(ris_text)
    assert len(read) == 1695
    assert mismatches(records, read) == Counter()


# --- BibTeX ----------------------------------------------------------------------------


def test_page_ranges_and_verbatim_fields() -> None:
    store = _store(make_record(
        title="A trial", authors=["Doe, Jane"], year=2020, pages="1023-1095",
        doi="10.1007/978-3-030-46409-7_18", url="https://example.org/a_b?c=1&d=50%25#top"))
    bib = export_records(store, "bibtex").text
    assert _field(bib, "pages") == ["1023--1095"]
    assert _field(bib, "doi") == ["10.1007/978-3-030-46409-7_18"]
    assert _field(bib, "url") == ["https://example.org/a_b?c=1&d=50%25#top"]
    (entry,), _ = read_bibtex_pybtex(bib, strict=True)
    assert (entry.fields["pages"], entry.fields["doi"]) == ("1023-1095", "10.1007/978-3-030-46409-7_18")


TRICKY = "Tea & cake: 50% of $5, #1 a_b {x} ~y ^z \\w -- Müller"


def test_latex_specials_escaped_once(tmp_path: Path) -> None:
    store = _store(make_record(title=TRICKY, authors=["O'Neil, Ann_B."], year=2019,
                               journal="Q&A Journal"))
    bib = export_records(store, "bibtex").text
    assert _field(bib, "title") == [
        r"Tea \& cake: 50\% of \$5, \#1 a\_b \textbraceleft{}x\textbraceright{} "
        r"\textasciitilde{}y \textasciicircum{}z \textbackslash{}w -{}- Müller"]
    assert _field(bib, "journal") == [r"Q\&A Journal"]
    assert _field(bib, "author") == [r"O'Neil, Ann\_B."]
    (entry,), _ = read_bibtex_pybtex(bib, strict=True)
    assert entry.fields["title"] == TRICKY
    assert latex_text(_field(bib, "journal")[0]) == "Q&A Journal"
    # and the project's own reader gets the same text back
    back = _reimport(bib, tmp_path / "export.bib")
    assert (back.title, back.journal, back.authors) == (TRICKY, "Q&A Journal", ("O'Neil, Ann_B.",))


def _reimport(text: str, path: Path) -> Record:
    path.write_text(text, encoding="utf-8")
    store = open_store(None)
    import_files(store, [path], role="database")
    (record,) = [r for _, r in store.records()]
    return record


def test_comma_joined_author_strings_become_people() -> None:
    store = _store(
        make_record(title="Scholar", year=2015, authors=["CM Danu, E Nechita, LR Manea"]),
        make_record(title="Scopus", year=2016,
                    authors=["Siciliano, R., D’Ambrosio, A., Aria, M.", "Tutore, V.A."]),
        make_record(title="One person", year=2017, authors=["Smith, John A.", "Bitter, P., Jr."]),
        make_record(title="Firm", year=2018, authors=["Johnson and Johnson"]))
    bib = export_records(store, "bibtex").text
    assert _field(bib, "author") == [
        "Danu, C. M. and Nechita, E. and Manea, L. R.",
        "Siciliano, R. and D’Ambrosio, A. and Aria, M. and Tutore, V.A.",
        "Smith, John A. and Bitter, Jr., P.",
        "{Johnson and Johnson}"]
    read, complaints = read_bibtex_pybtex(bib, strict=True)
    assert complaints == []
    assert [len(e.authors) for e in read] == [3, 4, 2, 1]
    assert read[2].authors == ["Smith, John A.", "Bitter, Jr., P."]

    ris = export_records(store, "ris").text
    assert [line for line in ris.splitlines() if line.startswith("AU  - ")] == [
        "AU  - Danu, C. M.", "AU  - Nechita, E.", "AU  - Manea, L. R.",
        "AU  - Siciliano, R.", "AU  - D’Ambrosio, A.", "AU  - Aria, M.", "AU  - Tutore, V.A.",
        "AU  - Smith, John A.", "AU  - Bitter, P., Jr.", "AU  - Johnson and Johnson"]


@pytest.mark.parametrize("authors, people", [
    (["Smith, John A."], [("Smith", "John A.", "")]),
    (["CM Danu, E Nechita"], [("Danu", "C. M.", ""), ("Nechita", "E.", "")]),
    (["ITP Miranda, DA de Souza Fidelis"], [("Miranda", "I. T. P.", ""),
                                             ("de Souza Fidelis", "D. A.", "")]),
    (["Giordano, G., Aria, M."], [("Giordano", "G.", ""), ("Aria", "M.", "")]),
    (["DE SOUZA, A B"], [("DE SOUZA", "A B", "")]),  # capitals, not "Initials Surname"
    (["Le Roux, J P"], [("Le Roux", "J P", "")]),
    (["Bitter, P., Jr."], [("Bitter", "P.", "Jr.")]),
    (["Klimo, Jr., Paul"], [("Klimo", "Paul", "Jr.")]),
    (["Bitter, Patrick Jr"], [("Bitter", "Patrick", "Jr")]),
    (["van Dijk, Joris,D."], [("van Dijk", "Joris D.", "")]),
    (["A Costa"], [("Costa", "A.", "")]),
    (["Pedro Filipe da Conceição Pereira"], [("da Conceição Pereira", "Pedro Filipe", "")]),
    (["Sugiyono"], [("Sugiyono", "", "")]),
    (["Johnson and Johnson"], [("Johnson and Johnson", "", "")]),
])
def test_person_names(authors: list[str], people: list[tuple[str, str, str]]) -> None:
    assert person_names(authors) == [PersonName(*p) for p in people]


def test_names_without_comma_kept_whole_when_asked() -> None:
    assert person_names(["Dos Santos", "A Costa"], guess_order=False) == [
        PersonName("Dos Santos"), PersonName("Costa", "A.")]
    assert person_names(["Dos Santos"]) == [PersonName("Santos", "Dos")]


def test_citation_keys_unique_stable_and_the_same_for_a_subset() -> None:
    store = _store(
        make_record(title="a", authors=["Brown, A."], year=1994),
        make_record(title="b", authors=["BROWN, B."], year=1994),
        make_record(title="c", authors=["Brown, C."], year=1994),
        make_record(title="d", authors=["Müller, D."], year=2001),
        make_record(title="e", doi="10.1000/e"))
    full = export_records(store, "bibtex").text
    keys = [line[line.index("{") + 1:-1] for line in full.splitlines() if line.startswith("@")]
    assert keys == ["Brown1994", "Brown1994b", "Brown1994c", "Muller2001", "Anon"]
    assert export_records(store, "bibtex").text == full

    for who in ("alice", "bob"):  # the protocol's two reviewers: a final include
        store.add_reviewer(who)
        store.log_event("decision", record_id=3, reviewer=who, stage="title-abstract",
                        value="include")
    subset = export_records(store, "bibtex", decision="include").text
    assert subset.startswith("@article{Brown1994c,\n")

    store.add_record(make_record(title="f", authors=["Brown, F."], year=1994))
    assert citation_keys(store.records()) == {
        1: "Brown1994", 2: "Brown1994b", 3: "Brown1994c", 4: "Muller2001", 5: "Anon",
        6: "Brown1994d"}


@pytest.mark.parametrize("pub_type, journal, entry_type", [
    ("Journal Article", "J", "article"), ("Comparative Study", "J", "article"),
    ("CHAP", None, "incollection"), ("THES", None, "phdthesis"), ("ELEC", None, "misc"),
    ("Letter", None, "misc"), ("CONF", None, "inproceedings"),
])
def test_entry_types_the_standard_styles_define(pub_type: str, journal: str | None,
                                                 entry_type: str) -> None:
    store = _store(make_record(title="t", year=2000, pub_types=[pub_type], journal=journal))
    assert export_records(store, "bibtex").text.startswith(f"@{entry_type}{{Anon2000,")


# --- RIS -------------------------------------------------------------------------------


def test_ris_is_tag_lines_only() -> None:
    store = _store(
        make_record(title="First", authors=["Doe, Jane"], year=2020, journal="J One",
                    volume="3", issue="2", pages="10-19", doi="10.1000/a", pmid="123"),
        make_record(title="Second", authors=["Roe, R."], year=2021))
    text = export_records(store, "ris").text
    assert text == (
        "TY  - JOUR\nTI  - First\nAU  - Doe, Jane\nPY  - 2020\nT2  - J One\nVL  - 3\n"
        "IS  - 2\nDO  - 10.1000/a\nSP  - 10\nEP  - 19\nID  - 1\nPM  - 123\nER  - \n"
        "\n"
        "TY  - JOUR\nTI  - Second\nAU  - Roe, R.\nPY  - 2021\nID  - 2\nER  - \n")
    assert ris_grammar_errors(text) == []


def test_ris_grammar_check_finds_what_is_not_ris() -> None:
    text = "1.\nTY  - JOUR\nTI  - x\n\nER  - \nTI  - y\nTY  - JOUR\n"
    assert ris_grammar_errors(text) == [
        "line 1: not a tag line: '1.'", "line 4: blank line inside a record",
        "line 6: tag line outside a record", "the last record has no ER line"]
