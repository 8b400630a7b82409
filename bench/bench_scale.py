"""Wall time and peak memory of each command on large stores (50k, 200k, 1M records).

For each size, writes a CSV of that many records (bench/scale_data.py: the nine
labelled sets of ../shared tiled into distinct works, plus 5 % true duplicates),
then runs, each in a fresh process as a reviewer would: `cluster import`,
`cluster dedup`, `cluster status`, `cluster status --estimate` (fits the
features and writes their cache), the start of a screening sitting (the
ranking and the first card, as `cluster screen` builds them) and a burst of
decisions (the reviewer's wait per key press, and how long the re-rank behind
it takes), `cluster flow --json`, `cluster report` and `cluster export`.
Prints per command the wall time, CPU time, peak resident memory (of that
process alone) and the wall time per 1,000 records, then the sizes of the
store and of the feature cache, as Markdown. Figures, never pass/fail; on a
shared machine the CPU time is the steadier figure.

    python bench/bench_scale.py [--sizes 50000,200000] [--decisions 20] [--skip status-estimate]
    python bench/bench_scale.py --store STORE [--sittings 2] [--with-cache] [--dir DIR]

Sizes are parameters: 1000000 is possible (allow an hour and some GB of disk).
Run a copy of this folder inside another tree of the project to measure that
tree's code (the commands run with its root first on the path).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_data import SCREENING, write_csv  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
ENV.pop("CLUSTER_DB", None)

#: the screening sitting, in a process of its own: start-up to the first card, the
#: first ranking computed (in the background where the session has a thread), then
#: key presses (decide, next card, progress line) and the re-rank each one asks for
_SITTING = """
import json, resource, statistics, sys, time
t0 = time.perf_counter()
from db.store import open_store
from screeners.session import ScreeningSession
store = open_store(sys.argv[1])
session = ScreeningSession(store, "alice", "title-abstract")
card = session.card()
first = time.perf_counter() - t0
ranker = session._ranker
def background():
    # a thread or a process of its own (older code: a thread alone)
    return getattr(ranker, "background", ranker._thread is not None)
while ranker.generation == 0 and background() and ranker.failure is None:
    time.sleep(0.002)
ranked = time.perf_counter() - t0
steps, reranks = [], []
asked = getattr(ranker, "handled", None)
for i in range(int(sys.argv[2])):
    gen, handled = ranker.generation, getattr(ranker, "handled", 0)
    t = time.perf_counter()
    session.decide("include" if i % 5 == 1 else "exclude")
    session.card()
    session.progress()
    steps.append(time.perf_counter() - t)
    # until the ranker has answered: a new ranking, or (where the session can tell)
    # the last one standing until the next batch of decisions
    while background() and (
            ranker.generation == gen if asked is None else ranker.handled == handled):
        time.sleep(0.002)
    reranks.append(time.perf_counter() - t)
in_process = getattr(ranker, "process", None) is not None
session.close()
own = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"first_card": first, "first_ranking": ranked,
                  "step_median": statistics.median(steps),
                  "rerank_median": statistics.median(reranks), "rerank_max": max(reranks),
                  "rankings": ranker.generation, "in_process": in_process,
                  "own_cpu": own.ru_utime + own.ru_stime, "own_mb": own.ru_maxrss / 1024,
                  "ranker_cpu": kids.ru_utime + kids.ru_stime,
                  "ranker_mb": kids.ru_maxrss / 1024}))
"""


def sitting(db: Path, decisions: int) -> list[tuple[str, float, float, float, str]]:
    """The sitting's rows: start-up, first ranking, key press, re-rank."""
    w, c, m, out = measure([sys.executable, "-c", _SITTING, str(db), str(decisions)])
    r = json.loads(out)
    rows = [("screen start-up", r["first_card"], c, m, "to the first card"),
            ("screen first ranking", r.get("first_ranking", r["first_card"]), float("nan"), m,
             "computed (in the background)"),
            ("screen key press", r["step_median"], float("nan"), m, f"median of {decisions}"),
            ("screen re-rank", r["rerank_median"], float("nan"), m,
             f"median of {decisions}, slowest {r['rerank_max']:.2f} s"
             + (f", {r['rankings']} rankings computed" if "rankings" in r else ""))]
    if r.get("in_process"):
        # the CPU and peak above are the sitting's with its ranking process (reaped
        # by it); here each on its own
        rows += [("screen sitting alone", float("nan"), r["own_cpu"], r["own_mb"],
                  "the sitting's process, without its ranking process"),
                 ("screen ranking process", float("nan"), r["ranker_cpu"], r["ranker_mb"],
                  "the process computing the rankings")]
    return rows


def cache_file(db: Path) -> Path:
    for suffix in (".features.sqlite", ".features.npz"):
        if db.with_name(db.name + suffix).exists():
            return db.with_name(db.name + suffix)
    return db.with_name(db.name + ".features.sqlite")


def measure(argv: list[str]) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak MB, stdout) of one process (its own peak, from wait4)."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    assert p.stdout is not None and p.stderr is not None
    out = p.stdout.read().decode()
    err = p.stderr.read().decode()
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"{' '.join(argv[2:4])} failed: {err.strip()[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def cluster(*args: str, db: Path) -> tuple[float, float, float, str]:
    return measure([sys.executable, "-m", "cli", *args, "--db", str(db)])


def run_size(n: int, tmp: Path, decisions: int, skip: set[str]) -> list[tuple[str, float, float,
                                                                             float, str]]:
    db = tmp / f"review{n}.db"
    src = tmp / f"records{n}.csv"
    t = time.perf_counter()
    summary = write_csv(src, n)
    print(f"{n} rows written in {time.perf_counter() - t:.0f} s ({summary.duplicates} duplicates, "
          f"{src.stat().st_size / 2**20:.0f} MB)", file=sys.stderr)
    rows = []

    def step(name: str, *args: str, note: str = "") -> str:
        if name in skip:
            return ""
        w, c, m, out = cluster(*args, db=db)
        rows.append((name, w, c, m, note))
        print(f"  {n} {name}: {w:.1f} s, {m:.0f} MB", file=sys.stderr)
        return out

    step("import", "import", str(src), "--as", "database", "--source", "Bench", "--quiet")
    out = step("dedup", "dedup", "--quiet", "--json")
    cluster("reviewers", "add", "alice", "bob", db=db)
    cluster("protocol", "set", "--question", "post-traumatic stress trajectories after trauma",
            "--reviewers-per-record", "1", db=db)
    step("status", "status", "--json")
    help_text = cluster("status", "--help", db=db)[3]
    if "--estimate" in help_text:
        step("status-estimate", "status", "--estimate", "--json", note="fits, writes the cache")
    if "screen" not in skip:
        rows += sitting(db, decisions)
    step("status, decided", "status", "--json")
    step("flow", "flow", "--json")
    step("report", "report")
    step("export", "export", "--format", "csv", "-o", str(tmp / f"out{n}.csv"))
    cache = cache_file(db)
    rows.append(("store size (MB)", db.stat().st_size / 2**20, float("nan"), float("nan"), ""))
    rows.append(("feature cache (MB)", cache.stat().st_size / 2**20 if cache.exists() else 0.0,
                 float("nan"), float("nan"), ""))
    for p in (src, db, cache, tmp / f"out{n}.csv"):
        if p.exists():
            p.unlink()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="50000,200000",
                    help="comma-separated record counts (1000000 works too, slowly)")
    ap.add_argument("--decisions", type=int, default=20)
    ap.add_argument("--skip", default="", help="comma-separated steps to leave out")
    ap.add_argument("--dir", default=None, help="work folder (default: a temporary one)")
    ap.add_argument("--store", default=None,
                    help="only screening sittings, on a copy of this imported and "
                         "deduplicated store: --sittings of them in turn, the first "
                         "without a feature cache")
    ap.add_argument("--sittings", type=int, default=2)
    ap.add_argument("--with-cache", action="store_true",
                    help="copy the store's feature cache along (the first sitting then "
                         "reads its term counts instead of counting every text)")
    args = ap.parse_args()
    if args.store:
        sittings_only(Path(args.store), args.sittings, args.decisions, args.dir, args.with_cache)
        return
    if not SCREENING.exists():
        print("../shared/data/screening is absent: benchmark skipped")
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    skip = {s for s in args.skip.split(",") if s}
    results: dict[int, list] = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n in sizes:
            results[n] = run_size(n, Path(tmp), args.decisions, skip)
    print("| records | command | wall s | CPU s | peak MB | wall ms / 1,000 records | note |")
    print("|---:|---|---:|---:|---:|---:|---|")
    for n, rows in results.items():
        for name, w, c, m, note in rows:
            size_row = name.endswith("(MB)")
            per = "" if size_row else f"{w / n * 1e6:.1f}"
            print(f"| {n:,} | {name} | {w:.2f} | {'' if c != c else f'{c:.1f}'} | "
                  f"{'' if m != m else f'{m:.0f}'} | {per} | {note} |")


def sittings_only(store: Path, n: int, decisions: int, where: str | None,
                  with_cache: bool = False) -> None:
    """Screening sittings one after another on a copy of `store` (its feature
    cache left behind unless `with_cache`), then the sizes of the store and the
    cache."""
    import shutil

    with tempfile.TemporaryDirectory(dir=where) as tmp:
        db = Path(tmp) / store.name
        shutil.copy(store, db)
        if with_cache and cache_file(store).exists():
            shutil.copy(cache_file(store), cache_file(db))
        records = int(subprocess.run(
            [sys.executable, "-c", "import sqlite3, sys; print(sqlite3.connect(sys.argv[1])"
             ".execute('SELECT count(*) FROM records').fetchone()[0])", str(db)],
            capture_output=True, text=True, check=True).stdout)
        print("| records | sitting | step | wall s | CPU s | peak MB | note |")
        print("|---:|---:|---|---:|---:|---:|---|")
        for k in range(1, n + 1):
            for name, w, c, m, note in sitting(db, decisions):
                print(f"| {records:,} | {k} | {name} | {w:.2f} | "
                      f"{'' if c != c else f'{c:.1f}'} | {m:.0f} | {note} |", flush=True)
        cache = cache_file(db)
        print(f"\nstore {db.stat().st_size / 2**20:.1f} MB, feature cache "
              f"{cache.stat().st_size / 2**20 if cache.exists() else 0:.1f} MB")


if __name__ == "__main__":
    main()
