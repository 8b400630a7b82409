"""A BibTeX file is parsed a part at a time, so its size does not bound what one import
can read; the records, warnings and line numbers are those of the file parsed whole."""

from __future__ import annotations

from pathlib import Path

import bibtexparser
import pytest

import db.formats.bibtex as bibtex
from db.formats import import_files, read_file

from conftest import shared_path

TRICKY = """@string{jams = "J. Am. Math. Soc."}
@string{ nat = {Nature} }
@article{a1, title = {One}, journal = jams, year = 2001, author = {Smith, John}}
@article{a2, title = {Two}, journal = nat, year = 2002}
@string{jams = "Other"}
@article{a3, title = {Three}, journal = jams, year = 2003}
@article{a1, title = {Dup key}, year = 2004}
@comment{hello}
@article{a4, title = {Four, with a line that looks like an entry
@article{inside, title = {x}}
}, year = 2005}
@article{a5, title = {Broken {brace, year = 2006}
@article{a6, title = {After broken}, year = 2007}
  title = {Orphan fields}, year = 2008,
@article{a7, title = {Seven}, year = 2009}
@article{a7, title = {Seven again}, year = 2010}
@book(b1, title = {Paren entry}, year = 2011)
@article{a8, title = {Stray close}, year = 2012}}
@article{a9, title = {Nine}, journal = nat, year = 2013}
"""


def _read(path: Path, per_part: int, monkeypatch) -> tuple:
    monkeypatch.setattr(bibtex, "ENTRIES_PER_PART", per_part)
    r = read_file(path).result
    return [vars(x) for x in r.records], r.warnings, r.n_in_file, r.lost


@pytest.mark.parametrize("per_part", [1, 2, 3, 5])
def test_parts_read_as_the_whole_file(tmp_path, monkeypatch, per_part):
    path = tmp_path / "tricky.bib"
    path.write_text(TRICKY, encoding="utf-8")
    whole = _read(path, 10**9, monkeypatch)
    assert _read(path, per_part, monkeypatch) == whole
    records, warnings, n_in_file, lost = whole
    by_title = {r["title"]: r for r in records}
    # a macro of the first part resolves in the last; the second definition is not used
    assert by_title["Nine"]["journal"] == "Nature"
    assert by_title["Three"]["journal"] == "J. Am. Math. Soc."
    assert [r["source_id"] for r in records] == [
        "a1", "a2", "a3", "a1", "a4", "inside", "a5", "a6", "a7", "a7", "b1", "a8", "a9"]
    assert warnings[:2] == (
        "tricky.bib: the @string at line 5 defines 'jams' again; the first definition was used.",
        "tricky.bib: the entry at line 7 reuses the key 'a1'; it was imported as a separate record.")
    assert warnings[4] == ("tricky.bib: the entry at line 16 reuses the key 'a7'; it was imported "
                           "as a separate record.")
    assert n_in_file == 14 and lost == ("the fields at line 14, which have no @type{ line",)


def test_the_parser_is_never_given_more_than_a_part(tmp_path, monkeypatch):
    monkeypatch.setattr(bibtex, "ENTRIES_PER_PART", 50)
    path = tmp_path / "many.bib"
    path.write_text("@string{j = {Journal of Care}}\n" + "".join(
        f"@article{{k{i},\n  title = {{Compassion trial {i}}},\n  journal = j,\n  year = {{2010}}\n}}\n"
        for i in range(1, 1001)), encoding="utf-8")
    given: list[str] = []
    real = bibtexparser.parse_string

    def spy(text: str, *args, **kwargs):
        given.append(text)
        return real(text, *args, **kwargs)

    monkeypatch.setattr(bibtexparser, "parse_string", spy)
    r = read_file(path).result
    assert len(r.records) == 1000 and r.n_in_file == 1000 and not r.warnings
    assert {x.journal for x in r.records} == {"Journal of Care"}
    assert [x.source_id for x in r.records] == [f"k{i}" for i in range(1, 1001)]
    # parts of 50 blocks (the first is the @string and 49 entries), each after the @string
    assert [t.count("@article{") for t in given] == [49] + [50] * 19 + [1]
    assert all(t.startswith("@string{j = {Journal of Care}}\n@article{") for t in given)


def test_an_import_in_parts_writes_the_same_records(store, tmp_path, monkeypatch):
    path = tmp_path / "tricky.bib"
    path.write_text(TRICKY, encoding="utf-8")
    monkeypatch.setattr(bibtex, "ENTRIES_PER_PART", 2)
    (result,) = import_files(store, [path], role="database")
    assert (result.n_read, result.n_in_file, result.n_added) == (13, 14, 13)
    titles = [r[0] for r in store.db.execute("SELECT title FROM records ORDER BY id")]
    assert titles[:4] == ["One", "Two", "Three", "Dup key"]


@pytest.mark.parametrize("per_part", [1, 3])
def test_real_exports_read_in_parts_as_whole(monkeypatch, per_part):
    folder = shared_path("fixtures", "files", "bibtex")
    files = sorted(folder.glob("*.bib"))
    assert len(files) == 7
    for path in files:
        assert _read(path, per_part, monkeypatch) == _read(path, 10**9, monkeypatch), path.name


def test_an_entry_reusing_a_key_is_read_as_any_other(tmp_path, monkeypatch):
    # the parser leaves such an entry as written; it is read alone, between the @strings
    path = tmp_path / "dup.bib"
    path.write_text('@article{k1, title = "First", year = 2001}\n'
                    '@article{k1, title = "Quoted {Brace} value", journal = m, year = 2002}\n'
                    '@string{m = {Macro Journal}}\n', encoding="utf-8")
    for per_part in (1, 10**9):
        records, warnings, _, _ = _read(path, per_part, monkeypatch)
        assert [(r["title"], r["journal"], r["year"]) for r in records] == [
            ("First", None, 2001), ("Quoted Brace value", "Macro Journal", 2002)]
        assert warnings == ("dup.bib: the entry at line 2 reuses the key 'k1'; it was imported "
                            "as a separate record.",)
