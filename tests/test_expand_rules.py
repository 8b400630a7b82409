"""The pure rules of expansion: who the lead author is, what a journal article is,
how records are ranked."""

from __future__ import annotations

import pytest

from base.record import Author, Record
from cluster.expand import (ExpandError, ExpandOptions, _family_initials, _same_person, is_journal,
                            tfidf_scores)

LEAD = Author("Dubois, Nora", "0000-0002-1825-0097", ("Lakeside Institute of Health. nora@x.example.org",))


def rec(*authors: Author, year: int = 2010) -> Record:
    return Record(title="t", authors=tuple(a.name for a in authors), author_details=authors, year=year)


NO_ORCID = Author(LEAD.name, None, LEAD.affiliations)
BARE = Author(LEAD.name)


@pytest.mark.parametrize("lead, other, year, verdict", [
    (LEAD, Author("Dubois, Nora", "0000-0002-1825-0097", ("Elsewhere",)), 1990, "orcid"),  # ORCID wins
    (LEAD, Author("Dubois, Nora", "0000-0001-5109-3700", ("Lakeside Institute of Health",)), 2010, None),
    (NO_ORCID, Author("Dubois, N", None, ("Lakeside Institute of Health",)), 1990, "affiliation"),
    (NO_ORCID, Author("Dubois, Nora", None, ("Southport University Hospital",)), 2010, None),
    (LEAD, Author("Dubois, Nora", None, ()), 2013, "year window"),   # nothing else to go on
    (BARE, Author("Dubois, Nora", None, ()), 2020, None),
    (NO_ORCID, Author("Dubois, Paul", None, ("Lakeside Institute of Health",)), 2010, None),
    (NO_ORCID, Author("Duboise, Nora", None, ("Lakeside Institute of Health",)), 2010, None),
])
def test_lead_author_disambiguation(lead, other, year, verdict):
    assert _same_person(lead, rec(Author("Smith, J"), other, year=year), 2010, 5) == verdict


def test_family_initials_from_each_service_spelling():
    assert _family_initials(Author("Dubois, Nora Ann")) == ("Dubois", "NA")
    assert _family_initials(Author("Dubois, NA")) == ("Dubois", "NA")
    assert _family_initials(Author("Nora-Ann Dubois")) == ("Dubois", "NA")
    assert _family_initials(Author("O'Neill, J.")) == ("O'Neill", "J")


@pytest.mark.parametrize("types, extra, verdict", [
    (("Journal Article", "Review"), {}, True),           # PubMed review
    (("Editorial",), {}, False),                          # PubMed editorial
    (("journal-article",), {}, True),                     # Crossref
    (("proceedings-article",), {}, False),
    (("article",), {"type_crossref": "journal-article"}, True),      # OpenAlex
    (("article",), {"type_crossref": "proceedings-article"}, False),
    (("review",), {"type_crossref": "journal-article"}, True),
    (("editorial",), {"type_crossref": "journal-article"}, False),
    ((), {}, None),                                       # unknown: kept and flagged
])
def test_journal_article_rule(types, extra, verdict):
    assert is_journal(Record(pub_types=types, extra=extra)) is verdict


def test_tfidf_ranks_by_shared_vocabulary():
    scores = tfidf_scores("compassion training for nurses",
                          ["statin therapy in stroke", "compassion training among nurses", "", "nurses"])
    assert scores[1] > scores[3] > scores[0] == scores[2] == 0.0
    assert tfidf_scores("x", []) == []


def test_options_are_checked():
    with pytest.raises(ExpandError, match="Unknown strategy 'bogus'"):
        ExpandOptions(strategies=("bogus",))
    with pytest.raises(ExpandError, match="--depth must be at least 1"):
        ExpandOptions(depth=0)
    assert ExpandOptions().limits()["cap"] == "top 20 per index article and strategy, after the filters"
