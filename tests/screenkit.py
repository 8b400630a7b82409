"""Small review stores for the screening tests: records with provenance, a team, a protocol."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from base.record import Record
from db.protocol import set_protocol
from db.store import Store

TA, FT = "title-abstract", "full-text"
TOPICS = ("compassion training for nurses", "empathy in medical students",
          "mindfulness for teachers", "burnout in surgeons", "rats in mazes")


def make_review(store: Store, n: int = 6, reviewers: tuple[str, ...] = ("alice", "bob", "carol"),
                **protocol) -> list[int]:
    """`n` records, each found by cited-by from record 1 at rank i, and a team."""
    with store.transaction():
        ids = _make(store, n, reviewers, protocol)
    # a new WAL store's header (its application id) reaches the main file only at a
    # checkpoint; other connections (the CLI under test, a ranking thread) check it
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return ids


def _make(store: Store, n: int, reviewers: tuple[str, ...], protocol: dict) -> list[int]:
    for name in reviewers:
        store.add_reviewer(name)
    set_protocol(store, include_terms=["compassion", "empathy"], exclude_terms=["rats", "mice*"],
                 **protocol)
    ids = []
    sid = store.start_search(kind="api", service="openalex", strategy="cited-by", seed_record_id=1)
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        rid = store.add_record(Record(
            title=f"Study {i + 1}: {topic}", authors=(f"Author{i + 1}, A", "Second, B"),
            year=2000 + i, journal="Journal of Care", keywords=("care", topic.split()[0]),
            abstract=f"We studied {topic}. " * 3 + f"Record marker R{i + 1}."))
        store.add_source(rid, sid, role="other", service="openalex", strategy="cited-by",
                         seed_record_id=1, rank=i + 1)
        ids.append(rid)
    return ids


def snapshot(store: Store) -> tuple[int, int, int]:
    """Counts that must not change when an action is refused."""
    q = store.db.execute
    return (q("SELECT count(*) FROM events").fetchone()[0],
            q("SELECT count(*) FROM records").fetchone()[0],
            q("SELECT count(*) FROM reviewers").fetchone()[0])


def both_decide(store: Store, rid: int, a: str, b: str, stage: str = TA,
                reviewers: tuple[str, str] = ("alice", "bob")) -> None:
    from screeners.decisions import decide

    decide(store, rid, reviewers[0], stage, a, reason="wrong outcome" if (a == "exclude" and stage == FT) else None)
    decide(store, rid, reviewers[1], stage, b, reason="wrong outcome" if (b == "exclude" and stage == FT) else None)


def damage_a_page(db: Path) -> None:
    """Overwrite one page in the middle of the records' pages with garbage."""
    con = sqlite3.connect(db)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    n_pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    data = bytearray(db.read_bytes())
    page = n_pages // 2
    data[page * page_size + 8: page * page_size + 200] = b"\xa5" * 192
    db.write_bytes(bytes(data))
