"""Database searches run from the store: PubMed through E-utilities, logged the PRISMA-S way.

A search is checked before anything is sent (`connectors.pubmed.pubmed_query`),
then run as esearch with the history server and batched efetch. It is one
`searches` row (kind `search`, role `database`, service `PubMed`) holding the
query as typed, PubMed's translation of it, the count, the limits, the date and
time, and PubMed's warnings; every record found gets a `sources` row like an
import's. A rerun (`rerun_search`) asks the same question again, fetches only
the records no earlier run of it found and is logged as its own search, so an
update of a review can report what the repeated search added.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

from base.errors import ClusterError
from connectors.http import CallLog
from connectors.pubmed import ESEARCH_REACH, ESearch, SearchQuery, pubmed_query
from connectors.services import Services
from db.store import Store

#: how a PubMed search is named as a source in the flow and the search log
PUBMED = "PubMed"
PLATFORM = "NCBI E-utilities"

Progress = Callable[[int, int], None]


class SearchError(ClusterError):
    """A database search that cannot be run or rerun as asked."""


@dataclass(frozen=True)
class SearchCount:
    query: str
    translation: str | None
    count: int
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class SearchRun:
    """A logged database search: what PubMed said, and what reached the store."""

    search_id: int
    query: str
    translation: str | None
    count: int
    fetched: int
    new_to_search: int
    added: int
    warnings: tuple[str, ...]
    rerun_of: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"search_id": self.search_id, "query": self.query,
                "translation": self.translation, "count": self.count, "fetched": self.fetched,
                "new_to_search": self.new_to_search, "added": self.added,
                "warnings": list(self.warnings), "rerun_of": self.rerun_of}


def count_pubmed(services: Services, text: str, *, date_from: str | None = None,
                 date_to: str | None = None, filters: Sequence[str] = ()) -> SearchCount:
    """How many records PubMed finds, without fetching them or logging anything."""
    query = pubmed_query(text, date_from=date_from, date_to=date_to, filters=filters)
    found, _ = services.pubmed.esearch(query, count_only=True)
    return SearchCount(query.text, found.translation, found.count, found.warnings)


def search_pubmed(store: Store, services: Services, text: str, *, date_from: str | None = None,
                  date_to: str | None = None, filters: Sequence[str] = (),
                  progress: Progress | None = None) -> SearchRun:
    """Run a PubMed search and log it with its records (one transaction)."""
    query = pubmed_query(text, date_from=date_from, date_to=date_to, filters=filters)
    return _run(store, services, query, seen=frozenset(), rerun_of=None, progress=progress)


def rerun_search(store: Store, services: Services, search_id: int, *,
                 progress: Progress | None = None) -> SearchRun:
    """Run a logged PubMed search again; only records no earlier run found are fetched."""
    row = store.db.execute("SELECT kind, service, params FROM searches WHERE id = ?",
                           [search_id]).fetchone()
    if row is None:
        raise SearchError(f"There is no search {search_id} in this store: `cluster searches` "
                          f"lists them.")
    import json

    kind, service, params_text = row
    params = json.loads(params_text or "{}")
    if kind != "search" or service != PUBMED or "query" not in params:
        raise SearchError(f"Search {search_id} is not a PubMed search run by cluster, so it "
                          f"cannot be rerun: run the search again where it was run and import "
                          f"the new records.")
    original = params.get("rerun_of") or search_id
    query = pubmed_query(params["query"], date_from=params.get("from"),
                         date_to=params.get("to"), filters=params.get("filters") or ())
    chain = [original] + [r[0] for r in store.db.execute(
        "SELECT id FROM searches WHERE kind = 'search' AND "
        "json_extract(params, '$.rerun_of') = ?", [original])]
    seen = frozenset(r[0] for r in store.db.execute(
        "SELECT DISTINCT source_record_id FROM sources WHERE search_id IN (%s) "
        "AND source_record_id IS NOT NULL" % ",".join("?" * len(chain)), chain))
    return _run(store, services, query, seen=seen, rerun_of=original, progress=progress)


def _run(store: Store, services: Services, query: SearchQuery, *, seen: frozenset[str],
         rerun_of: int | None, progress: Progress | None) -> SearchRun:
    found, call = services.pubmed.esearch(query)
    if found.count > ESEARCH_REACH:
        raise SearchError(f"PubMed found {found.count:,} records for this query, more than the "
                          f"{ESEARCH_REACH:,} one search can fetch: narrow it or split it by "
                          f"publication date (--from, --to); nothing was logged.")
    new_ids = [i for i in found.ids if i not in seen]
    wanted = set(new_ids)
    calls: list[CallLog] = [call]
    records = []
    if new_ids:
        # a first run reads the history server in batches; a rerun asks for the new ids only
        fetched = (services.pubmed.fetch_found(found, progress=progress) if rerun_of is None
                   else services.pubmed.fetch(new_ids))
        records = [r for r in fetched.records if r.pmid in wanted]
        calls += fetched.calls
    warnings = list(found.warnings)
    missing = len(new_ids) - len(records)
    if missing:
        warnings.append(f"PubMed listed {missing:,} record(s) it did not return; they are not "
                        f"in the store (rerun the search later to fetch them).")
    params = {"query": query.text, "translation": found.translation, "count": found.count,
              "from": query.date_from, "to": query.date_to, "filters": list(query.filters),
              "platform": PLATFORM, "database": "PubMed",
              "calls": [_call_json(c) for c in calls]}
    if rerun_of is not None:
        params["rerun_of"] = rerun_of
    added = 0
    order = {pmid: i for i, pmid in enumerate(found.ids)}
    records.sort(key=lambda r: order.get(r.pmid or "", len(order)))
    with store.transaction():
        sid = store.start_search(kind="search", service=PUBMED, strategy="database",
                                 role="database", query=query.text, params=params,
                                 limits=query.limits())
        for rank, rec in enumerate(records, 1):
            existing = store.find_by_ids(rec)
            if existing is None:
                rid = store.add_record(rec)
                added += 1
            else:
                rid = store.canonical_id(existing)
            store.add_source(rid, sid, role="database", service=PUBMED, strategy="database",
                             rank=rank, source_record_id=rec.pmid)
        store.finish_search(sid, n_found=found.count, n_kept=len(records), n_added=added,
                            notes="\n".join(warnings) or None)
    return SearchRun(sid, query.text, found.translation, found.count, len(records),
                     len(new_ids), added, tuple(warnings), rerun_of)


def _call_json(c: CallLog) -> dict[str, Any]:
    params = {k: v for k, v in dict(c.params).items() if k != "WebEnv"}
    return {"endpoint": c.endpoint, "params": params, "at": c.at, "n_results": c.n_results}


__all__ = ["ESearch", "SearchCount", "SearchError", "SearchRun", "count_pubmed",
           "rerun_search", "search_pubmed"]
