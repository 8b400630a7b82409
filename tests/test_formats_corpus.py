"""Every real exported file in ../shared/fixtures/files imports with the right
record count and the values its index.json entry expects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from base.record import normalize_doi, normalize_pages
from db.formats import import_files, read_file
from db.store import open_store
from tests.conftest import SHARED, shared_path

INDEX = SHARED / "fixtures" / "files" / "index.json"
ENTRIES = json.loads(INDEX.read_text()) if INDEX.exists() else []

# what each file's quirks cost: the warnings an import must report (empty: none)
EXPECTED_WARNINGS = {
    "bibtex/ebsco_scraped-garbage-in-keywords_colrev-anon.bib": "line 15",
    "bibtex/scopus-2017_preamble_affiliation-letters-in-authors_bibliometrix.bib": "line 419",
    "csv/asreview-style_label_included_partial_lorem.csv": "4 screening labels were not kept",
    "csv/abstrackr_labels_two-sections_embedded-newlines_cff.csv": "6 screening labels were not kept",
    "csv/rayyan_pilot_single-reviewer_mojibake_cpm-auc.csv": "22 screening labels were not kept",
    "csv/rayyan_maybe-decisions_cff.csv": "6 screening labels were not kept",
    "ris/zotero_asreview-labels-in-html-notes_datatools.ris": "4 screening labels were not kept",
}
# the format detected from content (the file name is not trusted)
DETECTED = {"ris/wos-plaintext_mislabelled.ris": "wos",
            "csv/refworks_tab-delimited_cff.tsv": "tsv"}


def _records(store):
    return [r for _, r in store.records(include_duplicates=True)]


@pytest.mark.shared
@pytest.mark.parametrize("entry", ENTRIES or [None], ids=[e["path"] for e in ENTRIES] or ["absent"])
def test_corpus_file_imports(entry) -> None:
    base = shared_path("fixtures", "files")
    path = base / entry["path"]
    store = open_store(None)
    (res,) = import_files(store, [path], role="database", source="corpus")

    assert res.n_read == entry["records"] == res.n_added
    assert res.format == DETECTED.get(entry["path"], entry["format"])
    assert store.db["records"].count == entry["records"]
    assert store.db["sources"].count == entry["records"]
    search = store.db["searches"].get(res.search_id)
    assert (search["kind"], search["service"], search["role"]) == ("import", "corpus", "database")
    assert (search["file_name"], search["sha256"]) == (path.name, entry["sha256"])
    assert (search["n_found"], search["n_added"], search["status"]) == (
        entry["records"], entry["records"], "done")

    warn = EXPECTED_WARNINGS.get(entry["path"])
    if warn:
        assert any(warn in w and path.name in w for w in res.warnings), res.warnings
        assert search["notes"] and warn in search["notes"]
    else:
        assert res.warnings == ()

    records = _records(store)
    assert all(r.title for r in records), "every record in the corpus has a title"
    if "mojibake" in entry["path"]:  # "â‰¥18 years" in the file is "≥18 years" in the store
        abstracts = " ".join(r.abstract or "" for r in records)
        assert "â€" not in abstracts and "â‰" not in abstracts
        assert "patients ≥18 years old" in abstracts
    if entry["path"].startswith("ris/zotero_asreview"):
        # "labels: 1 relevant, 3 irrelevant, 2 unlabelled (observed)"
        labels = read_file(path).result.labels
        assert (labels.count("include"), labels.count("exclude"), labels.count(None)) == (1, 3, 2)
    _check_expected(entry["expected"], records, path)


def _find(records, **kw):
    hits = [r for r in records if all(getattr(r, k) == v for k, v in kw.items())]
    assert len(hits) >= 1, kw
    return hits[0]


def _check_reference(exp: dict, r, loose_title: bool = False) -> None:
    if "title" in exp:
        if loose_title:  # RefLib's MEDLINE profile drops PubMed's closing full stop
            assert r.title.rstrip(".") == exp["title"]
        else:
            assert r.title == exp["title"]
    if "authors" in exp:
        assert list(r.authors) == exp["authors"]
    if "journal" in exp:
        assert r.journal == exp["journal"]
    if "year" in exp:
        assert r.year == int(exp["year"])
    if "pages" in exp:
        assert r.pages == normalize_pages(exp["pages"])
    if "volume" in exp:
        assert r.volume == exp["volume"]
    if "number" in exp:
        assert r.issue == exp["number"]
    if "doi" in exp:
        assert r.doi == normalize_doi(exp["doi"])
    if "keywords" in exp:
        assert list(r.keywords) == exp["keywords"]
    if "isbn" in exp:
        assert r.issn == exp["isbn"].split(" ")[0]
    if "custom2" in exp:
        assert r.pmcid == exp["custom2"]


def _check_expected(expected: dict, records: list, path: Path) -> None:
    if "titles_in_order" in expected:
        assert [r.title for r in records] == expected["titles_in_order"]
    if "pmids_in_order" in expected:
        assert [r.pmid for r in records] == expected["pmids_in_order"]
    if "first_record" in expected:  # raw MEDLINE tags
        fr, r = expected["first_record"], records[0]
        assert r.title == fr["TI"]
        assert list(r.authors) == fr["FAU"]
        assert r.year == int(fr["DP"])
        assert r.pages == fr["PG"]
        assert list(r.pub_types) == fr["PT"]
    if "first_reference" in expected:
        _check_reference(expected["first_reference"], records[0])
    if "other_reference" in expected:
        o = expected["other_reference"]
        _check_reference(o, _find(records, title=o["title"]))
    for key, exp in expected.items():
        if key.startswith("record_rec-number_"):
            _check_reference(exp, _find(records, source_id=key.rsplit("_", 1)[1]))
        elif key.startswith("record_PMID_"):
            _check_reference(exp, _find(records, pmid=key.rsplit("_", 1)[1]), loose_title=True)
        elif key.startswith("record_isbn_"):
            _check_reference(exp, _find(records, issn=key.rsplit("_", 1)[1]))
        elif key.startswith("record_") and key[7:].isdigit():
            r = _find(records, pmid=key[7:])
            _check_reference(exp, r)
            assert r.year == int(exp["date"][:4])
            assert r.abstract.startswith(exp["abstract_starts"])
            assert r.abstract.endswith(exp["abstract_ends"])
    if "decisions_observed" in expected:
        obs = expected["decisions_observed"]
        votes = [next(iter(r.extra.get("rayyan_inclusion", {}).values()), None) for r in records]
        assert votes.count("Included") == obs["Included"]
        assert votes.count("Excluded") == obs["Excluded"]
        assert votes.count(None) == obs["no decision"]
    if "labels_in_order" in expected:
        want = expected["labels_in_order"]
        raw = [(r.extra.get("reviewer_labels") or {}).get("Anonymous", "") for r in records]
        if any(raw):  # abstrackr: the reviewer's own column, kept verbatim
            assert raw[: len(want)] == want
            assert raw[len(want):] == [""] * 4
        else:  # ASReview: label_included 1/0/empty read as include/exclude/unlabelled
            labels = read_file(path).result.labels
            assert [{"include": "1", "exclude": "0", None: ""}[lab] for lab in labels] == want
