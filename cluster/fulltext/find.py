"""Step 1: find the open copies of the records that need a full text.

For each record at the full-text stage that has no copy in hand yet, ask the
services a team would ask, each through the connectors' one HTTP layer:
Unpaywall by DOI (only with a contact e-mail), PubMed Central (the record's
PMCID, or one from the ID converter, then the OA web service), OpenAlex
(`best_oa_location`, `locations`) and Crossref (`link`). Every candidate is
logged as a `locations` event (provenance; a record with none logs an empty
list), and a record without a retrieval state is marked `sought`.

Records are done in batches, each committed as it finishes, so an interrupted
run keeps what it found; a rerun asks again only for records not looked up
yet, or whose last look-up had a service failing (`refresh` asks for all).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from base.errors import ServiceError
from base.record import Record
from connectors.locations import Located, Location, unique
from db.events import FULL_TEXT
from db.state import retrievals, stage_records
from db.store import Store

Progress = Callable[[int, int], None]
BATCH = 50
#: the services asked, in the order their locations are listed
SERVICES = ("unpaywall", "pmc", "openalex", "crossref")


@dataclass(frozen=True)
class FindResult:
    looked_up: int
    with_copy: tuple[int, ...]         # records with at least one PDF or XML location
    landing_only: tuple[int, ...]      # records with only landing pages
    without: tuple[int, ...]           # records with no location at all
    already: int                       # records skipped: looked up before, or in hand
    by_service: Mapping[str, int]      # locations found per service
    failed: Mapping[str, str] = field(default_factory=dict)   # service -> why, where it failed
    skipped: Mapping[str, str] = field(default_factory=dict)  # service -> why it was not asked

    def to_dict(self) -> dict[str, Any]:
        return {"looked_up": self.looked_up, "with_copy": list(self.with_copy),
                "landing_only": list(self.landing_only), "without": list(self.without),
                "already": self.already, "by_service": dict(self.by_service),
                "failed": dict(self.failed), "skipped": dict(self.skipped)}


def records_to_find(store: Store, *, refresh: bool = False,
                    only: Sequence[int] | None = None) -> tuple[list[int], int]:
    """The full-text records to look up now, and how many were skipped as done."""
    got = retrievals(store)
    todo, done = [], 0
    for rid in stage_records(store, FULL_TEXT):
        if only is not None and rid not in only:
            continue
        r = got.get(rid)
        if r is not None and (r.state == "retrieved" or (
                r.located and not refresh and not r.unanswered)):
            done += 1
            continue
        todo.append(rid)
    return todo, done


@dataclass(frozen=True)
class _Answer:
    by_key: Mapping[str, tuple[Location, ...]] = field(default_factory=dict)
    failed: Mapping[str, str] = field(default_factory=dict)   # key -> why
    down: str | None = None                                   # the whole service failed
    missing: frozenset[str] = frozenset()                     # keys the service does not know


def _ask(fn: Callable[[], Located], keys: Sequence[str]) -> _Answer:
    if not keys:
        return _Answer()
    try:
        got = fn()
    except ServiceError as exc:
        return _Answer(down=str(exc))
    return _Answer(got.by_id, got.failed, missing=frozenset(got.missing))


def find(store: Store, services: Any, *, refresh: bool = False, only: Sequence[int] | None = None,
         efetch_url: str | None = None, progress: Progress | None = None) -> FindResult:
    """Look up the candidate locations; see the module docstring.

    `services` is a `connectors.services.Services`; `efetch_url` (E-utilities'
    efetch.fcgi) lets PMC offer each OA article's XML too.
    """
    todo, already = records_to_find(store, refresh=refresh, only=only)
    skipped: dict[str, str] = {}
    if services.unpaywall is None or not services.unpaywall.usable:
        skipped["unpaywall"] = ("Unpaywall was not asked: it needs a contact e-mail (set "
                                "CLUSTER_EMAIL)")
    with_copy: list[int] = []
    landing: list[int] = []
    without: list[int] = []
    per_service = {s: 0 for s in SERVICES}
    failed_any: dict[str, str] = {}
    if progress:
        progress(0, len(todo))
    for start in range(0, len(todo), BATCH):
        batch = todo[start:start + BATCH]
        records = {rid: store.get_record(rid) for rid in batch}
        found, failed, unknown = _lookup(records, services, skipped, efetch_url)
        with store.transaction():
            have = retrievals(store)
            for rid in batch:
                locs = found.get(rid, ())
                why = failed.get(rid, {})
                store.log_event("locations", record_id=rid, stage=FULL_TEXT, data={
                    "locations": [loc.to_dict() for loc in locs],
                    "services": [s for s in SERVICES if s not in skipped],
                    "failed": why, "unknown": unknown.get(rid, [])})
                if have.get(rid) is None or have[rid].state is None:
                    store.log_event("fulltext", record_id=rid, stage=FULL_TEXT, value="sought")
                for loc in locs:
                    per_service[loc.service] += 1
                if any(loc.kind in ("pdf", "xml") for loc in locs):
                    with_copy.append(rid)
                elif locs:
                    landing.append(rid)
                else:
                    without.append(rid)
        for per_record in failed.values():
            for k, v in per_record.items():
                failed_any.setdefault(k, v)
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))
    return FindResult(len(todo), tuple(with_copy), tuple(landing), tuple(without), already,
                      per_service, failed_any, skipped)


def _lookup(records: Mapping[int, Record], services: Any, skipped: Mapping[str, str],
            efetch_url: str | None
            ) -> tuple[dict[int, tuple[Location, ...]], dict[int, dict[str, str]],
                       dict[int, list[str]]]:
    """{record id: its locations, in service order}, {record id: {service: why it failed}}
    and {record id: the services that do not know its DOI or PMID}."""
    dois = {rid: r.doi.lower() for rid, r in records.items() if r.doi}
    pmids = {rid: r.pmid for rid, r in records.items() if r.pmid}
    pmcids = {rid: r.pmcid for rid, r in records.items() if r.pmcid}
    doi_list = sorted(set(dois.values()))
    # PMC: the PMCIDs the records lack, from their PMIDs (else DOIs) through the ID converter
    lacking = {rid: pmids.get(rid) or dois.get(rid) for rid in records if rid not in pmcids}
    converter_down: str | None = None

    def ask_pmc() -> _Answer:
        nonlocal converter_down
        asked = sorted({x for x in lacking.values() if x})
        if asked:
            try:
                converted, _ = services.pmc.pmcids(asked)
            except ServiceError as exc:
                converted, converter_down = {}, str(exc)
            for rid, key in lacking.items():
                if key and key in converted:
                    pmcids[rid] = converted[key]
        pmc_list = sorted(set(pmcids.values()))
        return _ask(lambda: services.pmc.locations(pmc_list, efetch_url=efetch_url), pmc_list)

    oa_list = sorted({dois.get(rid) or f"pmid:{pmids[rid]}" for rid in records
                      if rid in dois or rid in pmids})
    jobs: dict[str, Callable[[], _Answer]] = {
        "unpaywall": lambda: _ask(lambda: services.unpaywall.locations(doi_list), doi_list),
        "pmc": ask_pmc,
        "openalex": lambda: _ask(lambda: services.openalex.oa_locations(oa_list), oa_list),
        "crossref": lambda: _ask(lambda: services.crossref.links(doi_list), doi_list),
    }
    # the services have a rate limit each: asked side by side, the slowest sets the pace
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items() if name not in skipped}
        answers = {name: futures[name].result() for name in SERVICES if name in futures}
    out: dict[int, tuple[Location, ...]] = {}
    why: dict[int, dict[str, str]] = {}
    unknown: dict[int, list[str]] = {}
    for rid in records:
        # OpenAlex keys its answer by the id as normalised: a DOI, or a bare PMID
        keys = {"unpaywall": dois.get(rid), "pmc": pmcids.get(rid),
                "openalex": dois.get(rid) or pmids.get(rid), "crossref": dois.get(rid)}
        locs: list[Location] = []
        for service, answer in answers.items():
            key = keys[service]
            if service == "pmc" and key is None and converter_down and lacking.get(rid):
                why.setdefault(rid, {})[service] = converter_down
            if not key:
                continue
            if answer.down or key in answer.failed:
                why.setdefault(rid, {})[service] = answer.down or answer.failed[key]
            else:
                locs += answer.by_key.get(key, ())
            if key in answer.missing:
                unknown.setdefault(rid, []).append(service)
        out[rid] = unique(locs)
    return out, why, unknown


