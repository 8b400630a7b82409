"""Full-text search over the store's titles and abstracts (CLUSTER "T",
theories), with optional tagging of what was found.

The index is SQLite FTS (via sqlite-utils), created on first use with
triggers that keep it in step with every later insert, update and delete of
records; it is rebuilt if it is ever found out of step (a store copied from
an older version, say).
"""

from __future__ import annotations

import json
import re
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


#: a query longer than this is refused: search strings of a review are far shorter, and
#: each distinct word or phrase costs a pass over every matching record's text
MAX_QUERY_CHARS = 2000
MAX_QUERY_TERMS = 100
_OPERAND = re.compile(r'"[^"]*"|[^\s()"]+')
_OPERATORS = {"AND", "OR", "NOT"}


def _ranking_query(query: str) -> str:
    """The query's distinct words and phrases joined by OR, to rank and highlight with.

    FTS5's bm25 and snippet walk every phrase of the query for every hit in a
    record, and each phrase's hits again for every phrase: a query that repeats
    a word n times costs n * n per occurrence of that word (400 words, a
    minute on 300 records). Matching is done with the query as written; the
    ranking sees each phrase once, which orders the hits as bm25 of the query
    would (it sums over the phrases, whatever joins them), only without
    counting a repeated phrase twice. Queries using NEAR or column filters are
    ranked as written.
    """
    if re.search(r"\bNEAR\b|[:^{}]", query):
        return query
    operands: dict[str, str] = {}
    for token in _OPERAND.findall(query):
        if token not in _OPERATORS:
            operands.setdefault(" ".join(token.lower().split()), token)
    return " OR ".join(operands.values()) or query


def _check_query(query: str) -> None:
    if not query.strip():
        raise FindError("The search query is empty: give words to look for, e.g. \"realist\".")
    if len(query) > MAX_QUERY_CHARS:
        raise FindError(f"The search query is {len(query):,} characters long (at most "
                        f"{MAX_QUERY_CHARS:,}): search for fewer words or phrases at a time.")
    n_terms = len({t.lower() for t in _OPERAND.findall(query) if t not in _OPERATORS})
    if n_terms > MAX_QUERY_TERMS:
        raise FindError(f"The search query has {n_terms} different words or phrases (at most "
                        f"{MAX_QUERY_TERMS}): search for fewer at a time.")


def _let_signals_in() -> int:
    # SQLite calls this every few thousand steps; running Python code lets a pending Ctrl-C
    # raise here, which makes SQLite stop the query ("interrupted")
    return 0


def find(store: Store, query: str, *, limit: int | None = None) -> list[Hit]:
    """Records (not merged duplicates) whose title or abstract matches `query` (FTS syntax), best first."""
    _check_query(query)
    if limit is not None and limit < 1:
        raise FindError(f"The limit must be at least 1, not {limit}.")
    ensure_index(store)
    conn = store.db.conn
    conn.set_progress_handler(_let_signals_in, 10_000)
    try:
        with store.read_snapshot():
            rows = _search(store, query, limit)
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise KeyboardInterrupt from None
        raise FindError(f"Cannot search for {query!r}: put phrases in double quotes and use "
                        f"AND, OR, NOT between words.") from None
    finally:
        conn.set_progress_handler(None, 0)
    return [Hit(*r) for r in rows]


def _search(store: Store, query: str, limit: int | None) -> list[tuple]:
    rank_query = _ranking_query(query)
    sql = ("SELECT r.id, r.title, r.year, snippet(records_fts, -1, '[', ']', '...', 12) "
           "FROM records_fts JOIN records r ON r.rowid = records_fts.rowid "
           "WHERE records_fts MATCH ? AND r.duplicate_of IS NULL")
    params: list = [rank_query]
    if rank_query != query:
        # which records match is the query's to say; their order is the ranking query's.
        # The "+" keeps SQLite from looking each id up in the index one query at a time.
        matching = [r[0] for r in store.db.execute(
            "SELECT rowid FROM records_fts WHERE records_fts MATCH ?", [query])]
        sql += " AND +r.id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(matching))
    sql += " ORDER BY rank, r.id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return store.db.execute(sql, params).fetchall()


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
