"""PubMed through NCBI E-utilities: esearch, efetch, elink and DOI -> PMID.

efetch answers (`PubmedArticleSet`) are parsed with `Bio.Entrez.read` on the
bytes our HTTP layer received; Bio.Entrez never does HTTP here. Bio.Entrez
loads the DTD named in the DOCTYPE (and an XML schema named by an `xsi`
namespace) and downloads what is not installed, outside the HTTP layer. So
`prepare_doctype` reads the document's real DOCTYPE with expat (a DOCTYPE
hidden in a comment does not count), checks that the DTD and every part it
pulls in are installed, and writes a new prolog naming only that DTD: an
unknown `pubmed_YYMMDD.dtd` (NCBI releases one a year, additively) is replaced
by the newest bundled PubMed DTD and parsed without validation; any other
unknown DTD, an internal DTD subset, a schema or an encoding other than UTF-8
stops with one sentence. No network access is attempted either way.

esearch and elink answers are small and flat; they are parsed with
`xml.etree`, which never loads a DTD at all, so old documents whose DOCTYPE
points at an `http://` URL (which Bio.Entrez refuses) are read too.
"""

from __future__ import annotations

import io
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterable, Mapping, Sequence
from xml.parsers import expat

from base.errors import InvalidInput, RequestRejected, ServiceError, UnreadableAnswer
from base.record import (Author, Record, normalize_doi, normalize_language, normalize_pages,
                         normalize_pmcid, normalize_pmid, normalize_year, split_identifiers,
                         strip_markup)
from connectors.http import BadBody, CallLog, Fetched, Found, HttpLayer, Link, Links

SERVICE = "pubmed"
NAME = "PubMed"
#: ids per efetch GET; NCBI asks for POST above about 200 ids
FETCH_BATCH = 200
#: seeds per elink call (each seed gets its own LinkSet)
LINK_BATCH = 100
#: ESearch reaches only the first 10,000 records of a PubMed query
ESEARCH_REACH = 10_000
LINKNAMES = ("pubmed_pubmed", "pubmed_pubmed_citedin", "pubmed_pubmed_refs")


# --- DTD handling and Bio.Entrez ----------------------------------------------

_NLM_DTD_URL = "https://dtd.nlm.nih.gov/ncbi/pubmed/out/"
#: a DTD file name Bio.Entrez may look up in its folders (no path, no odd characters)
_DTD_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,80}\.dtd")
_PUBLIC_ID = re.compile(r"[-A-Za-z0-9 ,.:/()']{1,200}")
#: the encodings a document can be re-declared in without transcoding it
_ASCII_COMPATIBLE = {None, "utf-8", "utf8", "us-ascii", "ascii"}


def _dtd_dirs() -> list[str]:
    from Bio.Entrez.Parser import DataHandler

    return [d for d in (DataHandler.local_dtd_dir, DataHandler.global_dtd_dir) if d]


def _local_dtd(filename: str) -> str | None:
    """The installed copy of a DTD file, looked up the way Bio.Entrez does (local first)."""
    for d in _dtd_dirs():
        path = os.path.join(d, filename)
        if os.path.isfile(path):
            return path
    return None


def _dtd_available(filename: str) -> bool:
    return _local_dtd(filename) is not None and not missing_dtd_parts(filename)


@lru_cache(maxsize=None)
def missing_dtd_parts(filename: str) -> tuple[str, ...]:
    """The files DTD `filename` pulls in that are not installed (all of it when unreadable).

    A dry run of what Bio.Entrez does with a DOCTYPE (expat with parameter
    entities, each external reference opened by its base name from the local
    folders), so a DTD is only used when Bio.Entrez will find every part of it
    on disk and never reaches for the network.
    """
    missing: list[str] = []
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_ALWAYS)

    def resolve(context: str, base: str | None, system_id: str | None,
                public_id: str | None) -> int:
        name = os.path.basename(system_id or "")
        path = _local_dtd(name) if name else None
        if path is None:
            missing.append(name or "an unnamed part")
            return 1
        sub = parser.ExternalEntityParserCreate(context)
        with open(path, "rb") as fh:
            sub.ParseFile(fh)
        return 1

    parser.ExternalEntityRefHandler = resolve
    try:
        parser.Parse(f'<?xml version="1.0"?><!DOCTYPE x SYSTEM "{_NLM_DTD_URL}{filename}">'
                     f"<x/>".encode(), True)
    except (expat.ExpatError, OSError):
        return (filename,)
    return tuple(missing)


@lru_cache(maxsize=1)
def newest_pubmed_dtd() -> str | None:
    names: set[str] = set()
    for d in _dtd_dirs():
        if os.path.isdir(d):
            names.update(n for n in os.listdir(d) if re.fullmatch(r"pubmed_\d{6}\.dtd", n))
    # pubmed_YYMMDD: 0x are 2000s; sort by full year
    return max(names, key=lambda n: (int(n[7:9]) + (1900 if int(n[7:9]) > 80 else 2000),
                                     n), default=None) if names else None


@dataclass(frozen=True)
class _Prolog:
    """What an XML document declares before and around its root element."""

    root: str
    root_at: int
    system_id: str | None
    public_id: str | None
    encoding: str | None


class _Refused(Exception):
    pass


class _AtRoot(Exception):
    pass


#: an `xsi` namespace declared in a tag: Bio.Entrez would fetch the XML schema it names
_XSI = re.compile(rb"<[^<>]*\sxmlns:xsi\s*=")


def _read_prolog(body: bytes) -> _Prolog:
    """The document's real DOCTYPE and root, read by an XML parser (never by a pattern).

    A pattern finds a DOCTYPE inside a comment as readily as the real one;
    expat does not, and it loads nothing (no handler for external entities is
    set). Parsing stops at the root element: the rest is Bio.Entrez's to read.
    """
    found: dict[str, Any] = {}
    parser = expat.ParserCreate()

    def xml_decl(version: str, encoding: str | None, standalone: int) -> None:
        found["encoding"] = encoding.lower() if encoding else None

    def doctype(name: str, system_id: str | None, public_id: str | None,
                has_internal_subset: int) -> None:
        if has_internal_subset:
            raise _Refused("declarations of its own (an internal DTD subset)")
        found.update(system_id=system_id, public_id=public_id)

    def start(name: str, attrs: dict[str, str]) -> None:
        found.update(root=name, root_at=parser.CurrentByteIndex)
        raise _AtRoot

    parser.XmlDeclHandler = xml_decl
    parser.StartDoctypeDeclHandler = doctype
    parser.StartElementHandler = start
    try:
        parser.Parse(body, True)
    except _AtRoot:
        pass
    except _Refused as exc:
        raise _hostile(str(exc)) from None
    except expat.ExpatError as exc:
        raise BadBody(f"not a whole XML document ({exc})") from None
    if "root" not in found:
        raise BadBody("no XML element")
    return _Prolog(found["root"], found["root_at"], found.get("system_id"),
                   found.get("public_id"), found.get("encoding"))


def prepare_doctype(body: bytes) -> tuple[bytes, bool]:
    """The body re-declared with a DTD Bio.Entrez reads from disk, and whether to validate.

    Everything before the root element is replaced by an XML declaration and a
    DOCTYPE naming an installed DTD, so Bio.Entrez sees no other: a bundled
    DTD is used as is; an unknown `pubmed_YYMMDD.dtd` (NCBI releases one a
    year, additively), or none, is replaced by the newest bundled PubMed DTD
    and read without validation. Anything else raises UnreadableAnswer, so
    parsing never reaches Bio.Entrez's download path.
    """
    prolog = _read_prolog(body)
    if prolog.encoding not in _ASCII_COMPATIBLE or body.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _hostile(f"an encoding other than UTF-8 ({prolog.encoding or 'UTF-16'})")
    if b"xmlns:xsi" in body and _XSI.search(body, prolog.root_at):
        raise _hostile("an XML schema to fetch")
    validate = True
    if prolog.system_id is None:
        if prolog.root != "PubmedArticleSet":
            raise BadBody("no DOCTYPE and no PubmedArticleSet")
        filename, validate = newest_pubmed_dtd(), False
        if filename is None:
            raise _no_dtd("a PubMed DTD")
    else:
        filename = prolog.system_id.rsplit("/", 1)[-1]
        if not _DTD_NAME.fullmatch(filename):
            raise _no_dtd("an unknown DTD")
        if not _dtd_available(filename):
            newest = newest_pubmed_dtd()
            if re.fullmatch(r"pubmed_\d{6}\.dtd", filename) and newest:
                filename, validate = newest, False
            else:
                raise _no_dtd(filename)
    if missing_dtd_parts(filename):
        raise _no_dtd(filename)
    public = (prolog.public_id if prolog.public_id and _PUBLIC_ID.fullmatch(prolog.public_id)
              else "-//NLM//DTD PubMedArticle//EN")
    head = (f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE {prolog.root} PUBLIC '
            f'"{public}" "{_NLM_DTD_URL}{filename}">\n').encode()
    return head + body[prolog.root_at:], validate


def _no_dtd(name: str) -> UnreadableAnswer:
    return UnreadableAnswer(NAME, f"PubMed answered in a format described by {name}, which "
                                  f"the installed Biopython does not include: upgrade biopython "
                                  f"(pip install -U biopython) and try again.")


def _hostile(what: str) -> UnreadableAnswer:
    return UnreadableAnswer(NAME, f"PubMed sent an answer with {what}, which cluster does not "
                                  f"read: try again later, and report it if it keeps happening.")


def read_entrez_xml(body: bytes) -> dict:
    """Parse an efetch `PubmedArticleSet` with Bio.Entrez.read, offline."""
    from Bio import Entrez
    from Bio.Entrez.Parser import CorruptedXMLError, NotXMLError, ValidationError

    prepared, validate = prepare_doctype(body)
    try:
        try:
            return Entrez.read(io.BytesIO(prepared), validate=validate)
        except ValidationError:
            # a tag newer than the bundled DTD: keep what the DTD knows
            return Entrez.read(io.BytesIO(prepared), validate=False)
    except (NotXMLError, CorruptedXMLError) as exc:
        raise BadBody(f"not a whole XML document ({type(exc).__name__})") from None
    except RuntimeError as exc:
        message = str(exc)
        if "Failed to access" in message:  # defensive: prepare_doctype checked every part
            m = re.search(r"Failed to access (\S+)", message)
            raise _no_dtd(m.group(1) if m and _DTD_NAME.fullmatch(m.group(1))
                          else "a DTD part") from None
        raise _ncbi_error(message) from None


def _ncbi_error(message: str) -> RequestRejected:
    text = message.strip().rstrip(".")
    return RequestRejected(NAME, f"PubMed reported an error ({text}): check the ids or query "
                                 f"and try again.")


def _parse_etree(body: bytes) -> ET.Element:
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadBody(f"not a whole XML document ({exc})") from None
    errors = [e.text.strip() for e in root.iter("ERROR") if e.text and e.text.strip()]
    if errors:
        raise _ncbi_error("; ".join(errors))
    return root


# --- efetch -> Record ----------------------------------------------------------


def _text(node: Any) -> str | None:
    if node is None:
        return None
    text = str(node).strip()
    return text or None


def _author(a: Mapping) -> Author | None:
    affiliations = tuple(t for t in (strip_markup(x.get("Affiliation"))
                                     for x in a.get("AffiliationInfo", [])) if t)
    orcid = None
    for ident in a.get("Identifier", []):
        if getattr(ident, "attributes", {}).get("Source") == "ORCID":
            m = re.search(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])", str(ident))
            orcid = m.group(1) if m else str(ident).strip()
    if a.get("CollectiveName"):
        return Author(strip_markup(a["CollectiveName"]) or "", orcid, affiliations,
                      collective=True)
    last = _text(a.get("LastName"))
    first = _text(a.get("ForeName")) or _text(a.get("Initials"))
    if not last:
        return None
    return Author(f"{last}, {first}" if first else last, orcid, affiliations)


def _abstract(node: Any) -> str | None:
    if not node:
        return None
    parts = []
    for section in node.get("AbstractText", []):
        text = strip_markup(section)
        if not text:
            continue
        label = getattr(section, "attributes", {}).get("Label")
        parts.append(f"{label}: {text}" if label else text)
    return "\n".join(parts) or None


def _year(journal: Mapping, article: Mapping) -> int | None:
    date = journal.get("JournalIssue", {}).get("PubDate", {})
    year = normalize_year(date.get("Year")) or normalize_year(date.get("MedlineDate"))
    if year is None:
        for d in article.get("ArticleDate", []):
            year = normalize_year(d.get("Year"))
            if year:
                break
    return year


def _pages(article: Mapping) -> str | None:
    pag = article.get("Pagination") or {}
    if isinstance(pag, Mapping):
        if pag.get("MedlinePgn"):
            return normalize_pages(str(pag["MedlinePgn"]))
        start, end = _text(pag.get("StartPage")), _text(pag.get("EndPage"))
        if start:
            return normalize_pages(f"{start}-{end}" if end else start)
    return None


def _title(value: Any) -> str | None:
    title = strip_markup(value)
    # PubMed brackets titles it translated into English: "[Title.]"
    if title and title.startswith("[") and title.rstrip(".").endswith("]"):
        title = title.rstrip(".")[1:-1].strip()
    return title


def _comments(citation: Mapping) -> tuple[dict, ...]:
    out = []
    for c in citation.get("CommentsCorrectionsList", []):
        kind = getattr(c, "attributes", {}).get("RefType")
        if kind == "Cites":
            continue  # the reference list, not a comment or correction
        out.append({"type": kind, "pmid": normalize_pmid(c.get("PMID")),
                    "source": strip_markup(c.get("RefSource"))})
    return tuple(out)


def _references(pubmed_data: Mapping) -> tuple[dict, ...]:
    refs = []
    for group in pubmed_data.get("ReferenceList", []):
        for r in group.get("Reference", []):
            ids = {getattr(i, "attributes", {}).get("IdType"): str(i)
                   for i in r.get("ArticleIdList", [])}
            refs.append({"citation": strip_markup(r.get("Citation")),
                         "pmid": normalize_pmid(ids.get("pubmed")),
                         "doi": normalize_doi(ids.get("doi"))})
    return tuple(refs)


def article_to_record(article: Mapping) -> Record:
    """One `PubmedArticle` (as Bio.Entrez gives it) as a Record."""
    citation = article["MedlineCitation"]
    art = citation["Article"]
    data = article.get("PubmedData", {})
    pmid = normalize_pmid(citation.get("PMID"))
    journal = art.get("Journal", {})
    issue = journal.get("JournalIssue", {})
    ids = {getattr(i, "attributes", {}).get("IdType"): str(i)
           for i in data.get("ArticleIdList", [])}
    doi = normalize_doi(ids.get("doi"))
    if doi is None:
        for loc in art.get("ELocationID", []):
            if getattr(loc, "attributes", {}).get("EIdType") == "doi":
                doi = normalize_doi(str(loc))
    details = tuple(a for a in (_author(x) for x in art.get("AuthorList", [])) if a)
    keywords = tuple(strip_markup(k) for group in citation.get("KeywordList", []) for k in group)
    mesh = tuple(str(h["DescriptorName"]) for h in citation.get("MeshHeadingList", []))
    extra: dict[str, Any] = {"status": getattr(citation, "attributes", {}).get("Status")}
    vernacular = strip_markup(art.get("VernacularTitle"))
    if vernacular:
        extra["vernacular_title"] = vernacular
    comments = _comments(citation)
    if comments:
        extra["comments_corrections"] = comments
        errata = tuple(c for c in comments if c["type"] in ("ErratumIn", "ErratumFor"))
        if errata:
            extra["errata"] = errata
    if mesh:
        extra["mesh"] = mesh
    refs = _references(data)
    if refs:
        extra["references"] = refs
    issn = journal.get("ISSN")
    return Record(
        title=_title(art.get("ArticleTitle")),
        abstract=_abstract(art.get("Abstract")),
        authors=tuple(a.name for a in details),
        year=_year(journal, art),
        journal=strip_markup(journal.get("Title")),
        volume=_text(issue.get("Volume")),
        issue=_text(issue.get("Issue")),
        pages=_pages(art),
        doi=doi,
        pmid=pmid,
        pmcid=normalize_pmcid(ids.get("pmc")),
        language=normalize_language([str(x) for x in art.get("Language", [])]),
        pub_types=tuple(str(t) for t in art.get("PublicationTypeList", [])),
        keywords=tuple(k for k in keywords if k),
        issn=_text(issn),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None,
        source_id=pmid,
        author_details=details,
        extra=extra,
    )


def book_to_record(book_article: Mapping) -> Record:
    """A `PubmedBookArticle` (book chapters, NCBI Bookshelf) as a Record."""
    doc = book_article.get("BookDocument", {})
    book = doc.get("Book", {})
    pmid = normalize_pmid(doc.get("PMID"))
    details = tuple(a for group in doc.get("AuthorList", [])
                    for a in (_author(x) for x in group) if a)
    return Record(
        title=_title(doc.get("ArticleTitle") or book.get("BookTitle")),
        abstract=_abstract(doc.get("Abstract")),
        authors=tuple(a.name for a in details),
        year=normalize_year((book.get("PubDate") or {}).get("Year")),
        journal=strip_markup(book.get("BookTitle")),
        pmid=pmid,
        language=normalize_language([str(x) for x in doc.get("Language", [])]),
        pub_types=tuple(str(t) for t in doc.get("PublicationType", [])),
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/" if pmid else None,
        source_id=pmid,
        author_details=details,
    )


def parse_efetch(body: bytes) -> tuple[Record, ...]:
    data = read_entrez_xml(body)
    if not isinstance(data, Mapping) or "PubmedArticle" not in data:
        raise BadBody("not a PubmedArticleSet")
    records = [article_to_record(a) for a in data.get("PubmedArticle", [])]
    records += [book_to_record(b) for b in data.get("PubmedBookArticle", [])]
    return tuple(records)


# --- esearch / elink parsing ----------------------------------------------------


def parse_esearch(body: bytes) -> tuple[tuple[str, ...], int, tuple[str, ...]]:
    """(ids, count, warnings) from an eSearchResult."""
    root = _parse_etree(body)
    if root.tag != "eSearchResult":
        raise BadBody(f"expected eSearchResult, got {root.tag}")
    count_text = root.findtext("Count")
    if count_text is None:
        raise BadBody("eSearchResult without Count")
    ids = tuple(i.text.strip() for i in root.findall("IdList/Id") if i.text)
    warnings = []
    for node in root.findall("ErrorList/*") + root.findall("WarningList/*"):
        if node.text and node.text.strip():
            warnings.append(f"PubMed: {_humanise(node.tag)}: {node.text.strip()}")
    return ids, int(count_text), tuple(warnings)


@dataclass(frozen=True)
class ESearch:
    """An eSearchResult as a database search reports it."""

    ids: tuple[str, ...]
    count: int
    translation: str | None
    webenv: str | None
    query_key: str | None
    #: PubMed's ErrorList and WarningList (phrase not found, unknown field tag, no items),
    #: each one sentence; the search still ran on what PubMed understood
    warnings: tuple[str, ...]


def parse_esearch_result(body: bytes) -> ESearch:
    """Ids, count, query translation, history-server keys and PubMed's notes."""
    ids, count, warnings = parse_esearch(body)
    root = _parse_etree(body)
    translation = (root.findtext("QueryTranslation") or "").strip() or None
    return ESearch(ids, count, translation, (root.findtext("WebEnv") or "").strip() or None,
                   (root.findtext("QueryKey") or "").strip() or None, warnings)


#: the longest query sent: PubMed's own search box cuts queries far shorter, and a
#: strategy this long is several searches pasted together
MAX_QUERY_CHARS = 8_000
_DATE = re.compile(r"(\d{4})(?:[/-](\d{1,2})(?:[/-](\d{1,2}))?)?")


@dataclass(frozen=True)
class SearchQuery:
    """A PubMed database search as typed, checked before anything is sent."""

    text: str
    date_from: str | None = None     # YYYY, YYYY/MM or YYYY/MM/DD (publication date)
    date_to: str | None = None
    filters: tuple[str, ...] = ()     # clauses ANDed to the query, e.g. english[lang]

    @property
    def term(self) -> str:
        """The term sent to esearch: the query, then each filter, ANDed."""
        if not self.filters:
            return self.text
        return " AND ".join([f"({self.text})", *(f"({f})" for f in self.filters)])

    def limits(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.date_from or self.date_to:
            out["publication_date"] = f"{self.date_from or 'any'} to {self.date_to or 'present'}"
        if self.filters:
            out["filters"] = " AND ".join(self.filters)
        return out


def _pubmed_date(value: str | None, which: str) -> tuple[str | None, tuple[int, int, int]]:
    if value is None or not value.strip():
        return None, (0, 0, 0)
    m = _DATE.fullmatch(value.strip())
    parts = [int(g) if g else 0 for g in m.groups()] if m else []
    if not m or not (1 <= parts[1] <= 12 or parts[1] == 0) or not (0 <= parts[2] <= 31) \
            or (parts[1] == 0 and parts[2]):
        raise InvalidInput(NAME, f"The {which} date {value!r} is not a date PubMed reads: give "
                                 f"YYYY, YYYY/MM or YYYY/MM/DD, e.g. 2015/01/31.")
    text = "/".join(f"{p:02d}" if i else str(p) for i, p in enumerate(parts) if p)
    return text, (parts[0], parts[1], parts[2])


def pubmed_query(text: str, *, date_from: str | None = None, date_to: str | None = None,
                 filters: Sequence[str] = ()) -> SearchQuery:
    """A checked query: not empty, not over MAX_QUERY_CHARS, dates readable and in order."""
    if not text or not text.strip():
        raise InvalidInput(NAME, "The PubMed query is empty: give the search strategy in quotes, "
                                 "e.g. cluster search pubmed '\"compassion\"[tiab]'.")
    clean = [f.strip() for f in filters if f and f.strip()]
    length = len(text) + sum(len(f) + 9 for f in clean)
    if length > MAX_QUERY_CHARS:
        raise InvalidInput(NAME, f"The PubMed query is {length:,} characters long, over the "
                                 f"{MAX_QUERY_CHARS:,} cluster sends: split the strategy into "
                                 f"several searches.")
    start, start_key = _pubmed_date(date_from, "--from")
    end, end_key = _pubmed_date(date_to, "--to")
    if start and end:
        # a partial date covers its whole year or month: compare the first day with the last
        last = (end_key[0], end_key[1] or 12, end_key[2] or 31)
        if start_key > last:
            raise InvalidInput(NAME, f"The dates are the wrong way round: --from {start} is "
                                     f"after --to {end}.")
    return SearchQuery(text.strip(), start, end, tuple(clean))


def _humanise(tag: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", " ", tag).lower()


def parse_elink(body: bytes) -> tuple[tuple[tuple[str, ...], dict[str, tuple[Link, ...]]], ...]:
    """Each LinkSet as (seed ids, {link name: links in the service's order})."""
    root = _parse_etree(body)
    if root.tag != "eLinkResult":
        raise BadBody(f"expected eLinkResult, got {root.tag}")
    sets = []
    for ls in root.findall("LinkSet"):
        seeds = tuple(i.text.strip() for i in ls.findall("IdList/Id") if i.text)
        by_name: dict[str, tuple[Link, ...]] = {}
        for db in ls.findall("LinkSetDb"):
            name = (db.findtext("LinkName") or "").strip()
            links = []
            for link in db.findall("Link"):
                lid = (link.findtext("Id") or "").strip()
                score = link.findtext("Score")
                if lid:
                    links.append(Link(lid, float(score) if score and score.strip() else None))
            by_name[name] = tuple(links)
        sets.append((seeds, by_name))
    return tuple(sets)


# --- the connector ----------------------------------------------------------------


def _invalid_pmid(value: str) -> str:
    return (f"PubMed ids are numbers and {value!r} is not one: check the PMID "
            f"(e.g. 31452104).")


def _split_pmids(pmids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    return split_identifiers(pmids, normalize_pmid, _invalid_pmid)


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


class PubMed:
    """PubMed via E-utilities over the shared HTTP layer."""

    def __init__(self, http: HttpLayer):
        self.http = http

    def _call(self, endpoint: str, params: Sequence[tuple[str, Any]], parse: Callable,
              count: Callable = len, *, post: bool = False, cache: bool = True):
        return self.http.request(SERVICE, endpoint, f"/{endpoint}.fcgi", params, parse=parse,
                                 count=count, method="POST" if post else "GET", expect="xml",
                                 cache=cache)

    def fetch(self, pmids: Sequence[str], *, batch_size: int = FETCH_BATCH) -> Fetched:
        """Records for PMIDs; unknown ones in `missing`, malformed ones in `failed`."""
        valid, failed = _split_pmids(pmids)
        if not valid and failed:
            raise InvalidInput(NAME, next(iter(failed.values())))
        records: dict[str, Record] = {}
        calls: list[CallLog] = []
        for n, batch in enumerate(_chunks(valid, batch_size)):
            params = [("db", "pubmed"), ("id", ",".join(batch)), ("retmode", "xml")]
            try:
                found, call = self._call("efetch", params, parse_efetch, post=len(batch) > 200)
            except ServiceError as exc:
                if n == 0:
                    raise  # nothing fetched yet: the whole call failed
                # keep what earlier batches brought; say which ids are missing and why
                for pmid in valid:
                    if pmid not in records:
                        failed[pmid] = str(exc)
                break
            calls.append(call)
            for rec in found:
                if rec.pmid:
                    records[rec.pmid] = rec
        ordered = tuple(records[p] for p in valid if p in records)
        missing = tuple(p for p in valid if p not in records and p not in failed)
        return Fetched(ordered, missing, tuple(calls), failed)

    def search(self, term: str, *, sort: str = "relevance", retmax: int = 20,
               mindate: str | None = None, maxdate: str | None = None,
               datetype: str = "pdat", page_size: int = 10_000) -> Found:
        """PMIDs for a query, in PubMed's order; warns past PubMed's 10,000-record reach."""
        if not term or not term.strip():
            raise InvalidInput(NAME, "The PubMed query is empty: give a search term.")
        warnings: list[str] = []
        wanted = retmax
        if retmax > ESEARCH_REACH:
            warnings.append(f"PubMed returns only the first {ESEARCH_REACH:,} records of a "
                            f"query: split it by date ([dp]) to reach the rest.")
            wanted = ESEARCH_REACH
        ids: list[str] = []
        calls: list[CallLog] = []
        count = 0
        start = 0
        while True:
            asked = min(page_size, wanted - start)
            params: list[tuple[str, Any]] = [("db", "pubmed"), ("term", term), ("sort", sort),
                                             ("retstart", start), ("retmax", asked)]
            if mindate or maxdate:
                params += [("datetype", datetype), ("mindate", mindate or "1800"),
                           ("maxdate", maxdate or "3000")]
            (page, count, notes), call = self._call("esearch", params, parse_esearch,
                                                    count=lambda r: len(r[0]))
            calls.append(call)
            for w in notes:
                if w not in warnings:
                    warnings.append(w)
            ids.extend(i for i in page if i not in ids)
            start += len(page)
            if len(page) < asked or start >= min(wanted, count):
                break
        if count > ESEARCH_REACH and wanted >= ESEARCH_REACH:
            note = (f"PubMed found {count:,} records but returns only the first "
                    f"{ESEARCH_REACH:,}: split the query by date ([dp]) to reach the rest.")
            if note not in warnings:
                warnings.append(note)
        return Found(tuple(ids[:wanted]), count, tuple(calls), tuple(warnings))

    def esearch(self, query: SearchQuery, *, count_only: bool = False) -> tuple[ESearch, CallLog]:
        """Run a database search: its count and translation, and (unless `count_only`) the
        ids PubMed lists, kept on the history server for `fetch_found`."""
        params: list[tuple[str, Any]] = [("db", "pubmed"), ("term", query.term)]
        if query.date_from or query.date_to:
            params += [("datetype", "pdat"), ("mindate", query.date_from or "1800"),
                       ("maxdate", query.date_to or "3000")]
        if count_only:
            params.append(("retmax", 0))
        else:
            params += [("usehistory", "y"), ("retmax", ESEARCH_REACH)]
        # never from the cache: a database search is dated, and a rerun looks for what is new
        return self._call("esearch", params, parse_esearch_result, count=lambda r: r.count,
                          post=len(query.term) > 1_000, cache=False)

    def fetch_found(self, found: ESearch, *, batch_size: int = 500,
                    progress: Callable[[int, int], None] | None = None) -> Fetched:
        """The records of a search kept on the history server, `batch_size` per efetch."""
        if not (found.webenv and found.query_key):
            return self.fetch(found.ids)
        records: dict[str, Record] = {}
        calls: list[CallLog] = []
        total = min(found.count, ESEARCH_REACH)
        for start in range(0, total, batch_size):
            params = [("db", "pubmed"), ("query_key", found.query_key),
                      ("WebEnv", found.webenv), ("retstart", start),
                      ("retmax", min(batch_size, total - start)), ("retmode", "xml")]
            got, call = self._call("efetch", params, parse_efetch, cache=False)
            calls.append(call)
            for rec in got:
                if rec.pmid:
                    records[rec.pmid] = rec
            if progress:
                progress(min(start + batch_size, total), total)
        ordered = [records.pop(p) for p in found.ids if p in records]
        ordered += records.values()
        missing = tuple(p for p in found.ids if p not in {r.pmid for r in ordered})
        return Fetched(tuple(ordered), missing, tuple(calls))

    def links(self, pmids: Sequence[str], linkname: str, *, batch_size: int = LINK_BATCH) -> Links:
        """Linked PMIDs per seed (related articles ranked by score, citing, references)."""
        if linkname not in LINKNAMES:
            raise InvalidInput(NAME, f"PubMed link {linkname!r} is not supported: use one of "
                                     f"{', '.join(LINKNAMES)}.")
        valid, failed = _split_pmids(pmids)
        if not valid and failed:
            raise InvalidInput(NAME, next(iter(failed.values())))
        by_seed: dict[str, tuple[Link, ...]] = {}
        calls: list[CallLog] = []
        for batch in _chunks(valid, batch_size):
            # repeated id= (not comma-joined) so that every seed keeps its own LinkSet
            params: list[tuple[str, Any]] = [("dbfrom", "pubmed"), ("db", "pubmed")]
            params += [("id", p) for p in batch]
            if linkname == "pubmed_pubmed":
                params.append(("cmd", "neighbor_score"))
            else:
                params += [("cmd", "neighbor"), ("linkname", linkname)]
            try:
                sets, call = self._call(
                    "elink", params, parse_elink, post=len(batch) > 200,
                    count=lambda s: sum(len(v.get(linkname, ())) for _, v in s))
            except ServiceError as exc:
                if not by_seed and not calls:
                    raise
                for p in valid:
                    if p not in by_seed:
                        failed[p] = str(exc)
                break
            calls.append(call)
            for seeds, names in sets:
                if len(seeds) != 1:
                    for s in seeds:
                        failed[s] = (f"PubMed merged the links of {len(seeds)} seeds: fetch "
                                     f"{s} on its own.")
                    continue
                seed = seeds[0]
                by_seed[seed] = tuple(link for link in names.get(linkname, ()) if link.id != seed)
            for p in batch:
                if p not in by_seed and p not in failed:
                    failed[p] = f"PubMed returned no link set for PMID {p}: check that it exists."
        return Links(by_seed, tuple(calls), failed)

    def pmids_for_dois(self, dois: Sequence[str], *, batch_size: int = 50
                       ) -> tuple[Mapping[str, str], tuple[CallLog, ...]]:
        """{doi: pmid} for the DOIs PubMed knows (esearch on [doi], then efetch to pair them)."""
        wanted = []
        for raw in dois:
            doi = normalize_doi(raw)
            if doi and doi not in wanted:
                wanted.append(doi)
        if not wanted and dois:
            raise InvalidInput(NAME, f"{dois[0]!r} is not a DOI: check it (a DOI starts "
                                     f"with 10.).")
        mapping: dict[str, str] = {}
        calls: list[CallLog] = []
        for batch in _chunks(wanted, batch_size):
            term = " OR ".join(f'"{d}"[doi]' for d in batch)
            found = self.search(term, retmax=len(batch) * 2)
            calls.extend(found.calls)
            if not found.ids:
                continue
            fetched = self.fetch(found.ids)
            calls.extend(fetched.calls)
            for rec in fetched.records:
                if rec.doi in batch and rec.pmid:
                    mapping[rec.doi] = rec.pmid
        return mapping, tuple(calls)
