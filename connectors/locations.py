"""Where a work's full text may be read: the candidate locations the open-access
services report, in one shape for all of them.

Each service names the same things differently (Unpaywall's `url_for_pdf`,
OpenAlex's `pdf_url`, Crossref's `link` with a content type, PMC's OA links);
the connectors turn their answers into `Location`s so that choosing, fetching
and recording them is written once, above the connectors.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from base.errors import RateLimited, ServiceDown, ServiceError
from connectors.http import CallLog

#: what a location leads to: a PDF, a JATS/PMC XML document, or a web page to read it on
KINDS = ("pdf", "xml", "landing")
VERSIONS = ("published", "accepted", "submitted")

_VERSION_SPELLINGS = {
    "publishedversion": "published", "vor": "published", "published": "published",
    "acceptedversion": "accepted", "am": "accepted", "accepted": "accepted",
    "submittedversion": "submitted", "submitted": "submitted", "preprint": "submitted",
}


def normalize_version(value: Any) -> str | None:
    """"publishedVersion" (Unpaywall, OpenAlex), "vor"/"am" (Crossref) -> published/accepted/..."""
    return _VERSION_SPELLINGS.get(str(value or "").strip().lower())


def https_ftp(url: str) -> str:
    """NCBI's FTP links as the same files over HTTPS (the FTP site serves both)."""
    if url.lower().startswith("ftp://ftp.ncbi.nlm.nih.gov/"):
        return "https://" + url[len("ftp://"):]
    return url


@dataclass(frozen=True)
class Location:
    """One place a full text may be read, as one service reports it."""

    service: str
    url: str
    kind: str
    version: str | None = None
    licence: str | None = None
    host_type: str | None = None  # publisher | repository
    best: bool = False            # the service's own first choice

    def to_dict(self) -> dict[str, Any]:
        return {"service": self.service, "url": self.url, "kind": self.kind,
                "version": self.version, "licence": self.licence,
                "host_type": self.host_type, "best": self.best}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Location":
        return cls(service=str(data["service"]), url=str(data["url"]), kind=str(data["kind"]),
                   version=data.get("version"), licence=data.get("licence"),
                   host_type=data.get("host_type"), best=bool(data.get("best")))


@dataclass(frozen=True)
class Located:
    """Locations per identifier asked for (none found: an empty tuple); identifiers the
    service does not know in `missing`, failures per identifier in `failed`."""

    by_id: Mapping[str, tuple[Location, ...]]
    missing: tuple[str, ...]
    calls: tuple[CallLog, ...]
    failed: Mapping[str, str] = field(default_factory=dict)


def locate_each(ids: Sequence[str],
                ask: Callable[[str], tuple[tuple[Location, ...] | None, CallLog | None]],
                failed: Mapping[str, str] | None = None) -> Located:
    """Ask a one-identifier-a-call service about each id in turn. `ask` gives an id's
    locations (None: the service does not know it) and its call. A failure for one id
    fails that id alone; a service rate-limited or down fails it and every id after it,
    since asking for the rest would only wait longer. `failed` holds ids refused before
    asking (malformed ones)."""
    by_id: dict[str, tuple[Location, ...]] = {}
    missing: list[str] = []
    calls: list[CallLog] = []
    fails: dict[str, str] = dict(failed or {})
    for n, key in enumerate(ids):
        try:
            got, call = ask(key)
        except (RateLimited, ServiceDown) as exc:
            fails.update((rest, str(exc)) for rest in ids[n:])
            break
        except ServiceError as exc:
            fails[key] = str(exc)
            continue
        if call is not None:
            calls.append(call)
        if got is None:
            missing.append(key)
        else:
            by_id[key] = got
    return Located(by_id, tuple(missing), tuple(calls), fails)


def unique(locations: list[Location]) -> tuple[Location, ...]:
    """The locations in order, each URL once (the first mention wins)."""
    seen: set[str] = set()
    out = []
    for loc in locations:
        if loc.url and loc.url not in seen:
            seen.add(loc.url)
            out.append(loc)
    return tuple(out)
