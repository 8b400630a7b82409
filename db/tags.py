"""Which tags each record carries, as the event log says.

A tag is a `tag` event (record_id, value = the tag); a tag that an undo takes
back no longer stands, and a tag on a record later merged as a duplicate
belongs to its canonical record. `cluster find --tag` writes tags; exports,
`cluster show`, the screening card and `cluster tags` read them from here.
Tags named `study:KEY` are study links (`cluster study link`, read by
`db.flow.study_keys`), not tags a reviewer reads.
"""

from __future__ import annotations

from collections import Counter

from db.provenance import record_family
from db.state import standing_events
from db.store import Store

STUDY_TAG = "study:"


def record_tags(store: Store) -> dict[int, tuple[str, ...]]:
    """canonical record id -> its standing tags, sorted, each once."""
    canon = store.canonical_map()
    out: dict[int, set[str]] = {}
    for e in standing_events(store, "kind = 'tag' AND record_id IS NOT NULL AND value NOT LIKE ?",
                             [STUDY_TAG + "%"]):
        rid = canon.get(e["record_id"], e["record_id"])
        out.setdefault(rid, set()).add(e["value"])
    return {rid: tuple(sorted(tags)) for rid, tags in out.items()}


def tags_of(store: Store, record_id: int) -> tuple[str, ...]:
    """The standing tags of one record (its canonical record's, for a duplicate): the
    tags of its family only, so a screening card does not read every tag of the store."""
    family = record_family(store, store.canonical_id(record_id))
    events = standing_events(
        store, f"kind = 'tag' AND record_id IN ({','.join('?' * len(family))}) "
        "AND value NOT LIKE ?", [*family, STUDY_TAG + "%"])
    return tuple(sorted({e["value"] for e in events}))


def tag_counts(store: Store) -> list[tuple[str, int]]:
    """(tag, number of records carrying it), most used first, then by name."""
    counts: Counter[str] = Counter()
    for tags in record_tags(store).values():
        counts.update(tags)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
