"""Stage 4 of deduplication: join matched pairs into clusters without chaining.

Plain connected components let one weak link glue two different works into a
single cluster (A~B, B~C, but A is not C). Links are therefore added strongest
first, and two clusters are joined only when no record of one is vetoed
against any record of the other (two different DOIs, an erratum and its
article, years two apart...) and no person has said they differ.
"""

from __future__ import annotations

from typing import Collection, Iterable, Sequence

from cluster.dedup.match import PairScore, veto
from cluster.dedup.prepare import Prepared

#: no cluster grows beyond this: real duplicate sets are small (the labelled sets peak at 9)
MAX_CLUSTER = 25


def build_clusters(prepared: Sequence[Prepared], links: Iterable[PairScore], *,
                   cannot_link: Collection[tuple[int, int]] = (),
                   ) -> list[tuple[list[int], float, str]]:
    """Clusters of two or more indices, each with its weakest accepted link score and rule."""
    parent = list(range(len(prepared)))
    members: dict[int, list[int]] = {}
    weakest: dict[int, tuple[float, str]] = {}
    forbidden = {frozenset(p) for p in cannot_link}

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for link in sorted(links, key=lambda s: (-s.score, s.a, s.b)):
        ra, rb = find(link.a), find(link.b)
        if ra == rb:
            continue
        ma, mb = members.get(ra, [ra]), members.get(rb, [rb])
        if len(ma) + len(mb) > MAX_CLUSTER:
            continue
        if any(frozenset((x, y)) in forbidden or veto(prepared[x], prepared[y])
               for x in ma for y in mb if (x, y) != (link.a, link.b)):
            continue
        if frozenset((link.a, link.b)) in forbidden:
            continue
        if len(ma) < len(mb):
            ra, rb, ma, mb = rb, ra, mb, ma
        parent[rb] = ra
        members[ra] = ma + mb
        members.pop(rb, None)
        prev = [w for w in (weakest.pop(ra, None), weakest.pop(rb, None)) if w]
        weakest[ra] = min(prev + [(link.score, link.rule)])
    return [(sorted(m), weakest[root][0], weakest[root][1]) for root, m in members.items()]
