"""OpenCitations Index API v2: citing and cited DOIs of each seed DOI.

`/citations/doi:{doi}` lists incoming citations, `/references/doi:{doi}`
outgoing ones. In v2 `citing`/`cited` are space-separated PID lists
("omid:br/061… doi:10.7717/peerj-cs.421 pmid:33817056"); the parser takes
the first DOI, else the PMID, and also reads the bare DOIs of the retired
COCI v1 answers.
"""

from __future__ import annotations

from functools import partial
from typing import Mapping, Sequence
from urllib.parse import quote

from base.errors import InvalidInput, NotFound, ServiceError
from base.record import normalize_doi, normalize_pmid, split_dois
from connectors.http import BadBody, CallLog, HttpLayer, Link, Links, parse_json

SERVICE = "opencitations"
NAME = "OpenCitations"


def pid_to_id(pids: str) -> str | None:
    """The DOI (else PMID) named in a PID list; bare DOIs (COCI v1) accepted."""
    pmid = None
    for token in str(pids or "").split():
        scheme, _, value = token.partition(":")
        if scheme == "doi" and normalize_doi(value):
            return normalize_doi(value)
        if scheme == "pmid":
            pmid = pmid or normalize_pmid(value)
        elif scheme not in ("omid", "pmcid", "openalex", "wikidata") and normalize_doi(token):
            return normalize_doi(token)  # a bare DOI (COCI v1); DOIs may contain ":"
    return pmid


def parse_index(body: bytes) -> list[Mapping]:
    data = parse_json(body)
    if not isinstance(data, list) or not all(isinstance(x, Mapping) for x in data):
        raise BadBody("not an OpenCitations record list")
    return data


class OpenCitations:
    """OpenCitations Index v2 over the shared HTTP layer (180 requests per minute)."""

    def __init__(self, http: HttpLayer):
        self.http = http

    def _links(self, dois: Sequence[str], endpoint: str, side: str) -> Links:
        valid, failed = split_dois(dois)
        if not valid and failed:
            raise InvalidInput(NAME, next(iter(failed.values())))
        by_seed: dict[str, tuple[Link, ...]] = {}
        calls: list[CallLog] = []
        for doi in valid:
            path = f"/{endpoint}/doi:{quote(doi, safe='/:;()')}"
            try:
                rows, call = self.http.request(
                    SERVICE, endpoint, path, None, parse=parse_index, count=len,
                    log_params={"doi": doi},
                    not_found=partial(NotFound, NAME, f"OpenCitations does not know the "
                                                      f"DOI {doi}: check it."))
            except NotFound as exc:
                failed[doi] = str(exc)
                if exc.call is not None:
                    calls.append(exc.call)
                continue
            except ServiceError as exc:
                if not calls:
                    raise
                for rest in valid:
                    if rest not in by_seed and rest not in failed:
                        failed[rest] = str(exc)
                break
            calls.append(call)
            links: list[Link] = []
            seen = {doi}
            for row in rows:
                other = pid_to_id(row.get(side, ""))
                if other and other not in seen:
                    seen.add(other)
                    links.append(Link(other))
            by_seed[doi] = tuple(links)
        return Links(by_seed, tuple(calls), failed)

    def citations(self, dois: Sequence[str]) -> Links:
        """DOIs (else PMIDs) of the works citing each seed DOI."""
        return self._links(dois, "citations", "citing")

    def references(self, dois: Sequence[str]) -> Links:
        """DOIs (else PMIDs) of the works each seed DOI cites."""
        return self._links(dois, "references", "cited")
