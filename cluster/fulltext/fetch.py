"""Step 2: download the best open copy of each record into the store's full-text folder.

For each record at full text with candidate locations and no copy in hand,
the PDF and XML locations are tried best first (a published version before an
accepted one, a PDF before XML; Unpaywall's, then PMC's, OpenAlex's and
Crossref's order); the first file that is really a full text
(`check.check_file`) is kept as `<record id>-<sha256>.pdf|.xml` and the record
is marked `retrieved` with its source. Downloads run a few at a time, each
host at its own polite rate (`connectors.download`); every result is logged as
it arrives, so an interrupted run keeps what it fetched and a rerun fetches
nothing twice.

A record whose candidates all fail for good (broken links, HTML instead of a
PDF, over the size cap, a redirect loop), or that has none, is marked
`not-retrieved` with the reasons; one whose failures may pass (a timeout, a
server error) is left for the next run. A file is renamed into place only
once whole and checked: nothing half-written is ever left in the folder.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from base.services import SERVICE_NAMES
from cluster.fulltext.check import NotFullText, check_file
from connectors.download import Downloader, DownloadFailed
from db.events import FULL_TEXT
from db.state import Retrieval, retrievals, stage_records
from db.store import Store

Progress = Callable[[int, int], None]
WORKERS = 4
_SERVICE_ORDER = ("unpaywall", "pmc", "openalex", "crossref")
_VERSION_ORDER = ("published", "accepted", None, "submitted")

NO_LOCATION = "no open copy found"
LANDING_ONLY = "no open PDF found, only a landing page to read it on"


@dataclass(frozen=True)
class FetchOutcome:
    record_id: int
    status: str                   # retrieved | not-retrieved | failed (may pass: try again)
    message: str                  # what happened, in one clause
    source: str | None = None
    file: str | None = None
    warning: str | None = None    # kept, but worth knowing (a PDF with no text)
    #: for a copy kept: where it came from, its digest and size, and the location's details
    url: str | None = None
    sha256: str | None = None
    size: int | None = None
    kind: str | None = None
    version: str | None = None
    licence: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record_id, "status": self.status, "message": self.message,
                "source": self.source, "file": self.file, "warning": self.warning,
                "url": self.url, "sha256": self.sha256, "bytes": self.size}


@dataclass(frozen=True)
class FetchResult:
    outcomes: tuple[FetchOutcome, ...]
    already: int           # records with a copy in hand already
    not_looked_up: tuple[int, ...]  # records `find` has not looked up yet

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    def by_source(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for o in self.outcomes:
            if o.status == "retrieved" and o.source:
                out[o.source] = out.get(o.source, 0) + 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"retrieved": self.count("retrieved"), "not_retrieved": self.count("not-retrieved"),
                "failed": self.count("failed"), "already": self.already,
                "not_looked_up": list(self.not_looked_up), "by_source": self.by_source(),
                "records": [o.to_dict() for o in self.outcomes]}


def rank(location: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """Sort key: best candidate first."""
    service = location.get("service")
    return (0 if location.get("kind") == "pdf" else 1,
            _VERSION_ORDER.index(location.get("version"))
            if location.get("version") in _VERSION_ORDER else 2,
            0 if location.get("best") else 1,
            _SERVICE_ORDER.index(service) if service in _SERVICE_ORDER else 9)


def candidates(r: Retrieval) -> list[Mapping[str, Any]]:
    """The locations worth downloading (PDF and XML), best first."""
    return sorted((x for x in r.locations if x.get("kind") in ("pdf", "xml")), key=rank)


def file_name(record_id: int, sha256: str, kind: str) -> str:
    return f"{record_id}-{sha256}.{'pdf' if kind == 'pdf' else 'xml'}"


def records_to_fetch(store: Store, *, retry: bool = False, only: Sequence[int] | None = None
                     ) -> tuple[list[Retrieval], int, list[int]]:
    """(records to try now, how many are in hand already, records not looked up yet)."""
    got = retrievals(store)
    todo, already, unlooked = [], 0, []
    for rid in stage_records(store, FULL_TEXT):
        if only is not None and rid not in only:
            continue
        r = got.get(rid, Retrieval(rid))
        if r.state == "retrieved":
            already += 1
        elif not r.located:
            unlooked.append(rid)
        elif r.state == "not-retrieved" and not retry:
            already += 1
        else:
            todo.append(r)
    return todo, already, unlooked


def _label(location: Mapping[str, Any]) -> str:
    return f"{SERVICE_NAMES.get(str(location.get('service')), location.get('service'))} " \
           f"{str(location.get('kind')).upper()}"


def _try(r: Retrieval, folder: Path, downloader: Downloader) -> FetchOutcome:
    """Download and check the candidates of one record in turn (runs in a worker thread:
    it touches the folder, never the store)."""
    tried = candidates(r)
    if not tried:
        why = LANDING_ONLY if r.locations else NO_LOCATION
        # PMC holds a small share of all works: only the services meant to know every DOI
        # or PMID tell an identifier that does not resolve
        registries = [s for s in r.asked if s != "pmc" and s not in r.unanswered]
        if not r.locations and registries and all(s in r.unknown_to for s in registries):
            names = ", ".join(SERVICE_NAMES.get(s, s) for s in registries)
            why += (f": none of the services asked knows its identifier ({names}); check the "
                    f"DOI or PMID")
        return FetchOutcome(r.record_id, "not-retrieved", why)
    problems: list[str] = []
    transient = False
    for loc in tried:
        try:
            got = downloader.fetch(str(loc["url"]), folder)
        except DownloadFailed as exc:
            problems.append(f"{_label(loc)}: {exc}")
            transient = transient or exc.transient
            continue
        try:
            checked = check_file(got.path)
        except NotFullText as exc:
            got.path.unlink(missing_ok=True)
            problems.append(f"{_label(loc)}: {exc}")
            continue
        except BaseException:
            got.path.unlink(missing_ok=True)
            raise
        name = file_name(r.record_id, got.sha256, checked.kind)
        os.replace(got.path, folder / name)
        warning = None
        if checked.kind == "pdf" and not checked.has_text:
            warning = "the PDF has no text layer (a scan?): it can be read, not searched"
        return FetchOutcome(r.record_id, "retrieved", f"{_label(loc)} from {got.url}",
                            str(loc["service"]), name, warning, url=got.url, sha256=got.sha256,
                            size=got.size, kind=checked.kind, version=loc.get("version"),
                            licence=loc.get("licence"))
    status = "failed" if transient else "not-retrieved"
    return FetchOutcome(r.record_id, status, "the open copies failed: " + "; ".join(problems))


def fetch(store: Store, folder: Path, downloader: Downloader, *, retry: bool = False,
          only: Sequence[int] | None = None, workers: int = WORKERS,
          progress: Progress | None = None) -> FetchResult:
    """Fetch the best open copy of each record that needs one; see the module docstring."""
    todo, already, unlooked = records_to_fetch(store, retry=retry, only=only)
    outcomes: list[FetchOutcome] = []
    if progress:
        progress(0, len(todo))
    if todo:
        folder.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(_try, r, folder, downloader) for r in todo]
        try:
            for future in as_completed(futures):
                outcome = future.result()
                _log(store, outcome)
                outcomes.append(outcome)
                if progress:
                    progress(len(outcomes), len(todo))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    outcomes.sort(key=lambda o: o.record_id)
    return FetchResult(tuple(outcomes), already, tuple(unlooked))


def _log(store: Store, outcome: FetchOutcome) -> None:
    if outcome.status == "failed":
        return
    with store.transaction():
        if outcome.status == "retrieved":
            store.log_event("fulltext", record_id=outcome.record_id, stage=FULL_TEXT,
                            value="retrieved",
                            data={"source": outcome.source, "file": outcome.file,
                                  "sha256": outcome.sha256, "bytes": outcome.size,
                                  "kind": outcome.kind, "url": outcome.url,
                                  "version": outcome.version, "licence": outcome.licence})
        else:
            store.log_event("fulltext", record_id=outcome.record_id, stage=FULL_TEXT,
                            value="not-retrieved", reason=outcome.message[:500])
