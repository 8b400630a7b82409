"""Benchmark of `cluster.dedup` on the five labelled sets in ../shared/data/dedup.

Prints, per set: pair precision, pair recall, false merges ("works lost": distinct
true clusters joined), records/clusters, time and peak memory; then a scaling run
on 5k, 20k and all of asysd_srsr. Each measurement runs in its own process so
peak memory (max RSS) belongs to that set alone. `--with-bib-dedupe` installs
bib-dedupe 0.11.0 into a separate virtual environment (under bench/out/) and
runs it on the same sets in the same run, for a side-by-side table.

Usage: python bench/bench_dedup.py [--sets a,b] [--with-bib-dedupe] [--no-scaling]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import resource
import subprocess
import sys
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dedup"
OUT = ROOT / "bench" / "out"
SETS = ("asysd_cardiac", "asysd_neuroimaging", "asysd_diabetes", "sra_rathbone2015", "asysd_srsr")
BIB_DEDUPE = "bib-dedupe==0.11.0"
#: the figures bib-dedupe reports for itself on this kind of machine (issue text)
PEER_PUBLISHED = {"asysd_cardiac": (0.9997, 0.995), "sra_rathbone2015": (0.999, 0.967),
                  "asysd_srsr": (1.0, 0.993)}


def load(name: str, limit: int | None = None) -> list[dict]:
    with gzip.open(DATA / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows[:limit] if limit else rows


def true_pairs(rows: list[dict]) -> set[tuple[int, int]]:
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by[r["cluster_id"]].append(i)
    return {p for m in by.values() for p in combinations(m, 2)}


def evaluate(rows: list[dict], clusters: list[list[int]]) -> dict:
    truth = true_pairs(rows)
    pred = {tuple(sorted(p)) for m in clusters for p in combinations(sorted(m), 2)}
    tp = len(truth & pred)
    lost = sum(len({rows[i]["cluster_id"] for i in m}) - 1 for m in clusters)
    return {"precision": tp / len(pred) if pred else 1.0, "recall": tp / len(truth) if truth else 1.0,
            "false_merges": lost, "true_pairs": len(truth), "pred_pairs": len(pred),
            "fp_pairs": len(pred - truth), "fn_pairs": len(truth - pred)}


def run_ours(name: str, limit: int | None) -> dict:
    sys.path.insert(0, str(ROOT))
    from cluster.dedup import deduplicate

    rows = load(name, limit)
    t0 = time.perf_counter()
    result = deduplicate(rows)
    elapsed = time.perf_counter() - t0
    out = evaluate(rows, [list(c.members) for c in result.clusters])
    out.update(records=len(rows), time=elapsed, review=len(result.review), pairs=result.n_pairs,
               rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def run_incremental(name: str, limit: int | None) -> dict:
    """The last `limit` records arrive after the rest: only they are blocked against the store."""
    sys.path.insert(0, str(ROOT))
    from cluster.dedup import deduplicate

    from cluster.dedup import PreparedCache

    rows = load(name)
    n_new = limit or 300
    new = range(len(rows) - n_new, len(rows))
    t0 = time.perf_counter()
    result = deduplicate(rows, new=new)
    cold = time.perf_counter() - t0
    # the same increment in a process that already deduplicated the older records
    cache = PreparedCache()
    deduplicate(rows[: len(rows) - n_new], cache=cache)
    t0 = time.perf_counter()
    warm_result = deduplicate(rows, new=new, cache=cache)
    warm = time.perf_counter() - t0
    assert [c.members for c in warm_result.clusters] == [c.members for c in result.clusters]
    return {"records": len(rows), "new": n_new, "time": cold, "warm_time": warm,
            "pairs": result.n_pairs, "clusters": len(result.clusters),
            "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


BIB_SCRIPT = r'''
import csv, gzip, json, resource, sys, time
import pandas as pd
from bib_dedupe.bib_dedupe import prep, block, match, cluster
path, limit = sys.argv[1], int(sys.argv[2])
with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
    rows = list(csv.DictReader(fh))
rows = rows[:limit] if limit else rows
df = pd.DataFrame({
    "ID": [r["record_id"] for r in rows],
    "ENTRYTYPE": [r.get("entrytype") or "article" for r in rows],
    "title": [r["title"] for r in rows], "author": [r["authors"] for r in rows],
    "year": [r["year"] for r in rows], "journal": [r["journal"] for r in rows],
    "volume": [r["volume"] for r in rows], "number": [r["issue"] for r in rows],
    "pages": [r["pages"] for r in rows], "doi": [r["doi"] for r in rows],
    "abstract": [r["abstract"] for r in rows],
})
t0 = time.perf_counter()
records = prep(df, cpu=2)
pairs = block(records, cpu=2)
matched = match(pairs, cpu=2)
dups = cluster(matched)
elapsed = time.perf_counter() - t0
print(json.dumps({"clusters": [list(map(str, c)) for c in dups], "time": elapsed,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def bib_python() -> Path:
    venv = OUT / "bib-dedupe-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", BIB_DEDUPE], check=True)
    return py


def run_bib(name: str, limit: int | None) -> dict:
    py = bib_python()
    script = OUT / "run_bib_dedupe.py"
    script.write_text(BIB_SCRIPT)
    proc = subprocess.run([str(py), str(script), str(DATA / f"{name}.csv.gz"), str(limit or 0)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = load(name, limit)
    index = {r["record_id"]: i for i, r in enumerate(rows)}
    clusters = [[index[x] for x in c if x in index] for c in res["clusters"]]
    out = evaluate(rows, clusters)
    out.update(records=len(rows), time=res["time"], rss_mb=res["rss_mb"], review=0, pairs=0)
    return out


def measure(tool: str, name: str, limit: int | None) -> dict:
    """One measurement in a fresh process, so max RSS is this run's alone."""
    proc = subprocess.run([sys.executable, __file__, "--one", tool, name, str(limit or 0)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def row(tool: str, name: str, m: dict) -> str:
    if "error" in m:
        return f"{name:<20} {tool:<11} error: {m['error']}"
    return (f"{name:<20} {tool:<11} {m['records']:>7} {m['precision']:>9.4f} {m['recall']:>7.4f} "
            f"{m['false_merges']:>6} {m['fn_pairs']:>6} {m['fp_pairs']:>6} {m['review']:>7} "
            f"{m['time']:>8.1f} {m['rss_mb']:>7.0f}")


HEADER = (f"{'set':<20} {'tool':<11} {'records':>7} {'precision':>9} {'recall':>7} "
          f"{'lost':>6} {'FN':>6} {'FP':>6} {'review':>7} {'time s':>8} {'RSS MB':>7}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--with-bib-dedupe", action="store_true")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--one", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        tool, name, limit = args.one
        fn = {"cluster": run_ours, "bib-dedupe": run_bib, "incremental": run_incremental}[tool]
        print(json.dumps(fn(name, int(limit) or None)))
        return
    if not DATA.exists():
        print(f"skipped: {DATA} not found (the labelled sets live in ../shared/data/dedup)")
        return
    print(HEADER)
    for name in args.sets.split(","):
        print(row("cluster", name, measure("cluster", name, None)), flush=True)
        if args.with_bib_dedupe:
            print(row("bib-dedupe", name, measure("bib-dedupe", name, None)), flush=True)
        if name in PEER_PUBLISHED:
            p, r = PEER_PUBLISHED[name]
            print(f"{'':<20} {'(published)':<11} {'':>7} {p:>9.4f} {r:>7.4f}")
    if args.no_scaling:
        return
    print("\nscaling on asysd_srsr (time should grow close to linearly with records)")
    print(f"{'records':>8} {'time s':>8} {'s per 1k':>9} {'RSS MB':>7} {'pairs':>9}")
    base = None
    for limit in (5000, 20000, None):
        m = measure("cluster", "asysd_srsr", limit)
        if "error" in m:
            print(f"{limit}: error {m['error']}")
            continue
        per_k = m["time"] / m["records"] * 1000
        base = base or per_k
        print(f"{m['records']:>8} {m['time']:>8.1f} {per_k:>9.3f} {m['rss_mb']:>7.0f} "
              f"{m['pairs']:>9}  (x{per_k / base:.2f} per record vs 5k)")
    m = measure("incremental", "asysd_srsr", 300)
    if "error" not in m:
        print(f"\nincremental: {m['new']} new records against {m['records'] - m['new']} already "
              f"deduplicated: {m['time']:.1f} s cold, {m['warm_time']:.1f} s with the keys prepared "
              f"by the earlier run in this process (x{m['time'] / m['warm_time']:.1f}), {m['pairs']} pairs "
              f"compared, {m['clusters']} clusters, {m['rss_mb']:.0f} MB")


if __name__ == "__main__":
    main()
