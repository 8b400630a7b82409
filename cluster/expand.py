"""CLUSTER expansion: from the index articles to their lead authors' other
works, the works citing them, the works they cite and related works.

The work is planned as units, one per (index article, strategy, service).
The network calls of a strategy and service are batched across every index
article that still needs them (PubMed elink and efetch, Crossref and OpenAlex
take many ids per request), then each unit is written to the store in one
transaction together with its `searches` row marked done. A rerun skips the
units already done, so it adds nothing and, with nothing left to ask, makes
no request; a run killed at any point resumes at the first unit not written.
Units are processed in a fixed order, so the units already written are always
a prefix of that order and a resumed run ends with the very store an
uninterrupted run leaves.

"Most relevant", for the cap of `top` records per index article and
strategy: the service's own ranking where it publishes one (PubMed's
neighbour score for related articles), otherwise the TF-IDF cosine similarity
of a record's title and abstract to the index article's (scikit-learn,
English stop words, sublinear term frequency), ties broken by the service's
order. Filters (journal articles, English) apply before the cap; a record
whose type or language no service gives is kept and flagged, never dropped.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any, Callable, Iterable, Mapping, Sequence

from base.errors import ClusterError, ServiceError
from base.record import Author, Record, fold, is_english, is_journal_article
from base.services import SERVICE_NAMES
from connectors.http import CallLog, Fetched, Link, Links, Reference
from connectors.services import Services
from db.store import Store, row_to_record

STRATEGIES = ("lead-author", "cited-by", "references", "related")
SERVICES: Mapping[str, tuple[str, ...]] = {
    "lead-author": ("pubmed", "openalex", "crossref"),
    "cited-by": ("pubmed", "opencitations", "openalex"),
    "references": ("pubmed", "crossref", "openalex"),
    "related": ("pubmed", "openalex"),
}
SERVICE_LABELS = SERVICE_NAMES

RELEVANCE = ("the service's own ranking where it publishes one (PubMed neighbour score for "
             "related articles); otherwise TF-IDF cosine similarity of title and abstract to "
             "the index article's, ties broken by the service's order")
WHY_CAP = ("the CLUSTER method keeps only the most relevant records of each list (20 by "
           "default) so that citation searching stays proportionate to the index articles")
WHY_FILTERS = ("the review's eligibility criteria admit English-language journal articles; "
               "records of unknown type or language are kept and flagged for the screeners")

#: how many candidates of an unranked list are scored at most (a seed cited 10,000 times)
MAX_CANDIDATES = 1000
#: author lists longer than this are not publication lists of one person
AUTHOR_SEARCH_RETMAX = 200
_NAMESPACE = uuid.UUID("7c1e5f4e-2f55-4c8e-9a55-3a1f0c7d2b10")


class ExpandError(ClusterError):
    """A problem with the expansion a user can fix; one sentence."""


@dataclass(frozen=True)
class ExpandOptions:
    strategies: tuple[str, ...] = STRATEGIES
    top: int = 20
    any_type: bool = False
    any_language: bool = False
    depth: int = 1
    #: lead-author disambiguation: a namesake within this many years of the index article
    year_window: int = 5

    def __post_init__(self) -> None:
        unknown = [s for s in self.strategies if s not in STRATEGIES]
        if unknown:
            raise ExpandError(f"Unknown strategy {unknown[0]!r}: choose from {', '.join(STRATEGIES)}.")
        if not self.strategies:
            raise ExpandError(f"No strategy chosen: choose from {', '.join(STRATEGIES)}.")
        if self.top < 1:
            raise ExpandError("--top must be at least 1.")
        if self.depth < 1:
            raise ExpandError("--depth must be at least 1.")

    def limits(self) -> dict[str, Any]:
        return {
            "top": self.top,
            "cap": f"top {self.top} per index article and strategy, after the filters",
            "cap_why": WHY_CAP,
            "relevance": RELEVANCE,
            "type": "any type" if self.any_type else "journal articles only",
            "language": "any language" if self.any_language else "English only",
            "unknown": "records of unknown type or language kept and flagged",
            "filters_why": WHY_FILTERS,
        }


@dataclass(frozen=True)
class Seed:
    record_id: int
    record: Record
    depth: int
    pmid: str | None = None
    doi: str | None = None
    openalex: str | None = None
    openalex_record: Record | None = None
    pubmed_record: Record | None = None

    @property
    def label(self) -> str:
        lead = self.record.first_author or "?"
        year = self.record.year or "n.d."
        return f"#{self.record_id} {lead.split(',')[0]} {year}"


@dataclass(frozen=True)
class Unit:
    seed: Seed
    strategy: str
    service: str

    def key(self, options: ExpandOptions) -> str:
        return (f"expand|seed={self.seed.record_id}|{self.strategy}|{self.service}|top={options.top}"
                f"|any_type={options.any_type}|any_language={options.any_language}|depth={self.seed.depth}")

    def uuid(self, store: Store, options: ExpandOptions) -> str:
        return str(uuid.uuid5(_NAMESPACE, store.review_id + "|" + self.key(options)))


@dataclass(frozen=True)
class Candidate:
    record: Record
    order: int
    score: float | None = None     # the service's own score, where it has one


@dataclass(frozen=True)
class Outcome:
    """What the network gave for one unit, before filtering and capping."""

    candidates: tuple[Candidate, ...] = ()
    n_found: int = 0
    query: str = ""
    calls: tuple[CallLog, ...] = ()
    service_ranked: bool = False
    error: str | None = None
    skipped: str | None = None
    notes: Mapping[str, Any] = field(default_factory=dict)
    to_match: tuple[Reference, ...] = ()   # references without DOI, matched at commit


@dataclass(frozen=True)
class UnitResult:
    seed_record_id: int
    seed_label: str
    strategy: str
    service: str
    status: str                    # done | failed | skipped | already-done
    n_found: int = 0
    n_kept: int = 0
    n_added: int = 0
    error: str | None = None
    search_id: int | None = None
    warning: str | None = None     # e.g. the service found fewer than the last time


@dataclass(frozen=True)
class ExpandReport:
    results: tuple[UnitResult, ...]
    n_seeds: int
    depth: int
    #: one sentence per service that could not be reached at all in this run
    unreachable: tuple[str, ...] = ()

    @property
    def offline(self) -> str | None:
        """One sentence when nothing was searched and every failure comes from services that
        could not be reached at all (no network), else None: the failures say nothing more."""
        failures = self.failures
        if not failures or not self.unreachable or any(r.status == "done" for r in self.results):
            return None
        if not all(any(m in (f.error or "") for m in self.unreachable) for f in failures):
            return None
        if len(self.unreachable) == 1:
            return self.unreachable[0]
        names = sorted({SERVICE_LABELS[f.service] for f in failures})
        listed = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]
        return (f"No network: cannot reach {listed}: check the connection and run "
                f"`cluster expand` again.")

    @property
    def failures(self) -> tuple[UnitResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    def table(self) -> list[dict[str, Any]]:
        """Per strategy and service: units, found, kept, new to the store (this run)."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for r in self.results:
            row = rows.setdefault((r.strategy, r.service), {
                "strategy": r.strategy, "service": SERVICE_LABELS[r.service], "searches": 0,
                "already_done": 0, "failed": 0, "skipped": 0, "found": 0, "kept": 0, "new": 0})
            if r.status == "already-done":
                row["already_done"] += 1
                continue
            if r.status == "failed":
                row["failed"] += 1
                continue
            if r.status == "skipped":
                row["skipped"] += 1
            row["searches"] += 1
            row["found"] += r.n_found
            row["kept"] += r.n_kept
            row["new"] += r.n_added
        order = {s: i for i, s in enumerate(STRATEGIES)}
        return sorted(rows.values(), key=lambda d: (order[d["strategy"]],
                                                    SERVICES[d["strategy"]].index(_svc(d["service"]))))

    def to_dict(self) -> dict[str, Any]:
        return {
            "seeds": self.n_seeds, "depth": self.depth, "table": self.table(),
            "warnings": [{"seed_record_id": r.seed_record_id, "seed": r.seed_label,
                          "strategy": r.strategy, "service": SERVICE_LABELS[r.service],
                          "warning": r.warning} for r in self.results if r.warning],
            "failures": [{"seed_record_id": r.seed_record_id, "seed": r.seed_label,
                          "strategy": r.strategy, "service": SERVICE_LABELS[r.service],
                          "error": r.error} for r in self.failures],
        }


def _svc(label: str) -> str:
    return next(k for k, v in SERVICE_LABELS.items() if v == label)


Progress = Callable[[int, int, str], None]


# --- the seeds -------------------------------------------------------------------


def index_record_ids(store: Store) -> list[int]:
    """Records that are index articles (a sources row with role "index"), as canonical ids."""
    ids = [r[0] for r in store.db.execute(
        "SELECT DISTINCT record_id FROM sources WHERE role = 'index' ORDER BY record_id")]
    out: list[int] = []
    for rid in ids:
        cid = store.canonical_id(rid)
        if cid not in out:
            out.append(cid)
    return out


def _seeds_at(store: Store, depth: int, earlier: set[int]) -> list[int]:
    if depth == 1:
        return index_record_ids(store)
    rows = store.db.execute(
        "SELECT DISTINCT so.record_id FROM sources so JOIN searches s ON so.search_id = s.id "
        "WHERE s.kind = 'api' AND s.status = 'done' AND s.strategy IN (%s) "
        "AND json_extract(s.params, '$.depth') = ? ORDER BY so.record_id"
        % ",".join("?" * len(STRATEGIES)), [*STRATEGIES, depth - 1]).fetchall()
    out: list[int] = []
    for (rid,) in rows:
        cid = store.canonical_id(rid)
        if cid not in earlier and cid not in out:
            out.append(cid)
    return out


# --- running ---------------------------------------------------------------------


def expand(store: Store, services: Services, options: ExpandOptions = ExpandOptions(), *,
           progress: Progress | None = None, parallel: bool = True) -> ExpandReport:
    """Run the CLUSTER strategies from the index articles; see the module docstring.

    `parallel` asks the four services at the same time (each at its own rate);
    the store is written in the same order either way.
    """
    seeds_done: set[int] = set()
    results: list[UnitResult] = []
    n_seeds = 0
    for depth in range(1, options.depth + 1):
        seed_ids = _seeds_at(store, depth, seeds_done)
        if depth == 1 and not seed_ids:
            raise ExpandError("There are no index articles in this store: add them with "
                              "`cluster add --pmid ...` or `cluster import FILE --as index`.")
        if depth == 1:
            _complete_seeds(store, services, seed_ids)
        if not seed_ids:
            break
        seeds_done.update(seed_ids)
        n_seeds += len(seed_ids)
        results += _expand_level(store, services, options, depth, seed_ids, progress, parallel)
    layer = getattr(services, "http", None)
    unreachable = tuple(str(e) for e in layer.unreachable.values()) if layer is not None else ()
    return ExpandReport(tuple(results), n_seeds, options.depth, unreachable)


def _complete_seeds(store: Store, services: Services, seed_ids: list[int]) -> None:
    """Complete index articles imported as bare PMIDs/DOIs, as `cluster fetch --fill` does.

    A seed known only by one identifier would be searched on the other
    services with identifiers it does not have; one that cannot be completed
    stops the run with a sentence instead.
    """
    from connectors.metadata import fill_needs_metadata

    bare = [rid for rid in seed_ids if store.get_record(rid).needs_metadata]
    if not bare:
        return
    filled = fill_needs_metadata(store, services, record_ids=bare)
    left = [rid for rid in bare if store.get_record(rid).needs_metadata]
    if left:
        why = next(iter(filled.failed.values()), None)
        listed = ", ".join(f"#{rid}" for rid in left)
        reason = (f" ({why.rstrip('.')})" if why else
                  " (PubMed and Crossref do not know them)")
        raise ExpandError(f"Index article(s) {listed} were imported as bare identifiers and "
                          f"could not be completed{reason}: run `cluster fetch --fill` and then "
                          f"`cluster expand` again.")


def _expand_level(store: Store, services: Services, options: ExpandOptions, depth: int,
                  seed_ids: list[int], progress: Progress | None, parallel: bool) -> list[UnitResult]:
    seeds = [Seed(rid, store.get_record(rid), depth) for rid in seed_ids]
    units = [Unit(seed, strategy, service) for strategy in options.strategies
             for service in SERVICES[strategy] for seed in seeds]
    total = len(units)
    results: list[UnitResult] = []
    pending: list[Unit] = []
    for u in units:
        if _unit_done(store, u.uuid(store, options)):
            results.append(UnitResult(u.seed.record_id, u.seed.label, u.strategy, u.service,
                                      "already-done"))
        else:
            pending.append(u)
    done = len(results)
    if progress:
        progress(done, total, "")
    if not pending:
        return results
    runner = _Runner(store, services, options)
    resolved = runner.resolve_seeds({u.seed.record_id: u.seed for u in pending},
                                    {u.service for u in pending}, {u.strategy for u in pending})
    # fixed order: strategy, service, seed (the order `units` was built in)
    groups: dict[tuple[str, str], list[Unit]] = defaultdict(list)
    for u in pending:
        groups[(u.strategy, u.service)].append(Unit(resolved[u.seed.record_id], u.strategy, u.service))
    pending_outcomes = _prefetch(runner, groups) if parallel else None
    for (strategy, service), group in groups.items():
        if pending_outcomes is not None:
            outcomes = pending_outcomes[(strategy, service)].result()
        else:
            outcomes = runner.run_group(strategy, service, [u.seed for u in group])
        for u in group:
            outcome = outcomes.get(u.seed.record_id) or Outcome(error="No answer for this index article.")
            results.append(runner.commit(u, outcome))
            done += 1
            if progress:
                progress(done, total, f"{strategy} / {SERVICE_LABELS[service]}")
    return results


def _prefetch(runner: "_Runner", groups: Mapping[tuple[str, str], list[Unit]]
              ) -> dict[tuple[str, str], Future]:
    """Start the network work of every group, one lane per service, services in parallel.

    Each service's calls stay one after another (its rate limit is the
    bottleneck anyway) while the four services are asked at the same time.
    Writing stays on the caller's thread and in the fixed unit order, so the
    store ends the same whatever the timing.
    """
    futures: dict[tuple[str, str], Future] = {key: Future() for key in groups}
    lanes: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for key in groups:
        lanes[key[1]].append(key)

    def lane(keys: list[tuple[str, str]]) -> None:
        for key in keys:
            try:
                futures[key].set_result(runner.run_group(key[0], key[1], [u.seed for u in groups[key]]))
            except BaseException as exc:  # handed to the writer, which re-raises it
                futures[key].set_exception(exc)

    for keys in lanes.values():
        # daemon threads: an interrupted run must not wait for the other services
        threading.Thread(target=lane, args=(keys,), daemon=True).start()
    return futures


def _unit_done(store: Store, unit_uuid: str) -> bool:
    row = store.db.execute("SELECT status FROM searches WHERE uuid = ?", [unit_uuid]).fetchone()
    return row is not None and row[0] in ("done", "skipped")


class _Runner:
    """One level of one run: the connectors, an in-memory record cache, the commits."""

    def __init__(self, store: Store, services: Services, options: ExpandOptions):
        self.store = store
        self.services = services
        self.options = options
        self.fetched: dict[tuple[str, str], Record] = {}
        #: a service that failed while the seeds' ids were looked up: a seed
        #: left without an id then fails (and is retried) instead of being skipped
        self.resolve_errors: dict[str, str] = {}

    # -- seeds' identifiers on every service
    def resolve_seeds(self, seeds: dict[int, Seed], services: set[str],
                      strategies: set[str]) -> dict[int, Seed]:
        out = {}
        need_pmid = [s.record.doi for s in seeds.values() if not s.record.pmid and s.record.doi]
        doi_to_pmid: Mapping[str, str] = {}
        if need_pmid and "pubmed" in services:
            try:
                doi_to_pmid, _ = self.services.pubmed.pmids_for_dois(need_pmid)
            except ServiceError as exc:
                self.resolve_errors["pmid"] = str(exc)
        for rid, s in seeds.items():
            r = s.record
            out[rid] = Seed(rid, r, s.depth, r.pmid or doi_to_pmid.get(r.doi or ""), r.doi, r.openalex)
        # OpenAlex work objects: ids, author ids, and the DOI/PMID a record may lack
        if "openalex" in services or "lead-author" in strategies:
            keys = {rid: (s.openalex or s.doi or (f"pmid:{s.pmid}" if s.pmid else None))
                    for rid, s in out.items()}
            wanted = [k for k in keys.values() if k]
            if wanted:
                try:
                    found = self.services.openalex.works(wanted)
                    got = found.records
                    if found.failed:
                        self.resolve_errors["openalex"] = next(iter(found.failed.values()))
                        self.resolve_errors.setdefault("doi", self.resolve_errors["openalex"])
                except ServiceError as exc:
                    got = ()
                    self.resolve_errors["openalex"] = self.resolve_errors["doi"] = str(exc)
                for rid, s in list(out.items()):
                    match = next((g for g in got if _same_work(g, s)), None)
                    if match is not None:
                        out[rid] = _seed_with(s, openalex=match.openalex, openalex_record=match,
                                              doi=s.doi or match.doi, pmid=s.pmid or match.pmid)
        # PubMed records: authors' initials, affiliations and ORCIDs for lead-author searches
        if "lead-author" in strategies:
            pmids = [s.pmid for s in out.values() if s.pmid]
            if pmids:
                try:
                    got = self.services.pubmed.fetch(pmids).records
                except ServiceError:
                    got = ()
                by_pmid = {g.pmid: g for g in got}
                for rid, s in list(out.items()):
                    if s.pmid in by_pmid:
                        out[rid] = _seed_with(s, pubmed_record=by_pmid[s.pmid],
                                              doi=s.doi or by_pmid[s.pmid].doi)
        return out

    # -- network, batched across seeds
    def run_group(self, strategy: str, service: str, seeds: list[Seed]) -> dict[int, Outcome]:
        fn = getattr(self, f"_{strategy.replace('-', '_')}_{service}")
        try:
            return fn(seeds)
        except ServiceError as exc:
            return {s.record_id: Outcome(error=str(exc)) for s in seeds}

    def _links_group(self, seeds: list[Seed], id_attr: str, call: Callable[[list[str]], Links],
                     fetch_service: str, query: Callable[[Seed], str], *,
                     service_ranked: bool = False, missing_id: str) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        with_id = []
        for s in seeds:
            if getattr(s, id_attr):
                with_id.append(s)
            elif id_attr in self.resolve_errors:
                # say which service failed: the one this unit would have asked was never asked
                error = (f"this index article has no {_ID_NAMES[id_attr]} and looking it up "
                         f"failed: {self.resolve_errors[id_attr]}")
                out[s.record_id] = Outcome(error=error, query=query(s))
            else:
                out[s.record_id] = Outcome(skipped=missing_id, query=query(s))
        if not with_id:
            return out
        ids = list(dict.fromkeys(getattr(s, id_attr) for s in with_id))
        links = call(ids)
        per_seed: dict[int, list[Link]] = {}
        for s in with_id:
            key = getattr(s, id_attr)
            failure = _lookup(links.failed, key)
            if failure is not None:
                out[s.record_id] = Outcome(error=failure, query=query(s), calls=links.calls)
                continue
            got = list(_lookup(links.by_seed, key) or ())
            got = [l for l in got if not _is_seed_id(l.id, s)]
            per_seed[s.record_id] = got
        ok = [s for s in with_id if s.record_id in per_seed]
        out.update(self._candidates(ok, per_seed, fetch_service, links.calls, query,
                                    service_ranked=service_ranked))
        return out

    def _candidates(self, seeds: list[Seed], per_seed: Mapping[int, list[Link]], fetch_service: str,
                    calls: tuple[CallLog, ...], query: Callable[[Seed], str], *,
                    service_ranked: bool) -> dict[int, Outcome]:
        """Fetch the linked records' metadata (batched across seeds) and build outcomes.

        A service-ranked list is fetched a slice at a time, only as deep as the
        filters need to fill the cap; an unranked list is fetched whole (up to
        MAX_CANDIDATES) because every record must be scored.
        """
        out: dict[int, Outcome] = {}
        fetch_calls: list[CallLog] = []
        failed: dict[str, str] = {}
        depth_of: dict[int, int] = {}
        for s in seeds:
            links = per_seed.get(s.record_id, [])
            depth_of[s.record_id] = min(len(links), self.options.top * 2 + 5) if service_ranked \
                else min(len(links), MAX_CANDIDATES)
        fetched_upto: dict[int, int] = {s.record_id: 0 for s in seeds}
        while True:
            wanted = []
            for s in seeds:
                links = per_seed.get(s.record_id, [])
                for l in links[fetched_upto[s.record_id]:depth_of[s.record_id]]:
                    if (_route(fetch_service, l.id), l.id) not in self.fetched:
                        wanted.append(l.id)
            wanted = list(dict.fromkeys(wanted))
            if wanted:
                by_route: dict[str, list[str]] = defaultdict(list)
                for ident in wanted:
                    by_route[_route(fetch_service, ident)].append(ident)
                for route, idents in by_route.items():
                    got = self._fetch(route, idents)
                    fetch_calls += got.calls
                    failed.update({k.lower(): v for k, v in got.failed.items()})
            grew = False
            for s in seeds:
                links = per_seed.get(s.record_id, [])
                fetched_upto[s.record_id] = depth_of[s.record_id]
                if not service_ranked:
                    continue
                usable = [l for l in links[:depth_of[s.record_id]]
                          if (_route(fetch_service, l.id), l.id) in self.fetched
                          and self._passes(self.fetched[(_route(fetch_service, l.id), l.id)])[0]]
                if len(usable) < self.options.top and depth_of[s.record_id] < len(links):
                    depth_of[s.record_id] = min(len(links), depth_of[s.record_id] + self.options.top * 2)
                    grew = True
            if not grew:
                break
        for s in seeds:
            links = per_seed.get(s.record_id, [])
            seed_failures = [failed[l.id.lower()] for l in links[:depth_of[s.record_id]]
                             if l.id.lower() in failed]
            if seed_failures:
                out[s.record_id] = Outcome(error=seed_failures[0], query=query(s),
                                           calls=calls + tuple(fetch_calls), n_found=len(links))
                continue
            cands = []
            no_metadata = 0
            for i, l in enumerate(links[:depth_of[s.record_id]]):
                rec = self.fetched.get((_route(fetch_service, l.id), l.id))
                if rec is None:
                    no_metadata += 1
                    continue
                cands.append(Candidate(rec, i, l.score))
            notes = {"no_metadata": no_metadata}
            if len(links) > depth_of[s.record_id]:
                notes["not_examined"] = len(links) - depth_of[s.record_id]
            out[s.record_id] = Outcome(tuple(cands), len(links), query(s),
                                       calls + tuple(fetch_calls), service_ranked, notes=notes)
        return out

    def _fetch(self, service: str, ids: list[str]) -> Fetched:
        if service == "pubmed":
            got = self.services.pubmed.fetch(ids)
        elif service == "openalex":
            got = self.services.openalex.works(ids)
        else:
            got = self.services.crossref.works(ids)
        wanted = {self._norm(service, i): i for i in ids}
        for rec in got.records:
            key = {"pubmed": rec.pmid, "openalex": rec.openalex}.get(service, rec.doi)
            if key and key in wanted:
                self.fetched[(service, wanted[key])] = rec
        return got

    @staticmethod
    def _norm(service: str, ident: str) -> str:
        if service == "crossref":
            return ident.lower()
        if service == "openalex":
            return ident.upper()
        return ident

    # cited-by
    def _cited_by_pubmed(self, seeds: list[Seed]) -> dict[int, Outcome]:
        return self._links_group(
            seeds, "pmid", lambda ids: self.services.pubmed.links(ids, "pubmed_pubmed_citedin"),
            "pubmed", lambda s: f"elink pubmed_pubmed_citedin id={_none(s.pmid)}", missing_id="no PMID")

    def _cited_by_opencitations(self, seeds: list[Seed]) -> dict[int, Outcome]:
        return self._links_group(
            seeds, "doi", lambda dois: _one_by_one(self.services.opencitations.citations, dois),
            "crossref", lambda s: f"citations/doi:{_none(s.doi)}", missing_id="no DOI")

    def _cited_by_openalex(self, seeds: list[Seed]) -> dict[int, Outcome]:
        return self._links_group(
            seeds, "openalex", lambda ids: self.services.openalex.cited_by(ids), "openalex",
            lambda s: f"works?filter=cites:{_none(s.openalex)}", missing_id="no OpenAlex work")

    # references
    def _references_pubmed(self, seeds: list[Seed]) -> dict[int, Outcome]:
        return self._links_group(
            seeds, "pmid", lambda ids: self.services.pubmed.links(ids, "pubmed_pubmed_refs"),
            "pubmed", lambda s: f"elink pubmed_pubmed_refs id={_none(s.pmid)}", missing_id="no PMID")

    def _references_openalex(self, seeds: list[Seed]) -> dict[int, Outcome]:
        return self._links_group(
            seeds, "openalex", self.services.openalex.referenced_works, "openalex",
            lambda s: f"works/{_none(s.openalex)} referenced_works", missing_id="no OpenAlex work")

    def _references_crossref(self, seeds: list[Seed]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        with_doi = [(s, s.doi) for s in seeds if s.doi]
        for s in seeds:
            if not s.doi:
                out[s.record_id] = Outcome(skipped="no DOI", query="works/(none) reference")
        if not with_doi:
            return out
        lists = self.services.crossref.references([doi for _, doi in with_doi])
        per_seed: dict[int, list[Link]] = {}
        no_doi: dict[int, tuple[Reference, ...]] = {}
        ok: list[Seed] = []
        for s, doi in with_doi:
            failure = _lookup(lists.failed, doi)
            if failure is not None:
                out[s.record_id] = Outcome(error=failure, query=f"works/{doi} reference",
                                           calls=lists.calls)
                continue
            refs = _lookup(lists.by_doi, doi) or ()
            per_seed[s.record_id] = [Link(r.doi) for r in refs if r.doi and not _is_seed_id(r.doi, s)]
            no_doi[s.record_id] = tuple(r for r in refs if not r.doi)
            ok.append(s)
        built = self._candidates(ok, per_seed, "crossref", lists.calls,
                                 lambda s: f"works/{s.doi} reference", service_ranked=False)
        for s in ok:
            o = built[s.record_id]
            if o.error:
                out[s.record_id] = o
                continue
            n_refs = len(per_seed[s.record_id]) + len(no_doi[s.record_id])
            # references without DOI are matched against the store when the unit is written
            out[s.record_id] = Outcome(o.candidates, n_refs, o.query, o.calls, False,
                                       notes={**o.notes, "references_without_doi": len(no_doi[s.record_id])},
                                       to_match=no_doi[s.record_id])
        return out

    def _with_matches(self, o: Outcome) -> Outcome:
        """Add the store's records that references without DOI name (title and year)."""
        found: list[Candidate] = []
        for ref in o.to_match:
            rec = self._match_reference(ref.title, ref.unstructured, ref.year)
            if rec is not None:
                found.append(Candidate(rec, len(o.candidates) + len(found)))
        notes = {**o.notes, "matched_by_title_year": len(found),
                 "unmatched_references": len(o.to_match) - len(found)}
        return Outcome(o.candidates + tuple(found), o.n_found, o.query, o.calls, o.service_ranked,
                       notes=notes)

    def _match_reference(self, title: str | None, unstructured: str | None,
                         year: int | None) -> Record | None:
        """A record of the store that a reference without DOI names (title and year)."""
        from rapidfuzz import fuzz

        text = _norm_title(title or unstructured or "")
        if len(text) < 15:
            return None
        if year is None and unstructured:
            m = re.search(r"\b(1[89]\d\d|20\d\d)\b", unstructured)
            year = int(m.group(1)) if m else None
        where, params = "title IS NOT NULL", []
        if year is not None:
            where += " AND year BETWEEN ? AND ?"
            params = [year - 1, year + 1]
        best, best_score = None, 0.0
        for row in self.store.record_rows(where, params):
            rec_title = _norm_title(row["title"])
            if len(rec_title) < 10:
                continue
            score = fuzz.ratio(rec_title, text) if title else fuzz.partial_ratio(rec_title, text)
            if score > best_score:
                best, best_score = row, score
        if best is not None and best_score >= 92:
            return row_to_record(best)
        return None

    # related
    def _related_pubmed(self, seeds: list[Seed]) -> dict[int, Outcome]:
        return self._links_group(
            seeds, "pmid", lambda ids: self.services.pubmed.links(ids, "pubmed_pubmed"), "pubmed",
            lambda s: f"elink pubmed_pubmed cmd=neighbor_score id={_none(s.pmid)}",
            service_ranked=True, missing_id="no PMID")

    def _related_openalex(self, seeds: list[Seed]) -> dict[int, Outcome]:
        return self._links_group(
            seeds, "openalex", self.services.openalex.related_works, "openalex",
            lambda s: f"works/{_none(s.openalex)} related_works", missing_id="no OpenAlex work")

    # lead author
    def _lead_author_pubmed(self, seeds: list[Seed]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        breaker = _Breaker()
        for s in seeds:
            lead = _lead(s)
            if lead is None:
                out[s.record_id] = Outcome(skipped="no lead author", query="")
                continue
            family, initials = _family_initials(lead)
            term = f"{family} {initials}[au]" if initials else f"{family}[au]"
            found, error = breaker.call(
                lambda: self.services.pubmed.search(term, retmax=AUTHOR_SEARCH_RETMAX))
            if error is not None:
                out[s.record_id] = Outcome(error=error, query=term)
                continue
            per = {s.record_id: [Link(i) for i in found.ids if not _is_seed_id(i, s)]}
            o = self._candidates([s], per, "pubmed", found.calls, lambda _s: term,
                                 service_ranked=False)[s.record_id]
            out[s.record_id] = self._disambiguate(s, lead, o, found.count)
        return out

    def _disambiguate(self, s: Seed, lead: Author, o: Outcome, count: int) -> Outcome:
        """Keep the namesakes that are the lead author: ORCID, else affiliation, else years."""
        if o.error:
            return o
        keep: list[Candidate] = []
        other = 0
        how: defaultdict[str, int] = defaultdict(int)
        for c in o.candidates:
            verdict = _same_person(lead, c.record, s.record.year, self.options.year_window)
            if verdict is None:
                other += 1
            else:
                how[verdict] += 1
                keep.append(c)
        notes = {**o.notes, "other_authors_dropped": other, "matched_by": dict(how),
                 "total_in_pubmed": count}
        return Outcome(tuple(keep), o.n_found, o.query, o.calls, False, notes=notes)

    def _lead_author_openalex(self, seeds: list[Seed]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        breaker = _Breaker()
        author_ids, calls = self._openalex_lead_ids(seeds)
        for s in seeds:
            author_id = author_ids.get(s.record_id)
            if author_id is None and "openalex" in self.resolve_errors:
                out[s.record_id] = Outcome(error=self.resolve_errors["openalex"],
                                           query="works?filter=authorships.author.id:(unknown)")
                continue
            if author_id is None:
                out[s.record_id] = Outcome(skipped="no OpenAlex author id for the lead author",
                                           query="works?filter=authorships.author.id:(none)")
                continue
            query = f"works?filter=authorships.author.id:{author_id}"
            got, error = breaker.call(
                lambda: self.services.openalex.author_works(author_id, per_page=100))
            if error is not None:
                out[s.record_id] = Outcome(error=error, query=query)
                continue
            cands = [Candidate(r, i) for i, r in enumerate(got.records) if not _same_work(r, s)]
            for r in got.records:
                if r.openalex:
                    self.fetched.setdefault(("openalex", r.openalex), r)
            out[s.record_id] = Outcome(tuple(cands), len(cands), query, calls + got.calls)
        return out

    def _openalex_lead_ids(self, seeds: list[Seed]) -> tuple[dict[int, str], tuple[CallLog, ...]]:
        """The lead authors' OpenAlex ids, from the seeds' work objects (50 per request)."""
        out: dict[int, str] = {}
        want: dict[str, list[int]] = defaultdict(list)
        for s in seeds:
            known = _openalex_author_id(s.openalex_record)
            if known:
                out[s.record_id] = known
            elif s.openalex:
                want[s.openalex].append(s.record_id)
        if not want:
            return out, ()
        leads, calls = self.services.openalex.lead_authors(list(want))
        for wid, aid in leads.items():
            for rid in want.get(wid, ()):
                out[rid] = aid
        return out, calls

    def _lead_author_crossref(self, seeds: list[Seed]) -> dict[int, Outcome]:
        out: dict[int, Outcome] = {}
        breaker = _Breaker()
        for s in seeds:
            lead = _lead(s)
            orcid = lead.orcid if lead else None
            if not orcid:
                out[s.record_id] = Outcome(skipped="no ORCID for the lead author",
                                           query="works?filter=orcid:(none)")
                continue
            query = f"works?filter=orcid:{orcid}"
            got, error = breaker.call(lambda: self.services.crossref.search(
                orcid=orcid, journal_articles=not self.options.any_type, rows=100))
            if error is not None:
                out[s.record_id] = Outcome(error=error, query=query)
                continue
            cands = [Candidate(r, i) for i, r in enumerate(got.records) if not _same_work(r, s)]
            out[s.record_id] = Outcome(tuple(cands), len(cands), query, got.calls)
        return out

    # -- filtering, ranking, writing
    def _passes(self, rec: Record) -> tuple[bool, str | None, list[str]]:
        flags = []
        journal = is_journal(rec)
        english = is_english(rec)
        if journal is None:
            flags.append("type unknown")
        if english is None:
            flags.append("language unknown")
        if journal is False and not self.options.any_type:
            return False, "type", flags
        if english is False and not self.options.any_language:
            return False, "language", flags
        return True, None, flags

    def commit(self, unit: Unit, o: Outcome) -> UnitResult:
        s, store, opts = unit.seed, self.store, self.options
        result = partial(UnitResult, seed_record_id=s.record_id, seed_label=s.label,
                         strategy=unit.strategy, service=unit.service)
        params = {"depth": s.depth, "seed": {k: v for k, v in (("pmid", s.pmid), ("doi", s.doi),
                                                                 ("openalex", s.openalex)) if v},
                  "calls": [_call_json(c) for c in o.calls]}
        limits = opts.limits()
        limits["ranking"] = ("service rank (PubMed neighbour score)" if o.service_ranked
                             else "TF-IDF cosine similarity of title+abstract to the index article")
        if o.error:
            with store.transaction():
                sid = store.start_search(kind="api", service=unit.service, strategy=unit.strategy,
                                         role="other", query=o.query, params=params,
                                         seed_record_id=s.record_id, limits=limits)
                store.finish_search(sid, status="failed", n_found=o.n_found, n_kept=0, n_added=0,
                                    error=o.error)
            return result(status="failed", n_found=o.n_found, error=o.error, search_id=sid)
        if o.skipped:
            with store.transaction():
                if _unit_done(store, unit.uuid(store, opts)):
                    return result(status="already-done")
                sid = store.start_search(kind="api", service=unit.service, strategy=unit.strategy,
                                         role="other", query=o.query, params=params,
                                         seed_record_id=s.record_id, limits=limits,
                                         search_uuid=unit.uuid(store, opts))
                store.finish_search(sid, status="skipped", n_found=0, n_kept=0, n_added=0,
                                    notes=f"Not searched: {o.skipped}.")
            return result(status="skipped", search_id=sid)
        if "references_without_doi" in o.notes:
            o = self._with_matches(o)
        kept, dropped = self._select(s, o)
        limits["dropped"] = dropped
        limits.update({k: v for k, v in o.notes.items()})
        added = 0
        with store.transaction():
            # another run on this store may have saved the unit while this one was searching;
            # the check sits under the write lock, so only one of them writes it
            if _unit_done(store, unit.uuid(store, opts)):
                return result(status="already-done")
            sid = store.start_search(kind="api", service=unit.service, strategy=unit.strategy,
                                     role="other", query=o.query, params=params,
                                     seed_record_id=s.record_id, limits=limits,
                                     search_uuid=unit.uuid(store, opts))
            seen: set[int] = set()
            rank = 0
            for c, score, flags in kept:
                rid = store.find_by_ids(c.record)
                if rid is None:
                    rec = c.record
                    if flags:
                        rec = rec.replace(extra={**dict(rec.extra), "flags": flags})
                    rid = store.add_record(rec)
                    added += 1
                else:
                    rid = store.canonical_id(rid)
                if rid in seen or rid == s.record_id:
                    continue
                seen.add(rid)
                rank += 1
                store.add_source(rid, sid, role="other", service=unit.service, strategy=unit.strategy,
                                 seed_record_id=s.record_id, rank=rank,
                                 score=None if score is None else round(float(score), 6),
                                 source_record_id=c.record.source_id or _service_id(unit.service, c.record))
            warning = self._fewer_than_before(unit, o.n_found, sid)
            store.finish_search(sid, status="done", n_found=o.n_found, n_kept=rank, n_added=added,
                                notes=warning)
        return result(status="done", n_found=o.n_found, n_kept=rank, n_added=added,
                      search_id=sid, warning=warning)

    def _fewer_than_before(self, unit: Unit, n_found: int, search_id: int) -> str | None:
        """A service that silently returns fewer results than for an earlier search is flagged."""
        row = self.store.db.execute(
            "SELECT n_found, finished_at FROM searches WHERE kind = 'api' AND status = 'done' "
            "AND seed_record_id = ? AND strategy = ? AND service = ? AND id != ? "
            "ORDER BY id DESC LIMIT 1",
            [unit.seed.record_id, unit.strategy, unit.service, search_id]).fetchone()
        if row is None or row[0] is None or n_found >= row[0]:
            return None
        return (f"{SERVICE_LABELS[unit.service]} found {n_found} for this index article, "
                f"{row[0] - n_found} fewer than on {str(row[1])[:10]}.")

    def _select(self, s: Seed, o: Outcome) -> tuple[list[tuple[Candidate, float | None, list[str]]],
                                                    dict[str, int]]:
        dropped = {"type": 0, "language": 0, "beyond_cap": 0, "same_as_index_article": 0}
        ok: list[tuple[Candidate, list[str]]] = []
        seen_ids: set[tuple[str, str]] = set()
        for c in o.candidates:
            if _same_work(c.record, s):
                dropped["same_as_index_article"] += 1
                continue
            ids = set(c.record.ids().items())
            if ids & seen_ids:
                continue
            seen_ids |= ids
            _, why, flags = self._passes(c.record)
            if why is not None:
                dropped[why] += 1
                continue
            ok.append((c, flags))
        if o.service_ranked:
            ranked = [(c, c.score, f) for c, f in sorted(ok, key=lambda t: t[0].order)]
        else:
            scores = tfidf_scores(_text(s.record), [_text(c.record) for c, _ in ok])
            scored = sorted(zip(ok, scores), key=lambda t: (-t[1], t[0][0].order))
            ranked = [(c, sc, f) for (c, f), sc in scored]
        dropped["beyond_cap"] = max(0, len(ranked) - self.options.top)
        return ranked[: self.options.top], dropped


# --- utilities -------------------------------------------------------------------

#: types that are not journal articles whatever else a record says
NON_JOURNAL_TYPES = frozenset({
    "editorial", "letter", "comment", "news", "published erratum", "erratum", "paratext",
    "book-chapter", "book", "dataset", "proceedings-article", "proceedings", "posted-content",
    "preprint", "dissertation", "report", "other", "retraction", "peer-review",
})


def is_journal(rec: Record) -> bool | None:
    """Whether a record is a journal article, by its types (PubMed, Crossref, OpenAlex).

    A review is a journal article (PubMed lists both types; OpenAlex says
    "review"). An editorial is not, even where Crossref calls it
    "journal-article": OpenAlex's `type` and PubMed's types are finer, so a
    non-journal type anywhere wins unless PubMed also says "Journal Article".
    None when no type is known.
    """
    types = {t.lower() for t in rec.pub_types}
    crossref_type = (rec.extra or {}).get("type_crossref")
    if crossref_type:
        types.add(str(crossref_type).lower())
    if not types:
        return None
    if "journal article" in types:
        return True
    if types & NON_JOURNAL_TYPES:
        return False
    if is_journal_article(rec.replace(pub_types=tuple(types))) or "review" in types:
        return True
    return False



def tfidf_scores(query: str, docs: Sequence[str]) -> list[float]:
    """Cosine similarity of each doc to `query` under TF-IDF fitted on query + docs."""
    if not docs:
        return []
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics.pairwise import cosine_similarity

    texts = [query, *docs]
    if not any(t.strip() for t in texts):
        return [0.0] * len(docs)
    try:
        matrix = TfidfVectorizer(stop_words="english", sublinear_tf=True).fit_transform(texts)
    except ValueError:  # every text was stop words or empty
        return [0.0] * len(docs)
    return [round(float(x), 6) for x in cosine_similarity(matrix[0], matrix[1:])[0]]


def _text(rec: Record) -> str:
    return " ".join(t for t in (rec.title, rec.abstract) if t)


def _norm_title(text: str | None) -> str:
    return re.sub(r"[^a-z0-9 ]+", "", re.sub(r"\s+", " ", fold(text or ""))).strip()


def _seed_with(s: Seed, **changes: Any) -> Seed:
    import dataclasses

    return dataclasses.replace(s, **changes)


def _is_seed_id(ident: str, s: Seed) -> bool:
    low = ident.lower()
    return low in {v.lower() for v in (s.pmid, s.doi, s.openalex) if v}


def _same_work(rec: Record, s: Seed) -> bool:
    mine = {("pmid", s.pmid), ("doi", (s.doi or "").lower() or None), ("openalex", s.openalex)}
    mine = {(k, v) for k, v in mine if v}
    theirs = {(k, v.lower() if k == "doi" else v) for k, v in rec.ids().items() if k != "pmcid"}
    return bool(mine & theirs)


def _lead(s: Seed) -> Author | None:
    """The index article's lead author, with an ORCID and affiliations from any service that has them."""
    firsts = [rec.author_details[0] for rec in (s.pubmed_record, s.openalex_record, s.record)
              if rec is not None and rec.author_details]
    if not firsts:
        return Author(s.record.authors[0]) if s.record.authors else None
    lead = firsts[0]
    family = fold(_family_initials(lead)[0])
    for other in firsts[1:]:
        if fold(_family_initials(other)[0]) != family:
            continue
        if not lead.orcid and other.orcid:
            lead = Author(lead.name, other.orcid, lead.affiliations, lead.email, lead.collective)
        if not lead.affiliations and other.affiliations:
            lead = Author(lead.name, lead.orcid, other.affiliations, lead.email, lead.collective)
    return lead


def _family_initials(a: Author) -> tuple[str, str]:
    name = a.name
    if "," in name:
        family, given = (p.strip() for p in name.split(",", 1))
    else:
        parts = name.split()
        family, given = (parts[-1], " ".join(parts[:-1])) if len(parts) > 1 else (name, "")
    if re.fullmatch(r"[A-Z]{1,3}", given.replace(" ", "").replace(".", "")):
        initials = given.replace(" ", "").replace(".", "")
    else:
        initials = "".join(p[0] for p in re.split(r"[\s.\-]+", given) if p).upper()
    family = re.sub(r"[^\w' -]", "", family)
    return family, initials


def _same_person(lead: Author, rec: Record, seed_year: int | None, window: int) -> str | None:
    """How a record's namesake was matched to the lead author, or None when it is someone else."""
    family, initials = _family_initials(lead)
    best: str | None = None
    for a in rec.author_details or tuple(Author(n) for n in rec.authors):
        f, i = _family_initials(a)
        if fold(f) != fold(family) or not (i.startswith(initials) or initials.startswith(i)):
            continue
        if lead.orcid and a.orcid:
            if _bare_orcid(lead.orcid) == _bare_orcid(a.orcid):
                return "orcid"
            continue
        if lead.affiliations and a.affiliations:
            if _affiliation_match(lead.affiliations, a.affiliations):
                return "affiliation"
            continue
        if seed_year and rec.year and abs(rec.year - seed_year) <= window:
            best = best or "year window"
    return best


def _bare_orcid(value: str) -> str:
    return value.rstrip("/").rsplit("/", 1)[-1].upper()


def _affiliation_match(mine: Iterable[str], theirs: Iterable[str]) -> bool:
    from rapidfuzz import fuzz

    clean = lambda t: re.sub(r"\S+@\S+", "", fold(t)).strip(" .")  # noqa: E731
    return any(fuzz.token_set_ratio(clean(a), clean(b)) >= 85 for a in mine for b in theirs)


def _openalex_author_id(rec: Record | None) -> str | None:
    """The lead author's OpenAlex id, as the OpenAlex connector records it."""
    if rec is None:
        return None
    extra = dict(rec.extra or {})
    for key in ("author_ids", "openalex_author_ids", "authorships"):
        v = extra.get(key)
        if isinstance(v, (list, tuple)) and v:
            first = v[0]
            if isinstance(first, dict):
                first = first.get("id") or (first.get("author") or {}).get("id")
            if first:
                m = re.search(r"A\d+", str(first))
                if m:
                    return m.group(0)
    return None


def _route(default: str, ident: str) -> str:
    """Which service fetches a linked id: OpenCitations links a work without DOI by its PMID."""
    if default == "crossref" and ident.isdigit():
        return "pubmed"
    return default


_ID_NAMES = {"pmid": "PMID", "doi": "DOI", "openalex": "OpenAlex work id"}


def _none(value: str | None) -> str:
    """An identifier in a logged query; a missing one reads as such, never as `None`."""
    return value if value else "(none)"


def _lookup(mapping: Mapping[str, Any], key: str) -> Any:
    """A value by id, whatever case the service wrote the id in."""
    if key in mapping:
        return mapping[key]
    low = key.lower()
    return next((v for k, v in mapping.items() if k.lower() == low), None)


class _Breaker:
    """Stop asking a service that failed for several index articles in a row.

    Each failure has already been retried with backoff by the HTTP layer; a
    service that is down throughout would otherwise cost every remaining
    index article the same wait. The units are recorded as failed and a rerun
    tries them again.
    """

    LIMIT = 2

    def __init__(self) -> None:
        self.in_a_row = 0
        self.last: str | None = None

    @property
    def open(self) -> bool:
        return self.in_a_row >= self.LIMIT

    def failed(self, exc: ServiceError) -> str:
        from base.errors import RateLimited, ServiceDown

        if isinstance(exc, (ServiceDown, RateLimited)):
            self.in_a_row += 1
            self.last = str(exc)
        return str(exc)

    def ok(self) -> None:
        self.in_a_row = 0

    def skipped(self) -> str:
        return f"{self.last} (not asked again after failing for {self.LIMIT} index articles in a row)"

    def call(self, fn: Callable[[], Any]) -> tuple[Any, str | None]:
        """Run one seed's request unless the service was given up on: (result, error sentence)."""
        if self.open:
            return None, self.skipped()
        try:
            result = fn()
        except ServiceError as exc:
            return None, self.failed(exc)
        self.ok()
        return result, None


def _one_by_one(call: Callable[[list[str]], Links], ids: list[str]) -> Links:
    """Call a one-request-per-id service seed by seed, so one seed's failure stays its own."""
    by_seed: dict[str, tuple[Link, ...]] = {}
    calls: list[CallLog] = []
    failed: dict[str, str] = {}
    breaker = _Breaker()
    for ident in ids:
        got, error = breaker.call(lambda: call([ident]))
        if error is not None:
            failed[ident] = error
            continue
        by_seed.update(got.by_seed)
        failed.update(got.failed)
        calls += got.calls
    return Links(by_seed, tuple(calls), failed)


def _service_id(service: str, rec: Record) -> str | None:
    return {"pubmed": rec.pmid, "openalex": rec.openalex}.get(service, rec.doi)


def _call_json(c: CallLog) -> dict[str, Any]:
    params = {k: (v if len(v) <= 200 else f"{v[:120]}... ({v.count(',') + 1} values)")
              for k, v in dict(c.params).items()}
    return {"service": c.service, "endpoint": c.endpoint, "params": params, "at": c.at,
            "n_results": c.n_results, "from_cache": c.from_cache}


# --- adding index articles by identifier -----------------------------------------


@dataclass(frozen=True)
class AddResult:
    record_id: int
    identifier: str
    service: str
    title: str | None
    new: bool                      # a new record (else an existing one made an index article)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def add_index_articles(store: Store, services: Services, *, pmids: Sequence[str] = (),
                       dois: Sequence[str] = ()) -> tuple[AddResult, ...]:
    """Fetch records by PMID/DOI and make them index articles, all or nothing.

    PMIDs come from PubMed; DOIs from PubMed when it knows them (for the
    abstract and MeSH-era metadata), otherwise from Crossref.
    """
    from base.record import normalize_doi, normalize_pmid

    clean_pmids, clean_dois = [], []
    for p in pmids:
        n = normalize_pmid(p)
        if n is None:
            raise ExpandError(f"{p!r} is not a PMID: give the digits only, e.g. --pmid 23121403.")
        clean_pmids.append(n)
    for d in dois:
        n = normalize_doi(d)
        if n is None:
            raise ExpandError(f"{d!r} is not a DOI: give it as 10.xxxx/..., e.g. --doi 10.1056/nejmoa1210384.")
        clean_dois.append(n)
    if not clean_pmids and not clean_dois:
        raise ExpandError("Nothing to add: give --pmid or --doi at least once.")
    clean_pmids, clean_dois = list(dict.fromkeys(clean_pmids)), list(dict.fromkeys(clean_dois))
    doi_pmids: Mapping[str, str] = {}
    if clean_dois:
        doi_pmids, _ = services.pubmed.pmids_for_dois(clean_dois)
    want_pubmed = list(dict.fromkeys(clean_pmids + [doi_pmids[d] for d in clean_dois if d in doi_pmids]))
    got: list[tuple[str, str, Record, Sequence[CallLog]]] = []
    if want_pubmed:
        f = services.pubmed.fetch(want_pubmed)
        by = {r.pmid: r for r in f.records}
        for p in clean_pmids:
            if p not in by:
                raise ExpandError(f"PMID {p} was not found in PubMed: check the identifier.")
            got.append((p, "pubmed", by[p], f.calls))
        for d in clean_dois:
            if d in doi_pmids and doi_pmids[d] in by:
                got.append((d, "pubmed", by[doi_pmids[d]], f.calls))
    rest = [d for d in clean_dois if not any(g[0] == d for g in got)]
    if rest:
        f = services.crossref.works(rest)
        by = {(r.doi or "").lower(): r for r in f.records}
        for d in rest:
            if d not in by:
                raise ExpandError(f"DOI {d} was found neither in PubMed nor in Crossref: check the identifier.")
            got.append((d, "crossref", by[d], f.calls))
    out: list[AddResult] = []
    with store.transaction():
        by_service: dict[str, list[tuple[str, Record, Sequence[CallLog]]]] = defaultdict(list)
        for ident, service, rec, calls in got:
            by_service[service].append((ident, rec, calls))
        for service, items in by_service.items():
            calls = items[0][2]
            sid = store.start_search(
                kind="api", service=service, strategy="index", role="index",
                query=" ".join(i for i, _, _ in items),
                params={"ids": [i for i, _, _ in items], "calls": [_call_json(c) for c in calls]})
            added = 0
            for ident, rec, _ in items:
                found = store.find_by_ids(rec)
                new = found is None
                if found is None:
                    rid = store.add_record(rec)
                    added += 1
                else:
                    rid = store.canonical_id(found)
                already = store.db.execute(
                    "SELECT 1 FROM sources WHERE record_id = ? AND role = 'index'", [rid]).fetchone()
                if not already:
                    store.add_source(rid, sid, role="index", service=service, strategy="index",
                                     source_record_id=_service_id(service, rec))
                out.append(AddResult(rid, ident, service, rec.title, new))
            store.finish_search(sid, status="done", n_found=len(items), n_kept=len(items), n_added=added)
    return tuple(out)
