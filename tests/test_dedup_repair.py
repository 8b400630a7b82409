"""Field repair before matching: what messy exports put in the wrong field, and what it may veto.

Every example is invented, one per pattern the exports of Embase via Ovid,
PubMed and other databases show: a whole citation in the journal field,
identifier fields holding several things, authors run together, pages that
are no page range, online-first pagination.
"""

from __future__ import annotations

import pytest

from cluster.dedup import DIFFERENT, MAYBE, SAME, deduplicate
from cluster.dedup.match import disagreements, score_pair, uncertainty, veto
from cluster.dedup.prepare import (Citation, Identifiers, author_surnames, parse_citation,
                                   prepare_one, split_identifiers)

TITLE = "Mitochondrial calcium uptake limits reperfusion injury in the aged rat heart"
BASE = {"title": TITLE, "authors": "Smith, J. A.; Jones, B. C.; Lee, K.", "year": "2010",
        "journal": "J Examples", "volume": "30", "issue": "27"}


def p(**fields):
    return prepare_one({**BASE, **fields}, 0)


# --- citation strings in the journal field ----------------------------------------------------


def test_embase_citation_in_the_journal_field_gives_every_part():
    assert parse_citation("Journal of Examples.30 (27) ()(pp 9103-9116) 2010.Date of Publication: "
                          "07 Jul 2010") == Citation("Journal of Examples", "30", "27", "9103-9116", 2010,
                                                     "07 Jul 2010")
    # an edition note and a doubled full stop before the volume; no volume, no issue
    assert parse_citation("Postepy Higieny (Online)..61 () ()(pp 167-177) 2007.") == \
        Citation("Postepy Higieny (Online)", "61", "", "167-177", 2007)
    assert parse_citation("J Examples. () ()(pp 1-9) .Date of Publication: Mar 2001") == \
        Citation("J Examples", "", "", "1-9", 2001, "Mar 2001")


def test_embase_citations_without_pages_or_issue_and_with_an_article_number():
    assert parse_citation("Journal of Examples.30 (27) (no pagination), 2010. Article Number: e1234. "
                          "Date of Publication: 01 Jan 2010") == \
        Citation("Journal of Examples", "30", "27", "e1234", 2010, "01 Jan 2010")
    assert parse_citation("Journal of Examples. 30 (27) , 2010.") == \
        Citation("Journal of Examples", "30", "27", year=2010)
    # a conference abstract keeps the conference in its journal: it stays an abstract
    cited = parse_citation("Transplant Int.Conference: 20th Annual Congress. Berlin.24 (pp 35) 2011.")
    assert cited == Citation("Transplant Int.Conference: 20th Annual Congress. Berlin", "24", "", "35", 2011)
    assert p(journal="Transplant Int.Conference: 20th Annual Congress. Berlin.24 (pp 35) 2011.").is_abstract


def test_medline_and_year_only_citations_in_the_journal_field():
    assert parse_citation("Journal of Examples. 30(27):9103-16, 2010 Jul") == \
        Citation("Journal of Examples", "30", "27", "9103-16", 2010)
    assert parse_citation("BMJ Case Reports., 2011.") == Citation("BMJ Case Reports", year=2011)
    # a journal's name alone, even with full stops, a number or a subtitle, is no citation
    for name in ("J. Examples", "Acta Chir. Scand.", "Acta Chir. (Stockh)", "Proc. Natl. Acad. Sci. U.S.A.",
                 "Proceedings of the 52nd Hawaii International Conference",
                 "Zhonghua wei chang wai ke za zhi = Chinese journal of surgery", "Acta Chir. Scand.", ""):
        assert parse_citation(name) is None, name


def test_citation_fills_the_fields_the_record_leaves_empty():
    cited = p(journal="Journal of Examples.30 (27) ()(pp 9103-9116) 2010.Date of Publication: 07 Jul 2010",
              volume="", issue="", year="")
    plain = p(journal="J Examples", pages="9103-16")
    assert (cited.journal, cited.volume, cited.issue, cited.page_first, cited.page_last, cited.year) == \
        ("examples", "30", "27", "9103", "9116", 2010)
    assert score_pair(cited, plain).label == SAME
    # the record's own volume wins over the one in the citation
    assert p(journal="J Examples.31 (2) ()(pp 1-9) 2010.", volume="30").volume == "30"


# --- identifier fields holding several things ------------------------------------------------


def test_identifier_field_keeps_every_doi_pmid_and_pii():
    assert split_identifiers("S0278-5846(04)00083-0 [pii];10.1016/j.example.2004.05.012 [doi]") == \
        Identifiers(("10.1016/j.example.2004.05.012",), (), ("s0278584604000830",))
    assert split_identifiers("http://dx.doi.org/10.1186/1471-2318-13-55") == \
        Identifiers(("10.1186/1471-2318-13-55",), (), ())
    assert split_identifiers("10.1016/j.example.2009.01.004 19234567") == \
        Identifiers(("10.1016/j.example.2009.01.004",), ("19234567",), ())
    assert split_identifiers("10.1000/a.1; 10.1000/b.2 [doi]; PMID: 123", "999") == \
        Identifiers(("10.1000/a.1", "10.1000/b.2"), ("999", "123"), ())
    # a SICI DOI holds a ";" of its own; an Elsevier DOI is its article's PII
    assert split_identifiers("10.1002/1097-4644(20001201)79:3<453::aid-jcb100>3.0.co;2-m").dois == \
        ("10.1002/1097-4644(20001201)79:3<453::aid-jcb100>3.0.co;2-m",)
    assert split_identifiers("http://dx.doi.org/10.1016/S0278-5846%2804%2900083-0").piis == \
        ("s0278584604000830",)
    # a number too short for a PMID, untagged, is no PMID
    assert split_identifiers("10.1590/1984-0462/;2018;36;1;00010").pmids == ()


def test_a_pii_in_one_record_and_the_elsevier_doi_in_another_are_one_identifier():
    a = p(doi="S0278-5846(04)00083-0 [pii]", title=TITLE + " in vivo")
    b = p(doi="10.1016/S0278-5846(04)00083-0", authors="")
    assert "p:s0278584604000830" in a.ids.split() and "p:s0278584604000830" in b.ids.split()
    assert score_pair(a, b).rule == "identifier+title"


def test_a_doi_field_with_a_pmid_after_the_doi_agrees_with_the_pmid_alone():
    a = p(doi="10.1016/j.example.2009.01.004 19234567", title=TITLE + ": a cohort")
    b = p(pmid="19234567", doi="")
    assert (a.doi, a.pmid) == ("10.1016/j.example.2009.01.004", "19234567")
    assert score_pair(a, b).rule == "identifier+title"


def test_several_dois_in_one_field_do_not_conflict_with_either():
    both = p(doi="10.1000/example.book.1 [doi]; 10.1000/example.chapter.7 [doi]")
    assert veto(both, p(doi="10.1000/example.chapter.7")) is None
    assert veto(p(doi="10.1000/example.book.1"), p(doi="10.1000/example.chapter.7")) == "different DOIs"


# --- authors run together --------------------------------------------------------------------


@pytest.mark.parametrize("written", ["SmithJ.A.JonesB.-C.LeeK.", "Smith J. A.Jones B.-C.Lee K.",
                                     "Smith, J. A.; Jones, B. C.; Lee, K.", "Smith JA, Jones BC, Lee K"])
def test_run_together_authors_give_the_surnames(written):
    assert author_surnames(written) == ["smith", "jones", "lee"]


# --- pages: kinds, and what may disagree -----------------------------------------------------


@pytest.mark.parametrize("pages, kind", [
    ("566-582", "range"), ("566-82", "range"), ("1598-1598", "range"), ("S12-4", "range"),
    ("14", "start"), ("e1234", "article"), ("pp 29", "article"), ("CD000437", "article"),
    ("0155404", "article"), ("2010", "year"), ("12 pp", "count"), ("12 p.", "count"),
    ("06-Oct", ""), ("", ""), ("2297-2108", "")])
def test_pages_are_classified(pages, kind):
    assert p(pages=pages).page_kind == kind


def test_pages_of_different_kinds_are_no_evidence():
    paper = p(pages="566-582")
    for other in ("14", "e1234", "pp 29", "2010", "12 pp"):
        assert veto(p(pages=other), paper) is None, other
        assert score_pair(p(pages=other), paper).label == SAME, other
    # two ranges of one journal's volume disagree
    assert veto(p(pages="101-110"), paper) == "different pages in the same journal"


def test_online_first_pagination_within_a_year_is_not_disagreement():
    issue = p(pages="819-853", year="2012", doi="10.1093/eurheartj/ehx9912")
    online = p(pages="1-35", year="2011", doi="")
    assert veto(online, issue) is None and score_pair(online, issue).label == SAME
    assert [c.members for c in deduplicate([dict(BASE, pages="1-35", year="2011"),
                                            dict(BASE, pages="819-853", year="2012")]).clusters] == [(0, 1)]
    # two years apart it is another work
    assert veto(p(pages="1-35", year="2009"), issue) == "years differ"
    # two ranges neither of which starts at page 1 still disagree
    assert veto(p(pages="2-36", year="2011"), issue) == "different pages in the same journal"


# --- hard negatives --------------------------------------------------------------------------


def test_a_year_apart_is_another_meeting_or_editorial():
    def pair(title, journal_a, journal_b, **fields):
        common = dict(title=title, authors="Doe, A.", **fields)
        return veto(prepare_one(dict(common, year="2019", journal=journal_a), 0),
                    prepare_one(dict(common, year="2020", journal=journal_b), 1))
    assert pair("Editorial: the year in cardiology", "Eur Heart J", "European Heart Journal") == \
        "another year of a series"
    assert pair("Introduction to the minitrack on social media", "Proc Hawaii Int Conf Syst Sci",
                "Proc Hawaii Int Conf Syst Sci") == "another year of a series"
    # an article ahead of print is still one work a year apart
    assert pair(TITLE, "Eur Heart J", "European Heart Journal") is None


def test_numbered_meetings_are_different_venues():
    a = prepare_one(dict(title="A tutorial on examples", year="2019",
                         journal="Proceedings of the 52nd Annual Meeting on Examples"), 0)
    b = prepare_one(dict(title="A tutorial on examples", year="2019",
                         journal="Proceedings of the 53rd Annual Meeting on Examples"), 1)
    assert veto(a, b) == "another meeting or edition"


def test_boilerplate_titles_need_their_citation():
    def pair(title, **fields):
        common = dict(title=title, year="2016", **fields)
        return score_pair(prepare_one(dict(common, journal="J Examples"), 0),
                          prepare_one(dict(common, journal="Journal of Examples"), 1))
    for title in ("Book review", "Editorial", "Letter to the editor", "Journal of Examples"):
        assert (pair(title).label, pair(title).rule) == (DIFFERENT, "boilerplate title"), title
    assert pair("Book review", volume="12", pages="301-302").rule == "boilerplate title+citation"
    assert pair("Preface", authors="Doe, A.", volume="36").rule == "boilerplate title+citation"


# --- why a pair is left to a person ----------------------------------------------------------


def test_review_pairs_say_which_fields_disagree():
    a = prepare_one(dict(title="Exercise training for depression in older adults: a randomized trial",
                         authors="Doe, A.", year="2012", journal="J Examples"), 0)
    b = prepare_one(dict(title="Exercise training for depression in older people: a randomized controlled "
                               "trial", authors="Doe, A.", year="2012", journal="J Examples"), 1)
    verdict = score_pair(a, b)
    assert (verdict.label, verdict.reason) == (MAYBE, "titles 86 % alike")
    older, newer = p(year="2010", volume="30", pages="2-9"), p(year="2011", volume="31", pages="20-29")
    assert disagreements(older, newer) == [
        ("year", "years 2010 and 2011"), ("volume", "volumes 30 and 31"), ("pages", "pages 2-9 and 20-29")]
    # nothing disagrees, but little is known on one side
    bare = prepare_one(dict(title=a.title), 0)
    assert uncertainty(bare, a) == "nothing disagrees, but no authors, year, journal, pages on one side"


def test_a_meeting_abstract_and_the_paper_a_year_later_are_two_works():
    abstract = prepare_one(dict(title=TITLE, authors="Smith, J. A.; Jones, B. C.", year="2010",
                                journal="Am J Respir Crit Care Med", issue="1 MeetingAbstracts"), 0)
    paper = prepare_one(dict(title=TITLE, authors="Smith, J. A.; Lee, K.", year="2011",
                             journal="American Journal of Respiratory and Critical Care Medicine",
                             volume="183", issue="3", pages="330-340"), 1)
    assert abstract.meeting and abstract.is_abstract and not paper.meeting
    assert veto(abstract, paper) == "conference abstract vs paper"
    # a supplement is no meeting: its article ahead of print a year earlier is the same work
    supplement = prepare_one(dict(title=TITLE, authors="Smith, J. A.", year="2010", journal="Nefrologia",
                                  volume="30", issue="Suppl 2", pages="30-38"), 0)
    online = prepare_one(dict(title=TITLE, authors="Smith, J. A.", year="2009", journal="Nefrologia"), 1)
    assert supplement.is_abstract and not supplement.meeting
    assert veto(supplement, online) is None and score_pair(supplement, online).label == SAME


def test_a_whole_page_range_stands_in_for_a_volume_missing_on_one_side():
    german = prepare_one(dict(title="[Neoadjuvante Chemotherapie beim lokal fortgeschrittenen Karzinom]",
                              authors="Eberhardt, W.; Wilke, H.", year="1997", journal="Praxis",
                              pages="1647-1653"), 0)
    english = prepare_one(dict(title="Neoadjuvant chemotherapy in locally advanced carcinoma",
                               authors="Eberhardt, W.; Wilke, H.", year="1997", volume="86",
                               journal="Praxis", pages="1647-53"), 1)
    # a translated title: authors, year and every page from first to last agree
    assert score_pair(german, english).rule == "authors+volume+pages"
    # a first page alone is not enough
    short = prepare_one(dict(title=english.title, authors="Eberhardt, W.; Wilke, H.", year="1997",
                             volume="86", journal="Praxis", pages="1647"), 1)
    assert score_pair(german, short).label != SAME
