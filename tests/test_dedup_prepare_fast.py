"""Normalising takes shortcuts (cheap tests before costly patterns, cached journals, the store's
fields without a `Record`): each must give exactly the keys the full path gives."""

from __future__ import annotations

import hashlib
import random
import re

import base.record as record_module
from base.record import Record, normalize_pmid, normalize_year
from cluster.dedup.keys import (TABLE, _fingerprint_values, _values, encode, fingerprint, layout,
                                scan, StoredKeys)
from cluster.dedup.prepare import (NORMALISER_VERSION, PREPARED_FROM, american, boilerplate_title,
                                   normalize_title, prepare_fields, prepare_one, word_text)
from db.store import open_store

#: sha256 of the keys of `tricky_items()`, per NORMALISER_VERSION: the corpus exercises every
#: shortcut's both sides (a bracket or none, a British spelling or none, a correction's citation
#: or a title ending in a year...). Pinned from the keys before the shortcuts were taken.
PINNED_TRICKY = {4: "7ce87d176b2085fcbfc82cb1ad6a6aac25e7eda4cd50dfc8715204b42d53a9a1"}

TITLES = (
    "Ischaemic preconditioning of the heart", "Colour vision in centre-surround cells",
    "Erratum: statins and stroke", "Statins and stroke (vol 49 pg 931 2019)",
    "Statins and stroke corrigendum", "Cohort study of 2019", "Vol 12 of the series 2019",
    "[Therapie der Herzinsuffizienz]. [Article in German]", "Donor heart preservation. Japanese\nOriginal",
    "Heart failure. Part II", "Participation in trials", "WITHDRAWN: Antibiotics for acute otitis",
    "withdrawal of treatment", "Screening: new alternatives. [Review] [53 refs]",
    "Effect of <i>Ginkgo</i> on &Uuml;rban RATS", "Retraction notice", "Comment on: statins",
    "Trial (reprinted from Lancet 2001)", "Annals of Internal Medicine", "Book review",
    "急性心肌梗死的治疗", "Œdème et anæmie", "Résumé_of_the under_scored", "", None,
)
AUTHORS = (
    ("Kelly, A.",), ("Przyklenk K.Kloner R. A.",), ("Saif Muhammad WasifKim Richard",),
    ("LI, X", "SMITH, JW"), ("Li, Xiang", "Smith JW"), ("de la Cruz, M", "and Jones"),
    ("Müller, Ä", "Anonymous"), "John Smith and Ann Doe", (), ("ABc Def",),
)
JOURNALS = ("Annals of Internal Medicine", "Scand J Gastroenterol Suppl", "BMJ Clin Evid",
            "Journal of Examples.30 (27) ()(pp 9103-9116) 2010.Date of Publication: 07 Jul 2010",
            "Journal of Examples. 30(27):9103-16, 2010 Jul", "BMJ Case Reports., 2011.",
            "Abstracts of the Congress", "Haematologica (Online)", "", None)
PAGES = ("561-8", "06-Oct", "CD000437", "e1234", "12 pp", "2010", "S12-4", "381", "00012", "", None)
DOIS = ("10.1016/S0140-6736(05)67890-1", "https://doi.org/10.1002/14651858.CD003463.pub2",
        "S0278-5846(04)00083-0 [pii];10.1016/j.x.2004.05.012 [doi]", "10.20960/nh.381",
        "doi:10.1210%2Fendrev", "10.1016/s0022", "", None)
PMIDS = ("12345", "pmid: 1234567", "000", "0012", "12345.0", " 42 ", 12345, "", None)
YEARS = (2001, 1499, 1500, 2099, 2100, True, "2001", "c. 1999", 12019, None)
VOLUMES = ("26", "1)", "Suppl 3", "160-161", "", None)
ISSUES = ("5", "Suppl 51", "Meeting Abstracts", "", None)
ABSTRACTS = ("We disagree.", "  ", "", None)


def tricky_items() -> list[dict]:
    rng = random.Random(28)
    choices = dict(zip(PREPARED_FROM, (TITLES, AUTHORS, JOURNALS, PAGES, DOIS, PMIDS, YEARS, VOLUMES,
                                       ISSUES, ABSTRACTS)))
    return [{name: rng.choice(values) for name, values in choices.items()} for _ in range(3000)]


def test_the_shortcuts_give_the_keys_pinned_before_them():
    h = hashlib.sha256(layout().encode())
    for i, item in enumerate(tricky_items()):
        h.update(encode(prepare_one(item, i)).encode() + b"\n")
    assert PINNED_TRICKY.get(NORMALISER_VERSION) == h.hexdigest()


def test_fields_in_order_give_the_keys_of_the_record_and_of_the_mapping():
    for i, item in enumerate(tricky_items()[:500]):
        record = Record(**item)
        values = tuple(item[name] for name in PREPARED_FROM)
        assert prepare_fields(i, *values) == prepare_one(record, i) == prepare_one(item, i)


def test_word_text_is_the_pattern_at_byte_speed():
    pattern = re.compile(r"[\W_]+")
    for text in ("a-b  c_d", "  (x) y.  ", "", "___", "Œdème et anæmie", "tab\there\x1cfs", "A1 b2"):
        assert word_text(text) == pattern.sub(" ", text).strip()
    assert word_text("Ischemic pre-conditioning: a trial_x") == "Ischemic pre conditioning a trial x"


def test_british_spellings_become_american_only_where_there_is_one():
    assert american("haemodynamic colour in the centre randomised") == "hemodynamic color in the center randomized"
    assert american("a heart study") == "a heart study"
    # "ise" in the middle of a word (disease) is no British ending
    assert american("disease of the aorta") == "disease of the aorta"
    assert normalize_title("Remote ischaemic preconditioning: a randomised trial of colour") == \
        "remote ischemic preconditioning a randomized trial of color"


def test_a_title_is_boilerplate_when_it_is_the_journal_or_words_any_issue_carries():
    assert boilerplate_title("annals of internal medicine", "annals internal medicine")
    assert boilerplate_title("book review", "lancet")
    assert not boilerplate_title("internal medicine in annals", "annals internal medicine")
    assert not boilerplate_title("medicine", "annals internal medicine")
    assert boilerplate_title("the of", "")
    assert not boilerplate_title("", "")


def test_year_and_pmid_shortcuts_agree_with_the_normalisers():
    for value in (2001, 1499, 1500, 2099, 2100, True, False, 0, 12019, "2001", None, 2001.0):
        assert normalize_year(value) == record_module._year_in_text(value)
        assert type(normalize_year(value)) is type(record_module._year_in_text(value))
    for value in ("12345", "000", "0012", "pmid: 1", "١٢٣", "12345.0", 12345, "", None, " 7"):
        assert normalize_pmid(value) == record_module._pmid_of_text(value)


def test_a_correction_is_found_by_its_citation_or_its_last_word():
    assert prepare_one({"title": "Statins and stroke (vol 49 pg 931 2019)"}, 0).kind == "erratum"
    assert prepare_one({"title": "Statins and stroke (vol 49 pg 931 2019)"}, 0).title == "statins and stroke"
    assert prepare_one({"title": "Statins and stroke corrigendum"}, 0).kind == "erratum"
    assert prepare_one({"title": "Cohort study of 2019"}, 0).kind == ""
    assert prepare_one({"title": "Heart failure. Part II"}, 0).part == "2"
    assert prepare_one({"title": "Participation in trials"}, 0).part == ""


def test_the_store_scan_gives_the_keys_and_fingerprints_of_the_records(tmp_path):
    store = open_store(tmp_path / "review.db")
    items = tricky_items()[:200]
    with store.transaction():
        for item in items:
            fields = {k: v for k, v in item.items() if v is not None}
            fields["authors"] = (fields["authors"],) if isinstance(fields.get("authors"), str) \
                else fields.get("authors", ())
            fields["year"] = fields["year"] if type(fields.get("year")) is int else None
            fields["pmid"] = str(fields["pmid"]) if "pmid" in fields else None
            store.add_record(Record(**fields))
    keys = StoredKeys()
    seen = list(scan(store, keys))
    assert len(seen) == 200 and keys.prepared == 200
    rows = {row["id"]: row for row in store.record_rows("1 = 1", [])}
    from db.store import row_to_record
    for position, (rid, title, p) in enumerate(seen):
        record = row_to_record(rows[rid])
        assert title == record.title
        assert p == prepare_one(record, position)
        assert _fingerprint_values(_values(tuple(rows[rid][name] for name in PREPARED_FROM))) == \
            fingerprint(record)
    with store.transaction():
        assert keys.save(store) == 200
    again = StoredKeys()
    assert [p for _, _, p in scan(store, again)] == [p for _, _, p in seen]
    assert again.reused == 200 and again.prepared == 0
    assert store.db.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0] == 200
