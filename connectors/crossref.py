"""Crossref REST API: works by DOI, their reference lists, author/bibliographic queries.

Works are looked up in batches with `filter=doi:a,doi:b,...` (a filter name
repeated is ORed), one DOI alone through `/works/{doi}`. Lists are paged with
`cursor`; paging stops on an empty or short page, never because the cursor
did not change (Crossref returns the same cursor string page after page).
"""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from base.errors import InvalidInput, NotFound, RequestRejected, ServiceError
from base.record import (Author, Record, normalize_doi, normalize_language, normalize_pages,
                         normalize_year, split_dois, strip_markup)
from connectors.http import (BadBody, CallLog, Fetched, HttpLayer, Reference, ReferenceLists,
                             parse_json)
from connectors.locations import Located, Location, normalize_version, unique

SERVICE = "crossref"
NAME = "Crossref"
#: DOIs per filter=doi:... call (halved automatically when the URL is refused as too long)
DOI_BATCH = 200
MAX_ROWS = 1000


def _message(body: bytes, kind: str) -> Mapping:
    data = parse_json(body)
    if not isinstance(data, Mapping) or not isinstance(data.get("message"), Mapping):
        raise BadBody("no message in the Crossref envelope")
    if data.get("status") not in (None, "ok"):
        detail = data["message"].get("message") if isinstance(data["message"], Mapping) else None
        raise RequestRejected(NAME, f"Crossref reported an error ({detail or data.get('status')})"
                                    f": check the DOIs or query and try again.")
    if data.get("message-type") not in (None, kind):
        raise BadBody(f"expected a Crossref {kind}, got {data.get('message-type')}")
    return data["message"]


def parse_work(body: bytes) -> Mapping:
    message = _message(body, "work")
    work_to_record(message)  # a shape the converter cannot take fails here, inside the layer
    return message


def parse_work_list(body: bytes) -> Mapping:
    message = _message(body, "work-list")
    if not isinstance(message.get("items"), list):
        raise BadBody("work-list without items")
    for item in message["items"]:
        if not isinstance(item, Mapping):
            raise ValueError("a work-list item is not a work")
        work_to_record(item)
    return message


def _first(values: Any) -> str | None:
    if isinstance(values, list):
        values = values[0] if values else None
    return strip_markup(values) if values else None


def _date_year(message: Mapping) -> int | None:
    for key in ("issued", "published-print", "published-online", "published", "created"):
        parts = (message.get(key) or {}).get("date-parts") or []
        if parts and parts[0] and parts[0][0]:
            return normalize_year(parts[0][0])
    return None


def _author(a: Mapping) -> Author | None:
    orcid = None
    if a.get("ORCID"):
        m = re.search(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])", str(a["ORCID"]))
        orcid = m.group(1) if m else None
    affiliations = tuple(t for t in (strip_markup(x.get("name")) for x in a.get("affiliation", [])
                                     if isinstance(x, Mapping)) if t)
    if a.get("family"):
        name = f"{a['family']}, {a['given']}" if a.get("given") else str(a["family"])
        return Author(strip_markup(name) or name, orcid, affiliations)
    if a.get("name"):
        return Author(strip_markup(a["name"]) or str(a["name"]), orcid, affiliations,
                      collective=True)
    return None


def _abstract(value: Any) -> str | None:
    text = strip_markup(value)
    if text and text.lower().startswith("abstract "):
        text = text[len("abstract "):].strip()
    return text or None


def work_to_record(message: Mapping) -> Record:
    """One Crossref work message as a Record."""
    doi = normalize_doi(message.get("DOI"))
    details = tuple(a for a in (_author(x) for x in message.get("author", [])
                                if isinstance(x, Mapping)) if a)
    extra: dict[str, Any] = {}
    for key in ("reference-count", "is-referenced-by-count", "publisher"):
        if message.get(key) is not None:
            extra[key.replace("-", "_")] = message[key]
    return Record(
        title=_first(message.get("title")),
        abstract=_abstract(message.get("abstract")),
        authors=tuple(a.name for a in details),
        year=_date_year(message),
        journal=_first(message.get("container-title")),
        volume=strip_markup(message.get("volume")),
        issue=strip_markup(message.get("issue")),
        pages=normalize_pages(message.get("page")) if message.get("page") else None,
        doi=doi,
        language=normalize_language(message.get("language")),
        pub_types=(str(message["type"]),) if message.get("type") else (),
        keywords=tuple(str(s) for s in message.get("subject", []) if s),
        issn=_first(message.get("ISSN")),
        url=message.get("URL") or (f"https://doi.org/{doi}" if doi else None),
        source_id=doi,
        author_details=details,
        extra=extra,
    )


def _licence(message: Mapping, version: str | None) -> str | None:
    """The licence URL deposited for a content version (or for any version)."""
    licences = [x for x in (message.get("license") or []) if isinstance(x, Mapping) and x.get("URL")]
    for lic in licences:
        if normalize_version(lic.get("content-version")) == version:
            return str(lic["URL"])
    return str(licences[0]["URL"]) if licences else None


def work_links(message: Mapping) -> tuple[Location, ...]:
    """The full-text links a publisher deposited (`link`), similarity-checking copies left
    out (they are for Crossref's plagiarism service, not for readers)."""
    out: list[Location] = []
    for link in message.get("link") or []:
        if not isinstance(link, Mapping) or not link.get("URL"):
            continue
        if link.get("intended-application") == "similarity-checking":
            continue
        ctype = str(link.get("content-type") or "").lower()
        kind = "pdf" if "pdf" in ctype else "xml" if "xml" in ctype else "landing"
        version = normalize_version(link.get("content-version"))
        out.append(Location(SERVICE, str(link["URL"]), kind, version, _licence(message, version),
                            "publisher"))
    return unique(out)


def to_reference(ref: Mapping) -> Reference:
    year = normalize_year(ref.get("year")) if ref.get("year") else None
    return Reference(
        doi=normalize_doi(ref.get("DOI")),
        unstructured=strip_markup(ref.get("unstructured")),
        title=strip_markup(ref.get("article-title") or ref.get("volume-title")),
        year=year,
        first_author=strip_markup(ref.get("author")),
    )


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


class Crossref:
    """Crossref over the shared HTTP layer (polite pool through `mailto`)."""

    def __init__(self, http: HttpLayer):
        self.http = http

    # -- raw work messages by DOI, shared by works() and references()
    def _messages(self, dois: Sequence[str], batch_size: int
                  ) -> tuple[dict[str, Mapping], list[str], list[CallLog], dict[str, str]]:
        valid, failed = split_dois(dois)
        if not valid and failed:
            raise InvalidInput(NAME, next(iter(failed.values())))
        found: dict[str, Mapping] = {}
        calls: list[CallLog] = []
        # a comma inside a DOI would split the filter, so such DOIs go one by one
        singles = [d for d in valid if "," in d] if len(valid) > 1 else list(valid)
        batched = [d for d in valid if d not in singles]
        queue = list(_chunks(batched, batch_size))
        try:
            while queue:
                batch = queue.pop(0)
                try:
                    message, call = self._filter_batch(batch)
                except RequestRejected as exc:
                    if len(batch) > 1 and exc.status in (413, 414):
                        half = len(batch) // 2  # the URL was too long: halve and retry
                        queue[:0] = [batch[:half], batch[half:]]
                        continue
                    raise
                calls.append(call)
                for item in message["items"]:
                    doi = normalize_doi(item.get("DOI"))
                    if doi in batch:
                        found[doi] = item
            for doi in singles:
                try:
                    message, call = self.http.request(
                        SERVICE, "works", "/works/" + quote(doi, safe="/:;()"), None,
                        parse=parse_work, count=lambda _: 1, log_params={"doi": doi},
                        not_found=partial(_not_found, doi))
                except NotFound as exc:
                    if exc.call is not None:
                        calls.append(exc.call)
                    continue
                except RequestRejected as exc:
                    failed[doi] = str(exc)
                    continue
                calls.append(call)
                found[doi] = message
        except ServiceError as exc:
            if not calls:
                raise  # nothing fetched: the whole call failed
            for doi in valid:
                if doi not in found:
                    failed[doi] = str(exc)
        missing = [d for d in valid if d not in found and d not in failed]
        return found, missing, calls, failed

    def _filter_batch(self, batch: list[str]) -> tuple[Mapping, CallLog]:
        params = [("filter", ",".join(f"doi:{d}" for d in batch)), ("rows", len(batch))]
        return self.http.request(SERVICE, "works", "/works", params, parse=parse_work_list,
                                 count=lambda m: len(m["items"]))

    def works(self, dois: Sequence[str], *, batch_size: int = DOI_BATCH) -> Fetched:
        """Records for DOIs; unknown ones in `missing`, malformed ones in `failed`."""
        found, missing, calls, failed = self._messages(dois, batch_size)
        valid = [d for d in found]
        records = tuple(work_to_record(found[d]) for d in valid)
        return Fetched(records, tuple(missing), tuple(calls), failed)

    def links(self, dois: Sequence[str], *, batch_size: int = DOI_BATCH) -> Located:
        """The full-text links each work's publisher deposited; unknown DOIs in `missing`."""
        found, missing, calls, failed = self._messages(dois, batch_size)
        return Located({d: work_links(m) for d, m in found.items()}, tuple(missing),
                       tuple(calls), failed)

    def references(self, dois: Sequence[str], *, batch_size: int = DOI_BATCH) -> ReferenceLists:
        """Each work's deposited reference list (entries without a DOI kept as text)."""
        found, missing, calls, failed = self._messages(dois, batch_size)
        by_doi = {d: tuple(to_reference(r) for r in m.get("reference", [])
                           if isinstance(r, Mapping))
                  for d, m in found.items()}
        return ReferenceLists(by_doi, tuple(missing), tuple(calls), failed)

    def search(self, *, author: str | None = None, bibliographic: str | None = None,
               orcid: str | None = None, journal_articles: bool = True, rows: int = 20,
               path: str = "/works") -> Fetched:
        """Works matching an author/bibliographic query or an ORCID, in Crossref's order."""
        if not (author or bibliographic or orcid):
            raise InvalidInput(NAME, "The Crossref search has no author, bibliographic query "
                                     "or ORCID: give at least one.")
        params: list[tuple[str, Any]] = []
        if author:
            params.append(("query.author", author))
        if bibliographic:
            params.append(("query.bibliographic", bibliographic))
        filters = []
        if journal_articles:
            filters.append("type:journal-article")
        if orcid:
            filters.append(f"orcid:{orcid}")
        if filters:
            params.append(("filter", ",".join(filters)))
        items, calls = self.list_works(path, params, limit=rows)
        records = tuple(work_to_record(i) for i in items)
        return Fetched(records, (), tuple(calls))

    def list_works(self, path: str, params: Sequence[tuple[str, Any]], *, limit: int,
                   page_rows: int = MAX_ROWS) -> tuple[list[Mapping], list[CallLog]]:
        """Up to `limit` items of a work list; cursor paging when more than one page is needed."""
        page_rows = max(1, min(page_rows, MAX_ROWS, limit))
        items: list[Mapping] = []
        seen: set[str] = set()
        calls: list[CallLog] = []
        if limit <= page_rows:
            message, call = self.http.request(SERVICE, "works", path,
                                              [*params, ("rows", limit)],
                                              parse=parse_work_list,
                                              count=lambda m: len(m["items"]))
            return list(message["items"])[:limit], [call]
        cursor = "*"
        while len(items) < limit:
            message, call = self.http.request(SERVICE, "works", path,
                                              [*params, ("rows", page_rows), ("cursor", cursor)],
                                              parse=parse_work_list,
                                              count=lambda m: len(m["items"]), cache=False)
            calls.append(call)
            page = message["items"]
            before = len(items)
            for item in page:
                key = normalize_doi(item.get("DOI")) or json.dumps(item, sort_keys=True)[:200]
                if key not in seen:
                    seen.add(key)
                    items.append(item)
            # the cursor string may stay the same from page to page: only the page size tells
            if len(page) < page_rows or not message.get("next-cursor") or len(items) == before:
                break
            cursor = message["next-cursor"]
        return items[:limit], calls


def _not_found(doi: str) -> NotFound:
    return NotFound(NAME, f"Crossref does not know the DOI {doi}: check it, or look it up in "
                          f"DataCite if it is not a journal DOI.")
