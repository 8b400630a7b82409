"""Fuzzy deduplication of bibliographic records that loses no study.

The pipeline has one module per stage, each taking and returning plain data:
`prepare` (normalise) -> `block` (candidate pairs) -> `match` (score pairs)
-> `cluster` (guarded connected components) -> `merge` (canonical record and
filled fields). `deduplicate()` runs it on any sequence of `Record`s or dicts,
with no store; `cluster.dedup.apply` is the thin layer that reads a review
store, writes `duplicate_of` and the merge events, and undoes merges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Mapping, Protocol, Sequence

from base.record import Record
from cluster.dedup.block import BLOCKING_RULES, BlockingRule, candidate_pairs
from cluster.dedup.cluster import build_clusters
from cluster.dedup.match import DIFFERENT, MAYBE, SAME, PairScore, score_pair
from cluster.dedup.merge import choose_canonical, fill_missing
from cluster.dedup.prepare import Prepared, PreparedCache, prepare_one

Progress = Callable[[str, int, int], None]
#: the records at some indices, by index: what clustering asks for once the clusters are known
ItemsOf = Callable[[Sequence[int]], Mapping[int, Record | Mapping[str, Any]]]


class KeySource(Protocol):
    """Where `deduplicate` gets each record's keys, such as a `PreparedCache`."""

    def prepare(self, item: Record | Mapping[str, Any], key: Any) -> Prepared: ...


__all__ = ["Cluster", "DedupResult", "ItemsOf", "KeySource", "PairScore", "PreparedCache", "deduplicate",
           "deduplicate_prepared", "SAME",
           "MAYBE", "DIFFERENT", "BLOCKING_RULES"]


@dataclass(frozen=True)
class Cluster:
    """Indices (into the input) of one work's records; `canonical` stands for them all."""

    canonical: int
    members: tuple[int, ...]
    score: float
    rule: str
    filled: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DedupResult:
    n_records: int
    n_pairs: int
    clusters: tuple[Cluster, ...]
    review: tuple[PairScore, ...]   # grey-zone pairs, left for a person

    @property
    def n_duplicates(self) -> int:
        return sum(len(c.members) - 1 for c in self.clusters)


def deduplicate(items: Sequence[Record | Mapping[str, Any]], *,
                new: Collection[int] | None = None,
                preferred: Collection[int] = (),
                cannot_link: Collection[tuple[int, int]] = (),
                rules: Sequence[BlockingRule] = BLOCKING_RULES,
                cache: KeySource | None = None,
                progress: Progress | None = None) -> DedupResult:
    """Find the duplicate clusters among `items` (indices into `items` throughout).

    `new`: only pairs involving these indices are compared (incremental runs).
    `preferred`: indices to keep as canonical when they are in a cluster.
    `cannot_link`: index pairs a person said are different works.
    `cache`: keys prepared by an earlier run in this process (a `PreparedCache`);
    records it already holds are not normalised again (it gains the records of this run).
    """
    n = len(items)
    prepared: list[Prepared] = []
    step = max(1, n // 100)
    for i, item in enumerate(items):
        prepared.append(cache.prepare(item, i) if cache is not None else prepare_one(item, i))
        if progress and (i + 1) % step == 0:
            progress("prepare", i + 1, n)
    if progress:
        progress("prepare", n, n)
    return deduplicate_prepared(prepared, lambda wanted: {i: items[i] for i in wanted}, new=new,
                                preferred=preferred, cannot_link=cannot_link, rules=rules,
                                progress=progress)


def deduplicate_prepared(prepared: Sequence[Prepared], items_of: ItemsOf, *,
                         new: Collection[int] | None = None,
                         preferred: Collection[int] = (),
                         cannot_link: Collection[tuple[int, int]] = (),
                         rules: Sequence[BlockingRule] = BLOCKING_RULES,
                         progress: Progress | None = None) -> DedupResult:
    """`deduplicate` on keys already prepared, `prepared[i]` standing for record i.

    Blocking, matching and clustering need the keys alone; the records
    themselves are asked for (`items_of(indices)`, index -> record) only for the
    members of the clusters found, to choose each canonical record and fill it:
    a store of a million records need not be held whole.
    """
    pairs = candidate_pairs(prepared, new=new, rules=rules, progress=progress)
    links: list[PairScore] = []
    review: list[PairScore] = []
    total = len(pairs)
    step = max(1, total // 100)
    for k, (a, b) in enumerate(pairs):
        s = score_pair(prepared[a], prepared[b], a, b)
        if s.label == SAME:
            links.append(s)
        elif s.label == MAYBE:
            review.append(s)
        if progress and (k + 1) % step == 0:
            progress("match", k + 1, total)
    if progress:
        progress("match", total, total)
    del pairs
    groups = build_clusters(prepared, links, cannot_link=cannot_link)
    records = items_of(sorted(i for members, _, _ in groups for i in members))
    favoured = set(preferred)
    clusters = []
    for members, score, rule in groups:
        # positions within the cluster keep the order of the indices, so ties fall as before
        local = [records[i] for i in members]
        at = range(len(members))
        canonical = choose_canonical(local, at, preferred=[k for k in at if members[k] in favoured])
        clusters.append(Cluster(members[canonical], tuple(members), score, rule,
                                fill_missing(local, canonical, at)))
    clusters.sort(key=lambda c: c.members)
    where = {i: c.canonical for c in clusters for i in c.members}
    # a grey pair already joined through stronger links needs no decision
    review = [s for s in review if where.get(s.a, s.a) != where.get(s.b, s.b) or s.a not in where]
    review.sort(key=lambda s: (-s.score, s.a, s.b))
    if progress:
        progress("cluster", 1, 1)
    return DedupResult(len(prepared), total, tuple(clusters), tuple(review))
