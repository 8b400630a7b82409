"""The whole review, offline, in minutes: `cluster demo`.

A generated review world (`cluster.demo.world`) is served on 127.0.0.1 like
PubMed, Crossref, OpenAlex and OpenCitations, the connectors are pointed at
it, and the review runs through the same library calls a user's review makes:

1. a plain-text PMID list of the index articles is written and imported
   (`db.formats.import_files`, role index), then their records are fetched
   (`connectors.metadata.fill_needs_metadata`, as `cluster fetch --fill`);
2. the CLUSTER expansion, all strategies, top 20 (`cluster.expand.expand`),
   and a PubMed database search on the protocol's terms
   (`cluster.dbsearch.search_pubmed`), counted with the databases;
3. deduplication (`cluster.dedup.apply.run_dedup`), the grey-zone pairs
   decided by a person who knows which records are one work;
4. the protocol and the team (alice and bob screen, carol resolves);
5. title/abstract screening by alice and bob, each in the order the
   prioritiser gives (`screeners.prioritise.rank`), re-ranked after every
   batch of decisions, each decision logged by `screeners.decisions.decide`;
6. carol resolves the conflicts as the third reviewer;
7. full texts: open copies looked up in Unpaywall, PubMed Central, OpenAlex
   and Crossref and fetched (`cluster.fulltext`), the rest obtained by hand and
   attached as a folder, a few not retrieved; full-text decisions with reasons
   from the protocol's list, conflicts resolved;
8. data extraction with the realist form: alice and bob extract every
   included record, carol settles the fields they disagree on
   (`cluster.demo.extraction`);
9. PRISMA flow numbers (`db.flow.compute_flow`), the diagram as SVG and
   PNG, agreement statistics, congruence in data extraction, the methods
   report and exports (the evidence table among them).

The simulated reviewers answer from the world's hidden truth (which works are
relevant) with a little noise, so they disagree at a realistic rate. Every
random choice is seeded from the demo's seed and the identity of the work
judged, never from the order of events, so a demo is repeatable.

Nothing here reads the environment or prints: the caller passes the
connector settings and a progress callback.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from base.errors import ClusterError
from base.services import SERVICE_NAMES
from connectors.http import Settings
from db.events import FULL_TEXT, TITLE_ABSTRACT
from db.files import fulltext_dir, http_cache_path
from db.store import Store, StoreError, open_store

Progress = Callable[[str, str], None]

STORE_NAME = "review.db"
INDEX_FILE = "index-articles.txt"
REPORT_FILE = "methods.md"
SVG_FILE = "prisma.svg"
PNG_FILE = "prisma.png"
INCLUDED_FILE = "included.ris"
RECORDS_FILE = "records.csv"
AGREEMENT_FILE = "agreement.json"
FLOW_FILE = "flow.json"
EVIDENCE_FILE = "evidence.csv"
#: the team's copies obtained by hand, attached with `fulltext attach --folder`
LIBRARY_DIR = "library"
#: what `--fresh` may delete: the files a demo writes, and nothing else
CACHE_NAME = http_cache_path(STORE_NAME).name  # beside the store, where the CLI keeps it
DEMO_FILES = (STORE_NAME, STORE_NAME + "-wal", STORE_NAME + "-shm",
              CACHE_NAME, CACHE_NAME + "-wal", CACHE_NAME + "-shm", INDEX_FILE, REPORT_FILE, SVG_FILE,
              PNG_FILE, INCLUDED_FILE, RECORDS_FILE, AGREEMENT_FILE, FLOW_FILE, EVIDENCE_FILE)
#: and the folders it fills: the store's full texts, the copies obtained by hand
DEMO_FOLDERS = (fulltext_dir(STORE_NAME).name, LIBRARY_DIR)
DEMO_META = "demo"
#: the PRISMA layout in which the index articles and the citation-search
#: records are screened together, as a CLUSTER review screens them
LAYOUT = "screen-other"
REVIEWERS = ("alice", "bob")
#: downloads a second from the world's one host
DOWNLOADS_PER_SECOND = 50
RESOLVER = "carol"
TA, FT = TITLE_ABSTRACT, FULL_TEXT


class DemoError(ClusterError):
    """The demo cannot run as asked; one sentence saying what to do."""


@dataclass(frozen=True)
class DemoOptions:
    seed: int = 1
    works: int = 3000
    fault_rate: float = 0.0
    #: index articles; None: nine, fewer in a small world
    n_index: int | None = None
    top: int = 20
    #: decisions between two rankings of a reviewer's queue
    batch: int = 50
    #: the chance that a reviewer's answer is not the truth, per reviewer
    error_rates: Mapping[str, float] = field(
        default_factory=lambda: {"alice": 0.03, "bob": 0.04})
    #: the chance that a reviewer says maybe instead of include on a relevant record
    maybe_rate: float = 0.015
    #: the share of irrelevant records whose title and abstract do not rule them out,
    #: so that the reviewers pass them on and exclude them at full text
    borderline_rate: float = 0.3
    #: the share of full-text reports that cannot be obtained
    not_retrieved_rate: float = 0.05

    def __post_init__(self) -> None:
        if self.works < 100:
            raise DemoError("--works must be at least 100: a smaller world has too little to review.")
        if self.works > 50000:
            raise DemoError("--works must be at most 50000: a larger world does not fit in the demo's minutes.")
        if not 0.0 <= self.fault_rate < 0.5:
            raise DemoError("--fault-rate must be at least 0 and below 0.5 (e.g. 0.05 for one "
                            "request in twenty).")

    @property
    def index_count(self) -> int:
        if self.n_index is not None:
            return self.n_index
        return max(2, min(9, self.works // 60))


@dataclass(frozen=True)
class Recall:
    """The hidden relevant set against what the review found and kept."""

    relevant_in_world: int
    found: int
    included: int

    @property
    def search_recall(self) -> float:
        return self.found / self.relevant_in_world if self.relevant_in_world else 0.0

    @property
    def screening_recall(self) -> float:
        return self.included / self.found if self.found else 0.0

    @property
    def overall(self) -> float:
        return self.included / self.relevant_in_world if self.relevant_in_world else 0.0


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    store_path: Path
    files: Mapping[str, Path]
    flow: Any                      # db.flow.Flow, as compute_flow gives it
    agreement: tuple[Any, ...]     # screeners.agreement.PairAgreement per stage and pair
    conflicts: Mapping[str, int]   # stage -> conflicts resolved
    duplicates_merged: int         # records marked as duplicates by deduplication
    pairs_decided: int             # grey-zone pairs a person decided
    failed_searches: int
    recall: Recall
    n_works: int
    n_index: int
    seed: int
    requests: Mapping[str, int]
    seconds: float
    stage_seconds: Mapping[str, float]
    #: screeners.extraction.congruence.Congruence of the extractors, before settling
    extraction: Any = None
    fulltexts: "FullTexts | None" = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory), "store": str(self.store_path),
            "files": {k: str(v) for k, v in self.files.items()},
            "layout": self.flow.layout, "flow": self.flow.to_dict(),
            "agreement": [p.to_dict() for p in self.agreement],
            "conflicts": dict(self.conflicts), "duplicates_merged": self.duplicates_merged,
            "pairs_decided": self.pairs_decided, "failed_searches": self.failed_searches,
            "recall": {"relevant_in_world": self.recall.relevant_in_world,
                       "found": self.recall.found, "included": self.recall.included,
                       "search_recall": round(self.recall.search_recall, 4),
                       "screening_recall": round(self.recall.screening_recall, 4),
                       "overall": round(self.recall.overall, 4)},
            "world": {"works": self.n_works, "index_articles": self.n_index, "seed": self.seed},
            "requests": dict(self.requests), "seconds": round(self.seconds, 1),
            "stage_seconds": {k: round(v, 2) for k, v in self.stage_seconds.items()},
            "extraction": None if self.extraction is None else self.extraction.to_dict(),
            "fulltexts": self.fulltexts.to_dict() if self.fulltexts else None,
        }


# --- the directory -------------------------------------------------------------------


def prepare_directory(directory: Path, *, fresh: bool) -> Path:
    """Make `directory` ready for a demo; refuse to overwrite anything but an earlier demo."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise DemoError(f"{directory} is a file: give --dir a folder for the demo review.")
    store_path = directory / STORE_NAME
    if store_path.exists():
        if not _is_demo_store(store_path):
            raise DemoError(f"{store_path} is a review store that cluster demo did not make: "
                            "choose another --dir so it is left alone.")
        if not fresh:
            raise DemoError(f"{directory} already holds a demo review: explore it with "
                            f"`cluster screen --db {store_path} --reviewer carol`, or run the "
                            "demo again with --fresh to start over.")
    if fresh:
        for name in DEMO_FILES:
            (directory / name).unlink(missing_ok=True)
        for name in DEMO_FOLDERS:
            if (directory / name).is_dir() and not (directory / name).is_symlink():
                shutil.rmtree(directory / name)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"Cannot create {directory} ({exc.strerror}): choose another --dir.") from None
    return store_path


def _is_demo_store(path: Path) -> bool:
    try:
        store = open_store(path, create=False)
    except StoreError:
        return False
    try:
        return store.get_meta(DEMO_META) is not None
    finally:
        store.close()


# --- the run -------------------------------------------------------------------------


def run_demo(directory: str | Path, settings: Settings, options: DemoOptions = DemoOptions(), *,
             fresh: bool = False, progress: Progress | None = None) -> DemoResult:
    """Run the whole review on a generated world; see the module docstring.

    `settings` are the user's connector settings (contact address, keys,
    retries, rate limits); the demo replaces their base URLs with the world's
    and puts the HTTP cache beside the demo store.
    """
    from cluster.demo.services import serve_world
    from cluster.demo.world import World

    say = progress or (lambda stage, message: None)
    directory = Path(directory)
    store_path = prepare_directory(directory, fresh=fresh)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    t = time.perf_counter()
    world = World.generate(options.seed, options.works, options.index_count)
    server = serve_world(world, fault_rate=options.fault_rate, seed=options.seed)
    say("world", f"{len(world.works)} works, {len(world.relevant)} of them relevant (hidden), "
                 f"{len(world.index_keys)} index articles; PubMed, Crossref, OpenAlex and "
                 f"OpenCitations answering on {server.url}"
        + (f", failing {options.fault_rate:.0%} of requests" if options.fault_rate else ""))
    timings["world"] = time.perf_counter() - t
    # the world's files all sit on one loopback host: polite to it as to many publishers
    settings = dataclasses.replace(settings, base_urls=server.base_urls,
                                   cache_path=directory / CACHE_NAME,
                                   rate_limits={**(settings.rate_limits or {}),
                                                "download": DOWNLOADS_PER_SECOND})
    store = open_store(store_path)
    try:
        store.set_meta(DEMO_META, json.dumps({"seed": options.seed, "works": options.works,
                                              "fault_rate": options.fault_rate}))
        result = _pipeline(store, world, settings, options, directory, say, timings)
    finally:
        store.close()
        server.stop()
    return dataclasses.replace(result, seconds=time.perf_counter() - t_start,
                               stage_seconds=dict(timings))


def _pipeline(store: Store, world: Any, settings: Settings, options: DemoOptions,
              directory: Path, say: Progress, timings: dict[str, float]) -> DemoResult:
    from connectors.services import connect

    truth = _Truth(world)
    files: dict[str, Path] = {"store": directory / STORE_NAME,
                              "http cache": directory / CACHE_NAME}
    services = connect(settings)
    try:
        with _timed(timings, "import"):
            files["index articles"] = _import_index(store, services, world, directory, say)
        with _timed(timings, "expand"):
            failed = _expand(store, services, options, say)
        with _timed(timings, "database search"):
            _database_search(store, services, world, say)
    finally:
        requests = dict(services.http.network_requests) if services.http else {}
        services.close()
    with _timed(timings, "dedup"):
        merged, decided = _dedup(store, truth, say)
    with _timed(timings, "protocol"):
        _protocol(store, world, say)
    sim = _Reviewers(store, truth, options)
    with _timed(timings, "title-abstract"):
        sim.screen(TA, say)
    with _timed(timings, "conflicts"):
        n_ta = sim.resolve(TA, say)
    with _timed(timings, "full-text"):
        fulltexts = _retrieve(store, sim, settings, directory, say)
        for service, n in fulltexts.requests.items():
            requests[service] = requests.get(service, 0) + n
        sim.screen(FT, say)
        n_ft = sim.resolve(FT, say)
    with _timed(timings, "extraction"):
        from cluster.demo.extraction import extract

        extraction, n_settled = extract(store, options.seed, sim._identity, say)
    with _timed(timings, "report"):
        flow, pairs, written = _report(store, directory, say)
    files.update(written)
    return DemoResult(
        directory=directory, store_path=directory / STORE_NAME, files=files, flow=flow,
        agreement=tuple(pairs), conflicts={TA: n_ta, FT: n_ft, "extraction": n_settled},
        duplicates_merged=merged,
        pairs_decided=decided, failed_searches=failed, recall=truth.recall(store),
        n_works=len(world.works), n_index=len(world.index_keys), seed=options.seed,
        requests=requests, seconds=0.0, stage_seconds={}, extraction=extraction,
        fulltexts=fulltexts)


@contextlib.contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    t = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - t


# --- 1. index articles -----------------------------------------------------------------


def _import_index(store: Store, services: Any, world: Any, directory: Path, say: Progress) -> Path:
    from connectors.metadata import fill_needs_metadata
    from db.formats import import_files

    path = directory / INDEX_FILE
    lines = ["# Index articles of the demo review: PubMed ids, one a line"]
    lines += [w.pmid for w in world.index_articles]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    (imported,) = import_files(store, [path], role="index", source="index articles")
    say("import", f"{path.name}: {imported.n_added} PMIDs imported as index articles")
    filled = fill_needs_metadata(store, services)
    if filled.remaining:
        raise DemoError(f"The records of {filled.remaining} index articles could not be fetched "
                        "from PubMed: run the demo again with --fresh.")
    say("import", f"records of {filled.filled} index articles fetched from PubMed")
    return path


# --- 2. expansion ----------------------------------------------------------------------


def _expand(store: Store, services: Any, options: DemoOptions, say: Progress) -> int:
    from cluster.expand import ExpandOptions, expand

    last: dict[str, str | None] = {"label": None}

    def unit_progress(done: int, total: int, label: str) -> None:
        if label and label != last["label"]:
            last["label"] = label
            say("expand", f"{label}: {done}/{total} searches done")

    report = expand(store, services, ExpandOptions(top=options.top), progress=unit_progress)
    n_records = store.db.execute("SELECT count(*) FROM records").fetchone()[0]
    failed = len(report.failures)
    say("expand", f"{len(report.results)} searches from {report.n_seeds} index articles; "
                  f"{n_records} records in the store"
        + (f"; {failed} searches failed (see `cluster searches`)" if failed else ""))
    return failed


def database_query(world: Any) -> tuple[str, tuple[str, ...]]:
    """The demo's PubMed strategy: the two words likeliest to mark a relevant work, in
    titles and abstracts, English only."""
    terms = relevant_terms(world)
    return f"{terms[0]}[tiab] OR {terms[1]}[tiab]", ("eng[la]",)


def _database_search(store: Store, services: Any, world: Any, say: Progress) -> None:
    from cluster.dbsearch import search_pubmed

    query, filters = database_query(world)
    run = search_pubmed(store, services, query, filters=filters)
    say("search", f"PubMed database search {query!r} ({' AND '.join(filters)}): {run.count} "
                  f"records found, {run.added} new to the store")


# --- 3. deduplication --------------------------------------------------------------------


def _dedup(store: Store, truth: "_Truth", say: Progress) -> tuple[int, int]:
    try:
        from cluster.dedup.apply import decide_pairs, pending_pairs, run_dedup
    except ModuleNotFoundError as exc:
        raise DemoError(f"The deduplication step needs {exc.name}, which this installation "
                        "lacks: install the complete cluster package.") from None

    summary = run_dedup(store)
    pairs = pending_pairs(store)
    with store.transaction():
        # the one deciding the pairs is on the team (the protocol step names the rest)
        store.add_reviewer(RESOLVER)
    verdicts = [(p.a, p.b, "same" if truth.same_work(store, p.a, p.b) else "different") for p in pairs]
    counts = decide_pairs(store, verdicts, reviewer=RESOLVER) if verdicts else {"same": 0}
    merged = store.db.execute(
        "SELECT count(*) FROM records WHERE duplicate_of IS NOT NULL").fetchone()[0]
    say("dedup", f"{summary.pairs_compared} pairs compared, {summary.duplicates_marked} "
                 f"duplicates merged; {len(pairs)} uncertain pairs decided by {RESOLVER} "
                 f"({counts.get('same', 0)} the same work)")
    return merged, len(pairs)


# --- 4. protocol -----------------------------------------------------------------------


def relevant_terms(world: Any, n: int = 8) -> list[str]:
    """The words that mark the world's relevant works: common among them, rare elsewhere."""
    inside: Counter[str] = Counter()
    outside: Counter[str] = Counter()
    n_in = n_out = 0
    for w in world.works:
        words = set(re.findall(r"[a-z][a-z-]{4,}", w.title.lower()))
        if w.relevant:
            inside.update(words)
            n_in += 1
        else:
            outside.update(words)
            n_out += 1
    score = {t: c / max(n_in, 1) - outside[t] / max(n_out, 1) for t, c in inside.items()}
    return [t for t, _ in sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def _protocol(store: Store, world: Any, say: Progress) -> None:
    from db.protocol import set_protocol

    terms = relevant_terms(world)
    question = f"What is known about {', '.join(terms[:3])} and {terms[3]}?"
    with store.transaction():
        for name in (*REVIEWERS, RESOLVER):
            store.add_reviewer(name)
    set_protocol(store, question=question, include_terms=terms, reviewers_per_record=2)
    say("protocol", f"question: {question} Include terms: {', '.join(terms)}. Reviewers: "
                    f"{', '.join(REVIEWERS)}; {RESOLVER} resolves conflicts")


# --- 5-7. the reviewers ------------------------------------------------------------------


class _Truth:
    """Which world works a store record stands for, and whether they are relevant."""

    def __init__(self, world: Any):
        self.world = world

    def works_of(self, store: Store, record_id: int) -> set[int]:
        rows = store.db.execute(
            "SELECT pmid, doi, openalex FROM records WHERE id = ? OR duplicate_of = ?",
            [record_id, record_id]).fetchall()
        keys = set()
        for row in rows:
            for ident in row:
                w = self.world.work(ident) if ident else None
                if w is not None:
                    keys.add(w.key)
        return keys

    def same_work(self, store: Store, a: int, b: int) -> bool:
        return bool(self.works_of(store, a) & self.works_of(store, b))

    def relevant(self, store: Store, record_id: int) -> bool:
        return any(self.world.works[k].relevant for k in self.works_of(store, record_id))

    def recall(self, store: Store) -> Recall:
        from db.state import INCLUDED, stage_states

        in_world = {w.key for w in self.world.works if w.relevant}
        found: set[int] = set()
        for idents in store.db.execute("SELECT pmid, doi, openalex FROM records"):
            for ident in idents:
                w = self.world.work(ident) if ident else None
                if w is not None and w.relevant:
                    found.add(w.key)
        included: set[int] = set()
        for rid, st in stage_states(store, FT).items():
            if st.status == INCLUDED:
                included |= {k for k in self.works_of(store, rid) if k in in_world}
        return Recall(len(in_world), len(found), len(included))


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


class _Reviewers:
    """alice and bob screening blind, carol resolving, all from the hidden truth plus noise."""

    def __init__(self, store: Store, truth: _Truth, options: DemoOptions):
        self.store, self.truth, self.options = store, truth, options
        self._keys: dict[int, tuple[int, ...]] = {}

    def _identity(self, record_id: int) -> tuple[int, ...]:
        # the work, not the record id, seeds each answer: the same world gives the same review
        if record_id not in self._keys:
            self._keys[record_id] = tuple(sorted(self.truth.works_of(self.store, record_id)))
        return self._keys[record_id] or (record_id,)

    def _work(self, record_id: int) -> Any:
        keys = self.truth.works_of(self.store, record_id)
        return self.truth.world.works[min(keys)] if keys else None

    def eligible(self, stage: str, record_id: int) -> bool:
        """The right answer at `stage`: at title/abstract a borderline record passes."""
        if self.truth.relevant(self.store, record_id):
            return True
        if stage == FT:
            return False
        rng = _rng(self.options.seed, "borderline", self._identity(record_id))
        return rng.random() < self.options.borderline_rate

    def answer(self, reviewer: str, stage: str, record_id: int) -> tuple[str, str | None]:
        relevant = self.eligible(stage, record_id)
        rng = _rng(self.options.seed, reviewer, stage, self._identity(record_id))
        err = self.options.error_rates.get(reviewer, 0.0) * (0.6 if stage == FT else 1.0)
        right = rng.random() >= err
        include = relevant if right else not relevant
        if include:
            if stage == TA and rng.random() < self.options.maybe_rate:
                return "maybe", None
            return "include", None
        return "exclude", (self.reason(record_id, rng) if stage == FT else None)

    def reason(self, record_id: int, rng: random.Random) -> str:
        from db.protocol import get_protocol

        reasons = get_protocol(self.store).exclusion_reasons
        w = self._work(record_id)
        if w is not None and w.kind not in ("journal-article", "review") \
                and "wrong publication type" in reasons:
            return "wrong publication type"
        if w is not None and w.language not in ("en", None) and "not in English" in reasons:
            return "not in English"
        topical: list[str] = [r for r in ("wrong population", "wrong intervention", "wrong outcome",
                               "wrong study design") if r in reasons] or list(reasons)
        return rng.choice(topical)

    def screen(self, stage: str, say: Progress) -> None:
        """Both reviewers screen their whole queue, alternating batches, best-ranked first."""
        from screeners.decisions import decide
        from screeners.session import pending
        try:
            from screeners.prioritise import rank
        except ModuleNotFoundError as exc:
            raise DemoError(f"Prioritised screening needs {exc.name}, which this installation "
                            "lacks: install the complete cluster package.") from None

        counts: dict[str, Counter[str]] = {r: Counter() for r in REVIEWERS}
        total = {r: len(pending(self.store, r, stage)) for r in REVIEWERS}
        busy = True
        while busy:
            busy = False
            for reviewer in REVIEWERS:
                queue = pending(self.store, reviewer, stage)
                if not queue:
                    continue
                busy = True
                ranked = [rid for rid, _ in rank(self.store, stage, reviewer, queue)]
                for rid in ranked[: self.options.batch]:
                    value, reason = self.answer(reviewer, stage, rid)
                    decide(self.store, rid, reviewer, stage, value, reason)
                    counts[reviewer][value] += 1
                done = sum(counts[reviewer].values())
                say(stage, f"{reviewer} {done}/{total[reviewer]} screened "
                           f"({counts[reviewer]['include'] + counts[reviewer]['maybe']} "
                           f"included so far)")

    def resolve(self, stage: str, say: Progress) -> int:
        from screeners.decisions import conflicts, resolve

        found = conflicts(self.store, stage)
        for c in found:
            rng = _rng(self.options.seed, RESOLVER, stage, self._identity(c.record_id))
            if self.eligible(stage, c.record_id):
                resolve(self.store, c.record_id, stage, "include", RESOLVER, "arbiter")
            else:
                reason = self.reason(c.record_id, rng) if stage == FT else None
                resolve(self.store, c.record_id, stage, "exclude", RESOLVER, "arbiter",
                        reason)
        say(stage, f"{len(found)} conflicts resolved by {RESOLVER} as the third reviewer")
        return len(found)

    def obtain(self, record_id: int, held: set[int]) -> bool:
        """Whether the team gets a report the open web did not give (library, author):
        always for the index articles they hold, else most of the time."""
        rng = _rng(self.options.seed, "retrieval", self._identity(record_id))
        return record_id in held or rng.random() >= self.options.not_retrieved_rate


# --- 7a. full texts -----------------------------------------------------------------------


@dataclass(frozen=True)
class FullTexts:
    """What retrieval did: records sought, copies found open and fetched (per service),
    open links that failed (per reason), copies attached by hand, reports not retrieved."""

    sought: int
    found_open: int
    by_service: Mapping[str, int]
    failed_links: Mapping[str, int]
    by_hand: int
    not_retrieved: int
    requests: Mapping[str, int]
    seconds: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"sought": self.sought, "found_open": self.found_open,
                "by_service": dict(self.by_service), "failed_links": dict(self.failed_links),
                "by_hand": self.by_hand, "not_retrieved": self.not_retrieved,
                "seconds": {k: round(v, 2) for k, v in self.seconds.items()}}


def _link_problem(message: str) -> str:
    for key, label in (("HTML page", "HTML instead of a PDF"), ("broken", "broken link"),
                       ("landing page", "landing page only"), ("no open copy", "closed"),
                       ("redirects", "redirect loop"), ("cap", "over the size cap")):
        if key in message:
            return label
    return "other"


def _retrieve(store: Store, sim: _Reviewers, settings: Settings, directory: Path,
              say: Progress) -> FullTexts:
    """`cluster fulltext find` and `fetch` over the world's services, then the team's
    library copies attached as a folder (`fulltext attach --folder`), and the reports
    nobody could get marked not retrieved with a reason from the list."""
    from cluster.demo.fulltext import pdf_of
    from cluster.expand import index_record_ids
    from cluster.fulltext import attach_folder, fetch, find
    from connectors.download import Downloader
    from connectors.services import connect
    from db.events import NOT_RETRIEVED_REASONS
    from db.files import fulltext_dir
    from db.state import retrievals
    from screeners.decisions import mark_fulltext

    seconds: dict[str, float] = {}
    folder = fulltext_dir(directory / STORE_NAME)
    t = time.perf_counter()
    services = connect(settings)
    try:
        found = find(store, services, efetch_url=settings.base_url("pubmed") + "/efetch.fcgi")
    finally:
        requests = dict(services.http.network_requests) if services.http else {}
        services.close()
    seconds["find"] = time.perf_counter() - t
    say(FT, f"{found.looked_up} reports sought: {len(found.with_copy)} with an open PDF or XML "
            f"somewhere, {len(found.landing_only)} with a landing page only, "
            f"{len(found.without)} with none")
    t = time.perf_counter()
    downloader = Downloader(settings, max_bytes=20 * 1024 * 1024, max_seconds=60)
    try:
        got = fetch(store, folder, downloader)
    finally:
        downloader.close()
    seconds["fetch"] = time.perf_counter() - t
    problems = Counter(_link_problem(o.message) for o in got.outcomes if o.status != "retrieved")
    by_service = got.by_source()
    say(FT, f"{got.count('retrieved')} full texts found open and fetched ("
            + ", ".join(f"{SERVICE_NAMES.get(k, k)} {v}" for k, v in sorted(by_service.items()))
            + "); not fetched: " + ", ".join(f"{v} {k}" for k, v in sorted(problems.items())))
    # the team's library: copies of the rest, named by DOI as a reference manager saves them
    t = time.perf_counter()
    held = set(index_record_ids(store))
    library = directory / LIBRARY_DIR
    library.mkdir(exist_ok=True)
    missing = [rid for rid, r in retrievals(store).items() if r.state != "retrieved"]
    for rid in missing:
        work = sim._work(rid)
        if work is not None and sim.obtain(rid, held):
            name = (work.doi or work.title).replace("/", "_")[:150]
            (library / f"{name}.pdf").write_bytes(pdf_of(work))
    attached = attach_folder(store, folder, library, reviewer=RESOLVER)
    left = [rid for rid, r in retrievals(store).items() if r.state != "retrieved"]
    for rid in left:
        rng = _rng(sim.options.seed, "why not retrieved", sim._identity(rid))
        mark_fulltext(store, rid, "not-retrieved", rng.choice(NOT_RETRIEVED_REASONS[:3]),
                      RESOLVER)
    seconds["attach"] = time.perf_counter() - t
    say(FT, f"{len(attached.attached)} obtained by hand and attached from {LIBRARY_DIR}/, "
            f"{len(left)} not retrieved")
    return FullTexts(found.looked_up, got.count("retrieved"), by_service, dict(problems),
                     len(attached.attached), len(left), requests, seconds)


# --- 8. reporting ------------------------------------------------------------------------


def _report(store: Store, directory: Path, say: Progress
            ) -> tuple[Any, list[Any], dict[str, Path]]:
    try:
        from db.diagram import layout as place, write_png, write_svg
        from db.flow import compute_flow
        from db.report import methods_report
    except ModuleNotFoundError as exc:
        raise DemoError(f"The report step needs {exc.name}, which this installation lacks: "
                        "install the complete cluster package.") from None
    from db.formats import export_records
    from screeners.agreement import agreement, agreement_by_stage
    from screeners.extraction.export import export_table
    from screeners.extraction.report import extraction_section

    flow = compute_flow(store, LAYOUT)
    diagram = place(flow)
    files = {"diagram (SVG)": directory / SVG_FILE, "diagram (PNG)": directory / PNG_FILE,
             "methods report": directory / REPORT_FILE, "flow numbers": directory / FLOW_FILE,
             "agreement": directory / AGREEMENT_FILE,
             "included records": directory / INCLUDED_FILE,
             "all records with decisions": directory / RECORDS_FILE,
             "evidence table": directory / EVIDENCE_FILE}
    write_svg(diagram, files["diagram (SVG)"])
    write_png(diagram, files["diagram (PNG)"])
    files["methods report"].write_text(
        methods_report(store, agreement_by_stage(store), LAYOUT, diagram_file=SVG_FILE, flow=flow,
                       extraction=extraction_section(store)),
        encoding="utf-8")
    files["flow numbers"].write_text(json.dumps(flow.to_dict(), indent=2) + "\n", encoding="utf-8")
    pairs = [p for stage in (TA, FT) for p in agreement(store, stage)]
    files["agreement"].write_text(json.dumps([p.to_dict() for p in pairs], indent=2) + "\n",
                                  encoding="utf-8")
    files["included records"].write_text(
        export_records(store, "ris", stage=FT, decision="include").text, encoding="utf-8")
    files["all records with decisions"].write_text(
        export_records(store, "csv", stage=TA).text, encoding="utf-8")
    evidence = export_table(store, "csv").text
    assert isinstance(evidence, str)  # csv is text
    files["evidence table"].write_text(evidence, encoding="utf-8", newline="")
    say("report", f"flow diagram, methods report, agreement and exports written to {directory}")
    return flow, pairs, files
