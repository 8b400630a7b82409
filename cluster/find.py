"""Full-text search over the store's titles and abstracts (CLUSTER "T",
theories), with optional tagging of what was found.

The index is SQLite FTS (via sqlite-utils), created on first use with
triggers that keep it in step with every later insert, update and delete of
records; it is rebuilt if it is ever found out of step (a store copied from
an older version, say).
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from base.errors import ClusterError
from db.store import Store


class FindError(ClusterError):
    """A query the search index cannot run; one sentence."""


@dataclass(frozen=True)
class Hit:
    record_id: int
    title: str | None
    year: int | None
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ensure_index(store: Store) -> None:
    table = store.db.table("records")
    with store.transaction():
        if not table.detect_fts():
            table.enable_fts(["title", "abstract"], create_triggers=True, replace=True)
            return
        n_fts = store.db.execute("SELECT COUNT(*) FROM records_fts").fetchone()[0]
        n = store.db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        if n_fts != n:
            table.rebuild_fts()


def find(store: Store, query: str, *, limit: int | None = None) -> list[Hit]:
    """Records (not merged duplicates) whose title or abstract matches `query` (FTS syntax), best first."""
    if not query.strip():
        raise FindError("The search query is empty: give words to look for, e.g. \"realist\".")
    if limit is not None and limit < 1:
        raise FindError(f"The limit must be at least 1, not {limit}.")
    ensure_index(store)
    sql = (
        "SELECT r.id, r.title, r.year, snippet(records_fts, -1, '[', ']', '...', 12) "
        "FROM records_fts JOIN records r ON r.rowid = records_fts.rowid "
        "WHERE records_fts MATCH ? AND r.duplicate_of IS NULL ORDER BY rank, r.id"
    )
    if limit:
        sql += f" LIMIT {int(limit)}"
    try:
        rows = store.db.execute(sql, [query]).fetchall()
    except sqlite3.OperationalError:
        raise FindError(f"Cannot search for {query!r}: put phrases in double quotes and use "
                        f"AND, OR, NOT between words.") from None
    return [Hit(r[0], r[1], r[2], r[3]) for r in rows]


def tag(store: Store, hits: list[Hit], tag_value: str, *, reviewer: str | None = None) -> int:
    """Log a `tag` event for each hit not tagged so already; returns how many were new."""
    if not tag_value.strip():
        raise FindError("The tag is empty: give a word such as \"theory\".")
    if reviewer is not None:
        store.require_reviewer(reviewer)
    with store.transaction():
        tagged = {r[0] for r in store.db.execute(
            "SELECT record_id FROM events WHERE kind = 'tag' AND value = ?", [tag_value])}
        n = 0
        for h in hits:
            if h.record_id not in tagged:
                store.log_event("tag", record_id=h.record_id, value=tag_value, reviewer=reviewer)
                n += 1
    return n
