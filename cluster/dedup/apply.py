"""The store layer of deduplication: run the pipeline on a review store and record the outcome.

A thin wrapper around `cluster.dedup.deduplicate_prepared`: it reads the records
that still stand for a work one at a time and keeps only their keys (the few
records the clusters need are read again), runs the pipeline (only the records added since the
last run are blocked against the rest), and writes, in one transaction, each
cluster as `records.duplicate_of` on its non-canonical members plus ONE
`merge` event. Nothing is deleted and `sources` rows stay on their records, so
PRISMA can still count records per source and duplicates removed. A merge is
undone like any event (`db.undo`: an `undo` event, and the members stand apart
again; older logs have `unmerge` events), and the merges that still stand are
`db.state.standing_merges`. Grey-zone pairs wait in the `meta` table until a
person decides them (`pair_decision` events, or a `merge` with rule "manual"
logged with its verdict as one batch).
"""

from __future__ import annotations

import json
import uuid
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from base.errors import ClusterError
from base.record import Record
from cluster.dedup import Cluster, PreparedCache, deduplicate_prepared
from cluster.dedup.keys import StoredKeys, scan
from cluster.dedup.prepare import Prepared
from cluster.dedup.merge import FILLABLE, choose_canonical, fill_missing
from db.state import standing_events, standing_merges, undone_ids, undone_merges
from db.store import Store, new_id, record_to_row, row_to_record
from db.undo import undo_event

Progress = Callable[[str, int, int], None]

META_LAST = "dedup_last_record_id"
META_PENDING = "dedup_pending_pairs"
DECISIONS = ("same", "different")
#: records read back per query once the clusters are known (SQLite allows 999 parameters)
READ_BATCH = 500


class DedupError(ClusterError):
    """A deduplication request that cannot be carried out; the message says what to do."""


@dataclass(frozen=True)
class DedupSummary:
    """What one run did; `records_in` counts the records that stood for a work before it."""

    records_in: int
    new_records: int
    pairs_compared: int
    clusters: int
    duplicates_marked: int
    pairs_for_review: int
    records_without_title: int
    merge_ids: tuple[str, ...]
    records_prepared: int = 0   # keys not found in the store: normalised in this run
    records_reused: int = 0     # keys read back from the store, as an earlier run left them

    def to_dict(self) -> dict[str, Any]:
        return {"records_in": self.records_in, "new_records": self.new_records,
                "pairs_compared": self.pairs_compared, "clusters": self.clusters,
                "duplicates_marked": self.duplicates_marked,
                "pairs_for_review": self.pairs_for_review,
                "records_without_title": self.records_without_title,
                "merge_ids": list(self.merge_ids),
                "records_prepared": self.records_prepared, "records_reused": self.records_reused}


@dataclass(frozen=True)
class PendingPair:
    a: int
    b: int
    score: float
    rule: str
    reason: str = ""   # which fields disagree, or what is missing to decide


# --- reading the log ---------------------------------------------------------------


def _cannot_link(store: Store) -> set[frozenset[int]]:
    """Record pairs a person called different, and the members of undone merges."""
    out: set[frozenset[int]] = set()
    for e in standing_events(store, "kind = 'pair_decision'"):
        d = e["data"]
        if e["value"] == "different":
            out.add(frozenset((d["a"], d["b"])))
    for e in undone_merges(store):
        d = e["data"]
        for m in d.get("members", []):
            if m != d.get("canonical"):
                out.add(frozenset((d.get("canonical"), m)))
    return out


def _decided(store: Store) -> set[frozenset[int]]:
    return {frozenset((e["data"]["a"], e["data"]["b"]))
            for e in standing_events(store, "kind = 'pair_decision'")}


def _stored_pending(store: Store) -> list[PendingPair]:
    raw = json.loads(store.get_meta(META_PENDING, "[]") or "[]")
    # pairs stored before reasons were kept have four values
    return [PendingPair(int(a), int(b), float(s), str(r), str(rest[0]) if rest else "")
            for a, b, s, r, *rest in raw]


def _save_pending(store: Store, pairs: Iterable[PendingPair]) -> None:
    store.set_meta(META_PENDING, json.dumps([[p.a, p.b, p.score, p.rule, p.reason] for p in pairs]))


def pending_pairs(store: Store) -> list[PendingPair]:
    """Grey-zone pairs still waiting for a person, between records that still stand apart."""
    decided = _decided(store)
    out, seen = [], set()
    for p in _stored_pending(store):
        try:
            a, b = store.canonical_id(p.a), store.canonical_id(p.b)
        except ClusterError:
            continue
        key = frozenset((a, b))
        if a == b or key in decided or frozenset((p.a, p.b)) in decided or key in seen:
            continue
        seen.add(key)
        out.append(PendingPair(min(a, b), max(a, b), p.score, p.rule, p.reason))
    return out


# --- writing -------------------------------------------------------------------------


def _write_merges(store: Store, ids: Sequence[int], items: Mapping[int, Any],
                  clusters: Sequence[Cluster], rule: str | None = None, reviewer: str | None = None,
                  batch: str | None = None) -> list[str]:
    """Write the clusters (indices into `ids`; `items` holds their records by index): each
    canonical record filled, its members marked, and one `merge` event per cluster."""
    merge_ids: list[str] = []
    events: list[dict[str, Any]] = []
    duplicates: list[tuple[int, int]] = []
    for cluster in clusters:
        canonical = ids[cluster.canonical]
        members = [ids[i] for i in cluster.members]
        before: dict[str, Any] = {}
        if cluster.filled:
            record = items[cluster.canonical]
            before_row = record_to_row(record)
            before = {f: before_row[f] for f in cluster.filled}
            store.update_record(canonical, record.replace(**dict(cluster.filled)))
        duplicates += [(canonical, m) for m in members if m != canonical]
        merge_id = str(uuid.uuid4())
        merge_ids.append(merge_id)
        events.append({"record_id": canonical, "reviewer": reviewer, "event_id": batch, "data": {
            "merge_id": merge_id, "canonical": canonical, "members": members,
            "score": cluster.score, "rule": rule or cluster.rule,
            "filled": sorted(cluster.filled), "before": before, **({"batch": batch} if batch else {}),
        }})
    store.db.conn.executemany("UPDATE records SET duplicate_of = ? WHERE id = ?", duplicates)
    store.log_events("merge", events)
    return merge_ids


def _merged_canonicals(store: Store) -> set[int]:
    return {r[0] for r in store.db.execute(
        "SELECT DISTINCT duplicate_of FROM records WHERE duplicate_of IS NOT NULL")}


def run_dedup(store: Store, *, cache: PreparedCache | None = None, persist_keys: bool = True,
              progress: Progress | None = None) -> DedupSummary:
    """Deduplicate the store: merge clear duplicates, keep grey pairs for review.

    Only records added since the last run (ids above the one remembered in
    `meta`) are compared, against each other and against every record that
    still stands for a work; a second run with nothing new merges nothing.
    The normalised keys of the records persist in the store (`dedup_keys`,
    written in the run's transaction), so a later run, in any process,
    normalises only the records that are new or whose fields changed;
    `persist_keys=False` neither reads nor writes them. A `cache` kept by a
    long-running caller spares re-normalising the records an earlier run in
    the same process already prepared.
    """
    while True:
        summary = _dedup_once(store, cache, persist_keys, progress)
        if summary is not None:
            return summary


def _dedup_state(store: Store) -> tuple[str | None, int | None]:
    """What a run's comparisons rest on: the last run's mark and the last merge-type event."""
    row = store.db.execute("SELECT MAX(seq) FROM events WHERE kind IN "
                           "('merge', 'unmerge', 'pair_decision', 'undo')").fetchone()
    return store.get_meta(META_LAST), row[0]


def _dedup_once(store: Store, cache: PreparedCache | None, persist_keys: bool,
                progress: Progress | None) -> DedupSummary | None:
    """One run; None when another run changed the store while this one compared records."""
    state = _dedup_state(store)
    last = int(state[0] or 0)
    if store.db.execute("SELECT 1 FROM records WHERE duplicate_of IS NULL AND id > ? LIMIT 1",
                        [last]).fetchone() is None:
        standing = untitled = 0
        for (title,) in store.db.execute("SELECT title FROM records WHERE duplicate_of IS NULL"):
            standing += 1
            untitled += not (title or "").strip()
        return DedupSummary(standing, 0, 0, 0, 0, len(pending_pairs(store)), untitled, ())
    keys = StoredKeys(fallback=cache) if persist_keys else None
    hits = cache.hits if cache is not None else 0
    # the records are read one at a time and only their keys are kept: the records of the
    # clusters found are read again once known (a few per hundred)
    ids = array("q")
    prepared: list[Prepared] = []
    no_title = 0
    total = store.db.execute("SELECT COUNT(*) FROM records WHERE duplicate_of IS NULL").fetchone()[0]
    step = max(1, total // 100)
    for rid, title, p in scan(store, keys, cache):
        ids.append(rid)
        prepared.append(p)
        no_title += not (title or "").strip()
        if progress and len(ids) % step == 0:
            progress("prepare", len(ids), max(total, len(ids)))
    if progress:
        progress("prepare", len(ids), len(ids))
    n_new = len(ids) - bisect_right(ids, last)

    def position(rid: Any) -> int | None:
        if not isinstance(rid, int):
            return None
        k = bisect_left(ids, rid)
        return k if k < len(ids) and ids[k] == rid else None

    cannot = [(px, py) for x, y in map(tuple, _cannot_link(store))
              for px, py in [(position(x), position(y))] if px is not None and py is not None]
    preferred = [k for k in map(position, _merged_canonicals(store)) if k is not None]
    records: dict[int, Record] = {}

    def records_of(wanted: Sequence[int]) -> dict[int, Record]:
        for start in range(0, len(wanted), READ_BATCH):
            chunk = [ids[i] for i in wanted[start:start + READ_BATCH]]
            # another run may have merged some since they were read (records are never deleted):
            # the state check before writing finds that run, and this one starts again
            for row in store.record_rows(f"id IN ({', '.join('?' * len(chunk))})", chunk,
                                         include_duplicates=True):
                k = position(row["id"])
                if k is not None:
                    records[k] = row_to_record(row)
        return records

    result = deduplicate_prepared(prepared, records_of,
                                  new=None if last == 0 else range(len(ids) - n_new, len(ids)),
                                  preferred=preferred, cannot_link=cannot, progress=progress)
    del prepared
    with store.transaction():
        # the comparisons took time without the write lock: if another run (or a
        # person's pair decision) got in first, they are stale and are done again
        if _dedup_state(store) != state:
            return None
        merge_ids = _write_merges(store, ids, records, result.clusters)
        fresh = [PendingPair(ids[s.a], ids[s.b], s.score, s.rule, s.reason) for s in result.review]
        _save_pending(store, [*_stored_pending(store), *fresh])
        store.set_meta(META_LAST, str(max(ids)))
        if keys is not None:
            keys.save(store, changed=[ids[c.canonical] for c in result.clusters if c.filled],
                      gone=[ids[m] for c in result.clusters for m in c.members if m != c.canonical])
    if keys is not None:
        n_prepared, reused = keys.prepared, keys.reused
    else:
        reused = cache.hits - hits if cache is not None else 0
        n_prepared = len(ids) - reused
    return DedupSummary(len(ids), n_new, result.n_pairs, len(result.clusters),
                        result.n_duplicates, len(pending_pairs(store)), no_title, tuple(merge_ids),
                        n_prepared, reused)


def undo_merge(store: Store, merge_id: str, *, reviewer: str | None = None) -> dict[str, Any]:
    """Split a merge again: its members stand apart, the canonical's own fields come back
    (an `undo` event of the merge, as `cluster undo` writes)."""
    event = next((e for e in store.events("kind = 'merge'")
                  if e["data"].get("merge_id") == merge_id), None)
    if event is None:
        raise DedupError(f"No merge with id {merge_id!r} in this store: "
                         f"`cluster dedup --list` lists the merges that stand.")
    if event["id"] in undone_ids(store):
        raise DedupError(f"Merge {merge_id} was already undone.")
    undo_event(store, event["id"], reviewer)
    data = event["data"]
    canonical = data["canonical"]
    return {"merge_id": merge_id, "canonical": canonical,
            "restored": [m for m in data["members"] if m != canonical]}


@dataclass(frozen=True)
class MergeInfo:
    """A merge that stands: which records it joined, by which rule, who and when."""

    merge_id: str
    event_id: str
    canonical: int
    members: tuple[int, ...]
    score: float | None
    rule: str | None
    reviewer: str | None
    ts: str

    def to_dict(self) -> dict[str, Any]:
        return {"merge_id": self.merge_id, "event_id": self.event_id, "canonical": self.canonical,
                "members": list(self.members), "score": self.score, "rule": self.rule,
                "reviewer": self.reviewer, "ts": self.ts}


def list_merges(store: Store) -> list[MergeInfo]:
    """The merges that still stand, oldest first."""
    out = []
    for e in standing_merges(store):
        d = e["data"]
        score = d.get("score")
        out.append(MergeInfo(str(d.get("merge_id") or e["id"]), e["id"], int(d["canonical"]),
                             tuple(int(m) for m in d.get("members", [])),
                             float(score) if isinstance(score, (int, float)) else None,
                             d.get("rule"), e["reviewer"], e["ts"]))
    return out


def decide_pairs(store: Store, decisions: Iterable[tuple[int, int, str]], *,
                 reviewer: str | None = None) -> dict[str, int]:
    """Record a person's decisions on pairs, all in one transaction.

    "same" merges the two records' works (a `merge` event with rule "manual"
    and the verdict, one batch: one undo splits them and the pair waits again);
    "different" is a `pair_decision` event that keeps later runs from joining them.
    """
    counts = {"same": 0, "different": 0}
    with store.transaction():
        if reviewer is not None:
            store.require_reviewer(reviewer)
        for a, b, value in decisions:
            if value not in DECISIONS:
                raise DedupError(f"Unknown decision {value!r} for pair {a}-{b}: use same or different.")
            ca, cb = store.canonical_id(a), store.canonical_id(b)
            batch = None
            if value == "same" and ca != cb:
                items = [store.get_record(ca), store.get_record(cb)]
                canon = choose_canonical(items, [0, 1], preferred=[
                    i for i, r in enumerate((ca, cb)) if r in _merged_canonicals(store)])
                cluster = Cluster(canon, (0, 1), 1.0, "manual", fill_missing(items, canon, [0, 1]))
                batch = new_id()
                _write_merges(store, [ca, cb], dict(enumerate(items)), [cluster], rule="manual",
                              reviewer=reviewer, batch=batch)
            store.log_event("pair_decision", record_id=a, reviewer=reviewer, value=value,
                            data={"a": a, "b": b, **({"batch": batch} if batch else {})})
            counts[value] += 1
    return counts


FIELDS = ("title", "authors", "year", "journal", "volume", "issue", "pages", "doi", "pmid")


def record_fields(store: Store, record_id: int) -> dict[str, str]:
    """The fields shown to a person deciding a pair, as plain text."""
    r = store.get_record(record_id)
    out = {}
    for f in FIELDS:
        v = getattr(r, f)
        out[f] = "; ".join(v) if isinstance(v, tuple) else ("" if v is None else str(v))
    return out


__all__ = ["DedupError", "DedupSummary", "MergeInfo", "PendingPair", "run_dedup", "undo_merge",
           "decide_pairs", "list_merges",
           "pending_pairs", "record_fields", "FIELDS", "FILLABLE"]
