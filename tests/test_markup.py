"""Text from services and files is read as a reader of the page would see it:
markup tags dropped, character references decoded, and comparisons such as
"<7% ... >9%" never mistaken for a tag."""

from __future__ import annotations

import csv

import pytest

from base.record import clean_text, strip_markup, without_markup
from conftest import shared_path
from connectors import crossref
from db.formats.common import clean_markup
from screeners.prioritiser.simulation import load_dataset


@pytest.mark.parametrize("clean", [clean_text, clean_markup, strip_markup])
def test_comparisons_are_text_not_tags(clean):
    # a loose "<...>" pattern used to swallow everything between the two signs
    assert clean("HbA1c <7% in 40% and >9% in 10%") == "HbA1c <7% in 40% and >9% in 10%"
    assert clean("p<0.05, n>3 and 2 < 3 > 1") == "p<0.05, n>3 and 2 < 3 > 1"


@pytest.mark.parametrize("clean", [clean_text, clean_markup, strip_markup])
def test_tags_go_and_character_references_are_decoded(clean):
    assert clean("Health &amp; Social Care") == "Health & Social Care"
    assert clean("Wilson&rsquo;s disease &ndash; a &#8220;cohort&#8221;") == (
        "Wilson\u2019s disease \u2013 a \u201ccohort\u201d")
    assert clean('<jats:p>effect (<jats:italic>p</jats:italic>\n \u00a0&lt;\u00a00.01)</jats:p>'
                 ).replace("( ", "(") == "effect (p < 0.01)"
    # R's code points for what it could not encode
    assert clean("IFN<U+03B3> by early life stress, 2<U+2032>-amino") == (
        "IFN\u03b3 by early life stress, 2\u2032-amino")
    # a tag written out as text on purpose stays text
    assert clean("the &lt;b&gt; element") == "the <b> element"
    assert clean("  <p>  </p> ") is None


def test_without_markup_leaves_plain_text_untouched():
    text = "Zinc versus penicillamine: 40 patients, 12 years"
    assert without_markup(text) is text


@pytest.mark.shared
def test_real_crossref_journal_names_and_abstracts_are_decoded():
    base = shared_path("fixtures", "http", "crossref")
    listing = crossref.parse_work_list(
        (base / "members-98-works_query.author-carl-boettiger_rows7.json").read_bytes())
    journals = {crossref.work_to_record(w).journal for w in listing["items"]}
    assert "Health & Social Care in the Community" in journals
    assert not any("&amp;" in (j or "") for j in journals)
    listing = crossref.parse_work_list(
        (base / "journals-2167-8359-works_filter-type-journal-article_query.bibliographic.json"
         ).read_bytes())
    records = {r.doi: r for r in map(crossref.work_to_record, listing["items"])}
    assert "local maximum length (p < 0.01) and a weaker" in records["10.7717/peerj.15141"].abstract
    assert not any("&lt;" in (r.abstract or "") or "<jats" in (r.abstract or "")
                   for r in records.values())


def test_a_simulated_dataset_is_cleaned_as_an_import_would_be(tmp_path):
    path = tmp_path / "set.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["record_id", "title", "abstract", "label_included"])
        w.writerow(["a", "Wilson&rsquo;s disease", "Cu<sup>2+</sup> &amp; zinc, HbA1c <7%", 1])
        w.writerow(["b", "Copper  in\nsoil", "", 0])
        w.writerow(["c", "Zinc", "<i>in vitro</i>", 0])
    ds = load_dataset(path)
    assert ds.titles == ("Wilson\u2019s disease", "Copper in soil", "Zinc")
    assert ds.texts[0] == "Wilson\u2019s disease Cu 2+ & zinc, HbA1c <7%"


@pytest.mark.shared
def test_the_real_wilson_set_keeps_no_markup():
    ds = load_dataset(shared_path("data", "screening", "Appenzeller-Herzog_2019.csv"))
    # 142 records carried <sup>/<inf>/<sub> tags and one an &rsquo; before cleaning
    assert not any("<sup>" in t or "<inf>" in t or "&rsquo;" in t for t in ds.texts)
    hard = [t for t in ds.texts if "Swiss tertiary referral centre" in t]
    assert len(hard) == 1 and "Wilson\u2019s disease is an inherited disorder" in hard[0]
