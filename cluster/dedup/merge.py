"""Stage 5 of deduplication: choose the record that stands for a cluster and complete it.

Nothing is thrown away: the canonical record is the most complete one (ids
first, then filled fields), and each field it lacks is taken from the other
members, most complete first. The other members are only marked as duplicates
by the store layer; their own fields and provenance stay as they were.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from base.record import Record
from cluster.dedup.prepare import field_of

#: fields a canonical record may borrow from its duplicates
FILLABLE = ("title", "abstract", "authors", "year", "journal", "volume", "issue", "pages",
            "doi", "pmid", "pmcid", "openalex", "issn", "url", "language", "pub_types",
            "keywords")
_IDS = ("doi", "pmid", "pmcid", "openalex")


def completeness(item: Record | Mapping[str, Any]) -> tuple[int, int, int]:
    """Sort key: more identifiers, then more fields, then a longer abstract."""
    ids = sum(1 for f in _IDS if field_of(item, f))
    filled = sum(1 for f in FILLABLE if field_of(item, f))
    return ids, filled, len(str(field_of(item, "abstract") or ""))


def choose_canonical(items: Sequence[Record | Mapping[str, Any]], indices: Sequence[int],
                     preferred: Sequence[int] = ()) -> int:
    """The index that stands for the cluster; `preferred` ones (earlier canonicals) win."""
    pref = [i for i in indices if i in set(preferred)]
    pool = pref or list(indices)
    return max(pool, key=lambda i: (completeness(items[i]), -i))


def fill_missing(items: Sequence[Record | Mapping[str, Any]], canonical: int,
                 indices: Sequence[int]) -> dict[str, Any]:
    """The fields the canonical record lacks, each taken from the most complete member having it."""
    donors = sorted((i for i in indices if i != canonical),
                    key=lambda i: completeness(items[i]), reverse=True)
    filled: dict[str, Any] = {}
    for f in FILLABLE:
        if field_of(items[canonical], f):
            continue
        for d in donors:
            v = field_of(items[d], f)
            if v:
                filled[f] = v
                break
    return filled
