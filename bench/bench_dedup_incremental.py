"""Benchmark of an incremental `cluster dedup` run on a review store, with and without stored keys.

On asysd_srsr (53,001 labelled records): 300 records (a fixed random sample)
are held out; the rest go into a store, which a first full run deduplicates
(timed keeping the keys and, as its baseline, without).
Then the 300 arrive and a second run, in a new process opening the store
afresh, deduplicates them; it is timed with the prepared keys the first run
left in the store and, as the baseline, with `persist_keys=False` (every
record normalised again, as before keys persisted). Each timed run works on
its own copy of the same store. Prints medians, the ratio, how many records
each run normalised, the time to load the stored keys, the MB they add to the
store, and precision/recall of the final store against the labels (which must
be the same both ways, as must the merges themselves).

Usage: python bench/bench_dedup_incremental.py [--repeats 3] [--held-out 300] [--set asysd_srsr]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "dedup"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def load(name: str) -> list[dict]:
    with gzip.open(DATA / f"{name}.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def to_record(row: dict):
    from base.record import Record, normalize_year

    def opt(name: str) -> str | None:
        return row[name] or None

    return Record(title=opt("title"), abstract=opt("abstract"),
                  authors=(row["authors"],) if row["authors"] else (),
                  year=normalize_year(opt("year")), journal=opt("journal"), volume=opt("volume"),
                  issue=opt("issue"), pages=opt("pages"), doi=opt("doi"), pmid=opt("pmid"),
                  source_id=row["record_id"])


def add_records(db: Path, rows: list[dict]) -> None:
    from db.store import open_store

    store = open_store(db)
    with store.transaction():
        for r in rows:
            store.add_record(to_record(r))
    store.close()


def copy_store(src: Path, dst: Path) -> None:
    import sqlite3

    # the backup API copies what is committed, whatever sits in the write-ahead log
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def one_run(db: Path, persist: bool) -> dict:
    """One `run_dedup` on `db` in this (fresh) process, with stage times."""
    from cluster.dedup import keys
    from cluster.dedup.apply import run_dedup
    from db.store import open_store

    marks: dict[str, float] = {}
    saving = {"time": 0.0}
    save = keys.StoredKeys.save

    def timed_save(self, *args, **kw):  # what writing the keys adds to the run's transaction
        t = time.perf_counter()
        try:
            return save(self, *args, **kw)
        finally:
            saving["time"] += time.perf_counter() - t

    keys.StoredKeys.save = timed_save
    t0 = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        marks.setdefault(stage, time.perf_counter() - t0)

    store = open_store(db)
    summary = run_dedup(store, persist_keys=persist, progress=progress)
    elapsed = time.perf_counter() - t0
    store.close()
    stages = {k: round(v, 2) for k, v in marks.items()}
    return {"time": elapsed, "prepared": summary.records_prepared, "reused": summary.records_reused,
            "new": summary.new_records, "pairs": summary.pairs_compared,
            "clusters": summary.clusters, "duplicates": summary.duplicates_marked, "stages": stages,
            "save": saving["time"]}


def load_keys(db: Path) -> dict:
    """Time to read every stored key back into `Prepared` objects."""
    from cluster.dedup.keys import TABLE, decode
    from db.store import open_store

    store = open_store(db)
    t0 = time.perf_counter()
    rows = store.db.execute(f"SELECT record_id, fingerprint, keys FROM {TABLE}").fetchall()
    prepared = [decode(i, text) for i, (_, _, text) in enumerate(rows)]
    elapsed = time.perf_counter() - t0
    size = store.db.execute(f"SELECT SUM(pgsize) FROM dbstat WHERE name = '{TABLE}'").fetchone()[0]
    store.close()
    return {"rows": len(prepared), "time": elapsed, "bytes": size or 0}


def prepare_time(db: Path) -> dict:
    """Time to normalise the same records from scratch (what the stored keys replace)."""
    from cluster.dedup.prepare import prepare_one
    from db.store import open_store

    store = open_store(db)
    items = [r for _, r in store.records()]
    store.close()
    t0 = time.perf_counter()
    for i, r in enumerate(items):
        prepare_one(r, i)
    return {"rows": len(items), "time": time.perf_counter() - t0}


def outcome(db: Path, rows: list[dict]) -> dict:
    """The merges in the store, and precision/recall against the labels."""
    from bench_dedup import evaluate
    from db.store import open_store

    store = open_store(db)
    index = {r["record_id"]: i for i, r in enumerate(rows)}
    groups: dict[int, list[int]] = {}
    merges = []
    for rid, rec in store.records(include_duplicates=True):
        canonical = store.canonical_id(rid)
        groups.setdefault(canonical, []).append(index[rec.source_id])
        merges.append((rid, canonical))
    store.close()
    out = evaluate(rows, [m for m in groups.values() if len(m) > 1])
    out["merges"] = merges
    return out


def sub(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--one", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--set", default="asysd_srsr")
    ap.add_argument("--held-out", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--one", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        mode, db, *rest = args.one
        fn = {"run": lambda: one_run(Path(db), rest[0] == "1"), "load": lambda: load_keys(Path(db)),
              "prepare": lambda: prepare_time(Path(db))}[mode]
        print(json.dumps(fn()))
        return
    if not DATA.exists():
        print(f"skipped: {DATA} not found (the labelled sets live in ../shared/data/dedup)")
        return
    rows = load(args.set)
    held = set(random.Random(0).sample(range(len(rows)), args.held_out))
    base = [r for i, r in enumerate(rows) if i not in held]
    late = [r for i, r in enumerate(rows) if i in held]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pristine = work / "pristine.db"
        t0 = time.perf_counter()
        add_records(pristine, base)
        print(f"{args.set}: {len(base)} records in a store ({time.perf_counter() - t0:.1f} s), "
              f"{len(late)} held out")
        # every timed run starts from a copy of the store as it was before any run;
        # the first one with keys is kept for what follows
        first = work / "first.db"
        firsts: dict[str, list[dict]] = {"keys": [], "plain": []}
        for k in range(args.repeats):
            for mode in ("keys", "plain"):
                db = first if (mode, k) == ("keys", 0) else work / f"first_{mode}_{k}.db"
                copy_store(pristine, db)
                firsts[mode].append(sub("run", str(db), "1" if mode == "keys" else "0"))
                if db != first:
                    db.unlink()
        f_med = {m: statistics.median(r["time"] for r in firsts[m]) for m in firsts}
        f_keys = firsts["keys"][0]
        print(f"first full run: median {f_med['keys']:.1f} s keeping the keys, {f_med['plain']:.1f} s "
              f"without (x{f_med['keys'] / f_med['plain']:.2f}); {f_keys['prepared']} prepared, "
              f"{f_keys['clusters']} clusters, {f_keys['save']:.2f} s of it writing the keys; "
              f"stages with keys {f_keys['stages']}, without {firsts['plain'][0]['stages']}")
        loaded = sub("load", str(first))
        fresh = sub("prepare", str(first))
        print(f"stored keys: {loaded['rows']} rows, {loaded['bytes'] / 1e6:.1f} MB in the store "
              f"(file {first.stat().st_size / 1e6:.1f} MB); loading them {loaded['time']:.2f} s vs "
              f"normalising {fresh['rows']} records {fresh['time']:.1f} s "
              f"(x{fresh['time'] / loaded['time']:.0f})")
        add_records(first, late)
        runs: dict[str, list[dict]] = {"keys": [], "plain": []}
        finals: dict[str, Path] = {}
        for k in range(args.repeats):
            for mode in ("keys", "plain"):
                db = work / f"{mode}_{k}.db"
                copy_store(first, db)
                runs[mode].append(sub("run", str(db), "1" if mode == "keys" else "0"))
                if k == 0:
                    finals[mode] = db
                else:
                    db.unlink()
        med = {m: statistics.median(r["time"] for r in runs[m]) for m in runs}
        for mode, label in (("keys", "with stored keys"), ("plain", "without (baseline)")):
            r = runs[mode][0]
            print(f"incremental run, {label:<19}: median {med[mode]:5.1f} s of "
                  f"{[round(x['time'], 1) for x in runs[mode]]}; {r['new']} new, {r['prepared']} "
                  f"prepared, {r['reused']} reused, {r['pairs']} pairs, {r['clusters']} clusters, "
                  f"{r['save']:.2f} s writing keys; "
                  f"stages {r['stages']}")
        print(f"incremental run with stored keys: x{med['plain'] / med['keys']:.1f} faster than the "
              f"baseline; {med['keys'] / f_med['keys']:.2f} of the first full run")
        results = {m: outcome(finals[m], rows) for m in finals}
        for mode in ("keys", "plain"):
            o = results[mode]
            print(f"final store, {mode:<5}: precision {o['precision']:.4f} recall {o['recall']:.4f} "
                  f"false merges {o['false_merges']} FN {o['fn_pairs']} FP {o['fp_pairs']}")
        same = results["keys"]["merges"] == results["plain"]["merges"]
        print(f"merges identical with and without stored keys: {same}")


if __name__ == "__main__":
    main()
