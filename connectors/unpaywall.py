"""Unpaywall: the open-access copies of a work by DOI (`/v2/{doi}?email=...`).

Unpaywall refuses a call without the contact e-mail (HTTP 422), so the
connector asks only when the settings hold one; the layer sends it as
`email`, which never reaches a cache key, a log or the store. A DOI Unpaywall
does not know answers 404 (it covers Crossref DOIs only). Each OA location
gives `url_for_pdf` (null when only a landing page is known) and
`url_for_landing_page`; `best_oa_location` is repeated in `oa_locations`.
"""

from __future__ import annotations

from functools import partial
from typing import Mapping, Sequence
from urllib.parse import quote

from base.errors import InvalidInput, NotFound
from base.record import split_dois
from connectors.http import BadBody, CallLog, HttpLayer, parse_json
from connectors.locations import Located, Location, locate_each, normalize_version, unique

SERVICE = "unpaywall"
NAME = "Unpaywall"


def parse_doi_object(body: bytes) -> Mapping:
    data = parse_json(body)
    if not isinstance(data, Mapping) or "doi" not in data:
        raise BadBody("not an Unpaywall DOI object")
    locations(data)  # a shape the converter cannot take fails here, inside the layer
    return data


def _location(loc: Mapping, best_url: str | None) -> Location | None:
    pdf = loc.get("url_for_pdf")
    landing = loc.get("url_for_landing_page") or loc.get("url")
    url, kind = (pdf, "pdf") if pdf else (landing, "landing")
    if not url:
        return None
    host = loc.get("host_type")
    return Location(SERVICE, str(url), kind, normalize_version(loc.get("version")),
                    str(loc["license"]) if loc.get("license") else None,
                    str(host) if host in ("publisher", "repository") else None,
                    best=bool(loc.get("is_best")) or (best_url is not None
                                                       and loc.get("url") == best_url))


def locations(data: Mapping) -> tuple[Location, ...]:
    """The OA locations of one Unpaywall DOI object, the best one first."""
    best = data.get("best_oa_location") or None
    if best is not None and not isinstance(best, Mapping):
        raise ValueError("best_oa_location is not an object")
    listed = data.get("oa_locations") or []
    if not isinstance(listed, list):
        raise ValueError("oa_locations is not a list")
    best_url = best.get("url") if best else None
    found = [x for x in (_location(loc, best_url) for loc in ([best] if best else []) + listed
                         if isinstance(loc, Mapping)) if x]
    return unique(sorted(found, key=lambda loc: not loc.best))


def _not_found(doi: str) -> NotFound:
    return NotFound(NAME, f"Unpaywall does not know {doi} (it covers Crossref DOIs only).")


class Unpaywall:
    """Unpaywall over the shared HTTP layer (the contact e-mail on every call)."""

    def __init__(self, http: HttpLayer):
        self.http = http

    @property
    def usable(self) -> bool:
        return bool(self.http.settings.email)

    def locations(self, dois: Sequence[str]) -> Located:
        """OA locations per DOI; unknown DOIs in `missing`, malformed ones in `failed`."""
        if not self.usable:
            raise InvalidInput(NAME, "Unpaywall needs a contact e-mail: set CLUSTER_EMAIL "
                                     "(or --email) and run the command again.")
        valid, failed = split_dois(dois)

        def ask(doi: str) -> tuple[tuple[Location, ...] | None, CallLog | None]:
            try:
                data, call = self.http.request(
                    SERVICE, "doi", "/" + quote(doi, safe="/:;()"), None,
                    parse=parse_doi_object, count=lambda d: len(locations(d)),
                    log_params={"doi": doi}, not_found=partial(_not_found, doi))
            except NotFound as exc:
                return None, exc.call
            return locations(data), call

        return locate_each(valid, ask, failed)


