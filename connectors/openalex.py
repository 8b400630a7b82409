"""OpenAlex: works by DOI/W-id/PMID, cited-by, references, related works, author works.

Several ids are looked up with one OR-filter per id kind
(`filter=doi:a|b`, `filter=openalex:W1|W2`, `filter=pmid:1|2`), at most 50
values per filter as the documentation allows; one id alone goes to the
singleton route. The abstract is rebuilt from `abstract_inverted_index`.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Mapping, Sequence
from urllib.parse import quote

from base.errors import InvalidInput, NotFound, ServiceError
from base.record import (Author, Record, normalize_doi, normalize_language, normalize_pages,
                         normalize_pmid, normalize_year, strip_markup)
from connectors.http import BadBody, CallLog, Fetched, HttpLayer, Link, Links, parse_json
from connectors.locations import Located, Location, normalize_version, unique

SERVICE = "openalex"
NAME = "OpenAlex"
OR_BATCH = 50
MAX_PER_PAGE = 100


def rebuild_abstract(index: Mapping[str, Sequence[int]] | None) -> str | None:
    """The abstract text from OpenAlex's word -> positions index."""
    if not index:
        return None
    positions: dict[int, str] = {}
    for word, where in index.items():
        for pos in where:
            positions[int(pos)] = word
    text = " ".join(positions[i] for i in sorted(positions))
    return strip_markup(text)


def _w(value: Any) -> str | None:
    text = str(value or "")
    m = re.fullmatch(r"(?:https?://openalex\.org/)?(W\d+)", text.strip(), flags=re.IGNORECASE)
    return m.group(1).upper() if m else None


def _pmcid(value: Any) -> str | None:
    m = re.search(r"(?:PMC)?(\d+)/?$", str(value or ""), flags=re.IGNORECASE)
    return f"PMC{m.group(1)}" if m else None


def _family_first(display_name: str) -> str:
    """"Heather Piwowar" -> "Piwowar, Heather", to compare with the other services' names."""
    name = display_name.strip()
    if "," in name or " " not in name:
        return name
    given, family = name.rsplit(" ", 1)
    return f"{family}, {given}"


def _author(a: Mapping) -> Author | None:
    person = a.get("author") or {}
    name = person.get("display_name") or a.get("raw_author_name")
    if not name:
        return None
    orcid = None
    if person.get("orcid"):
        m = re.search(r"(\d{4}-\d{4}-\d{4}-\d{3}[\dX])", str(person["orcid"]))
        orcid = m.group(1) if m else None
    affiliations = tuple(a.get("raw_affiliation_strings") or
                         [i.get("display_name") for i in a.get("institutions", [])
                          if i.get("display_name")])
    return Author(_family_first(str(name)), orcid, affiliations)


def work_to_record(work: Mapping) -> Record:
    """One OpenAlex work object as a Record."""
    ids = work.get("ids") or {}
    wid = _w(work.get("id")) or _w(ids.get("openalex"))
    doi = normalize_doi(work.get("doi") or ids.get("doi"))
    details = tuple(a for a in (_author(x) for x in work.get("authorships", [])) if a)
    location = work.get("primary_location") or {}
    source = location.get("source") or {}
    biblio = work.get("biblio") or {}
    first, last = biblio.get("first_page"), biblio.get("last_page")
    pages = normalize_pages(f"{first}-{last}" if first and last and first != last else first)
    extra: dict[str, Any] = {
        "referenced_works": tuple(x for x in (_w(r) for r in work.get("referenced_works", []))
                                  if x),
        "related_works": tuple(x for x in (_w(r) for r in work.get("related_works", [])) if x),
    }
    for key in ("cited_by_count", "type_crossref"):
        if work.get(key) is not None:
            extra[key] = work[key]
    return Record(
        title=strip_markup(work.get("title") or work.get("display_name")),
        abstract=rebuild_abstract(work.get("abstract_inverted_index")),
        authors=tuple(a.name for a in details),
        year=normalize_year(work.get("publication_year")),
        journal=strip_markup(source.get("display_name")),
        volume=biblio.get("volume") or None,
        issue=biblio.get("issue") or None,
        pages=pages,
        doi=doi,
        pmid=normalize_pmid(str(ids.get("pmid") or "").rstrip("/").rsplit("/", 1)[-1] or None),
        pmcid=_pmcid(ids.get("pmcid")) if ids.get("pmcid") else None,
        openalex=wid,
        language=normalize_language(work.get("language")),
        pub_types=(str(work["type"]),) if work.get("type") else (),
        keywords=tuple(str(k["display_name"]) for k in work.get("keywords", [])
                       if isinstance(k, Mapping) and k.get("display_name")),
        issn=source.get("issn_l"),
        url=work.get("doi") or work.get("id"),
        source_id=wid,
        author_details=details,
        extra=extra,
    )


def work_locations(work: Mapping) -> tuple[Location, ...]:
    """A work's open locations (`best_oa_location` first, then `locations` that are OA)."""
    best = work.get("best_oa_location") or None
    listed = [x for x in (work.get("locations") or []) if isinstance(x, Mapping)]
    out: list[Location] = []
    for loc, is_best in ([(best, True)] if isinstance(best, Mapping) else []) + [
            (x, False) for x in listed]:
        if not loc.get("is_oa"):
            continue
        pdf, landing = loc.get("pdf_url"), loc.get("landing_page_url")
        url, kind = (pdf, "pdf") if pdf else (landing, "landing")
        if not url:
            continue
        source = loc.get("source") or {}
        host = {"repository": "repository", "journal": "publisher"}.get(
            str(source.get("type") or ""))
        out.append(Location(SERVICE, str(url), kind, normalize_version(loc.get("version")),
                            str(loc["license"]) if loc.get("license") else None, host,
                            best=is_best))
    return unique(out)


def parse_work(body: bytes) -> Mapping:
    data = parse_json(body)
    if not isinstance(data, Mapping) or not ("id" in data or "doi" in data):
        raise BadBody("not an OpenAlex work")
    work_to_record(data)  # a shape the converter cannot take fails here, inside the layer
    return data


def parse_list(body: bytes) -> Mapping:
    data = parse_json(body)
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        raise BadBody("not an OpenAlex result list")
    for work in data["results"]:
        if not isinstance(work, Mapping):
            raise ValueError("an OpenAlex result is not a work")
        work_to_record(work)
    return data


def parse_authorships(body: bytes) -> Mapping:
    """A result list of works cut down to `id,authorships` (too little for a record)."""
    data = parse_json(body)
    if not isinstance(data, Mapping) or not isinstance(data.get("results"), list):
        raise BadBody("not an OpenAlex result list")
    return data


def lead_author(work: Mapping) -> str | None:
    """The id (A...) of a work's first author, else of its first listed author."""
    ships = work.get("authorships") or []
    lead = next((a for a in ships if a.get("author_position") == "first"),
                ships[0] if ships else None)
    aid = ((lead or {}).get("author") or {}).get("id")
    return str(aid).rsplit("/", 1)[-1] if aid else None


def classify(value: str) -> tuple[str, str] | None:
    """("openalex"|"doi"|"pmid", normalised id), or None when the value is none of them."""
    text = str(value).strip()
    if text.lower().startswith("pmid:"):
        pmid = normalize_pmid(text[5:])
        return ("pmid", pmid) if pmid else None
    wid = _w(text)
    if wid:
        return "openalex", wid
    doi = normalize_doi(text)
    if doi:
        return "doi", doi
    return None


def _invalid(value: str) -> str:
    return (f"{value!r} is not an OpenAlex work id, DOI or pmid:NNN: check it (e.g. "
            f"W2741809807, 10.7717/peerj.4375 or pmid:29456894).")


def _chunks(items: Sequence[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


class OpenAlex:
    """OpenAlex over the shared HTTP layer (api_key and mailto on every call)."""

    def __init__(self, http: HttpLayer):
        self.http = http

    def _works_by_key(self, ids: Sequence[str]
                      ) -> tuple[dict[str, Mapping], list[str], list[CallLog], dict[str, str],
                                 list[str]]:
        wanted: list[tuple[str, str, str]] = []  # (raw, kind, normalised)
        failed: dict[str, str] = {}
        for raw in ids:
            got = classify(raw)
            if got is None:
                failed[str(raw)] = _invalid(str(raw))
            elif got[1] not in [w[2] for w in wanted]:
                wanted.append((str(raw), *got))
        if not wanted and failed:
            raise InvalidInput(NAME, next(iter(failed.values())))
        found: dict[str, Mapping] = {}
        calls: list[CallLog] = []
        try:
            if len(wanted) == 1:
                raw, kind, key = wanted[0]
                path = {"openalex": f"/works/{key}", "pmid": f"/works/pmid:{key}",
                        "doi": "/works/https://doi.org/" + quote(key, safe="")}[kind]
                try:
                    work, call = self.http.request(
                        SERVICE, "works", path, None, parse=parse_work, count=lambda _: 1,
                        log_params={kind: key},
                        not_found=lambda: NotFound(NAME, f"OpenAlex does not know {raw}: check "
                                                         f"the id."))
                    calls.append(call)
                    found[key] = work
                except NotFound as exc:
                    if exc.call is not None:
                        calls.append(exc.call)
            else:
                for kind in ("openalex", "doi", "pmid"):
                    keys = [w[2] for w in wanted if w[1] == kind]
                    for batch in _chunks(keys, OR_BATCH):
                        values = [f"https://doi.org/{k}" if kind == "doi" else k for k in batch]
                        params = [("filter", f"{kind}:{'|'.join(values)}"),
                                  ("per_page", len(batch))]
                        data, call = self.http.request(SERVICE, "works", "/works", params,
                                                       parse=parse_list,
                                                       count=lambda d: len(d["results"]))
                        calls.append(call)
                        for work in data["results"]:
                            rec_keys = {
                                "openalex": _w(work.get("id")),
                                "doi": normalize_doi(work.get("doi")),
                                "pmid": normalize_pmid(str((work.get("ids") or {}).get("pmid")
                                                           or "").rsplit("/", 1)[-1] or None),
                            }
                            rec_key = rec_keys[kind]
                            if rec_key is not None and rec_key in batch:
                                found[rec_key] = work
        except ServiceError as exc:
            if not calls:
                raise
            for _, _, key in wanted:
                if key not in found:
                    failed[key] = str(exc)
        order = [w[2] for w in wanted]
        missing = [k for k in order if k not in found and k not in failed]
        return found, missing, calls, failed, order

    def works(self, ids: Sequence[str]) -> Fetched:
        """Records for DOIs, W-ids or "pmid:…" ids; unknown ones in `missing`."""
        found, missing, calls, failed, order = self._works_by_key(ids)
        records = tuple(work_to_record(found[k]) for k in order if k in found)
        return Fetched(records, tuple(missing), tuple(calls), failed)

    def oa_locations(self, ids: Sequence[str]) -> Located:
        """Open locations per DOI, W-id or "pmid:…" id (keyed as normalised: a DOI, W-id or
        PMID); unknown ones in `missing`."""
        found, missing, calls, failed, _ = self._works_by_key(ids)
        by_id = {k: work_locations(w) for k, w in found.items()}
        return Located(by_id, tuple(missing), tuple(calls), failed)

    def _seeds(self, work_ids: Sequence[str]) -> tuple[list[str], dict[str, str]]:
        seeds: list[str] = []
        failed: dict[str, str] = {}
        for raw in work_ids:
            wid = _w(raw)
            if wid is None:
                failed[str(raw)] = (f"{raw!r} is not an OpenAlex work id: use a W-id such as "
                                    f"W2741809807 (look DOIs up with works() first).")
            elif wid not in seeds:
                seeds.append(wid)
        if not seeds and failed:
            raise InvalidInput(NAME, next(iter(failed.values())))
        return seeds, failed

    def cited_by(self, work_ids: Sequence[str], *, per_seed: int = 200,
                 sort: str | None = None) -> Links:
        """Works citing each seed (`filter=cites:W…`), in OpenAlex's order."""
        seeds, failed = self._seeds(work_ids)
        by_seed: dict[str, tuple[Link, ...]] = {}
        calls: list[CallLog] = []
        per_page = max(1, min(MAX_PER_PAGE, per_seed))
        for seed in seeds:
            links: list[Link] = []
            page = 1
            try:
                while len(links) < per_seed:
                    params: list[tuple[str, Any]] = [("filter", f"cites:{seed}"),
                                                     ("per_page", per_page), ("page", page),
                                                     ("select", "id")]
                    if sort:
                        params.append(("sort", sort))
                    data, call = self.http.request(SERVICE, "works", "/works", params,
                                                   parse=parse_list,
                                                   count=lambda d: len(d["results"]))
                    calls.append(call)
                    for work in data["results"]:
                        wid = _w(work.get("id"))
                        if wid and wid != seed and wid not in [x.id for x in links]:
                            links.append(Link(wid))
                    if len(data["results"]) < per_page:
                        break
                    page += 1
            except ServiceError as exc:
                if not calls:
                    raise
                failed[seed] = str(exc)
                continue
            by_seed[seed] = tuple(links[:per_seed])
        return Links(by_seed, tuple(calls), failed)

    def _from_work(self, work_ids: Sequence[str], key: str) -> Links:
        seeds, failed = self._seeds(work_ids)
        found, missing, calls, more_failed, _ = self._works_by_key(seeds)
        failed.update(more_failed)
        by_seed = {}
        for seed in seeds:
            if seed in found:
                by_seed[seed] = tuple(Link(w) for w in work_to_record(found[seed]).extra[key]
                                      if w != seed)
            elif seed in missing:
                failed[seed] = f"OpenAlex does not know the work {seed}: check the id."
        return Links(by_seed, tuple(calls), failed)

    def referenced_works(self, work_ids: Sequence[str]) -> Links:
        """Each seed's references, from its work object."""
        return self._from_work(work_ids, "referenced_works")

    def related_works(self, work_ids: Sequence[str]) -> Links:
        """OpenAlex's related works of each seed (about ten, computed by OpenAlex)."""
        return self._from_work(work_ids, "related_works")

    def lead_authors(self, work_ids: Sequence[str]) -> tuple[dict[str, str], tuple[CallLog, ...]]:
        """{work id (W...): its lead author's id (A...)}, asking only for the authorships."""
        out: dict[str, str] = {}
        calls: list[CallLog] = []
        for batch in _chunks(list(work_ids), OR_BATCH):
            data, call = self.http.request(
                SERVICE, "works", "/works",
                [("filter", "openalex:" + "|".join(batch)), ("select", "id,authorships"),
                 ("per_page", len(batch))],
                parse=parse_authorships, count=lambda d: len(d.get("results", [])))
            calls.append(call)
            for work in data.get("results", []):
                aid = lead_author(work)
                if aid:
                    out[str(work.get("id", "")).rsplit("/", 1)[-1].upper()] = aid
        return out, tuple(calls)

    def author_works(self, author_id: str, *, per_page: int = 50,
                     sort: str | None = None) -> Fetched:
        """One page of an author's works (`filter=authorships.author.id:A…`)."""
        m = re.fullmatch(r"(?:https?://openalex\.org/)?(A\d+)", str(author_id).strip(),
                         flags=re.IGNORECASE)
        if m is None:
            raise InvalidInput(NAME, f"{author_id!r} is not an OpenAlex author id: use an id "
                                     f"such as A5023888391.")
        params: list[tuple[str, Any]] = [("filter", f"authorships.author.id:{m.group(1).upper()}"),
                                         ("per_page", max(1, min(per_page, MAX_PER_PAGE)))]
        if sort:
            params.append(("sort", sort))
        data, call = self.http.request(SERVICE, "works", "/works", params, parse=parse_list,
                                       count=lambda d: len(d["results"]))
        return Fetched(tuple(work_to_record(w) for w in data["results"]), (), (call,))

