"""The store of the review this tool follows, built through the library API only.

A realist review of compassion training: 42 index articles from a previous
review and 2,949 records from CLUSTER routes were screened together (2,991);
53 reports were assessed in full and 45 included, 3 of them from the CLUSTER
records (8 of the 11 CLUSTER full texts excluded). Duplicates: 100 CLUSTER
records were retrieved by a second route and 5 index articles were also
retrieved as citing articles, so 105 retrievals are duplicates.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from base.record import Record
from db.store import Store, open_store

TA, FT = "title-abstract", "full-text"
ROUTES = (  # strategy, service, records first found by it
    ("cited-by", "OpenAlex", 820),
    ("references", "Crossref", 800),
    ("lead-author", "PubMed", 700),
    ("related", "PubMed", 629),
)
N_INDEX, N_CLUSTER, N_SEEDS = 42, 2949, 42
FT_EXCLUDED = (("wrong intervention", 5), ("wrong study design", 3))


def build_review(store: Store) -> dict[str, list[int]]:
    """Fill `store`; returns the record ids by group for the tests' own checks."""
    ids: dict[str, list[int]] = {"index": [], "cluster": []}
    with store.transaction():
        for name in ("ann", "bob"):
            store.add_reviewer(name)
        sid = store.start_search(kind="import", service="previous review", role="index",
                                 file_name="previous-review-included.ris", format="ris")
        for i in range(N_INDEX):
            rid = store.add_record(Record(title=f"Compassion training study {i}",
                                          year=2000 + i % 20, pmid=str(10_000 + i)))
            store.add_source(rid, sid, role="index", service="previous review")
            ids["index"].append(rid)
        store.finish_search(sid, n_found=N_INDEX, n_kept=N_INDEX, n_added=N_INDEX)

        n = 0
        for strategy, service, count in ROUTES:
            per_seed: dict[int, list[int]] = {}
            for j in range(count):
                seed = ids["index"][j % N_SEEDS]
                rid = store.add_record(Record(title=f"{strategy} record {j}", pmid=str(50_000 + n)))
                n += 1
                per_seed.setdefault(seed, []).append(rid)
                ids["cluster"].append(rid)
            for seed, rids in per_seed.items():
                s = store.start_search(kind="expand", service=service, strategy=strategy,
                                       role="other", seed_record_id=seed,
                                       limits={"top": 20, "types": ["journal article"],
                                               "languages": ["eng"]})
                for rank, rid in enumerate(rids, 1):
                    store.add_source(rid, s, role="other", service=service, strategy=strategy,
                                     seed_record_id=seed, rank=rank)
                store.finish_search(s, n_found=len(rids) + 7, n_kept=len(rids), n_added=len(rids))
        # second retrievals of works already in the store: duplicates
        s = store.start_search(kind="expand", service="OpenCitations", strategy="cited-by",
                               role="other", limits={"top": 20})
        for rid in ids["cluster"][820:920] + ids["index"][:5]:
            store.add_source(rid, s, role="other", service="OpenCitations", strategy="cited-by")
        store.finish_search(s, n_found=105, n_kept=105, n_added=0)

    included_ta = ids["index"] + ids["cluster"][:11]
    inc = set(included_ta)
    with store.transaction():
        for k, rid in enumerate(ids["index"] + ids["cluster"]):
            a = b = "include" if rid in inc else "exclude"
            # 40 disagreements at title-abstract, each resolved by consensus
            if k % 75 == 1:
                a = "exclude" if a == "include" else "include"
            store.log_event("decision", record_id=rid, reviewer="ann", stage=TA, value=a)
            store.log_event("decision", record_id=rid, reviewer="bob", stage=TA, value=b)
            if a != b:
                store.log_event("resolution", record_id=rid, reviewer="ann", stage=TA,
                                value="include" if rid in inc else "exclude",
                                data={"method": "consensus"})
    with store.transaction():
        reasons = [r for r, c in FT_EXCLUDED for _ in range(c)]
        for rid in included_ta:
            store.log_event("fulltext", record_id=rid, value="sought")
            store.log_event("fulltext", record_id=rid, value="retrieved")
        for rid in ids["index"] + ids["cluster"][:3]:
            for who in ("ann", "bob"):
                store.log_event("decision", record_id=rid, reviewer=who, stage=FT, value="include")
        for rid, why in zip(ids["cluster"][3:11], reasons):
            for who in ("ann", "bob"):
                store.log_event("decision", record_id=rid, reviewer=who, stage=FT,
                                value="exclude", reason=why)
    return ids


_BUILT: dict[str, tuple[Store, dict[str, list[int]]]] = {}


def build_review_file(path: Path) -> dict[str, list[int]]:
    """The same store written to `path`: built in memory once per test run (3x faster than
    on disk), then copied whole, so each test gets its own file."""
    if "review" not in _BUILT:
        store = open_store(None)
        _BUILT["review"] = (store, build_review(store))
    store, ids = _BUILT["review"]
    target = sqlite3.connect(path)
    store.db.conn.backup(target)
    target.close()
    return {k: list(v) for k, v in ids.items()}
