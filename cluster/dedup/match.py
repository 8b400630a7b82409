"""Stage 3 of deduplication: score a candidate pair and say same, maybe or different.

The order matters. Vetoes come first, because what looks alike is often not the
same work: an erratum and its article, Part I and Part II, a conference abstract
and the paper that followed, two articles of one journal on different pages, two
different trustworthy DOIs. Identifiers come next but never alone: a DOI shared
by a whole conference supplement or truncated by an export must agree with the
title too. Then fuzzy agreement of title, authors, year (+/- 1 for ahead of
print), journal (abbreviated or not) and pages. Pairs that are neither clearly
the same nor clearly different are "maybe": left for a person to decide, each
with the fields that disagree (its `reason`). A field vetoes only on evidence:
both records hold it in a plausible form of one kind, and the two disagree.

Updated versions of one living review count as one record, as a review of
reviews counts reviews rather than their versions: a Cochrane review keeps its
number (CD001234) and a BMJ Clinical Evidence chapter its title across updates
years apart. A Cochrane update whose title was revised goes to a person, since
a revised title often marks a changed question.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from rapidfuzz import fuzz

from cluster.dedup.prepare import Prepared

SAME = "same"
MAYBE = "maybe"
DIFFERENT = "different"


@dataclass(frozen=True, slots=True)
class PairScore:
    """The verdict on one pair: `label` in same/maybe/different, `score` in 0..1, `rule` why;
    a "maybe" pair's `reason` says which fields left it uncertain, for the person deciding it."""

    a: int
    b: int
    label: str
    score: float
    rule: str
    reason: str = ""


def shared_ids(a: Prepared, b: Prepared) -> set[str]:
    """The identifiers (DOI, PMID, PII; "d:", "m:", "p:" tokens) both records hold."""
    if not (a.ids and b.ids):
        return set()
    return set(a.ids.split()) & set(b.ids.split())


def _doi_conflict(a: Prepared, b: Prepared) -> bool:
    if not (a.doi_trusted and b.doi_trusted) or a.doi_key == b.doi_key:
        return False
    # a field holding several DOIs (a book's and its chapter's, an old and a new) shares one
    if any(t.startswith("d:") for t in shared_ids(a, b)):
        return False
    # one DOI cut short by an export is not a different DOI
    return not (a.doi_key.startswith(b.doi_key) or b.doi_key.startswith(a.doi_key))


def journals_agree(a: str, b: str) -> bool:
    """True when one journal name is the other or its abbreviation.

    "mol cell cardiol" abbreviates "molecular cellular cardiology" word by word,
    and a subtitle may follow ("clinical virology official publication ...");
    but a shorter name hidden inside a longer one ("transplantation" in "heart
    lung transplantation") is another journal.
    """
    if a == b:
        return True
    short, long_ = (a, b) if len(a) <= len(b) else (b, a)
    sw, lw = short.split(), long_.split()
    if not sw or len(sw) > len(lw):
        return False
    if all(l.startswith(w) for w, l in zip(sw, lw)):
        return True
    return fuzz.ratio(a, b) >= 90 or _abbreviates(sw, lw)


def _abbreviates(sw: list[str], lw: list[str]) -> bool:
    """Each short word abbreviates one or more whole long words run together, in order:
    "eur arch otorhinolaryngol" for "european archives oto rhino laryngology"."""
    joined = "".join(lw)
    starts, pos = set(), 0
    for w in lw:
        starts.add(pos)
        pos += len(w)
    at = 0
    for k, w in enumerate(sw):
        hit = joined.find(w, at)
        while hit != -1 and hit not in starts:
            hit = joined.find(w, hit + 1)
        if hit == -1 or (k == 0 and hit != 0):
            return False
        # the next short word starts at the next long word: nothing skipped silently beyond that
        at = hit + len(w)
        nxt = min((s for s in starts if s >= at), default=len(joined))
        at = nxt
    return at == len(joined)


def _numeric_range(p: Prepared) -> tuple[int, int] | None:
    """Pages as numbers when the field is a range of plain numbers (not e-locators or "S12")."""
    if p.page_kind != "range" or p.pages_mangled or not p.page_first.isdigit() \
            or not p.page_last.isdigit():
        return None
    first, last = int(p.page_first), int(p.page_last)
    return (first, last) if last >= first else None  # "2297-2108" is a typo, not a range


def _years_close(a: Prepared, b: Prepared) -> bool:
    return a.year is None or b.year is None or abs(a.year - b.year) <= 1


def _online_first(a: Prepared, b: Prepared) -> bool:
    """One record paginated as published online first (1-17), the other as in its issue (566-582).

    An article published ahead of print is numbered from page 1 in its own
    file, and may be dated the year before its issue: the two ranges are of
    different kinds, so they say nothing about whether the works differ.
    """
    ra, rb = _numeric_range(a), _numeric_range(b)
    return bool(ra and rb and (ra[0] == 1) != (rb[0] == 1) and _years_close(a, b))


def pages_comparable(a: Prepared, b: Prepared) -> bool:
    """Both pages fields hold a plausible value of one kind: only then can they disagree."""
    return bool(a.page_kind and a.page_kind == b.page_kind and a.page_kind in ("range", "start", "article")
                and not (a.pages_mangled or b.pages_mangled) and not _online_first(a, b))


def _same_citation(a: Prepared, b: Prepared) -> bool:
    """Title, first author, year, volume and first page all agree: one work, whatever its DOIs.

    Publishers re-register DOIs (10.1006/jmcc.2002.2066 and
    10.1016/S0022-2828(02)92066-3 are one article), so two different DOIs alone
    cannot tell two works apart once the whole citation agrees.
    """
    return bool(a.title_key and (a.title_key[:60] == b.title_key[:60] or _title_inside(a, b))
                and a.first_author and fuzz.ratio(a.first_author, b.first_author) >= 80
                and a.year == b.year and a.volume and a.volume == b.volume
                and a.page_first and a.page_first == b.page_first)


_ORDINAL = re.compile(r"\d+(?:st|nd|rd|th)")


def _numbered(p: Prepared) -> dict[str, str]:
    """Numbers tied to a word: "focus 1", "study 2", and ordinals "58th annual"."""
    words = p.title.split()
    out = {w: n for w, n in zip(words, words[1:]) if n.isdigit() and w.isalpha() and len(w) >= 3}
    out.update({f"{w}#": n for n, w in zip(words, words[1:]) if _ORDINAL.fullmatch(n)})
    return out


def _numbers_differ(a: Prepared, b: Prepared) -> bool:
    """"FOCUS 1" vs "FOCUS 2", "study 3" vs "study 4": a series, not one work."""
    na, nb = _numbered(a), _numbered(b)
    return any(nb.get(w, n) != n for w, n in na.items())


def _supplement_volume(a: Prepared, b: Prepared) -> bool:
    """One record numbers a supplement as its volume ("J Rheumatol Suppl 51"), the other as its
    issue, or gives the main volume with no issue at all but the same first page."""
    return any(x.supplement and x.supplement == x.volume and (
        x.supplement in (y.supplement, y.issue)
        or (not y.supplement and not y.issue and x.page_first and x.page_first == y.page_first))
        for x, y in ((a, b), (b, a)))


# titles that come back every year or meeting: "Editorial: the year in cardiology",
# "Introduction to the minitrack on ..."
_SERIES = re.compile(r"^(?:guest )?editorial\b|^(?:introduction to|preface to|foreword to|message from|"
                     r"report of|highlights (?:of|from))\b|\b(?:minitrack|year in review|the year in)\b")


def _journal_numbers(journal: str) -> list[str]:
    """Numbers in a venue's name: "52nd hawaii international conference", "proceedings 2019"."""
    return re.findall(r"\d+", journal)


def veto(a: Prepared, b: Prepared) -> str | None:
    """Why two records cannot be the same work, or None."""
    if _doi_conflict(a, b) and not _same_citation(a, b):
        return "different DOIs"
    if a.pmid and b.pmid and a.pmid != b.pmid and not any(t.startswith("m:") for t in shared_ids(a, b)):
        return "different PMIDs"
    if a.kind != b.kind:
        return "erratum or comment vs article"
    if a.part and b.part and a.part != b.part:
        return "different parts"
    if a.cochrane and b.cochrane and a.cochrane != b.cochrane:
        return "different Cochrane reviews"
    # a Cochrane review keeps its number, a Clinical Evidence chapter its title, across updated
    # versions years apart
    one_doi = (a.doi_trusted and a.doi_key == b.doi_key) or bool(a.cochrane and a.cochrane == b.cochrane) \
        or any(t[:2] in ("d:", "p:") for t in shared_ids(a, b)) \
        or bool(a.chapter and a.chapter == b.chapter)
    if a.year and b.year and abs(a.year - b.year) > 1 and not one_doi:
        return "years differ"
    if _numbers_differ(a, b):
        return "different numbers in the titles"
    if a.year and b.year and a.year != b.year and not one_doi and (
            (a.meeting and b.meeting) or a.boilerplate or b.boilerplate
            or _SERIES.search(a.title) or _SERIES.search(b.title)):
        # a year apart is ahead of print for one article, but the next meeting for a conference
        # and the next year's editorial for an annual title
        return "another year of a series"
    if a.meeting and b.meeting and _journal_numbers(a.journal) and _journal_numbers(b.journal) \
            and _journal_numbers(a.journal) != _journal_numbers(b.journal):
        return "another meeting or edition"
    same_volume = bool(a.volume and a.volume == b.volume)
    if one_doi and (title_similarity(a, b) >= 95 or _truncated_title(a, b)) and (same_volume or not (
            a.journal and b.journal and not journals_agree(a.journal, b.journal))):
        return None  # one DOI and one title: volume and page quirks of one export are noise
    if a.volume and b.volume and a.volume != b.volume and not _supplement_volume(a, b):
        if a.journal and b.journal and not journals_agree(a.journal, b.journal):
            return "another journal and volume"  # an abstract and its paper, a reprint
        # one title, issue and first page: a mistyped volume (484 for 485), not another article
        typo = bool(a.title_key == b.title_key and a.issue and a.issue == b.issue
                    and a.page_first and a.page_first == b.page_first)
        if a.volume_clean and b.volume_clean and not typo:
            return "different volumes"
    # supplement pages are written "B13", "S84", "84S" or "13" by different exports
    pa, pb = _page_digits(a.page_first), _page_digits(b.page_first)
    same_spot = same_volume and bool(pa and pa == pb)
    if a.is_abstract != b.is_abstract and not same_spot and (
            (a.journal and b.journal and not journals_agree(a.journal, b.journal))
            or (pa and pb and pa != pb and not _online_first(a, b))
            # the paper follows its meeting's abstract, often the next year
            or ((a.meeting or b.meeting) and a.year and b.year and a.year != b.year and not one_doi)):
        return "conference abstract vs paper"
    ra, rb = _numeric_range(a), _numeric_range(b)
    if ra and rb and (ra[1] < rb[0] or rb[1] < ra[0]) and not _online_first(a, b):
        if ((a.journal and b.journal and journals_agree(a.journal, b.journal))
                            or (a.volume and a.volume == b.volume)):
            return "different pages in the same journal"
    return None


def title_similarity(a: Prepared, b: Prepared) -> float:
    if not a.title or not b.title:
        return 0.0
    if a.title_key == b.title_key:
        return 100.0
    return max(fuzz.ratio(a.title_key, b.title_key), fuzz.token_sort_ratio(a.title, b.title))


def _title_inside(a: Prepared, b: Prepared) -> bool:
    """One title holds the other whole: a lost subtitle or a series heading ("Clinical review 138: ...")."""
    short, long_ = sorted((a.title_key, b.title_key), key=len)
    return len(short) >= 30 and short in long_


def _truncated_title(a: Prepared, b: Prepared, shortest: int = 30) -> bool:
    """One title is the start of the other (a lost subtitle, a 255-character cut)."""
    short, long_ = sorted((a.title_key, b.title_key), key=len)
    return len(short) >= shortest and long_.startswith(short)


def _pages_disagree(a: Prepared, b: Prepared) -> bool:
    """First pages differ in number, written alike: "S25" and "25", "e143" and "739" do not count."""
    if not (a.page_first and b.page_first) or not pages_comparable(a, b):
        return False
    da, db = _page_digits(a.page_first), _page_digits(b.page_first)
    same_style = a.page_first[0].isdigit() == b.page_first[0].isdigit()
    return bool(da and db and da != db and same_style)


def _page_digits(p: str) -> str:
    return "".join(c for c in p if c.isdigit()).lstrip("0")


def _long_range(p: Prepared) -> bool:
    """Three pages or more: a paper, not an abstract sharing its page with others."""
    r = _numeric_range(p)
    return bool(r and r[1] - r[0] >= 2)


def _pages_text(p: Prepared) -> str:
    return p.page_first if p.page_last == p.page_first else f"{p.page_first}-{p.page_last}"


def disagreements(a: Prepared, b: Prepared) -> list[tuple[str, str]]:
    """The fields both records hold in a plausible form that disagree, as (field, what differs)."""
    out: list[tuple[str, str]] = []
    ts = title_similarity(a, b)
    if a.title and b.title and ts < 95:
        out.append(("title", f"titles {ts:.0f} % alike"))
    if a.first_author and b.first_author and fuzz.ratio(a.first_author, b.first_author) < 80:
        out.append(("authors", f"first authors {a.first_author} and {b.first_author}"))
    elif a.authors and b.authors and fuzz.token_set_ratio(a.authors, b.authors) < 70:
        out.append(("authors", "author lists differ"))
    if a.year and b.year and a.year != b.year:
        out.append(("year", f"years {a.year} and {b.year}"))
    if a.journal and b.journal and not journals_agree(a.journal, b.journal):
        out.append(("journal", f"journals {a.journal!r} and {b.journal!r}"))
    if a.volume and b.volume and a.volume != b.volume and a.volume_clean and b.volume_clean:
        out.append(("volume", f"volumes {a.volume} and {b.volume}"))
    if pages_comparable(a, b) and _page_digits(a.page_first) != _page_digits(b.page_first):
        out.append(("pages", f"pages {_pages_text(a)} and {_pages_text(b)}"))
    if _doi_conflict(a, b):
        out.append(("doi", "DOIs differ"))
    return out


def uncertainty(a: Prepared, b: Prepared) -> str:
    """Why a pair is left to a person: the fields that disagree, or what is missing to decide."""
    found = disagreements(a, b)
    if found:
        return "; ".join(text for _, text in found)
    fields = (("authors", a.authors, b.authors), ("year", a.year, b.year),
              ("journal", a.journal, b.journal), ("pages", a.page_first, b.page_first))
    missing = [name for name, x, y in fields if not (x and y)]
    return "nothing disagrees, but " + (f"no {', '.join(missing)} on one side" if missing
                                        else "too little agrees")


def score_pair(a: Prepared, b: Prepared, i: int = 0, j: int = 0) -> PairScore:
    """Compare two prepared records; `i`, `j` are carried into the result."""
    verdict = _score(a, b, i, j)
    if verdict.label == MAYBE:
        return replace(verdict, reason=uncertainty(a, b))
    return verdict


def _score(a: Prepared, b: Prepared, i: int, j: int) -> PairScore:
    why = veto(a, b)
    if why:
        return PairScore(i, j, DIFFERENT, 0.0, why)
    ts = title_similarity(a, b)
    au = fuzz.token_set_ratio(a.authors, b.authors) if a.authors and b.authors else None
    strong_id = bool((a.doi_key and a.doi_key == b.doi_key and (not a.cochrane or a.doi == b.doi))
                     or (a.pmid and a.pmid == b.pmid) or (shared_ids(a, b) and not a.cochrane))
    # a Cochrane number spans versions whose titles were revised: only one with the same title
    cochrane_versions = bool(a.cochrane and a.cochrane == b.cochrane and not strong_id)
    same_id = strong_id or (cochrane_versions and a.title_key == b.title_key) \
        or bool(a.chapter and a.chapter == b.chapter)
    pages_conflict = bool(_pages_disagree(a, b) and not (a.pages_mangled or b.pages_mangled)
                          and (a.is_abstract or b.is_abstract or not _long_range(a)
                               or not _long_range(b)))
    pages_equal = bool(a.page_first and a.page_first == b.page_first)
    journal_ok = None if not (a.journal and b.journal) else journals_agree(a.journal, b.journal)
    year_same = a.year is not None and a.year == b.year
    score = round((0.6 * ts + 0.25 * (au if au is not None else 70) + 15 * pages_equal
                   + 10 * same_id) / 100, 3)
    score = min(score, 1.0)
    authors_ok = au is None or au >= 70
    if cochrane_versions and a.title_key != b.title_key:
        return PairScore(i, j, MAYBE, score, "Cochrane review versions, titles differ")
    if same_id:
        if ts < 70 and au is not None and au < 70 and not (a.pmid and a.pmid == b.pmid) \
                and a.title.isascii() and b.title.isascii():
            # a DOI shared by a whole supplement or issue: other title, other people, other work
            # (a title in another script, with names transliterated, still goes to a person)
            return PairScore(i, j, DIFFERENT, score, "identifier, title and authors differ")
        if ts < 70 and (a.is_abstract or b.is_abstract or pages_conflict):
            # a DOI over a whole supplement: abstracts with other titles are other works
            return PairScore(i, j, DIFFERENT, score, "identifier of a supplement, titles differ")
        if pages_conflict and ts < 90:
            return PairScore(i, j, DIFFERENT, score, "identifier, titles and pages differ")
        if pages_conflict and not (ts >= 95 and au is not None and au >= 90):
            # one DOI over a supplement: abstracts on different pages are different works,
            # unless title and authors agree too (then a page number was mistyped)
            return PairScore(i, j, MAYBE, score, "identifier, pages differ")
        if journal_ok is False and ts < 95 and not (a.pmid and a.pmid == b.pmid):
            # a DOI copied onto a conference abstract from its paper: other journal, reworded title
            return PairScore(i, j, MAYBE, score, "identifier, journals differ")
        if ts >= 90 or (ts >= 75 and (au or 0) >= 80) or (_truncated_title(a, b) and authors_ok) \
                or (_truncated_title(a, b, 15) and authors_ok and pages_equal) \
                or (ts >= 50 and (au or 0) >= 90 and pages_equal and _long_range(a)):
            return PairScore(i, j, SAME, score, "identifier+title")
        if ts >= 50 and pages_equal and a.page_last != a.page_first and a.page_last == b.page_last \
                and a.volume and a.volume == b.volume:
            # a title translated or reworded by one database ("Nitro derivatives" and "Nitrates"):
            # the identifier and the whole citation down to the last page still agree
            return PairScore(i, j, SAME, score, "identifier+citation")
        return PairScore(i, j, MAYBE, score, "identifier, titles differ")
    if a.boilerplate or b.boilerplate:
        # "Book review", "Editorial": the title names no work, only the citation can
        if year_same and a.volume and a.volume == b.volume and ts >= 95 and (
                pages_equal or ((au or 0) >= 90 and not disagreements(a, b))):
            return PairScore(i, j, SAME, score, "boilerplate title+citation")
        return PairScore(i, j, DIFFERENT, score, "boilerplate title")
    if ts >= 95 and authors_ok and journal_ok is not False:
        return PairScore(i, j, SAME, score, "title+authors")
    # three pages or more, first to last, say as much as a volume and a first page: a volume
    # missing on one side leaves them to agree
    whole_range = pages_equal and a.page_last == b.page_last and _long_range(a)
    volume_ok = bool((a.volume and a.volume == b.volume) or (whole_range and not (a.volume and b.volume)))
    if ts >= 90 and (au or 0) >= 85 and (pages_equal or (a.volume and a.volume == b.volume)) \
            and journal_ok is not False:
        return PairScore(i, j, SAME, score, "title+authors+venue")
    if ts >= 95 and pages_equal and a.volume and a.volume == b.volume:
        # names written family-first in one export and given-first in another
        return PairScore(i, j, SAME, score, "title+volume+pages")
    if ts >= 88 and (au or 0) >= 85 and year_same and pages_equal and (
            (a.volume and a.volume == b.volume) or (whole_range and not (a.volume and b.volume))):
        # the journal named in another language or edition ("Masui", "Japanese J Anesthesiology");
        # a volume missing on one side leaves the whole page range to agree
        return PairScore(i, j, SAME, score, "title+authors+volume+pages")
    if _truncated_title(a, b) and (au or 0) >= 85 and year_same and journal_ok is not False:
        return PairScore(i, j, SAME, score, "truncated title+authors")
    if (au or 0) >= 75 and whole_range and volume_ok and year_same and journal_ok is not False \
            and ts >= 30:
        # a translated title: the rest of the citation is as good as an identifier
        return PairScore(i, j, SAME, score, "authors+volume+pages")
    if ts >= 75 and (au or 0) >= 95 and whole_range and volume_ok and year_same:
        # the journal named two ways no abbreviation rule links ("Praxis" and "Schweizerische
        # Rundschau fur Medizin Praxis"): every author, the volume and the page range still agree
        return PairScore(i, j, SAME, score, "title+authors+citation")
    # the same authors on the same first page: a translated title, unless the page is one
    # abstract of many on it
    if ts >= 85 or ((au or 0) >= 90 and pages_equal and (_long_range(a) or _long_range(b))):
        # a person decides what the fields leave open, not what a field already tells apart
        # (a year apart is within what ahead-of-print records differ by)
        against = [f for f, _ in disagreements(a, b) if f not in ("title", "year")]
        if against and (ts < 95 or len(against) >= 2):
            verb = "differ" if len(against) > 1 else "differs"
            return PairScore(i, j, DIFFERENT, score, f"similar, but {' and '.join(against)} {verb}")
        return PairScore(i, j, MAYBE, score, "grey zone")
    return PairScore(i, j, DIFFERENT, score, "low similarity")
