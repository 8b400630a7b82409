"""The one record type every source produces, and the normalisers for its fields.

Connectors, file readers and the demo world all return `Record`, so nothing
downstream cares where a record came from. Normalisation lives here because a
DOI or a page range must compare equal whichever service spelled it.
"""

from __future__ import annotations

import dataclasses
import html
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import unquote


_SCALARS = {str, int, float, bool, type(None)}


def valid_text(value: Any) -> Any:
    """`value` as valid Unicode: lone surrogates become U+FFFD, split pairs are joined.

    Text from outside can carry surrogates that are not characters (a JSON
    `\\ud800` escape, CESU-8 bytes in a file, undecodable bytes of a command
    line); SQLite and every encoder refuse them. Lists, tuples and dicts are
    walked, so a decoded JSON document is cleaned in one call; other values
    are returned as they are.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
        return value
    if isinstance(value, dict):
        if set(map(type, value.values())) <= _SCALARS:
            # a flat row (every record written to the store): its text checked in one call
            try:
                "".join(value).encode("utf-8")
                "".join([v for v in value.values() if type(v) is str]).encode("utf-8")
            except (TypeError, UnicodeEncodeError):
                pass  # a key that is no text, or text to repair
            else:
                return dict(value)
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(valid_text(v) for v in value)
    return value


@dataclass(frozen=True)
class Author:
    """One author as a source gave it; `name` is "Family, Given" where known."""

    name: str
    orcid: str | None = None
    affiliations: tuple[str, ...] = ()
    email: str | None = None
    collective: bool = False


@dataclass(frozen=True)
class Record:
    """A bibliographic record, normalised.

    `source_id` is the identifier the source gave the record (a CSV `id`, RIS
    `ID`/`AN`, a BibTeX key, an EndNote record number, a PMID for PubMed...), so
    a user can trace it back to the export or service it came from.
    """

    title: str | None = None
    abstract: str | None = None
    authors: tuple[str, ...] = ()
    year: int | None = None
    journal: str | None = None
    volume: str | None = None
    issue: str | None = None
    pages: str | None = None
    doi: str | None = None
    pmid: str | None = None
    pmcid: str | None = None
    openalex: str | None = None
    language: tuple[str, ...] = ()
    pub_types: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    issn: str | None = None
    url: str | None = None
    source_id: str | None = None
    needs_metadata: bool = False
    author_details: tuple[Author, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> "Record":
        return dataclasses.replace(self, **changes)

    @property
    def first_author(self) -> str | None:
        return self.authors[0] if self.authors else None

    def ids(self) -> dict[str, str]:
        return {k: v for k, v in (("doi", self.doi), ("pmid", self.pmid),
                                  ("pmcid", self.pmcid), ("openalex", self.openalex)) if v}

    def to_dict(self) -> dict[str, Any]:
        """The bibliographic fields a reader wants, leaving out the empty ones."""
        return {k: v for k, v in {
            "title": self.title, "authors": list(self.authors), "year": self.year,
            "journal": self.journal, "volume": self.volume, "issue": self.issue,
            "pages": self.pages, "doi": self.doi, "pmid": self.pmid, "pmcid": self.pmcid,
            "language": list(self.language), "pub_types": list(self.pub_types),
            "abstract": self.abstract}.items() if v not in (None, [], "")}


# --- identifiers -----------------------------------------------------------

_DOI_PREFIXES = re.compile(
    r"^(?:doi:\s*|https?://(?:dx\.)?doi\.org/|https?://doi\.org/|doi\.org/|dx\.doi\.org/)",
    re.IGNORECASE,
)
_DOI_SHAPE = re.compile(r"^10\.\d{4,9}/\S+$")


def normalize_doi(value: str | None) -> str | None:
    """Bare, lower-case DOI, or None when the value is not a DOI at all.

    Handles `https://doi.org/`, `http://dx.doi.org/`, `doi:` prefixes,
    percent-encoding and trailing punctuation that exports leave behind.
    """
    if (type(value) is str and value[:3] == "10." and "%" not in value
            and value[-1] not in ".,;)]}" and value.lower() == value
            and _DOI_SHAPE.fullmatch(value)):
        # most DOIs of an import: already bare and lower case, nothing for `_doi_of_text`
        # to remove (no prefix, percent sign, space or trailing punctuation)
        return value
    return _doi_of_text(value)


def _doi_of_text(value: str | None) -> str | None:
    if not value:
        return None
    text = str(value).strip()
    for _ in range(3):  # prefixes can be stacked ("doi: https://doi.org/...")
        stripped = _DOI_PREFIXES.sub("", text).strip()
        if stripped == text:
            break
        text = stripped
    if "%" in text:
        text = unquote(text)
    text = text.strip().rstrip(".,;)]}").strip()
    # an export sometimes puts several DOIs or a DOI plus text in one field
    text = text.split()[0] if text.split() else ""
    text = text.lower()
    return text if _DOI_SHAPE.match(text) else None


def invalid_doi(value: str) -> str:
    return (f"{value!r} is not a DOI: check it (a DOI looks like 10.1234/abcd, with or "
            f"without https://doi.org/).")


def split_identifiers(values: Sequence[str], normalise: Callable[[str], str | None],
                      invalid: Callable[[str], str]) -> tuple[list[str], dict[str, str]]:
    """Normalised unique identifiers in their first order, and {raw value: sentence} for the
    malformed ones (`invalid` words the sentence)."""
    valid: dict[str, None] = {}
    failed: dict[str, str] = {}
    for raw in values:
        ident = normalise(raw)
        if ident is None:
            failed[str(raw)] = invalid(str(raw))
        else:
            valid.setdefault(ident)
    return list(valid), failed


def split_dois(values: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Normalised unique DOIs, and {raw value: sentence} for the malformed ones."""
    return split_identifiers(values, normalize_doi, invalid_doi)


def normalize_pmid(value: Any) -> str | None:
    """PMID as a string of digits, or None."""
    if type(value) is str and value.isascii() and value.isdigit():
        # nearly every PMID field of an import or a store: what `_pmid_of_text` returns for it
        return value if int(value) > 0 else None
    return _pmid_of_text(value)


def _pmid_of_text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    text = re.sub(r"^(?:pmid:?\s*)", "", text, flags=re.IGNORECASE)
    text = text.split()[0] if text.split() else ""
    if text.endswith(".0"):  # spreadsheets turn ids into floats
        text = text[:-2]
    return text if text.isdigit() and int(text) > 0 else None


def normalize_pmcid(value: Any) -> str | None:
    if not value:
        return None
    text = str(value).strip().upper()
    m = re.search(r"PMC\d+", text)
    if m:
        return m.group(0)
    return f"PMC{text}" if text.isdigit() else None


def normalize_openalex(value: Any) -> str | None:
    if not value:
        return None
    m = re.search(r"\b(W\d+)\b", str(value), flags=re.IGNORECASE)
    return m.group(1).upper() if m else None


# --- other fields ----------------------------------------------------------


def normalize_year(value: Any) -> int | None:
    # a store's years are numbers, an import's mostly four digits: what `_year_in_text`
    # finds in them, without a search
    if type(value) is int or (type(value) is str and len(value) == 4 and value.isascii()
                              and value.isdigit()):
        year = int(value)
        if 1500 <= year <= 2099:
            return year
        if type(value) is str:
            return None
    return _year_in_text(value)


def _year_in_text(value: Any) -> int | None:
    if value is None:
        return None
    m = re.search(r"(1[5-9]\d\d|20\d\d)", str(value))
    return int(m.group(1)) if m else None


_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


def normalize_pages(value: Any) -> str | None:
    """`1341-53` -> `1341-1353`; Excel's `06-Oct` -> `6-10`; `e123` kept."""
    if value is None:
        return None
    text = str(value).strip().replace("\u2013", "-").replace("\u2014", "-").replace("--", "-")
    text = re.sub(r"\s*-\s*", "-", text)
    if not text:
        return None
    m = re.fullmatch(r"(\d{1,2})-([A-Za-z]{3})", text)
    if m and m.group(2).lower() in _MONTHS:  # spreadsheet turned "6-10" into a date
        text = f"{int(m.group(1))}-{_MONTHS[m.group(2).lower()]}"
    m = re.fullmatch(r"([A-Za-z]{3})-(\d{1,2})", text)
    if m and m.group(1).lower() in _MONTHS:
        text = f"{_MONTHS[m.group(1).lower()]}-{int(m.group(2))}"
    m = re.fullmatch(r"([A-Za-z]*)(\d+)-([A-Za-z]*)(\d+)", text)
    if m:
        p1, first, p2, last = m.groups()
        if len(last) < len(first) and int(last) < int(first[-len(last):]) + 10 ** len(last):
            expanded = first[: len(first) - len(last)] + last
            if int(expanded) >= int(first):
                last = expanded
        if first == last:
            return f"{p1}{first}"
        return f"{p1}{first}-{p2 or p1}{last}"
    return text


_LANG = {
    "eng": "en", "english": "en", "en": "en", "ger": "de", "deu": "de", "german": "de", "de": "de",
    "fre": "fr", "fra": "fr", "french": "fr", "fr": "fr", "spa": "es", "spanish": "es", "es": "es",
    "ita": "it", "italian": "it", "it": "it", "por": "pt", "portuguese": "pt", "pt": "pt",
    "dut": "nl", "nld": "nl", "dutch": "nl", "nl": "nl", "chi": "zh", "zho": "zh", "chinese": "zh",
    "zh": "zh", "jpn": "ja", "japanese": "ja", "ja": "ja", "rus": "ru", "russian": "ru", "ru": "ru",
    "nor": "no", "norwegian": "no", "no": "no", "swe": "sv", "swedish": "sv", "sv": "sv",
    "dan": "da", "danish": "da", "da": "da", "pol": "pl", "polish": "pl", "pl": "pl",
    "kor": "ko", "korean": "ko", "ko": "ko", "tur": "tr", "turkish": "tr", "tr": "tr",
    "ara": "ar", "arabic": "ar", "ar": "ar", "per": "fa", "fas": "fa", "persian": "fa",
    "heb": "he", "hebrew": "he", "fin": "fi", "finnish": "fi", "hun": "hu", "hungarian": "hu",
    "cze": "cs", "ces": "cs", "czech": "cs", "gre": "el", "ell": "el", "greek": "el",
}


def normalize_language(values: Any) -> tuple[str, ...]:
    """Language codes as ISO 639-1 where known ("eng", "English" -> "en")."""
    if not values:
        return ()
    if isinstance(values, str):
        values = re.split(r"[;,/]|\s+and\s+", values)
    out: list[str] = []
    for v in values:
        key = str(v).strip().lower()
        if not key:
            continue
        code = _LANG.get(key, key)
        if code not in out:
            out.append(code)
    return tuple(out)


#: an HTML/XML/JATS/MathML tag: "<", a name starting with a letter, attributes
#: (name or name=value), ">". "p < 0.05 and n > 3" or "HbA1c <7% ... >9%" holds none.
MARKUP_TAG = re.compile(
    r"</?[A-Za-z][\w:.-]*(?:\s+[\w:.-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s<>]+))?)*\s*/?>")


#: a character R wrote as its code point when it could not encode it ("IFN<U+03B3>")
CODE_POINT = re.compile(r"<U\+([0-9A-Fa-f]{4,6})>")


def _code_point(m: re.Match) -> str:
    value = int(m.group(1), 16)
    return chr(value) if value <= 0x10FFFF else m.group(0)


def without_markup(text: str) -> str:
    """Tags replaced by a space, then character references decoded ("&amp;" ->
    "&", "&lt;" -> "<", "&#8217;" -> "’", and R's "<U+03B3>" -> "γ"): what a
    reader of the page would see. Tags go first, so an escaped "&lt;b&gt;"
    stays as the text "<b>"."""
    if "<" in text:
        text = MARKUP_TAG.sub(" ", CODE_POINT.sub(_code_point, text))
    return html.unescape(text) if "&" in text else text


def clean_text(value: Any) -> str | None:
    """Collapse whitespace, drop markup tags, decode character references; None for empty."""
    if value is None:
        return None
    return " ".join(without_markup(str(value)).split()) or None


#: inline formatting that sits inside words ("p<sub>trend</sub>", "<i>TERT</i>")
_INLINE = re.compile(r"</?(?:i|b|u|em|strong|sup|sub|sc|span)(?:\s[^<>]*)?>", re.IGNORECASE)


def strip_markup(value: Any) -> str | None:
    """Inline HTML/MathML reduced to its text; a lone `<` (as in `r2<0.25`) is kept."""
    if value is None:
        return None
    text = without_markup(_INLINE.sub("", str(value)))
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"\s+([,.;:)\]])", r"\1", text)
    text = re.sub(r"([(\[])\s+", r"\1", text)
    return text or None


def as_tuple(values: Iterable[Any] | None) -> tuple[str, ...]:
    if not values:
        return ()
    out = []
    for v in values:
        t = clean_text(v)
        if t and t not in out:
            out.append(t)
    return tuple(out)


def fold(text: str | None) -> str:
    """Lower-case ASCII fold for comparisons (diacritics removed)."""
    if not text:
        return ""
    norm = unicodedata.normalize("NFKD", text)
    return "".join(c for c in norm if not unicodedata.combining(c)).lower()


JOURNAL_ARTICLE_TYPES = {"journal article", "journal-article", "article", "jour", "journal"}


def is_journal_article(record: Record) -> bool | None:
    """True/False when the types say so; None when the record's type is unknown."""
    if not record.pub_types:
        return None
    types = {t.lower() for t in record.pub_types}
    return bool(types & JOURNAL_ARTICLE_TYPES)


def is_english(record: Record) -> bool | None:
    """True/False when a language is given; None when unknown."""
    if not record.language:
        return None
    return "en" in record.language
