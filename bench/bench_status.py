"""`cluster status` on a 10,000-record store, as a reviewer runs it: a new process.

Builds the store from ../shared's labelled sets (bench/scale_data.py: tiled
distinct works plus 5 % true duplicates), imports and deduplicates it, and logs
two reviewers' decisions on the first 300 records (includes among them, so an
estimate of the relevant records left can be made). Then runs `cluster status
--json` in fresh processes, first with no feature cache beside the store
(cold), then again (warm), and `cluster status --estimate --json` where the
command has that option. Prints the median wall time and the peak memory of
each, and the sizes of the store and of the feature cache. Figures, never
pass/fail.

    python bench/bench_status.py [--records 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import cache_file, measure  # noqa: E402
from scale_data import SCREENING, write_csv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: the `cluster` of the tree this script is in (run a copy of it in another tree to compare)
CLUSTER = [sys.executable, "-m", "cli"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def timed(args: list[str], db: Path) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak resident MB, stdout) of one `cluster` process.
    On a shared machine the CPU time is the steadier figure."""
    return measure([*CLUSTER, *args, "--db", str(db)])


def build(db: Path, n: int) -> None:
    sys.path.insert(0, str(ROOT))
    from db.store import open_store

    csv_path = db.with_suffix(".csv")
    write_csv(csv_path, n)
    timed(["import", str(csv_path), "--as", "database", "--source", "Bench", "--quiet"], db)
    timed(["dedup", "--quiet"], db)
    store = open_store(db)
    try:
        with store.transaction():
            store.add_reviewer("alice")
            store.add_reviewer("bob")
            rids = [r[0] for r in store.db.execute(
                "SELECT id FROM records WHERE duplicate_of IS NULL ORDER BY id LIMIT 300")]
            for rid in rids:
                for who in ("alice", "bob"):
                    store.log_event("decision", record_id=rid, reviewer=who,
                                    stage="title-abstract",
                                    value="include" if rid % 25 == 0 else "exclude")
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if not SCREENING.exists():
        print("../shared/data/screening is absent: benchmark skipped")
        return
    help_text = subprocess.run([*CLUSTER, "status", "--help"], capture_output=True, text=True,
                               env=ENV).stdout
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "review.db"
        build(db, args.records)
        cache = cache_file(db)
        rows = []

        def measure(label: str, argv: list[str], cold: bool) -> None:
            walls, cpus, peaks = [], [], []
            for _ in range(args.runs):
                if cold and cache.exists():
                    cache.unlink()
                w, c, m, _ = timed(argv, db)
                walls.append(w)
                cpus.append(c)
                peaks.append(m)
            rows.append((label, statistics.median(walls), statistics.median(cpus), max(peaks)))

        measure("status --json, no feature cache", ["status", "--json"], cold=True)
        measure("status --json, again", ["status", "--json"], cold=False)
        if "--estimate" in help_text:
            measure("status --estimate --json, no feature cache",
                    ["status", "--estimate", "--json"], cold=True)
            measure("status --estimate --json, again", ["status", "--estimate", "--json"],
                    cold=False)
        store_mb = db.stat().st_size / 2**20
        cache_mb = cache.stat().st_size / 2**20 if cache.exists() else 0.0
        print(f"records {args.records}, runs {args.runs} "
              "(median wall, median CPU, highest peak memory)")
        for label, w, c, m in rows:
            print(f"  {label:<45} {w:6.2f} s  {c:6.2f} s CPU  {m:7.0f} MB")
        print(f"  store {store_mb:.1f} MB, feature cache {cache_mb:.1f} MB")


if __name__ == "__main__":
    main()
