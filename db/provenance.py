"""Where a record was found: its rows in `sources`, with the searches behind them.

A record merged as a duplicate keeps its own sources; the record that stands
for the work was found by all of them. `cluster show` lists them, and the
screening card shows them as one line each.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from base.services import SERVICE_NAMES as _SERVICES
from db.store import Store

SERVICE_NAMES = {**_SERVICES, "demo": "demo", "file": "file"}
# how a record relates to the index article it was found from, by strategy
STRATEGY_PHRASES = {
    "cited-by": "cites index article {seed}",
    "citing": "cites index article {seed}",
    "references": "cited by index article {seed}",
    "refs": "cited by index article {seed}",
    "related": "related to index article {seed}",
    "author": "by a lead author of index article {seed}",
    "authors": "by a lead author of index article {seed}",
    "lead-author": "by a lead author of index article {seed}",
    "lead-authors": "by a lead author of index article {seed}",
}


@dataclass(frozen=True)
class Source:
    """One way a record was found: by a search (or an imported file), with its
    strategy, index article, rank or score."""

    record_id: int  # the record the source row belongs to (a duplicate's own id for its rows)
    role: str | None
    service: str | None
    strategy: str | None
    seed_record_id: int | None
    rank: int | None
    score: float | None
    source_record_id: str | None
    search_id: int | None
    search_kind: str | None
    query: str | None
    file_name: str | None
    searched_at: str | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "service_name": self.service_name, "line": self.line}

    @property
    def service_name(self) -> str:
        """The service or file source as a reader knows it (PubMed, Embase, ...)."""
        return SERVICE_NAMES.get((self.service or "").lower(), self.service or "unknown source")

    @property
    def line(self) -> str:
        """The source in one line: "cites index article 1 (cited-by, rank 3, OpenAlex)"."""
        svc = self.service_name
        if self.role == "index":
            return f"index article ({svc})"
        details = [d for d in (self.strategy, f"rank {self.rank}" if self.rank is not None else None,
                               f"score {self.score:g}" if self.score is not None
                               and self.rank is None else None, svc) if d]
        if self.seed_record_id is not None:
            phrase = STRATEGY_PHRASES.get((self.strategy or "").lower(),
                                          "found from index article {seed}")
            head = phrase.format(seed=self.seed_record_id)
        elif self.file_name:
            head = f"imported from {self.file_name}"
        else:
            head = f"found in {svc}" if self.role != "database" else f"database search in {svc}"
        return f"{head} ({', '.join(details)})"


def record_family(store: Store, record_id: int) -> list[int]:
    """`record_id` and the records merged into it as duplicates (directly or not)."""
    family = [record_id]
    todo = [record_id]
    while todo:
        marks = ",".join("?" * len(todo))
        todo = [r[0] for r in store.conn.execute(
            f"SELECT id FROM records WHERE duplicate_of IN ({marks}) ORDER BY id", todo)
            if r[0] not in family]
        family += todo
    return family


def sources_of(store: Store, record_id: int) -> list[Source]:
    """How a record and the duplicates merged into it were found, in the order found."""
    ids = record_family(store, record_id)
    marks = ",".join("?" * len(ids))
    rows = store.conn.execute(
        f"SELECT s.record_id, s.role, s.service, s.strategy, s.seed_record_id, s.rank, s.score, "
        f"s.source_record_id, s.search_id, q.kind, q.query, q.file_name, "
        f"coalesce(q.finished_at, q.started_at, s.created_at) "
        f"FROM sources s LEFT JOIN searches q ON q.id = s.search_id "
        f"WHERE s.record_id IN ({marks}) ORDER BY s.id", ids).fetchall()
    return [Source(*row) for row in rows]


def provenance(store: Store, record_id: int) -> tuple[str, ...]:
    """How a record (and the duplicates merged into it) was found, one line per source."""
    return tuple(dict.fromkeys(s.line for s in sources_of(store, record_id)))


def source_names(sources: list[Source]) -> tuple[str, ...]:
    """The services and files that found a record, each once, in the order found."""
    return tuple(dict.fromkeys(s.service_name for s in sources))
