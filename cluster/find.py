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
from db.tags import record_tags


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
_TOKEN = re.compile(r'(?i:title|abstract):"[^"]*"|"[^"]*"|[()]|[^\s()"]+')
_OPERATORS = {"AND", "OR", "NOT"}
_COLUMN = re.compile(r"^(title|abstract):(.*)$", re.IGNORECASE)
_EXAMPLE = 'e.g. self-compassion AND (nurses OR "health staff") NOT students'


@dataclass(frozen=True)
class Query:
    """A query as a person typed it, in the search index's own syntax.

    `match` selects the records; `operands` are its distinct words and phrases,
    which rank and highlight the hits.
    """

    match: str
    operands: tuple[str, ...]

    @property
    def ranking(self) -> str:
        """The distinct words and phrases joined by OR, to rank and highlight with.

        FTS5's bm25 and snippet walk every phrase of the query for every hit in a
        record, and each phrase's hits again for every phrase: a query that repeats
        a word n times costs n * n per occurrence of that word (400 words, a
        minute on 300 records). The ranking sees each phrase once, which orders
        the hits as bm25 of the query would (it sums over the phrases, whatever
        joins them), only without counting a repeated phrase twice.
        """
        return " OR ".join(self.operands)


def _malformed(text: str, why: str) -> FindError:
    return FindError(f"Cannot search for {text!r}: {why} ({_EXAMPLE}).")


def _operand(token: str) -> tuple[str, str] | None:
    """A word or "phrase" as the index reads it, and its key for counting distinct
    terms; None for a token with no letter or digit (a lone dash), which matches
    nothing and is dropped.

    Every operand is quoted, so hyphens, apostrophes and dots inside a word
    (self-compassion, O'Brien, 10.1037) are split into a phrase by the index's
    own tokeniser instead of being read as syntax. A trailing * keeps its prefix
    meaning; title: and abstract: limit a term to that field.
    """
    column = ""
    m = _COLUMN.match(token)
    if m and m.group(2):
        column, token = f"{m.group(1).lower()} : ", m.group(2)
    prefix = token.endswith("*") and not token.startswith('"')
    body = token.rstrip("*") if prefix else token
    if body.startswith('"'):
        body = body[1:-1]
    if not re.search(r"\w", body):
        return None
    phrase = f'"{body}"' + (" *" if prefix else "")
    key = column + " ".join(body.lower().split()) + ("*" if prefix else "")
    return column + phrase, key


def parse_query(text: str) -> Query:
    """Read a query as a person types it: words (hyphens and all), "quoted
    phrases", prefix*, AND, OR and NOT (in capitals; words next to each other
    must all match), and parentheses.

    Only input that cannot mean anything is refused, in one sentence: an
    unclosed quote or parenthesis, an operator with nothing on one side.
    """
    if not text.strip():
        raise FindError("The search query is empty: give words to look for, e.g. \"realist\".")
    if len(text) > MAX_QUERY_CHARS:
        raise FindError(f"The search query is {len(text):,} characters long (at most "
                        f"{MAX_QUERY_CHARS:,}): search for fewer words or phrases at a time.")
    if text.count('"') % 2:
        raise _malformed(text, "a double quote is not closed")
    out: list[str] = []  # operands, operators and parentheses, in the index's syntax
    keys: dict[str, str] = {}
    depth = 0

    def after_operand() -> bool:
        return bool(out) and (out[-1] == ")" or out[-1] not in (*_OPERATORS, "("))

    for token in _TOKEN.findall(text):
        if token == "NOT" and out and out[-1] == "AND":
            out[-1] = "NOT"  # "a AND NOT b", as several databases write it, is "a NOT b"
        elif token in _OPERATORS:
            if not after_operand():
                where = ("has nothing before it" if not out or out[-1] == "("
                         else f"follows {out[-1]}")
                raise _malformed(text, f"{token} {where}")
            out.append(token)
        elif token == "(":
            if after_operand():
                out.append("AND")
            out.append("(")
            depth += 1
        elif token == ")":
            if depth == 0:
                raise _malformed(text, "a closing parenthesis has no opening one")
            if out[-1] in _OPERATORS:
                raise _malformed(text, f"{out[-1]} has nothing after it")
            if out[-1] == "(":
                raise _malformed(text, "a pair of parentheses holds nothing")
            out.append(")")
            depth -= 1
        else:
            got = _operand(token)
            if got is None:
                continue
            if after_operand():
                out.append("AND")  # words side by side must all match
            out.append(got[0])
            keys.setdefault(got[1], got[0])
    if depth:
        raise _malformed(text, "a parenthesis is not closed")
    if out and out[-1] in _OPERATORS:
        raise _malformed(text, f"{out[-1]} has nothing after it")
    if not keys:
        raise FindError("The search query has no words to look for: give a word or a phrase, "
                        "e.g. \"realist\".")
    if len(keys) > MAX_QUERY_TERMS:
        raise FindError(f"The search query has {len(keys)} different words or phrases (at most "
                        f"{MAX_QUERY_TERMS}): search for fewer at a time.")
    return Query(" ".join(out), tuple(keys.values()))


def _let_signals_in() -> int:
    # SQLite calls this every few thousand steps; running Python code lets a pending Ctrl-C
    # raise here, which makes SQLite stop the query ("interrupted")
    return 0


def find(store: Store, query: str, *, limit: int | None = None) -> list[Hit]:
    """Records (not merged duplicates) whose title or abstract matches `query`
    (as `parse_query` reads it), best first."""
    parsed = parse_query(query)
    if limit is not None and limit < 1:
        raise FindError(f"The limit must be at least 1, not {limit}.")
    ensure_index(store)
    conn = store.db.conn
    conn.set_progress_handler(_let_signals_in, 10_000)
    try:
        with store.read_snapshot():
            rows = _search(store, parsed, limit)
    except sqlite3.OperationalError as exc:
        if "interrupted" in str(exc):
            raise KeyboardInterrupt from None
        # NOT with nothing it can take away from, say: the index's grammar is narrower
        raise _malformed(query, "the search index cannot read it") from None
    finally:
        conn.set_progress_handler(None, 0)
    return [Hit(*r) for r in rows]


def _search(store: Store, query: Query, limit: int | None) -> list[tuple]:
    sql = ("SELECT r.id, r.title, r.year, snippet(records_fts, -1, '[', ']', '...', 12) "
           "FROM records_fts JOIN records r ON r.rowid = records_fts.rowid "
           "WHERE records_fts MATCH ? AND r.duplicate_of IS NULL")
    params: list = [query.ranking]
    if query.ranking != query.match:
        # which records match is the query's to say; their order is the ranking query's.
        # The "+" keeps SQLite from looking each id up in the index one query at a time.
        matching = [r[0] for r in store.db.execute(
            "SELECT rowid FROM records_fts WHERE records_fts MATCH ?", [query.match])]
        sql += " AND +r.id IN (SELECT value FROM json_each(?))"
        params.append(json.dumps(matching))
    sql += " ORDER BY rank, r.id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return store.db.execute(sql, params).fetchall()


def tag(store: Store, hits: list[Hit], tag_value: str, *, reviewer: str | None = None) -> int:
    """Log a `tag` event for each hit not tagged so already (a tag taken back by an
    undo no longer counts); returns how many were new."""
    if not tag_value.strip():
        raise FindError("The tag is empty: give a word such as \"theory\".")
    if reviewer is not None:
        store.require_reviewer(reviewer)
    with store.transaction():
        tagged = {rid for rid, tags in record_tags(store).items() if tag_value in tags}
        new = [h.record_id for h in hits if h.record_id not in tagged]
        # one search's tags are one batch: one undo takes them all back
        store.log_batch("tag", ({"record_id": rid, "value": tag_value, "reviewer": reviewer}
                                for rid in new))
    return len(new)
