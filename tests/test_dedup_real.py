"""One real labelled set end to end (the others, and the timings, are in bench/bench_dedup.py)."""

from __future__ import annotations

import csv
import gzip
from collections import defaultdict
from itertools import combinations

from cluster.dedup import deduplicate
from tests.conftest import shared_path


def test_neuroimaging_set_loses_no_study():
    path = shared_path("data", "dedup", "asysd_neuroimaging.csv.gz")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3438
    result = deduplicate(rows)
    by = defaultdict(list)
    for i, r in enumerate(rows):
        by[r["cluster_id"]].append(i)
    truth = {p for m in by.values() for p in combinations(m, 2)}
    pred = {p for c in result.clusters for p in combinations(c.members, 2)}
    assert len(truth) == 1816
    false_merges = sum(len({rows[i]["cluster_id"] for i in c.members}) - 1 for c in result.clusters)
    assert false_merges == 0
    assert len(pred - truth) == 0
    assert len(truth & pred) / len(truth) >= 0.99
