"""Bad input ends in one sentence naming the file (and line), and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from db.formats import FileFormatError, detect_format, import_files, read_file
from db.formats.common import decode

GOOD_RIS = "TY  - JOUR\nTI  - A good record\nAU  - Smith, J.\nPY  - 2020\nER  - \n"


def _counts(store) -> tuple[int, int, int, int]:
    return (store.db["records"].count, store.db["searches"].count,
            store.db["sources"].count, store.db["events"].count)


BAD_FILES = {
    "empty.ris": (b"", r"^empty\.ris is empty: there is nothing to import\.$"),
    "blank.csv": (b"\n  \r\n\t\n", r"^blank\.csv is empty: there is nothing to import\.$"),
    "picture.ris": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 20,
                    r"^picture\.ris is a binary file, not a reference export: export RIS, "),
    "sheet.csv": (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" * 20,
                  r"^sheet\.csv is a binary file, not a reference export"),
    "letter.txt": (b"Dear colleague,\nplease find the references attached.\n",
                   r"^letter\.txt line 1 \('Dear colleague,'\) is not in a format cluster can read: "),
    "page.html": (b"<html><body><p>Search results</p></body></html>",
                  r"^page\.html looks like HTML or other markup, not a reference export"),
    "truncated.xml": (b'<?xml version="1.0" encoding="UTF-8"?><xml><records><record><rec-number>1'
                      b"</rec-number><titles><title>Cut off",
                      r"^truncated\.xml is not well-formed XML at line 1, column \d+ \(truncated or "
                      r"damaged export\): export it again\.$"),
    "other.xml": (b'<?xml version="1.0"?><PubmedArticleSet></PubmedArticleSet>',
                  r"^other\.xml is XML but not an EndNote XML export \(no <records>\)"),
    "no_title.csv": (b"id,author,year\n1,\"Smith, J.\",2020\n2,\"Doe, A.\",2021\n",
                     r"^no_title\.csv line 1: this CSV/TSV file has no title column \(header "
                     r"'id,author,year'\); export it with a Title column or rename"),
    "no_title.tsv": (b"Authors\tPub Year\nSmith J\t2020\n",
                     r"^no_title\.tsv line 1: this CSV/TSV file has no title column"),
    "header_only.csv": (b"Title,Authors,Year\n",
                        r"^header_only\.csv was recognised as csv but holds no records"),
    "no_records.ris": (b"Provider: JSTOR\nDatabase: JSTOR\n\nTY  - JOUR\nPY  - 2001\nER  -\n",
                       r"^no_records\.ris was recognised as ris but holds no records"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_refused_and_nothing_is_written(name: str, tmp_path: Path, store) -> None:
    content, pattern = BAD_FILES[name]
    bad = tmp_path / name
    bad.write_bytes(content)
    good = tmp_path / "good.ris"
    good.write_text(GOOD_RIS)
    import_files(store, [good], role="database")
    before = _counts(store)
    # alone, and after a good file in the same command: both leave the store as it was
    for files in ([bad], [tmp_path / "other_good.ris", bad]):
        (tmp_path / "other_good.ris").write_text(GOOD_RIS.replace("A good", "Another good"))
        with pytest.raises(FileFormatError, match=pattern) as info:
            import_files(store, files, role="database")
        message = str(info.value)
        assert message.count(". ") == 0 and message.endswith("."), "one sentence"
        assert _counts(store) == before


def test_missing_file(tmp_path: Path, store) -> None:
    missing = tmp_path / "nowhere.ris"
    with pytest.raises(FileFormatError, match=r"nowhere\.ris does not exist: check the path and try again\.$"):
        import_files(store, [missing], role="database")
    assert _counts(store) == (0, 0, 0, 0)


def test_folder_is_refused(tmp_path: Path, store) -> None:
    with pytest.raises(FileFormatError, match=r"is a folder: give the files inside it instead\.$"):
        import_files(store, [tmp_path], role="database")


def test_unknown_role(tmp_path: Path, store) -> None:
    good = tmp_path / "good.ris"
    good.write_text(GOOD_RIS)
    with pytest.raises(FileFormatError, match=r"^Unknown role 'screening': choose one of index, database, register, website, organisation, citation, other\.$"):
        import_files(store, [good], role="screening")


def test_failure_half_way_writes_nothing(tmp_path: Path, store, monkeypatch) -> None:
    good = tmp_path / "good.ris"
    good.write_text(GOOD_RIS * 3)
    import db.store as store_module

    calls = {"n": 0}
    real = store_module.record_values

    def failing(record):
        calls["n"] += 1
        if calls["n"] == 2:  # the second record's values
            raise RuntimeError("disk full")
        return real(record)

    monkeypatch.setattr(store_module, "record_values", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        import_files(store, [good], role="database")
    assert _counts(store) == (0, 0, 0, 0)


# --- encodings and line endings ----------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "TY  - JOUR\r\nTI  - Café résumé\r\nER  - \r\n".encode("utf-8"),
    b"\xef\xbb\xbf" + "TY  - JOUR\nTI  - Café résumé\nER  - \n".encode("utf-8"),
    "TY  - JOUR\rTI  - Café résumé\rER  - \r".encode("cp1252"),
    "TY  - JOUR\nTI  - Café résumé\r\nER  - \r".encode("latin-1"),
    "TY  - JOUR\nTI  - Café résumé\nER  - \n".encode("utf-16"),
])
def test_encodings_and_line_endings(raw: bytes, tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_bytes(raw)
    (rec,) = read_file(f).result.records
    assert rec.title == "Café résumé"


def test_cp1252_punctuation_is_decoded() -> None:
    assert decode("“Smart” quotes – dash".encode("cp1252"), "x") == "“Smart” quotes – dash"


def test_format_comes_from_content_not_name(tmp_path: Path) -> None:
    samples = {
        "a.ris": ("PMID- 123\nTI  - Medline in disguise\n", "medline"),
        "b.csv": ("@article{k, title={BibTeX in disguise}}\n", "bibtex"),
        "c.bib": ("FN Clarivate\nVR 1.0\nPT J\nTI WoS in disguise\nER\nEF\n", "wos"),
        "d.nbib": ("TY  - JOUR\nTI  - RIS in disguise\nER  - \n", "ris"),
        "e.xml": ("title,year\nCSV in disguise,2020\n", "csv"),
        "f.ris": ("12345678\n10.1000/xyz\nhttps://doi.org/10.1000/ABC\nPMID: 87654321\n", "id-list"),
    }
    for name, (text, fmt) in samples.items():
        assert detect_format(text, name) == fmt
        p = tmp_path / name
        p.write_text(text)
        assert read_file(p).result.format == fmt


def test_id_list_records_need_metadata(tmp_path: Path, store) -> None:
    f = tmp_path / "ids.txt"
    f.write_text("12345678\n\n10.1000/XYZ.1\nhttps://doi.org/10.1000/abc\n# a comment\nPMID: 87654321\n")
    (res,) = import_files(store, [f], role="index", source="seed list")
    assert (res.format, res.n_read) == ("id-list", 4)
    recs = [r for _, r in store.records()]
    assert [(r.pmid, r.doi, r.needs_metadata, r.title) for r in recs] == [
        ("12345678", None, True, None), (None, "10.1000/xyz.1", True, None),
        (None, "10.1000/abc", True, None), ("87654321", None, True, None)]
    roles = {r[0] for r in store.db.execute("SELECT role FROM sources")}
    assert roles == {"index"}


def test_ris_without_final_er_is_kept_and_reported(tmp_path: Path) -> None:
    f = tmp_path / "cut.ris"
    f.write_text("TY  - JOUR\nTI  - First\nER  - \nTY  - JOUR\nTI  - Second\nTY  - JOUR\nTI  - Third\n")
    res = read_file(f).result
    assert [r.title for r in res.records] == ["First", "Second", "Third"]
    assert res.warnings == (
        "cut.ris: the record starting at line 4 has no ER end tag; it was closed at line 6.",
        "cut.ris: the record starting at line 6 has no ER end tag; it was read up to the end of the file.",
    )


def test_broken_bibtex_entry_is_reported_not_dropped(tmp_path: Path) -> None:
    f = tmp_path / "broken.bib"
    f.write_text("@article{ok1, title={Fine}, year={2020}}\n\n@article{bad,\n author = {Unclosed,\n"
                 "@article{ok2, title={Also fine}, year={2021}}\n")
    res = read_file(f).result
    assert [r.title for r in res.records] == ["Fine", "Also fine"]
    assert res.warnings == ("broken.bib holds 3 records (@type{ lines) but 2 were read; not "
                            "recovered: the entry at line 3 ('@article{bad,'), which could not be "
                            "parsed.",)
    assert (res.n_in_file, len(res.records)) == (3, 2)


def test_salvaged_bibtex_entry_is_kept_with_a_warning(tmp_path: Path) -> None:
    f = tmp_path / "salvage.bib"
    f.write_text("@article{bad,\n title = {Kept anyway},\n keywords = {a, @type:Person}, b},\n year = {2001},\n}\n")
    res = read_file(f).result
    assert [(r.title, r.year, r.source_id) for r in res.records] == [("Kept anyway", 2001, "bad")]
    assert res.warnings == ("salvage.bib: the entry at line 1 ('@article{bad,') has unbalanced braces; "
                            "it was read line by line and may miss parts of broken fields.",)


def test_empty_records_are_reported(tmp_path: Path) -> None:
    f = tmp_path / "gaps.ris"
    f.write_text("TY  - JOUR\nTI  - One\nER  - \nTY  - JOUR\nPY  - 1999\nER  - \nTY  - JOUR\nTI  - Three\nER  - \n")
    res = read_file(f).result
    assert [r.title for r in res.records] == ["One", "Three"]
    assert res.warnings == ("gaps.ris: record(s) 2 have no title, author, abstract or identifier and "
                            "were not imported.",)


def test_double_encoded_utf8_is_repaired(tmp_path: Path) -> None:
    from db.formats.common import fix_mojibake

    assert fix_mojibake("patients â‰¥18 years") == "patients ≥18 years"
    assert fix_mojibake("(medianâ€\u0089= 2â€\u0089months)") == "(median\u2009= 2\u2009months)"
    assert fix_mojibake("São Paulo, Ã  voilà") == "São Paulo, Ã  voilà"  # not mojibake: untouched
    f = tmp_path / "m.csv"
    f.write_text("title,abstract\nA,Adults â‰¥18 years â€œquotedâ€\x9d\n", encoding="utf-8")
    (rec,) = read_file(f).result.records
    assert rec.abstract == "Adults ≥18 years “quoted”"


def test_repeated_bibtex_string_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    f = tmp_path / "strings.bib"
    f.write_text('@string{jn = "First"}\n@string{jn = "Second"}\n'
                 "@article{k1, title={Kept}, journal=jn, year={2020}}\n")
    res = read_file(f).result
    assert [(r.title, r.journal) for r in res.records] == [("Kept", "First")]
    assert res.warnings == ("strings.bib: the @string at line 2 defines 'jn' again; "
                            "the first definition was used.",)
