"""One reviewer's screening sitting: the blind queue, the record card, the order.

The queue holds the records of a stage that the reviewer has not decided yet
(or only their assigned check subsample), so under any order every reviewer
still sees every record and agreement statistics stay valid. Nothing here
exposes another reviewer's decisions or notes: the card shows the record, its
provenance, the full-text status and the reviewer's own notes and scores.

The order comes from the prioritiser (`screeners.prioritise.rank`) when that
module is present and plain record-id order when it is not. After each
decision the next ranking is computed in the background (a process of its own
on a large store, else a thread), on its own connection to the store, while
the next record is taken at once from the ranking already at hand, so the
reviewer never waits for a model to retrain.
"""

from __future__ import annotations

import importlib
import threading
import weakref
from dataclasses import dataclass, field
from itertools import filterfalse
from typing import Callable, Mapping, Sequence

from base.errors import ClusterError
from base.links import record_links
from db.files import fulltext_dir
from db.protocol import Protocol, get_protocol
from db.provenance import source_names, sources_of
from db.state import (Decision, Retrieval, automated_records, effective_decisions, retrievals,
                      stage_records)
from db.store import Store, open_store
from db.tags import tags_of
from screeners.decisions import (FULL_TEXT, Appraisal, DecisionError, DecisionResult, UndoResult,
                                 add_note, appraise, assigned_records, check_stage,
                                 current_appraisal, decide, full_text_records, fulltext_states,
                                 mark_fulltext, notes_for, undo_last)
from screeners.ranking_process import RankingProcess, Reply

RankFn = Callable[[Store, str, str, Sequence[int]], Sequence[int]]
EstimateFn = Callable[[Store, str], "float | None"]

STARTUP_WAIT = 1.0  # seconds the first card waits for the first ranking

# --- order ---------------------------------------------------------------------------


def _prioritiser():
    try:
        return importlib.import_module("screeners.prioritise")
    except ModuleNotFoundError as exc:
        if exc.name == "screeners.prioritise":
            return None  # no prioritiser installed: plain id order
        raise


def id_order(store: Store, stage: str, reviewer: str, candidates: Sequence[int]) -> list[int]:
    """The store's own order, for protocols that screen unranked."""
    return sorted(candidates)


def rank_records(store: Store, stage: str, reviewer: str, candidates: Sequence[int]) -> list[int]:
    """`candidates` most-likely-relevant first (plain id order without a prioritiser)."""
    module = _prioritiser()
    ordered = sorted(candidates)
    if module is None or not ordered:
        return ordered
    wanted = set(ordered)
    ranked = [rid for rid, _score in module.rank(store, stage, reviewer, ordered) if rid in wanted]
    seen = set(ranked)
    ranked += [rid for rid in ordered if rid not in seen]
    if hasattr(module, "remember_order"):
        module.remember_order(store, stage, reviewer, ranked)
    return ranked


def remembered_order(store: Store, stage: str, reviewer: str) -> list[int]:
    """The top of `reviewer`'s last ranking at `stage`, where the prioritiser keeps one."""
    module = _prioritiser()
    if module is None or not hasattr(module, "remembered_order"):
        return []
    try:
        return list(module.remembered_order(store, stage, reviewer))
    except Exception:  # noqa: BLE001 - a start in id order is the fallback
        return []


def relevant_left(store: Store, stage: str) -> float | None:
    """The prioritiser's estimate of relevant records not yet found, when it has one."""
    module = _prioritiser()
    if module is None or not hasattr(module, "estimate_relevant_left"):
        return None
    return module.estimate_relevant_left(store, stage)


# --- queue ---------------------------------------------------------------------------


_MEMO: "weakref.WeakKeyDictionary[Store, dict]" = weakref.WeakKeyDictionary()

#: how many events logged since a derivation are read to bring it up to date;
#: past that (an import of a decisions file, say) it is derived again
_CATCH_UP = 1000

_Update = Callable[[object, list[dict]], object]


@dataclass(frozen=True)
class _Kept:
    version: tuple[int, int]  # Store.version() when last confirmed
    seq: int  # the log's last event then
    records: tuple  # Store.records_signature() and the last source row then
    value: object


def _log_state(store: Store) -> tuple[int, tuple]:
    """(the log's last seq, the records' signature and the last source row), read once
    per version of the store."""
    version = store.version()
    memo = _MEMO.setdefault(store, {})
    hit = memo.get("state")
    if hit is not None and hit[0] == version:
        return hit[1]
    with store.read_snapshot():
        # a search's sources decide whether its records stand (a removed search's alone
        # do not): an import of records already present adds sources and no record
        state = (store.conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0,
                 (*store.records_signature(),
                  store.conn.execute("SELECT max(id) FROM sources").fetchone()[0]))
    memo["state"] = (version, state)
    return state


#: the latest derivation for a store's file, whichever connection made it: the
#: ranking thread's connection derives the same queue as the sitting's (an entry
#: lives as long as a connection's memo holds it)
_SHARED: "weakref.WeakValueDictionary[tuple, _Kept]" = weakref.WeakValueDictionary()
_SHARED_LOCK = threading.Lock()


def _memoised(store: Store, key: tuple, compute: Callable[[], object],
              update: _Update | None = None):
    """`compute()`, reused until the log or the records change: one key press draws
    the card, the progress line and the next record from the same derivation.

    When only events were logged since (the log is append-only), `update(value,
    new events)` brings the kept value up to date from those events alone (a key
    press logs one decision; deriving the queue again from the whole store costs
    a good part of a second on a large one); it returns None when it cannot, and
    the value is derived afresh. Values are never changed once kept: another
    connection to the same file may be reading them."""
    # nothing written through this connection, nothing committed by another one:
    # the store is as it was, without asking it
    version = store.version()
    memo = _MEMO.setdefault(store, {})
    hit: _Kept | None = memo.get(key)
    if hit is not None and hit.version == version:
        return hit.value
    seq, records = _log_state(store)
    # what a transaction under way sees may yet be rolled back: not for other connections
    shared_key = (None if store.path is None or store.conn.in_transaction
                  else (str(store.path.resolve()), key))
    with _SHARED_LOCK:
        other = None if shared_key is None else _SHARED.get(shared_key)
    # the most recent derivation of this state of the records, not past this log
    base = max((k for k in (hit, other) if k is not None and k.records == records
                and k.seq <= seq), key=lambda k: k.seq, default=None)
    value = None
    if base is not None:
        if base.seq == seq:
            value = base.value
        elif update is not None and seq - base.seq <= _CATCH_UP:
            value = update(base.value, store.events("seq > ? AND seq <= ?", [base.seq, seq]))
    if value is None:
        value = compute()
    kept = memo[key] = _Kept(version, seq, records, value)
    if shared_key is not None:
        with _SHARED_LOCK:
            other = _SHARED.get(shared_key)
            if other is None or other.seq <= seq:
                _SHARED[shared_key] = kept
    return value


@dataclass(frozen=True)
class _Population:
    ids: tuple[int, ...]  # the records to screen, in id order
    waiting: tuple[int, ...]  # full text: those whose report is not in hand yet
    members: frozenset[int]  # `ids` again, to ask of one record


def _population_update(store: Store, stage: str) -> _Update:
    """Keeps a stage's population when the events logged since cannot change who takes
    part in it: notes and scores, decisions and resolutions (at full text, those at
    full text: the title-abstract ones decide which reports reach it), and undos of
    those."""
    def harmless(kind: str, at: str | None) -> bool:
        return kind in ("note", "appraisal") or (
            kind in ("decision", "resolution") and (stage != FULL_TEXT or at == FULL_TEXT))

    def update(value: object, events: list[dict]) -> object:
        undone = [e["undoes"] for e in events if e["kind"] == "undo"]
        if not all(harmless(e["kind"], e["stage"]) for e in events if e["kind"] != "undo"):
            return None
        if undone:
            targets = store.conn.execute(
                f"SELECT kind, stage FROM events WHERE id IN ({','.join('?' * len(undone))})",
                undone).fetchall()
            if len(targets) != len(set(undone)) or not all(harmless(*t) for t in targets):
                return None
        return value
    return update


def _population_of(store: Store, reviewer: str, stage: str) -> _Population:
    check_stage(stage)
    value = _memoised(store, ("population", reviewer, stage),
                      lambda: _population(store, reviewer, stage),
                      _population_update(store, stage))
    assert isinstance(value, _Population)
    return value


def population(store: Store, reviewer: str, stage: str) -> list[int]:
    """The records `reviewer` is to screen at `stage`: their check subsample if they
    have one, otherwise every record of the stage; never those a stopping rule
    excluded. At full text only reports marked retrieved: the others wait
    (`awaiting_retrieval`), and those that could not be retrieved never come."""
    return list(_population_of(store, reviewer, stage).ids)


def awaiting_retrieval(store: Store, reviewer: str, stage: str) -> int:
    """How many of `reviewer`'s full-text records wait for their report to be marked
    retrieved (0 at title-abstract)."""
    check_stage(stage)
    if stage != FULL_TEXT:
        return 0
    return len(_population_of(store, reviewer, stage).waiting)


def _population(store: Store, reviewer: str, stage: str) -> _Population:
    """The records to screen and the records waiting for retrieval, in id order."""
    ids = full_text_records(store) if stage == FULL_TEXT else stage_records(store, stage)
    assigned = assigned_records(store, reviewer, stage)
    if assigned:
        ids = [rid for rid in ids if rid in assigned]
    stopped = automated_records(store, stage)
    if stopped:
        ids = [rid for rid in ids if rid not in stopped]
    if stage != FULL_TEXT:
        return _Population(tuple(ids), (), frozenset(ids))
    retrieval = fulltext_states(store)
    ready = tuple(rid for rid in ids if retrieval.get(rid) == "retrieved")
    return _Population(ready, tuple(rid for rid in ids if retrieval.get(rid) in (None, "sought")),
                       frozenset(ready))


def _own_update(reviewer: str, stage: str, store: Store) -> _Update:
    """Brings `reviewer`'s standing decisions up to date with the decisions they logged
    since (the latest by time, then id, stands, as `effective_decisions` has it); an
    undo, a merge or a decision an earlier undo names means deriving them again."""
    def update(value: object, events: list[dict]) -> object:
        if any(e["kind"] in ("undo", "unmerge", "merge") for e in events):
            return None
        mine = [e for e in events if e["kind"] == "decision" and e["stage"] == stage
                and e["reviewer"] == reviewer]
        if not mine:
            return value
        ids = [e["id"] for e in mine]
        if store.conn.execute(
                f"SELECT 1 FROM events WHERE kind = 'undo' AND undoes IN "
                f"({','.join('?' * len(ids))}) LIMIT 1", ids).fetchone():
            return None  # logs merged from copies: the undo can come before its decision
        assert isinstance(value, dict)
        canon = store.canonical_map()
        value = dict(value)  # the kept one may be another connection's too
        for e in mine:
            rid = canon.get(e["record_id"], e["record_id"])
            d = Decision(e["id"], rid, e["reviewer"], e["value"], e["reason"], e["note"],
                         e["ts"])
            kept = value.get(rid)
            if kept is None or (d.ts, d.event_id) > (kept.ts, kept.event_id):
                value[rid] = d
        return value
    return update


def _own(store: Store, reviewer: str, stage: str) -> dict[int, Decision]:
    """record id -> `reviewer`'s standing decision at `stage` (the memo's own: not to change)."""
    value = _memoised(store, ("own", reviewer, stage), lambda: {
        rid: d for (rid, _), d in effective_decisions(store, stage, reviewer).items()},
        _own_update(reviewer, stage, store))
    assert isinstance(value, dict)
    return value


def own_decisions(store: Store, reviewer: str, stage: str) -> dict[int, str]:
    """record id -> `reviewer`'s standing decision at `stage` (theirs alone)."""
    return {rid: d.value for rid, d in _own(store, reviewer, stage).items()}


def pending(store: Store, reviewer: str, stage: str) -> list[int]:
    """Records in `reviewer`'s population that they have not decided, in id order."""
    mine = _own(store, reviewer, stage)
    return list(filterfalse(mine.__contains__, _population_of(store, reviewer, stage).ids))


# --- card and progress ----------------------------------------------------------------


@dataclass(frozen=True)
class Card:
    """What the reviewer sees of one record: never another reviewer's decision."""

    record_id: int
    title: str
    authors: tuple[str, ...]
    year: int | None
    journal: str | None
    abstract: str
    keywords: tuple[str, ...]
    provenance: tuple[str, ...]
    fulltext: str | None = None
    my_notes: tuple[str, ...] = ()
    my_scores: Mapping[str, int] = field(default_factory=dict)
    #: DOI, PMID, PMCID as the record gives them, and where to open it (PubMed, doi.org)
    identifiers: Mapping[str, str] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[str, ...] = ()  # the services and files that found it
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Progress:
    screened: int
    total: int
    includes: int
    relevant_left: float | None
    awaiting_retrieval: int = 0  # full text: records whose report is not in hand yet

    @property
    def text(self) -> str:
        left = "?" if self.relevant_left is None else f"{self.relevant_left:.1f}"
        waiting = (f" · {self.awaiting_retrieval} wait for retrieval"
                   if self.awaiting_retrieval else "")
        return (f"screened {self.screened}/{self.total} · includes {self.includes} · "
                f"estimated relevant left {left}{waiting}")


def _retrieval_line(got: Retrieval | None) -> str | None:
    """The card's full-text line: the state, where the copy came from and its file
    (what `o` opens), or why it could not be had."""
    if got is None or got.state is None:
        return None
    parts = [got.state.replace("-", " ")]
    if got.source:
        parts.append(f"from {got.source}")
    if got.reason:
        parts.append(f"({got.reason})")
    line = " ".join(parts)
    return line + (f" · file {got.file}" if got.file else "")


def card(store: Store, record_id: int, reviewer: str, stage: str) -> Card:
    # the screen draws the card again for each redraw: kept until anything is written
    version = store.version()
    memo = _MEMO.setdefault(store, {})
    hit = memo.get("card")
    if hit is not None and hit[0] == (version, record_id, reviewer, stage):
        return hit[1]
    made = _card(store, record_id, reviewer, stage)
    memo["card"] = ((version, record_id, reviewer, stage), made)
    return made


def _card(store: Store, record_id: int, reviewer: str, stage: str) -> Card:
    rec = store.get_record(record_id)
    ft = _retrieval_line(retrievals(store).get(record_id)) if stage == FULL_TEXT else None
    notes = tuple(n["note"] for n in notes_for(store, record_id, reviewer))
    scores = current_appraisal(store, record_id, reviewer, stage) if stage == FULL_TEXT else {}
    ids = {k: v for k, v in (("DOI", rec.doi), ("PMID", rec.pmid), ("PMCID", rec.pmcid)) if v}
    sources = sources_of(store, record_id)
    return Card(record_id, rec.title or "(no title)", tuple(rec.authors), rec.year, rec.journal,
                rec.abstract or "(no abstract)", tuple(rec.keywords),
                tuple(dict.fromkeys(s.line for s in sources)), ft, notes, scores, ids,
                record_links(rec), source_names(sources), tags_of(store, record_id))


def progress(store: Store, reviewer: str, stage: str, left: float | None = None) -> Progress:
    pop = _population_of(store, reviewer, stage)
    members = pop.members
    done = [d.value for rid, d in _own(store, reviewer, stage).items() if rid in members]
    return Progress(len(done), len(pop.ids), done.count("include"), left, len(pop.waiting))


# --- background ranking ------------------------------------------------------------------


PROCESS_FROM = 10_000  # records from which a store's rankings are computed in a process


def _own_functions(module, names: Sequence[str]) -> bool:
    """Whether `module`'s functions `names` are those its source defines, so a
    fresh interpreter importing it computes what this one would."""
    if getattr(module, "__file__", None) is None:
        return False
    for name in names:
        fn = getattr(module, name, None)
        if fn is not None and getattr(fn, "__module__", None) != module.__name__:
            return False
    return hasattr(module, "rank")


class _Ranking:
    """Computes a reviewer's ranking on one connection: the queue, the order, the
    estimate, and whether the last ranking still stands."""

    def __init__(self, store: Store, reviewer: str, stage: str, rank_fn: RankFn,
                 estimate_fn: EstimateFn):
        self.store, self.reviewer, self.stage = store, reviewer, stage
        self.rank_fn, self.estimate_fn = rank_fn, estimate_fn

    def stands(self, since: int) -> bool:
        """Whether the prioritiser's last ranking still stands after `since` more
        decisions (a large store refits in batches of decisions): then the order
        at hand is kept, as the re-rank would give it, without deriving the queue
        and labels again."""
        if self.rank_fn is not rank_records:
            return False
        module = _prioritiser()
        if module is None or not hasattr(module, "ranking_stands"):
            return False
        return bool(module.ranking_stands(self.store, self.stage, self.reviewer, since))

    def compute(self) -> tuple[list[int], float | None]:
        todo = pending(self.store, self.reviewer, self.stage)
        order = list(self.rank_fn(self.store, self.stage, self.reviewer, todo))
        return order, self.estimate_fn(self.store, self.stage)


class _Worker:
    """The ranking process's side (`screeners.ranking_process`): the store opened
    by the process itself, only to read, ranked on request."""

    def __init__(self, path: str, reviewer: str, stage: str):
        self._store = open_store(path, create=False)
        self._store.conn.execute("PRAGMA query_only = ON")
        self._ranking = _Ranking(self._store, reviewer, stage, rank_records, relevant_left)
        self._computed = 0

    def __call__(self, since: int) -> tuple[str, list[int] | None, float | None, str]:
        """("ranked", order, estimate, "") or ("stands", ...) or ("failed", ..., why)."""
        if self._computed and self._ranking.stands(since):
            return "stands", None, None, ""
        try:
            order, left = self._ranking.compute()
        except Exception as exc:  # noqa: BLE001 - the sitting keeps its last order
            return "failed", None, None, str(exc)
        self._computed += 1
        return "ranked", order, left, ""

    def close(self) -> None:
        self._store.close()


def ranking_worker(path: str, reviewer: str, stage: str) -> _Worker:
    return _Worker(path, reviewer, stage)


class _Ranker:
    """Holds the latest ranking; recomputes it off the reviewer's path.

    A large store on disk (`PROCESS_FROM` records) ranked by the prioritiser is
    ranked in a process of its own (`screeners.ranking_process`): a fit holds
    no interpreter the key presses need. Where no process can be started, or
    it stops, and for smaller stores or other ranking functions, a thread with
    its own connection ranks (a SQLite connection must not be shared by two
    threads at once). Either computes the first ranking too: the sitting waits
    for it at most `STARTUP_WAIT` seconds, then starts from the reviewer's last
    ranking kept beside the store (or id order) and takes the new one when it
    is ready, so a large store shows its first card at once. An in-memory
    store is ranked in place, synchronously.
    """

    def __init__(self, store: Store, reviewer: str, stage: str, rank_fn: RankFn,
                 estimate_fn: EstimateFn, background: bool):
        self._store, self._reviewer, self._stage = store, reviewer, stage
        self._rank_fn, self._estimate_fn = rank_fn, estimate_fn
        self._lock = threading.Lock()
        self._wanted = threading.Event()
        self._stopping = False
        self.order: list[int] = []
        self.left: float | None = None
        self.generation = 0  # rankings computed
        self.handled = 0  # requests for a ranking answered: computed, or the last one stands
        self._since = 0  # decisions since the last ranking was computed
        self.failure: str | None = None
        self._thread: threading.Thread | None = None
        self._process: RankingProcess | None = None
        self._ranked = threading.Event()  # set once a ranking was computed or failed
        if background and store.path is not None:
            if self._in_a_process(store):
                self._process = RankingProcess.start(f"{__name__}:ranking_worker", store.path,
                                                     reviewer, stage, self._received,
                                                     self._lost)
                if self._process is not None:
                    self._process.listen()
            if self._process is None:
                self._start_thread()
        if self._process is None and self._thread is None:
            self._recompute(store)  # the sitting starts from a real ranking
            return
        if not self._ranked.wait(STARTUP_WAIT):
            with self._lock:
                if not self.generation:
                    self.order = remembered_order(store, stage, reviewer) \
                        if rank_fn is rank_records else []

    @property
    def background(self) -> bool:
        """Whether rankings are computed off the reviewer's path (a process or a thread)."""
        return self._process is not None or self._thread is not None

    @property
    def process(self) -> RankingProcess | None:
        return self._process

    def _in_a_process(self, store: Store) -> bool:
        if self._rank_fn is not rank_records or self._estimate_fn is not relevant_left:
            return False
        module = _prioritiser()
        if module is None or not _own_functions(module, (
                "rank", "estimate_relevant_left", "remember_order", "ranking_stands")):
            return False  # a stand-in another interpreter would not have
        try:
            return store.records_signature()[0] >= PROCESS_FROM
        except Exception:  # noqa: BLE001 - a thread is the fallback
            return False

    def _start_thread(self) -> bool:
        """Rank on a thread with its own connection; False if none can be opened
        (e.g. a store created moments ago: rank in place)."""
        assert self._store.path is not None
        try:
            own = open_store(self._store.path, create=False)
        except ClusterError:
            return False
        self._wanted.set()
        thread = threading.Thread(target=self._loop, args=(own,), name="cluster-ranker",
                                  daemon=True)
        with self._lock:
            self._thread = thread
        thread.start()
        return True

    # -- the process's answers (on its reader thread)
    def _received(self, reply: Reply) -> None:
        with self._lock:
            if reply.kind == "ranked":
                self.order, self.left = list(reply.order or ()), reply.left
                self.generation += 1
                self.failure = None
            elif reply.kind == "failed":
                self.failure = self._failed(reply.error)
            self.handled += 1
        self._ranked.set()

    def _lost(self) -> None:
        """The process stopped unasked: a thread ranks from now on."""
        with self._lock:
            self._process = None
        if self._stopping:
            return
        if not self._start_thread():
            self._ranked.set()  # decisions rank in place from now on

    def _failed(self, why: str) -> str:
        return (f"The prioritiser failed ({why}); the last order is kept."
                if self._ranked.is_set() else
                f"The prioritiser failed ({why}); records come in id order.")

    # -- the thread, or in place
    def _compute(self, store: Store) -> None:
        with self._lock:
            self._since = 0
        order, left = _Ranking(store, self._reviewer, self._stage, self._rank_fn,
                               self._estimate_fn).compute()
        with self._lock:
            self.order, self.left = order, left
            self.generation += 1

    def _loop(self, own: Store) -> None:
        """Rank on the thread's own connection, `own`, whenever a ranking is wanted."""
        try:
            while True:
                self._wanted.wait()
                if self._stopping:
                    return
                self._wanted.clear()
                if not self._stands(own):
                    self._recompute(own)
                with self._lock:
                    self.handled += 1
        finally:
            own.close()

    def _stands(self, store: Store) -> bool:
        if not self.generation:
            return False
        with self._lock:
            since = self._since
        return _Ranking(store, self._reviewer, self._stage, self._rank_fn,
                        self._estimate_fn).stands(since)

    def _recompute(self, store: Store) -> None:
        try:
            self._compute(store)
            self.failure = None
        except Exception as exc:  # noqa: BLE001 - a failed re-rank keeps the last order
            self.failure = self._failed(str(exc))
        finally:
            self._ranked.set()

    def refresh(self) -> None:
        with self._lock:
            self._since += 1
            process, thread = self._process, self._thread
        if process is not None:
            # a process that is gone is followed by a thread, which ranks at once
            process.want()
        elif thread is not None:
            self._wanted.set()
        else:
            self._recompute(self._store)

    def snapshot(self) -> tuple[list[int], float | None]:
        """The order (not to be changed: it is replaced whole, never edited) and
        the estimate."""
        with self._lock:
            return self.order, self.left

    def stop(self) -> None:
        self._stopping = True
        with self._lock:
            process = self._process
        if process is not None:
            process.stop()
        self._wanted.set()


class ScreeningSession:
    """A reviewer at a stage: the current record, and the actions on it.

    Every action is committed at once through `screeners.decisions`, so a
    sitting that is quit or killed resumes exactly where it stopped.
    """

    def __init__(self, store: Store, reviewer: str, stage: str, *, background: bool = True,
                 rank_fn: RankFn | None = None, estimate_fn: EstimateFn | None = None):
        check_stage(stage)
        store.require_reviewer(reviewer)
        self.store, self.reviewer, self.stage = store, reviewer, stage
        self.protocol: Protocol = get_protocol(store)
        self._skipped: list[int] = []
        # the queue first, before a ranking thread competes for the interpreter; the
        # store's check before its first write meanwhile, off the first decision's path
        store.check_integrity_soon()
        pending(store, reviewer, stage)
        self._ranker = _Ranker(store, reviewer, stage, rank_fn or rank_records,
                               estimate_fn or relevant_left, background)
        self.current: int | None = None
        self._advance()

    # -- queue
    def _advance(self, prefer: int | None = None) -> None:
        # the first record still to screen in the ranking's order, then in id order,
        # looked for from the front rather than by building the whole queue
        pop = _population_of(self.store, self.reviewer, self.stage)
        members, mine = pop.members, _own(self.store, self.reviewer, self.stage)

        def todo(rid: int) -> bool:
            return rid in members and rid not in mine

        if prefer is not None and todo(prefer):
            self.current = prefer
            return
        order, _ = self._ranker.snapshot()
        skipped = set(self._skipped)
        fresh = next((r for r in order if r not in skipped and todo(r)), None)
        if fresh is None:
            fresh = next((r for r in pop.ids if r not in skipped and todo(r)), None)
        if fresh is not None:
            self.current = fresh
            return
        # only skipped records remain: go round them again, oldest skip first
        self._skipped = [r for r in self._skipped if todo(r)]
        self.current = self._skipped.pop(0) if self._skipped else None

    def card(self) -> Card | None:
        return None if self.current is None else card(self.store, self.current, self.reviewer,
                                                      self.stage)

    @property
    def ranking_problem(self) -> str | None:
        """Why the order is not the prioritiser's, when it failed; screening goes on."""
        return self._ranker.failure

    def progress(self) -> Progress:
        _, left = self._ranker.snapshot()
        return progress(self.store, self.reviewer, self.stage, left)

    # -- actions
    def decide(self, value: str, reason: str | None = None, note: str | None = None
               ) -> DecisionResult:
        if self.current is None:
            raise DecisionError("Nothing left to screen.")
        result = decide(self.store, self.current, self.reviewer, self.stage, value, reason, note)
        self._ranker.refresh()
        self._advance()
        return result

    def skip(self) -> None:
        if self.current is not None:
            self._skipped.append(self.current)
            self._advance()

    def undo(self) -> UndoResult:
        result = undo_last(self.store, self.reviewer, self.stage)
        self._ranker.refresh()
        self._advance(prefer=result.record_id)
        return result

    def note(self, text: str) -> str:
        if self.current is None:
            raise DecisionError("There is no record to attach a note to.")
        return add_note(self.store, self.current, self.reviewer, text, self.stage)

    def score(self, relevance: int | None = None, rigour: int | None = None) -> Appraisal:
        if self.stage != FULL_TEXT:
            raise DecisionError("Relevance and rigour are scored at full text.")
        if self.current is None:
            raise DecisionError("There is no record to score.")
        return appraise(self.store, self.current, self.reviewer, relevance, rigour, self.stage)

    # -- full texts
    def full_text_target(self) -> str:
        """What `o` opens for the current record: its file in the store's full-text
        folder, else its best known link (a PDF, a landing page, the DOI)."""
        if self.current is None:
            raise DecisionError("There is no record to open.")
        got = retrievals(self.store).get(self.current)
        if got is not None and got.file and self.store.path is not None:
            path = fulltext_dir(self.store.path) / got.file
            if path.is_file():
                return str(path)
        located = sorted((x for x in (got.locations if got else ()) if x.get("url")),
                         key=lambda x: x.get("kind") == "landing")
        if got is not None and got.url:
            return got.url
        if located:
            return str(located[0]["url"])
        # no copy located: the record's own pages, those likeliest to lead to a full text first
        links = record_links(self.store.get_record(self.current))
        for label in ("PMC", "doi.org", "URL", "PubMed", "OpenAlex"):
            if label in links:
                return links[label]
        raise DecisionError(f"Record {self.current} has no full text in hand and no link: "
                            f"attach one with `cluster fulltext attach {self.current} FILE`.")

    def not_retrieved(self, reason: str) -> str:
        """Mark the current report as not retrieved (it leaves the queue); returns the event id."""
        if self.current is None:
            raise DecisionError("There is no record to mark.")
        eid = mark_fulltext(self.store, self.current, "not-retrieved", reason, self.reviewer)
        self._ranker.refresh()
        self._advance()
        return eid

    def close(self) -> None:
        self._ranker.stop()

