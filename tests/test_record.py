"""Field normalisers for identifiers, pages, years and languages."""

import pytest

from base.record import normalize_doi, normalize_language, normalize_pages, normalize_pmid


@pytest.mark.parametrize("raw,expected", [
    ("https://doi.org/10.1000/ABC.123", "10.1000/abc.123"),
    ("http://dx.doi.org/10.1000/abc", "10.1000/abc"),
    ("doi: 10.1000/abc.", "10.1000/abc"),
    ("10.1002%2F%28SICI%291097", "10.1002/(sici)1097"),
    ("not a doi", None),
    ("", None),
])
def test_normalize_doi(raw, expected):
    assert normalize_doi(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("1341-53", "1341-1353"), ("1341-1353", "1341-1353"), ("06-Oct", "6-10"),
    ("e123", "e123"), ("S12-S19", "S12-S19"), ("12", "12"), ("199-9", "199"),
])
def test_normalize_pages(raw, expected):
    assert normalize_pages(raw) == expected


def test_normalize_pmid_and_language():
    assert normalize_pmid("PMID: 12345") == "12345"
    assert normalize_pmid("12345.0") == "12345"
    assert normalize_pmid("abc") is None
    assert normalize_language(["eng", "nor"]) == ("en", "no")
    assert normalize_language("English; German") == ("en", "de")
