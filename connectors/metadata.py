"""Metadata by identifier: PMIDs from PubMed, DOIs from Crossref, and completing
the store's records that were imported with an identifier but little else.

The records a service returns fill only the fields a stored record lacks, so
nothing a reviewer or an import put there is overwritten; the record keeps its
own `source_id`. Every HTTP call is written to `searches` (the PRISMA-S log).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Callable, Mapping, Sequence

from base.errors import ServiceError
from base.record import Record, normalize_doi, normalize_pmid
from connectors.http import CallLog, Fetched
from connectors.services import Services

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Filled:
    """What `fill_needs_metadata` did: records completed, ids no service knew, failures."""

    filled: int
    missing: tuple[str, ...]
    failed: Mapping[str, str]
    calls: tuple[CallLog, ...]
    remaining: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {"filled": self.filled, "still_needing_metadata": self.remaining,
                "missing": list(self.missing), "failed": dict(self.failed),
                "requests": len(self.calls)}


def fetch_by_ids(services: Services, *, pmids: Sequence[str] = (), dois: Sequence[str] = (),
                 progress: Progress | None = None) -> Fetched:
    """Records for PMIDs (PubMed) and DOIs (Crossref), with what was missing or failed."""
    total = (1 if pmids else 0) + (1 if dois else 0)
    done = 0
    records: list[Record] = []
    missing: list[str] = []
    failed: dict[str, str] = {}
    calls: list[CallLog] = []
    errors: list[ServiceError] = []
    for ids, call in ((pmids, services.pubmed.fetch), (dois, services.crossref.works)):
        if not ids:
            continue
        try:
            got = call(list(ids))
        except ServiceError as exc:
            # the other service may still answer: keep its records, report these ids
            errors.append(exc)
            failed.update({str(i): str(exc) for i in ids})
            continue
        records += got.records
        missing += got.missing
        failed.update(got.failed)
        calls += got.calls
        done += 1
        if progress:
            progress(done, total)
    if errors and len(errors) == total:
        raise errors[0]
    return Fetched(tuple(records), tuple(missing), tuple(calls), failed)


def complete(stored: Record, fetched: Record) -> Record:
    """`stored` with its empty fields taken from `fetched`; no longer needing metadata."""
    changes = {}
    for f in fields(Record):
        if f.name in ("source_id", "needs_metadata", "extra"):
            continue
        mine = getattr(stored, f.name)
        if mine in (None, "", ()) and getattr(fetched, f.name) not in (None, "", ()):
            changes[f.name] = getattr(fetched, f.name)
    extra = {**dict(fetched.extra), **dict(stored.extra)}
    return stored.replace(**changes, extra=extra, needs_metadata=False)


def fill_needs_metadata(store, services: Services, *, progress: Progress | None = None,
                        record_ids: Sequence[int] | None = None) -> Filled:
    """Complete the store's records marked `needs_metadata` from PubMed (PMID) or Crossref (DOI).

    Records with a PMID go to PubMed, the others with a DOI to Crossref. One
    transaction writes the completed records and the calls made; a service that
    fails leaves its records marked, to be tried again. `record_ids` limits the
    work to those records.
    """
    rows = list(store.records(where="needs_metadata = 1"))
    if record_ids is not None:
        wanted = set(record_ids)
        rows = [(rid, rec) for rid, rec in rows if rid in wanted]
    by_pmid: dict[str, int] = {}
    by_doi: dict[str, int] = {}
    notes: list[str] = []
    for rid, rec in rows:
        pmid, doi = normalize_pmid(rec.pmid), normalize_doi(rec.doi)
        if pmid:
            by_pmid[pmid] = rid
        elif doi:
            by_doi[doi] = rid
        else:
            notes.append(f"Record {rid} has neither a PMID nor a DOI to look up.")
    fetched = fetch_by_ids(services, pmids=list(by_pmid), dois=list(by_doi), progress=progress)
    filled = 0
    with store.transaction():
        for call in fetched.calls:
            sid = store.start_search(kind="lookup", service=call.service, strategy="metadata",
                                     query=call.endpoint, params=call.params)
            store.finish_search(sid, n_found=call.n_results)
        for rec in fetched.records:
            rid = by_pmid.get(rec.pmid or "") or by_doi.get(rec.doi or "")
            if rid is None:
                continue
            store.update_record(rid, complete(store.get_record(rid), rec))
            filled += 1
    remaining = len(rows) - filled
    return Filled(filled, fetched.missing, fetched.failed, fetched.calls, remaining, tuple(notes))
