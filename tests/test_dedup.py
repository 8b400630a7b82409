"""The deduplication pipeline on plain lists: each stage, the guards, and bad input."""

from __future__ import annotations

import pytest

from base.record import Record
from cluster.dedup import MAYBE, SAME, PreparedCache, deduplicate
from cluster.dedup.block import BLOCKING_RULES, WINDOW, candidate_pairs
from cluster.dedup.match import journals_agree, score_pair, veto
from cluster.dedup.merge import choose_canonical, fill_missing
from cluster.dedup.prepare import author_surnames, normalize_title, prepare_one

BASE = {"title": "Ischemic preconditioning in chronically hypoxic neonatal rat heart",
        "authors": "Ostadalova I.Ostadal B.Jarkovska D.Kolar F.", "year": "2002",
        "journal": "Pediatr Res", "volume": "52", "issue": "4", "pages": "561-7"}


def p(**fields):
    return prepare_one({**BASE, **fields}, 0)


# --- prepare ---------------------------------------------------------------------


def test_title_normalisation_drops_markup_case_diacritics_and_markers():
    assert normalize_title("Remote ischaemic preconditioning: a randomised trial of colour") == \
        "remote ischemic preconditioning a randomized trial of color"
    assert normalize_title("[Effect of <i>Ginkgo</i> on Ürban RATS]. [Article in Chinese]") == \
        "effect of ginkgo on urban rats"
    assert normalize_title("U.K. controlled trial of X.[Erratum appears in N Engl J Med. 2005]") == \
        "u k controlled trial of x"
    assert normalize_title("Screening: new alternatives. [Review] [53 refs]") == \
        "screening new alternatives"
    assert normalize_title("急性心肌梗死的治疗") == "急性心肌梗死的治疗"
    # a translated title in brackets, quoted whole by the export, is still the title
    assert normalize_title('"[Prevention of empyema in lung surgery. A prospective, randomized study]"') \
        == "prevention of empyema in lung surgery a prospective randomized study"


def test_author_surnames_from_every_export_style():
    assert author_surnames("Przyklenk K.Kloner R. A.") == ["przyklenk", "kloner"]
    assert author_surnames("Wensveen, C W; Kagie, M J") == ["wensveen", "kagie"]
    assert author_surnames("Saif Muhammad WasifKim Richard") == \
        ["saif", "muhammad", "wasif", "kim", "richard"]
    assert author_surnames(("Li, Xiang", "Smith JW")) == ["li", "xiang", "smith"]


def test_pages_doi_and_identifiers_are_normalised():
    assert (p(pages="1341-53").page_first, p(pages="1341-53").page_last) == ("1341", "1353")
    excel = p(pages="06-Oct")
    assert (excel.page_first, excel.page_last, excel.pages_mangled) == ("6", "10", True)
    assert not p(doi="10.1016/s0022").doi_trusted
    full = p(doi="http://dx.doi.org/10.1016/S0735-1097%2800%2901125-6")
    assert full.doi == "10.1016/s0735-1097(00)01125-6" and full.doi_trusted
    assert p(doi="10.1002/14651858.CD003463.pub2").cochrane == "3463"
    assert p(pages="CD003463", doi="").cochrane == "3463"
    assert p(title="Erratum: Ischemic preconditioning").kind == "erratum"
    assert p(title="Reply to: Ischemic preconditioning").kind == "comment"
    assert p(title="Ischemic preconditioning. Part II: clinical use").part == "2"


# --- block -------------------------------------------------------------------------


def test_blocking_rules_are_data_and_complementary():
    names = [r.name for r in BLOCKING_RULES]
    assert names == ["doi", "pmid", "title_head", "title_tail", "author_page", "volume_page",
                     "author_year_title", "title_long_words", "review_versions"]
    # a duplicate whose title was translated is still found by author and pages
    a = p(title="Action of dibunol isoptin and their combination in transitory ischemia")
    b = p(title="Study of effects of dibunol isoptine in conscious rabbits")
    assert candidate_pairs([a, b]) == [(0, 1)]


def test_oversized_block_is_not_expanded_to_all_pairs():
    many = [prepare_one({"title": "Highlights of the current issue of the journal", "year": 2000 + i % 20}, i) for i in range(400)]
    pairs = candidate_pairs(many)
    assert 0 < len(pairs) <= 400 * WINDOW
    assert len(pairs) < 400 * 399 // 2


def test_incremental_blocking_only_pairs_new_records():
    recs = [p(), p(), p(), p()]
    assert candidate_pairs(recs) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    assert candidate_pairs(recs, new=[3]) == [(0, 3), (1, 3), (2, 3)]
    assert candidate_pairs(recs, new=[]) == []


# --- match -------------------------------------------------------------------------


@pytest.mark.parametrize("a, b, reason", [
    ({"doi": "10.1161/hc5001.100039"}, {"doi": "10.1161/hc4801.100038", "pages": "2981-9"},
     "different DOIs"),
    ({"title": "Erratum: " + BASE["title"]}, {}, "erratum or comment vs article"),
    ({"title": BASE["title"] + ". Part I"}, {"title": BASE["title"] + ". Part II"}, "different parts"),
    ({"year": "1999"}, {"year": "2002"}, "years differ"),
    ({"pages": "561-7"}, {"pages": "601-9"}, "different pages in the same journal"),
    ({"title": "FOCUS 1: a randomized trial of ceftaroline"},
     {"title": "FOCUS 2: a randomized trial of ceftaroline"}, "different numbers in the titles"),
    ({"journal": "Can J Neurol Sci", "volume": "37", "pages": "S42"},
     {"journal": "Stroke", "volume": "41", "pages": "e505"}, "another journal and volume"),
])
def test_vetoes(a, b, reason):
    assert veto(p(**a), p(**b)) == reason
    assert score_pair(p(**a), p(**b)).label == "different"


def test_doi_match_needs_title_agreement():
    same_doi = {"doi": "10.2337/db15386741", "pages": "A134"}
    one = p(title="A sodium glucose cotransporter-2 inhibitor prevents atherosclerosis", **same_doi)
    two = p(title="A DPP-4 inhibitor suppresses abdominal aorta aneurysms", **same_doi)
    assert score_pair(one, two).label != SAME
    assert score_pair(p(**same_doi), p(**same_doi, title=BASE["title"].upper())).rule == \
        "identifier+title"


def test_ahead_of_print_year_plus_one_is_the_same_work():
    epub = p(year="2019", volume="", issue="", pages="", doi="10.1016/j.biopsych.2019.10.015")
    final = p(year="2020", doi="10.1016/j.biopsych.2019.10.015")
    assert score_pair(epub, final).label == SAME


def test_journal_abbreviations():
    assert journals_agree("mol cell cardiol", "molecular cellular cardiology")
    assert journals_agree("clinical virology", "clinical virology official publication pan american")
    assert not journals_agree("transplantation", "heart lung transplantation")
    assert journals_agree("eur arch otorhinolaryngol", "european archives oto rhino laryngology")
    assert not journals_agree("circ res", "circulation")
    assert prepare_one({"journal": "Can J Anaesth"}, 0).journal == "can anesth"
    assert journals_agree(prepare_one({"journal": "Scand J Gastroenterol Suppl"}, 0).journal,
                          prepare_one({"journal": "Scandinavian Journal of Gastroenterology"}, 0).journal)


def test_corrections_in_every_form_are_one_kind_with_the_article_title():
    article = "Effect of immobilisation on neuromuscular function in vivo in humans"
    forms = [f"Correction to: {article}", f"{article} (vol 49 pg 931 2019)", f"Erratum: {article}",
             f"{article} - Erratum"]
    prepared = [prepare_one({"title": t}, 0) for t in forms]
    assert {x.kind for x in prepared} == {"erratum"}
    assert {x.title for x in prepared} == {normalize_title(article)}
    assert prepare_one({"title": f"Retraction: {article}"}, 0).kind == "retraction"
    assert prepare_one({"title": f"WITHDRAWN: {article}"}, 0).title == normalize_title(article)
    assert prepare_one({"title": f"{article} (Reprinted from J Clin Periodontol, vol 40, pg S1-S7, 2013)"},
                       0).title == normalize_title(article)


def test_cochrane_number_is_compared_without_leading_zeros():
    in_pages = prepare_one({"pages": "CD000510"}, 0)
    in_doi = prepare_one({"doi": "10.1002/14651858.CD000510.pub2"}, 1)
    assert in_pages.cochrane == in_doi.cochrane == "510"


def test_supplement_numbered_as_volume_or_issue_is_not_another_volume():
    suppl_series = p(journal="J Rheumatol Suppl", volume="51", issue="", pages="31-41")
    main = p(journal="Journal of Rheumatology", volume="25", issue="SUPPL. 51", pages="31-41")
    assert (suppl_series.supplement, main.supplement) == ("51", "51")
    assert veto(suppl_series, main) is None
    assert veto(suppl_series, p(journal="Journal of Rheumatology", volume="25", issue="52",
                                pages="31-41")) == "different volumes"


def test_supplement_number_as_volume_matches_the_main_volume_with_no_issue():
    suppl_series = p(journal="Acta Neurol Scand Suppl", volume="185", issue="", pages="63-70")
    main = p(journal="Acta Neurol Scand", volume="114", issue="", pages="63-70")
    assert veto(suppl_series, main) is None
    assert veto(suppl_series, p(journal="Acta Neurol Scand", volume="114", issue="",
                                pages="71-80")) == "different volumes"


def test_article_number_in_the_pages_is_not_a_page_range():
    numbered = p(doi="10.20960/nh.381", pages="381", volume="33", issue="4")
    printed = p(doi="10.20960/nh.381", pages="856-864", volume="33", issue="4")
    assert numbered.pages_mangled and not printed.pages_mangled
    assert veto(numbered, printed) is None
    # a page range that starts with the DOI's last digits is still a page range
    assert not p(doi="10.3238/arztebl.2019.0435", pages="435-444").pages_mangled
    assert not p(doi="10.3238/arztebl.2019.0435", pages="435-+").pages_mangled
    # without the DOI, a lone number and a range are still of two kinds: no evidence either way
    assert veto(p(pages="381", volume="33"), p(pages="856-864", volume="33")) is None
    # two ranges are of one kind: they disagree
    assert veto(p(pages="381-390", volume="33"), p(pages="856-864", volume="33")) == \
        "different pages in the same journal"


def test_clinical_evidence_updates_of_one_chapter_are_one_review():
    chapter = {"title": "Head lice", "journal": "BMJ Clin Evid", "volume": "", "issue": "", "pages": ""}
    v2009 = prepare_one({**chapter, "authors": "Burgess I. F.", "year": "2009"}, 0)
    v2015 = prepare_one({**chapter, "authors": "Burgess I. F.Silverston P.", "year": "2015"}, 1)
    other = prepare_one({**chapter, "title": "Trachoma", "authors": "Solomon A.", "year": "2009"}, 2)
    assert v2009.chapter == v2015.chapter == "headlice"
    assert candidate_pairs([v2009, v2015, other]) == [(0, 1)]
    assert score_pair(v2009, v2015).label == SAME
    # the same title in an ordinary journal six years apart is not one work
    assert veto(p(title="Head lice", year="2009"), p(title="Head lice", year="2015")) == "years differ"


def test_one_doi_with_other_titles_and_authors_is_different_not_review():
    supplement = {"doi": "10.1093/eurjhf/hss017", "pages": "S279", "journal": "Eur J Heart Fail Suppl"}
    one = p(title="Effect of hydrogen sulfide on cardiac function and reperfusion injury",
            authors="Sagach V. F.Shimanskaya T. V.", **supplement)
    two = p(title="The influence of chronic renal failure on the cardioprotective effect",
            authors="Sarkozy M.Kocsis F. G.", **supplement)
    verdict = score_pair(one, two)
    assert (verdict.label, verdict.rule) == ("different", "identifier, title and authors differ")
    # without authors to compare, a supplement's DOI over two other titles is two abstracts
    verdict = score_pair(p(title=one.title, authors="", **supplement),
                         p(title=two.title, authors="", **supplement))
    assert (verdict.label, verdict.rule) == ("different", "identifier of a supplement, titles differ")
    # a journal article's DOI over another title and no authors: a person decides, told why
    article = {"doi": "10.1093/eurjhf/hss017", "journal": "Eur J Heart Fail"}
    verdict = score_pair(p(title=one.title, authors="", pages="279-285", **article),
                         p(title=two.title, authors="", pages="", **article))
    assert (verdict.label, verdict.rule) == (MAYBE, "identifier, titles differ")
    assert verdict.reason.startswith("titles ") and verdict.reason.endswith("% alike")


def test_cache_prepares_only_new_or_changed_records():
    old = [{**BASE, "pages": f"{100 + 10 * k}-{105 + 10 * k}", "title": f"{BASE['title']} {w}"}
           for k, w in enumerate(["alpha", "beta", "gamma"])]
    cache = PreparedCache()
    first = deduplicate(old, cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (0, 3, 3)
    new = [*old, dict(old[0]), {**old[1], "title": "Hypoxic tolerance of the adult rat heart", "pages": "900-5"}]
    warm = deduplicate(new, new=[3, 4], cache=cache)
    assert (cache.hits, cache.misses, len(cache)) == (4, 4, 4)
    assert [c.members for c in warm.clusters] == [c.members for c in deduplicate(new, new=[3, 4]).clusters]
    assert [c.members for c in warm.clusters] == [(0, 3)] and first.clusters == ()


def test_grey_zone_is_maybe():
    a = prepare_one({"title": "Exercise training for depression in older adults: a randomized trial",
                     "year": 2012}, 0)
    b = prepare_one({"title": "Exercise training for depression in older people: a randomized "
                              "controlled trial", "year": 2012}, 1)
    assert score_pair(a, b).label == MAYBE


# --- cluster and merge ----------------------------------------------------------------


def test_no_chaining_across_different_dois():
    # A and C both match B, which has no DOI; A and C have different valid DOIs
    items = [{**BASE, "doi": "10.1203/00006450-200210000-00016"}, {**BASE},
             {**BASE, "doi": "10.1203/01.pdr.0000030879.20888.5b", "pages": "561-567",
              "volume": "53"}]
    result = deduplicate(items)
    for c in result.clusters:
        assert not {0, 2} <= set(c.members)
    assert sum(len(c.members) for c in result.clusters) == 2


def test_cannot_link_keeps_a_decided_pair_apart():
    items = [dict(BASE), dict(BASE), dict(BASE)]
    assert [c.members for c in deduplicate(items).clusters] == [(0, 1, 2)]
    split = deduplicate(items, cannot_link=[(0, 1)])
    assert all(not {0, 1} <= set(c.members) for c in split.clusters)


def test_canonical_is_the_most_complete_and_gets_missing_fields():
    bare = Record(title=BASE["title"], year=2002)
    rich = Record(title=BASE["title"], year=2002, doi="10.1203/x", pmid="12357051",
                  journal="Pediatr Res")
    with_abstract = Record(title=BASE["title"], abstract="Background: ...", year=2002)
    items = [bare, rich, with_abstract]
    assert choose_canonical(items, [0, 1, 2]) == 1
    assert fill_missing(items, 1, [0, 1, 2]) == {"abstract": "Background: ..."}
    assert choose_canonical(items, [0, 1, 2], preferred=[2]) == 2


def test_pipeline_on_records_and_progress():
    calls = []
    recs = [Record(title=BASE["title"], authors=("Ostadalova, I", "Ostadal, B"), year=2002,
                   journal="Pediatr Res", volume="52", pages="561-567"),
            Record(title=BASE["title"].upper(), authors=("Ostadalova I.",), year=2002,
                   journal="Pediatric Research", volume="52", pages="561-7", pmid="12357051")]
    result = deduplicate(recs, progress=lambda stage, done, total: calls.append((stage, done, total)))
    assert [c.members for c in result.clusters] == [(0, 1)]
    assert result.clusters[0].canonical == 1
    assert result.n_duplicates == 1
    assert {s for s, _, _ in calls} == {"prepare", "block", "match", "cluster"}
    assert ("prepare", 2, 2) in calls


# --- bad input ----------------------------------------------------------------------


def test_bad_input_does_not_crash():
    assert deduplicate([]).n_records == 0
    long_authors = "; ".join(f"Author{i}, A" for i in range(40))[:200]
    items = [{"title": None}, {"title": ""}, {"authors": long_authors},
             {"title": "急性心肌梗死的治疗", "year": "2010", "authors": "王伟"},
             {"title": "急性心肌梗死的治疗", "year": "2010", "authors": "王伟"},
             {"title": "Лечение инфаркта миокарда у пожилых больных", "year": "1999"},
             {"title": "Treatment of myocardial infarction in elderly patients", "year": "1999"}]
    result = deduplicate(items)
    assert [c.members for c in result.clusters] == [(3, 4)]
    assert result.review == ()
