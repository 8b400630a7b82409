"""Speed of one prioritiser update on a 10,000-record store (../shared data).

Builds a temporary store from the first 10,000 records of three labelled
datasets, logs decisions one at a time in the order the prioritiser proposes
(labels from the data), and times each `rank()` call over all unscreened
records: the time a reviewer would wait between two records. Prints the
median and 90th percentile beside the feature fit (paid once per store
content) and the time to derive labels from the log (the baseline every
update pays). Then times `cluster status --estimate` on that store as a new process would
run it, cold (no feature cache file: the features are fitted, as every process
did before the cache) against warm (the file beside the store is loaded),
alternating, with medians and their ratio. Prints figures, never pass/fail.

    python bench/bench_prioritise.py [--updates 60] [--status-runs 3]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "screening"
SETS = ("van_de_Schoot_2017", "Appenzeller-Herzog_2019", "Nagtegaal_2019")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--updates", type=int, default=60)
    ap.add_argument("--records", type=int, default=10000)
    ap.add_argument("--profile", action="store_true", help="profile one rank() call")
    ap.add_argument("--status-runs", type=int, default=3,
                    help="cold and warm `cluster status` runs each (0: skip)")
    args = ap.parse_args()
    if not SHARED.exists():
        print("../shared/data/screening is absent: benchmark skipped")
        return
    from base.record import Record
    from db.protocol import set_protocol
    from db.state import training_labels
    from db.store import open_store
    from screeners import prioritise

    rows = []
    for name in SETS:
        with open(SHARED / f"{name}.csv", newline="", encoding="utf-8") as fh:
            rows += [(r["title"], r["abstract"], int(r["label_included"])) for r in csv.DictReader(fh)]
    rows = rows[: args.records]
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(Path(tmp) / "bench.db")
        with store.transaction():
            ids = [store.add_record(Record(title=t or None, abstract=a or None)) for t, a, _ in rows]
        set_protocol(store, reviewers_per_record=1, question="latent trajectories of PTSD after trauma")
        label = dict(zip(ids, (y for _, _, y in rows)))
        t0 = time.perf_counter()
        prioritise.features(store)
        feat = time.perf_counter() - t0
        first_inc = next(i for i in ids if label[i])
        first_exc = next(i for i in ids if not label[i])
        for rid in (first_inc, first_exc):
            store.log_event("decision", record_id=rid, reviewer="ann", stage="title-abstract",
                            value="include" if label[rid] else "exclude")
        pending = [i for i in ids if i not in (first_inc, first_exc)]
        times, cpu_times, label_times = [], [], []
        for _ in range(args.updates):
            t0, c0 = time.perf_counter(), time.process_time()
            ranked = prioritise.rank(store, "title-abstract", "ann", pending)
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
            t0 = time.perf_counter()
            training_labels(store, "title-abstract", "ann")
            label_times.append(time.perf_counter() - t0)
            nxt = ranked[0][0]
            store.log_event("decision", record_id=nxt, reviewer="ann", stage="title-abstract",
                            value="include" if label[nxt] else "exclude")
            pending.remove(nxt)
        t0 = time.perf_counter()
        prioritise._FEATURES.clear()
        loaded = prioritise.features(store)
        load_s = time.perf_counter() - t0
        assert loaded.origin == "disk"
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.runcall(prioritise.rank, store, "title-abstract", "ann", pending)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(12)
        store.close()
        status = (_status_runs(Path(tmp) / "bench.db", args.status_runs)
                  if args.status_runs else None)
    times.sort()
    print(f"store: {len(ids)} records; {args.updates} updates (decision logged, then rank() "
          "of every unscreened record)")
    print(f"feature fit (once per store content): {feat:.2f} s")
    print(f"rank() per update: median {statistics.median(times):.3f} s, "
          f"90th percentile {times[int(0.9 * len(times)) - 1]:.3f} s, max {times[-1]:.3f} s")
    print(f"rank() CPU time per update: median {statistics.median(cpu_times):.3f} s "
          "(wall time includes waiting for a busy machine)")
    print(f"of which deriving labels from the log (baseline): median "
          f"{statistics.median(label_times):.3f} s")
    print(f"ratio median rank() / 0.2 s budget: {statistics.median(times) / 0.2:.2f}")
    print(f"features in a new process: fitted {feat:.2f} s, loaded from the cache file "
          f"{load_s:.2f} s (ratio {feat / load_s:.1f}x)")
    if status:
        cold, warm = status
        print(f"`cluster status` as a new process, {len(cold)} runs each, alternating: "
              f"cold (fit) median {statistics.median(cold):.2f} s {_fmt(cold)}, "
              f"warm (cache file) median {statistics.median(warm):.2f} s {_fmt(warm)}; "
              f"ratio {statistics.median(cold) / statistics.median(warm):.1f}x")


def _fmt(xs: list[float]) -> str:
    return "[" + ", ".join(f"{x:.2f}" for x in xs) + "]"


def _status_runs(db: Path, n: int) -> tuple[list[float], list[float]]:
    """Wall seconds of `cluster status` without and with the feature cache file."""
    import os
    import subprocess

    from db.store import open_store
    from screeners.feature_cache import cache_path

    s = open_store(db, create=False)
    side = cache_path(s)
    s.close()
    keep = side.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "cli", "status", "--estimate", "--db", str(db), "--json"]
    cold, warm = [], []
    outputs = set()
    for i in range(2 * n):
        is_cold = (i % 2 == 0) if (i // 2) % 2 == 0 else (i % 2 == 1)  # swap order each pair
        if is_cold:
            side.unlink(missing_ok=True)
        else:
            side.write_bytes(keep)
        t0 = time.perf_counter()
        r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        (cold if is_cold else warm).append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"cluster status failed: {r.stderr.strip()}")
        outputs.add(r.stdout)
    if len(outputs) != 1:
        print("warning: cold and warm `cluster status` printed different results")
    return cold, warm


if __name__ == "__main__":
    main()
