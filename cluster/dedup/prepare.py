"""Stage 1 of deduplication: turn each record into the normalised keys the later stages compare.

Everything that decides whether two spellings are "the same" lives here, so that
blocking and matching compare plain strings and numbers: titles without markup,
case, diacritics or `[Chinese]`-style translation markers; author surnames from
any of the ways exports write names; journals reduced to words whose prefixes
an abbreviation shares; page ranges in one shape; DOIs that are trustworthy
enough to veto a merge.

Messy exports are repaired first: a whole citation in the journal field gives
back its journal, volume, issue, pages and year; an identifier field holding
several things gives every DOI, PMID and PII it holds; pages are classified
(range, start page, article number, year-like, count), so that matching
compares only values of one kind.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import unquote
from operator import attrgetter
from typing import Any, Mapping

from base.record import (Record, fold, normalize_doi, normalize_pages, normalize_pmid,
                         normalize_year, without_markup)

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_LANGUAGES = (r"chinese|japanese|german|french|spanish|russian|italian|portuguese|polish|korean|"
              r"dutch|czech|hungarian|turkish|danish|swedish|norwegian|finnish|hebrew|persian|"
              r"greek|croatian|serbian|romanian|slovak|slovenian|bulgarian|ukrainian|lithuanian|"
              r"estonian|latvian|arabic|icelandic")
_LANGUAGE_MARKER = re.compile(
    rf"[\[(](?:article in |in )?(?:{_LANGUAGES}|english abstract|author's transl)[^\])]{{0,40}}[\])]\.?",
    re.IGNORECASE,
)
# Embase appends the language and the original title: "Donor heart preservation. Japanese\n..."
_LANGUAGE_TAIL = re.compile(rf"[.?]\s*(?:{_LANGUAGES})\s*(?:\n.*)?$", re.IGNORECASE | re.DOTALL)
_PART = re.compile(r"\bpart\s+([ivx]+|\d+|one|two|three|four|a|b)\b")
_ROMAN = {"i": "1", "ii": "2", "iii": "3", "iv": "4", "v": "5", "vi": "6", "vii": "7",
          "viii": "8", "ix": "9", "x": "10", "one": "1", "two": "2", "three": "3", "four": "4",
          "a": "1", "b": "2"}
_ERRATUM = re.compile(r"^(?:erratum|errata|corrigendum|correction)s?(?: (?:to|for|of|on|in))?\b")
_RETRACTION = re.compile(r"^(?:retraction|retracted|expression of concern|notice of retraction)\b")
# Web of Science names a correction by its article's title and citation: "Title (vol 49 pg 931 2019)"
_ERRATUM_CITATION = re.compile(r"\s*\bvol \d+(?: pg)? [a-z]?\d+ (?:19|20)\d\d$|\s*\b(?:erratum|corrigendum)$")
# a withdrawn Cochrane review is a new version of the review under the same title
_WITHDRAWN = re.compile(r"^withdrawn\b\s*")
_REPRINT_NOTE = re.compile(r"\s*\((?:reprinted|republished) (?:from|in)\b[^)]*\)?\s*$", re.IGNORECASE)
_COMMENT = re.compile(r"^(?:comment(?:ary)? on|re|response|reply|in reply|author reply|"
                      r"authors reply|letter|editorial comment)\b")
# "proceedings" and "annual" also name journals (Proc Biol Sci, Annu Rev ...): not evidence
_ABSTRACT_VENUE = re.compile(r"\b(?:abstracts?|congress|meeting|conference|symposium)\b")
_SUPPL = re.compile(r"\bsuppl|\bsupplement|\bs\d", re.IGNORECASE)
_JOURNAL_STOP = frozenset({"the", "of", "and", "for", "in", "on", "a", "an", "de", "la", "le",
                           "der", "die", "und", "et", "y", "i", "fur", "voor", "des", "du", "official",
                           "journal", "j"})
_PARTICLES = frozenset({"de", "van", "von", "der", "den", "la", "le", "di", "da", "du", "del",
                        "dos", "das", "el", "al", "ten", "ter", "mc", "st"})


#: The version of the normalisation above. Prepared keys persist in the store (see
#: `cluster.dedup.keys`) and are reused while this number, the `Prepared` field layout and
#: the record's fields are unchanged; so ANY change to what `prepare_one` produces for some
#: input (a regex, a stop word, a new rule) must bump it, or old stores would keep stale
#: keys. tests/test_dedup_keys.py pins a digest of the keys of a fixed corpus per version:
#: when it fails after a change here, bump this number and pin the new digest.
NORMALISER_VERSION = 4

#: Every record field `prepare_one` reads: a stored key is reused only while these are
#: unchanged. A field read but not listed here would let an edited record keep stale keys
#: (a test fails when `prepare_one` reads a field missing from this list).
PREPARED_FROM = ("title", "authors", "journal", "pages", "doi", "pmid", "year", "volume", "issue",
                 "abstract")


@dataclass(slots=True)
class Prepared:
    """The comparison keys of one record; `key` is the caller's identifier for it.

    Read-only by contract (a cache hands one instance to several runs; `replace` makes
    a changed copy), but not a frozen dataclass: a frozen one sets each of its fields
    through `object.__setattr__`, which made building the keys of a record cost a tenth
    of normalising it.
    """

    key: Any
    title: str          # folded words, single-spaced
    title_key: str      # the same without spaces: robust to hyphenation and spacing
    authors: str        # folded surnames (no initials), space-separated
    first_author: str
    year: int | None
    journal: str        # folded journal words without stop words
    volume: str
    issue: str
    page_first: str
    page_last: str
    doi: str | None
    doi_key: str        # the DOI compared: punctuation-free, Cochrane version suffix dropped
    doi_trusted: bool   # long enough to veto a merge when it differs
    cochrane: str       # Cochrane review number, from the DOI or the "pages" (CD003463)
    chapter: str        # a BMJ Clinical Evidence chapter: its title, which the yearly updates keep
    pmid: str | None
    kind: str           # "", "erratum", "retraction" or "comment": never the same work as an article
    part: str           # "Part II" -> "2"
    is_abstract: bool   # looks like a conference abstract
    volume_clean: bool  # a plain number ("26", "160-161"), not "1)" or a supplement number
    pages_mangled: bool  # a date made of a range, or an article number: not trusted for vetoes
    page_kind: str      # "range", "start", "article", "year", "count" or "" (none or unreadable)
    boilerplate: bool   # a title that names no work ("Book review", "Editorial", the journal's name)
    meeting: bool       # the venue is a meeting (congress, conference, "Meeting Abstracts"), not a supplement
    ids: str            # every identifier the record holds, space-separated: "d:<doi key> m:<pmid> p:<pii>"
    supplement: str     # supplement number: "Suppl 51" in the issue, or the volume of a "... Suppl" journal
    completeness: int


# every ASCII character that is not a letter or a digit (what `_NON_WORD` finds) made a space
_ASCII_SPACES = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))


def word_text(text: str) -> str:
    """The words of `text` (letters and digits) single-spaced: `_NON_WORD.sub(" ", text).strip()`."""
    if text.isascii():
        # most text: a byte table does at C speed what the pattern does a character at a time
        return " ".join(text.encode("ascii").translate(_ASCII_SPACES).decode("ascii").split())
    return _NON_WORD.sub(" ", text).strip()


def _fold(text: str) -> str:
    # most exported text is ASCII: skip the per-character Unicode decomposition
    return text.lower() if text.isascii() else fold(text)


def _text(value: Any) -> str:
    if type(value) is str:
        return value  # nearly every field: no further tests
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return "; ".join(str(v) for v in value if v)
    return str(value)


# British and American spellings of one title must block and compare alike
_AMERICAN = {"ae": "e", "oe": "e", "isation": "ization", "ised": "ized", "ising": "izing",
             "ise": "ize", "our": "or", "tre": "ter"}
_BRITISH = re.compile(r"(?<=[a-z])(?:ae|oe)(?=[a-z])|(?:isation|ised|ising|ise)\b|(?<=[a-z]{3})(?:our|tre)\b")
_NOTE = re.compile(r"(?<=.)\[[^\]]*(?:\]|$)")
#: what every British spelling `_BRITISH` finds contains
_BRITISH_PARTS = ("ae", "oe", "isa", "ise", "isi", "our", "tre")


def _to_american(m: re.Match[str]) -> str:
    return _AMERICAN[m.group(0)]


def american(words: str) -> str:
    """Folded words with British spellings made American ("haemodynamic" -> "hemodynamic")."""
    if any(part in words for part in _BRITISH_PARTS):
        return _BRITISH.sub(_to_american, words)
    return words


def normalize_title(value: Any) -> str:
    """Folded words of a title: no markup, case, diacritics, punctuation or language markers.

    Bracketed notes after the title ("[Erratum appears in ...]", "[Review] [53
    refs]") are export annotations, not title words; a title wholly in brackets
    is PubMed's English translation of a non-English title and is kept.
    """
    text = html.unescape(_text(value))
    text = without_markup(text)
    # a title quoted whole ('"[Translated title]"') keeps its brackets: they are no note
    text = text.strip().lstrip("\"'\u201c\u2018")
    # each pattern needs a character most titles lack: testing for it is cheaper than a search
    if "[" in text:
        text = _NOTE.sub(" ", text)
    if "[" in text or "(" in text:
        text = _LANGUAGE_MARKER.sub(" ", text)
    if "." in text or "?" in text:
        text = _LANGUAGE_TAIL.sub("", text)
    return american(word_text(_fold(text)))


_INITIAL_DOT = re.compile(r"\.(?=\S)")
_RUN_TOGETHER = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
#: the letters on either side of a place `_RUN_TOGETHER` finds
_RUN_TOGETHER_LETTERS = re.compile(r"[a-z][A-Z]|[A-Z][A-Z][a-z]")


def author_surnames(value: Any) -> list[str]:
    """Surnames from "Smith, J; Doe, A", "Smith J.Doe A.", "John Smith and Ann Doe" alike.

    Initials are dropped rather than matched: exports disagree on whether they
    give initials or full given names, while the surname is nearly always intact.
    """
    raw = html.unescape(_text(value))
    # run-together ASySD exports: "Przyklenk K.Kloner R. A." -> split after an initial's dot
    raw = _INITIAL_DOT.sub(". ", raw).replace(" and ", " ")
    # run-together full names: "Saif Muhammad WasifKim Richard" (looked for first: a search
    # for the letters is cheaper than a substitution of empty matches)
    if _RUN_TOGETHER_LETTERS.search(raw):
        raw = _RUN_TOGETHER.sub(" ", raw)
    shouting = raw.isupper()
    words = []
    for w in word_text(raw).split():
        # "JW" in "Smith JW" is initials; "LI" in an all-caps export is a surname
        if len(w) == 1 or (len(w) <= 3 and w.isupper() and not shouting):
            continue
        f = _fold(w)
        # "Anonymous" stands for no author, not for a person who wrote both records
        if f not in {"et", "al", "jr", "sr", "anonymous", "anon"}:
            words.append(f)
    return words


_BRACKETED = re.compile(r"[\[(][^\])]*[\])]")


def journal_words(value: Any) -> str:
    # "(Munich)", "(Online)", "[Electronic Resource]" name an edition, not another journal;
    # "Scand J Gastroenterol Suppl" is the supplement series of its journal, not another one
    text = _BRACKETED.sub(" ", html.unescape(_text(value)))
    words = american(_NON_WORD.sub(" ", _fold(text))).split()
    return " ".join(w for w in words if w not in _JOURNAL_STOP and w not in _SUPPL_WORDS)


# "Langenbecks Arch Chir Suppl Kongressbd": the congress volume is a supplement of its journal
_SUPPL_WORDS = frozenset({"suppl", "supplement", "supplementum", "kongressbd", "kongressband"})
_SUPPL_NUMBER = re.compile(r"\bsuppl\w*\.?\s*(\d+)", re.IGNORECASE)


def _supplement(journal_raw: str, volume_raw: str, issue_raw: str) -> str:
    for text in (issue_raw, volume_raw):
        m = _SUPPL_NUMBER.search(text)
        if m:
            return m.group(1).lstrip("0")
    if _supplement_journal(journal_raw):
        return _digits(volume_raw)
    return ""


@lru_cache(maxsize=1 << 16)
def _supplement_journal(journal_raw: str) -> bool:
    return bool(_SUPPL_WORDS & set(_NON_WORD.sub(" ", _fold(journal_raw)).split()))


_NUMBER = re.compile(r"\d+")


def _digits(value: Any) -> str:
    m = _NUMBER.search(_text(value))
    return m.group(0).lstrip("0") if m else ""


_FIRST_PAGE = re.compile(r"([a-z]*)(\d+)(?:-([a-z]*)(\d+))?")
_CLEAN_VOLUME = re.compile(r"^\s*\d{1,5}(?:\s*-\s*\d{1,5})?(?:\s*\(\d{1,4}\))?\s*$")
_PAGE_START = re.compile(r"^\s*(?:[A-Za-z]{0,3}\d|$)")
_EXCEL_DATE = re.compile(r"^\s*(?:\d{1,2}-[A-Za-z]{3}|[A-Za-z]{3}-\d{1,2})\s*$")


def _pages(value: Any) -> tuple[str, str]:
    """First and last page; of several ranges ("230-5, 246-51") the first is kept."""
    norm = (normalize_pages(_text(value) or None) or "").lower()
    m = _FIRST_PAGE.search(norm)
    if not m:
        return "", ""
    prefix, first, prefix2, last = m.groups()
    first = first.lstrip("0") or "0"
    if last is None:
        return prefix + first, prefix + first
    last = last.lstrip("0") or "0"
    if len(last) < len(first) and int(first[: len(first) - len(last)] + last) >= int(first):
        last = first[: len(first) - len(last)] + last  # "230-5" -> 230-235
    return prefix + first, (prefix2 or prefix) + last


_BARE_NUMBER = re.compile(r"\s*0*(\d{3,})\s*")
_NOT_DIGITS = re.compile(r"\D+")


def _article_number(pages_raw: str, doi: str | None) -> bool:
    """The pages field holds only the number the DOI ends with ("381" and 10.20960/nh.381).

    Online journals number their articles, and one export puts that number in
    the pages while another gives the printed range (856-864); some DOIs end
    with the first page instead. Either way one bare number is no range to
    veto a merge with.
    """
    m = _BARE_NUMBER.fullmatch(pages_raw)
    return bool(doi and m and _NOT_DIGITS.sub("", doi.split("/", 1)[-1]).endswith(m.group(1)))


def _trusted_doi(doi: str | None) -> bool:
    if not doi:
        return False
    suffix = doi.split("/", 1)[1] if "/" in doi else ""
    # truncated exports end right after a publisher prefix ("10.1016/s0022")
    return len(suffix) >= 7 and not suffix.endswith(("-", "(", "."))


_COCHRANE_VERSION = re.compile(r"^(10\.1002/14651858\.cd\d+)\.pub\d+$")


def doi_key(doi: str | None) -> str:
    """What two DOIs must share to name one work.

    Punctuation is dropped because exports lose slashes and dots
    ("10.1210/endrevbnz002"); a Cochrane review keeps one review number
    across its versions (".pub2", ".pub3"), which the labelled sets count
    as one record.
    """
    if not doi:
        return ""
    m = _COCHRANE_VERSION.match(doi)
    return _NON_WORD.sub("", m.group(1) if m else doi)


_COCHRANE_ID = re.compile(r"^cd0*(\d{3,6})$|^10\.1002/14651858\.cd0*(\d{4,6})")


def _cochrane(doi: str | None, page_first: str) -> str:
    for text in (doi or "", page_first):
        m = _COCHRANE_ID.match(text)
        if m:
            # "CD000437" in the pages and ".cd000437" in the DOI are one review number
            return str(int(m.group(1) or m.group(2)))
    return ""


# a chapter of BMJ Clinical Evidence is updated every year or two under its title, like a
# Cochrane review under its number: the versions are one review, whoever updated it
_CLINICAL_EVIDENCE = re.compile(r"^(?:bmj )?clin(?:ical)? evid(?:ence)?$")


def _chapter(journal: str, title_key: str) -> str:
    return title_key if title_key and _CLINICAL_EVIDENCE.match(journal) else ""


# --- field repair: what messy exports write into the wrong field, or several things into one


@dataclass(frozen=True)
class Citation:
    """The parts of a citation string found in a journal field; "" where it says nothing."""

    journal: str
    volume: str = ""
    issue: str = ""
    pages: str = ""
    year: int | None = None
    published: str = ""   # "07 Jul 2010": Embase's date of publication


# Embase via Ovid: "Journal of Examples.30 (27) ()(pp 9103-9116) 2010.Date of Publication: 07 Jul 2010",
# also without the issue, the pages ("(no pagination)") or the volume
_EMBASE_SOURCE = re.compile(
    r"^(?P<journal>.*?[^\s.])\s*\.+\s*(?P<volume>\d[\w-]{0,11})?\s*"
    r"(?:\((?P<issue>(?!pp\b|no pagination)[^()]*)\)\s*)?"
    r"(?:\(\)\s*)?(?P<paged>\((?:pp\.?\s*(?P<pages>[^()]*)|no pagination)\))?\s*[,.]?\s*"
    r"(?P<year>\d{4})?\s*\.?\s*$")
# Medline style: "Journal of Examples. 30(27):9103-16, 2010 Jul"
_MEDLINE_SOURCE = re.compile(
    r"^(?P<journal>.*?[^\s.])\s*\.\s*(?P<volume>\d{1,5})\s*(?:\((?P<issue>[^()]*)\))?\s*:\s*"
    r"(?P<pages>[A-Za-z]?\d+(?:\s*-\s*[A-Za-z]?\d+)?)\s*(?:[,;.]\s*(?P<year>\d{4}))?")
# only a year after the journal: "BMJ Case Reports., 2011."
_YEAR_SOURCE = re.compile(r"^(?P<journal>.*?[^\s.,])\s*(?:\.\s*,?|,)\s*(?P<year>(?:1[89]|20)\d\d)\s*\.?\s*$")
_DIGIT = re.compile(r"\d")
_PUBLISHED = re.compile(r"\.?\s*Date of Publication:\s*(?P<date>[^.]*?)\s*\.?\s*$", re.IGNORECASE)
_ARTICLE_NUMBER = re.compile(r"\.?\s*Article Number:\s*(?P<number>[^\s.]+)\s*\.?", re.IGNORECASE)


def parse_citation(value: Any) -> Citation | None:
    """The citation a journal field holds after the journal's name, or None when it holds a name only."""
    text = html.unescape(_text(value)).strip()
    if not _DIGIT.search(text):
        return None  # most journal fields: a name and no number
    published = number = ""
    m = _PUBLISHED.search(text)
    if m:
        published, text = m.group("date"), text[:m.start()]
    m = _ARTICLE_NUMBER.search(text)
    if m:
        number, text = m.group("number"), text[:m.start()] + text[m.end():]
    for pattern in (_EMBASE_SOURCE, _MEDLINE_SOURCE, _YEAR_SOURCE):
        m = pattern.match(text)
        if m is None:
            continue
        parts = m.groupdict()
        # a name with full stops ("Acta Chir. Scand.", "J. Examples. (Stockh)") is no citation:
        # a volume with an issue or pages, or the pages themselves, must follow it
        if pattern is _EMBASE_SOURCE and not (
                parts["paged"] or (parts["volume"] and parts["issue"] is not None)):
            continue
        return Citation(parts["journal"].strip(), (parts.get("volume") or "").strip(),
                        (parts.get("issue") or "").strip(), (parts.get("pages") or number).strip(),
                        normalize_year(parts.get("year")) or normalize_year(published), published)
    if published or number:
        return Citation(text.strip(), pages=number, year=normalize_year(published), published=published)
    return None


# A DOI ends at a space, a tag or a ";" that starts another identifier: SICI DOIs
# ("...3.0.co;2-m") hold a ";" of their own
_DOI_IN_TEXT = re.compile(
    r"10\.\d{4,9}/(?:[^\s\[\];]|;(?!\s*(?:10\.\d|[sS]\d{4}|\d{5,9}\b|https?:|doi|pmid|\[|$)))+")
_PII = re.compile(r"\b[sS]\d{4}-?\d{3}[\dxX]\s*(?:\(\d{2}\)|\d{2})\s*\d{5}-?[\dxX]\b")
# a number beside a DOI is its PMID when tagged as one, or when it is shaped like one
_PMID_IN_TEXT = re.compile(r"\bpmid:?\s*0*([1-9]\d{0,7})\b|\b0*([1-9]\d{0,7})\s*\[(?:pmid|pubmed)\]"
                           r"|\b([1-9]\d{5,7})\b", re.IGNORECASE)
# what a field holding more than one DOI shows: a space, a separator, a tag, percent-encoding
_SEVERAL = re.compile(r"[\s;,\[%]")
_ELSEVIER_PII_DOI = re.compile(r"^10\.1016/(s\d{4}-?\d{3}[\dx]\(?\d{2}\)?\d{5}-?[\dx])$")


def _pii_key(pii: str) -> str:
    return _NON_WORD.sub("", pii).lower()


@dataclass(frozen=True)
class Identifiers:
    """Every DOI, PMID and PII one record's identifier fields hold, in the order found."""

    dois: tuple[str, ...]
    pmids: tuple[str, ...]
    piis: tuple[str, ...]


def split_identifiers(doi_field: Any, pmid_field: Any = None) -> Identifiers:
    """`S0278-5846(04)00083-0 [pii];10.1016/j.x.2004.05.012 [doi]`, resolver URLs, a DOI and a PMID:
    each identifier in a field, whatever else it holds."""
    text = _text(doi_field)
    pmids = [p for p in [normalize_pmid(pmid_field)] if p]
    if not _SEVERAL.search(text):
        # most fields: one DOI, bare or behind a resolver
        doi = normalize_doi(text)
        if doi or not text:
            m = _ELSEVIER_PII_DOI.match(doi or "")
            return Identifiers((doi,) if doi else (), tuple(pmids), (_pii_key(m.group(1)),) if m else ())
    if "%" in text:
        text = unquote(text)
    dois: list[str] = []
    for m in _DOI_IN_TEXT.finditer(text):
        doi = normalize_doi(m.group(0))
        if doi and doi not in dois:
            dois.append(doi)
    rest = _DOI_IN_TEXT.sub(" ", text)
    piis = [_pii_key(m.group(0)) for m in _PII.finditer(rest)]
    # an Elsevier DOI is its article's PII behind the publisher prefix
    piis += [_pii_key(m.group(1)) for d in dois for m in [_ELSEVIER_PII_DOI.match(d)] if m]
    rest = _PII.sub(" ", rest)
    pmids += [next(g for g in m.groups() if g) for m in _PMID_IN_TEXT.finditer(rest)]
    return Identifiers(tuple(dois), tuple(dict.fromkeys(pmids)), tuple(dict.fromkeys(piis)))


def _id_tokens(ids: Identifiers, first_doi_key: str) -> str:
    tokens = [f"d:{first_doi_key}"] if first_doi_key else []
    tokens += [f"d:{doi_key(d)}" for d in ids.dois[1:]]
    tokens += [f"m:{p}" for p in ids.pmids] + [f"p:{p}" for p in ids.piis]
    return " ".join(dict.fromkeys(tokens))


_PAGE_COUNT = re.compile(r"^\d+\s*(?:p|pp|pages?)\.?$")
_PREFIXED_NUMBER = re.compile(r"^(?:[a-z]{1,4}\.?\s*)\d+$")
_RANGE = re.compile(r"^[a-z]{0,3}\d+\s*(?:-+|\u2013|\u2014)\s*[a-z]{0,3}\d+$")
_FOUR_DIGITS = re.compile(r"\d{4}")
_LONG_NUMBER = re.compile(r"0*\d{5,}")


def page_kind(pages_raw: str, first: str, last: str, year: int | None, doi: str | None) -> str:
    """What a pages field holds: "range" (566-582), "start" (14), "article" (e1234, "pp 29", the
    number the DOI ends with), "year" (2010 in a 2010 record), "count" (12 pp) or "" (none, or
    nothing readable: an Excel date made of a range, a last page before the first)."""
    text = pages_raw.strip().lower()
    if not text or not first or _EXCEL_DATE.match(pages_raw):
        return ""
    if _PAGE_COUNT.match(text):
        return "count"
    # "1598-1598" is a one-page range: written as a range, it is one
    if _RANGE.match(text):
        if first.isdigit() and last.isdigit() and int(last) < int(first):
            return ""
        return "range"
    if _FOUR_DIGITS.fullmatch(text) and year and abs(int(text) - year) <= 1:
        return "year"
    if _PREFIXED_NUMBER.match(text) and not text.startswith("s") or _article_number(pages_raw, doi) \
            or _LONG_NUMBER.fullmatch(text):
        return "article"
    return "start" if _PAGE_START.match(pages_raw) else ""


# words of titles that any issue of any journal may carry: such a title names no one work
_BOILERPLATE = frozenset(
    "book books review reviews editorial editorials editor editors letter letters introduction preface "
    "foreword news reply response comment comments commentary correspondence abstracts abstract index "
    "contents issue this note notes announcement announcements obituary acknowledgment acknowledgement "
    "acknowledgments acknowledgements reviewers guest highlights summary report annual message president "
    "presidents year from to the of in a an and for on".split())


def boilerplate_title(title: str, journal: str) -> bool:
    """The title is only words any issue carries ("Book review", "Editorial"), or the journal's name."""
    words = title.split()
    if not words:
        return False
    if all(w in _BOILERPLATE for w in words):
        return True
    # the title's words without stop words end with the journal's last word, which is then in
    # the title: most titles lack it, and need not be joined again to be compared
    if journal and journal[journal.rfind(" ") + 1:] not in title:
        return False
    return " ".join(w for w in words if w not in _JOURNAL_STOP) == journal


def field_of(item: Record | Mapping[str, Any], name: str) -> Any:
    """The field `name` of a `Record` or of a mapping with the same field names (None if absent)."""
    if isinstance(item, dict) or (not isinstance(item, Record) and isinstance(item, Mapping)):
        return item.get(name)
    return getattr(item, name, None)


def prepared_values(item: Record | Mapping[str, Any]) -> tuple[Any, ...]:
    """The fields `prepare_one` reads from `item`, in the order of `PREPARED_FROM`."""
    if type(item) is Record:
        # a Record has every field: read as attributes, without `field_of`'s type tests per field
        return _RECORD_FIELDS(item)
    return tuple(field_of(item, name) for name in PREPARED_FROM)


def prepare_one(item: Record | Mapping[str, Any], key: Any) -> Prepared:
    """Normalise one record (a `Record` or a mapping with the same field names)."""
    return prepare_fields(key, *prepared_values(item))


_RECORD_FIELDS = attrgetter(*PREPARED_FROM)
# the same spellings of journals recur in every export: each is parsed once per process
_citation_of = lru_cache(maxsize=1 << 16)(parse_citation)
_journal_words_of = lru_cache(maxsize=1 << 16)(journal_words)
_ERRATUM_ENDS = ("erratum", "corrigendum")


def prepare_fields(key: Any, title_raw: Any, authors_raw: Any, journal_field: Any, pages_field: Any,
                   doi_field: Any, pmid_field: Any, year_field: Any, volume_field: Any,
                   issue_field: Any, abstract: Any) -> Prepared:
    """`prepare_one` on a record's fields, given in the order of `PREPARED_FROM`."""
    text = _text(title_raw)
    title = normalize_title(_REPRINT_NOTE.sub("", text) if "(" in text else text)
    surnames = author_surnames(authors_raw)
    journal_raw = _text(journal_field)
    pages_raw = _text(pages_field)
    year = normalize_year(year_field)
    volume_raw = _text(volume_field)
    issue_raw = _text(issue_field)
    cited = _citation_of(journal_raw)
    if cited is not None:
        # the record's own fields win: the citation only fills what they leave empty
        journal_raw = cited.journal
        volume_raw = volume_raw or cited.volume
        issue_raw = issue_raw or cited.issue
        pages_raw = pages_raw or cited.pages
        year = year or cited.year
    journal = _journal_words_of(journal_raw)
    first, last = _pages(pages_raw)
    found = split_identifiers(doi_field, pmid_field)
    doi = found.dois[0] if found.dois else None
    pmid = found.pmids[0] if found.pmids else None
    kind = ""
    m = _ERRATUM.match(title)
    # a Web of Science correction ends with its article's year or with the word itself
    if m is None and ((title[-4:].isdigit() and "vol " in title) or title.endswith(_ERRATUM_ENDS)):
        m = _ERRATUM_CITATION.search(title)
    if m:
        # both spellings of one correction compare alike; the kind keeps it from its article
        kind = "erratum"
        title = (title[:m.start()] + title[m.end():]).strip()
    elif _RETRACTION.match(title):
        kind = "retraction"
    elif _COMMENT.match(title):
        kind = "comment"
    if title.startswith("withdrawn"):
        title = _WITHDRAWN.sub("", title)
    m = _PART.search(title) if "part" in title else None
    part = _ROMAN.get(m.group(1), m.group(1)) if m else ""
    venue = f"{journal} {_fold(volume_raw)} {_fold(issue_raw)}"
    meeting = bool(_ABSTRACT_VENUE.search(venue)) or "meetingabstract" in venue.replace(" ", "")
    is_abstract = bool(
        _ABSTRACT_VENUE.search(journal) or _SUPPL.search(volume_raw) or _SUPPL.search(issue_raw)
        or (first[:1] == "s" and first[1:2].isdigit()) or "abstract" in venue.split()
        or pages_raw.lower().startswith("suppl") or meeting
    )
    key_of_doi = doi_key(doi)
    title_key = title.replace(" ", "")
    return Prepared(
        key=key, title=title, title_key=title_key, authors=" ".join(surnames),
        first_author=next((w for w in surnames if w not in _PARTICLES), ""), year=year, journal=journal,
        volume=_digits(volume_raw), issue=_digits(issue_raw), page_first=first, page_last=last,
        doi=doi, doi_key=key_of_doi, cochrane=_cochrane(doi, first),
        chapter=_chapter(journal, title_key),
        doi_trusted=_trusted_doi(doi), pmid=pmid, kind=kind, part=part,
        is_abstract=is_abstract,
        volume_clean=bool(_CLEAN_VOLUME.match(volume_raw)) and not is_abstract,
        pages_mangled=bool(_EXCEL_DATE.match(pages_raw))
        or not _PAGE_START.match(pages_raw) or _article_number(pages_raw, doi),
        page_kind=page_kind(pages_raw, first, last, year, doi),
        boilerplate=boilerplate_title(title, journal), meeting=meeting,
        ids=_id_tokens(found, key_of_doi),
        supplement=_supplement(journal_raw, volume_raw, issue_raw),
        # how many of title, authors, journal, first page, DOI, PMID, year, volume, issue and
        # abstract are given
        completeness=bool(title) + bool(surnames) + bool(journal) + bool(first) + bool(doi)
        + bool(pmid) + bool(year) + bool(volume_raw) + bool(issue_raw) + bool(_text(abstract).strip()),
    )


_SIGNATURE_FIELDS = ("title", "authors", "journal", "pages", "doi", "pmid", "year", "volume", "issue")


class PreparedCache:
    """The prepared keys of records already seen, so that a later run in the same process
    normalises only the records that are new or changed (an incremental run then costs what
    its new records cost). Entries are looked up by the field values `prepare_one` reads, so
    an edited record is prepared afresh; the oldest entries go once `max_size` is reached.
    """

    def __init__(self, max_size: int = 500_000) -> None:
        self._max_size = max_size
        self._entries: dict[tuple, Prepared] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def prepare(self, item: Record | Mapping[str, Any], key: Any) -> Prepared:
        """`prepare_one(item, key)`, reusing the keys of an identical record seen before."""
        signature = tuple(_text(field_of(item, f)) for f in _SIGNATURE_FIELDS) + (
            bool(_text(field_of(item, "abstract")).strip()),)
        found = self._entries.get(signature)
        if found is None:
            self.misses += 1
            found = prepare_one(item, key)
            if len(self._entries) >= self._max_size:
                del self._entries[next(iter(self._entries))]
            self._entries[signature] = found
            return found
        self.hits += 1
        return found if found.key == key else replace(found, key=key)
