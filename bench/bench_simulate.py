"""Simulation benchmark on the nine labelled datasets in ../shared/data/screening.

Runs the prioritiser's simulation (the library function behind `cluster
simulate`) with seeds 1-5 on every set and prints WSS@95 beside ASReview 3.0.8's
default model (elas_u4: TF-IDF 1-2 grams + linear SVM, 5 seeds, figures from
the project's issue), plus WSS@100, RRF@10 and the wall and CPU time of each
simulation. With --with-asreview it also builds a separate virtual environment
under bench/out/, installs asreview==3.0.8 there and times its `simulate` on
the same sets for a side-by-side comparison. Prints figures, never pass/fail.

    python bench/bench_simulate.py [--sets A,B] [--seeds 1,2,3,4,5] [--model default]
                                   [--with-asreview] [--asreview-sets Cohen_2006_ADHD]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "screening"
OUT = ROOT / "bench" / "out"

ASREVIEW = {  # WSS@95, ASReview 3.0.8 elas_u4, 5 seeds
    "van_de_Schoot_2017": ("PTSD", 0.897),
    "Appenzeller-Herzog_2019": ("Wilson", 0.822),
    "Nagtegaal_2019": ("Nagtegaal", 0.719),
    "Bannach-Brown_2019": ("Bannach-Brown", 0.425),
    "Kitchenham_2010": ("Kitchenham", 0.710),
    "Cohen_2006_ACEInhibitors": ("ACE", 0.690),
    "Cohen_2006_ADHD": ("ADHD", 0.538),
    "Cohen_2006_OralHypoglycemics": ("OralHypo", 0.177),
    "Cohen_2006_ProtonPumpInhibitors": ("PPI", 0.444),
}


def _one(task: tuple[str, int, str]) -> tuple[str, int, int, dict]:
    from screeners.components import resolve_model
    from screeners.simulate import Schedule, load_dataset, run_simulation

    name, seed, model = task
    ds = load_dataset(SHARED / f"{name}.csv")
    w0, c0 = time.perf_counter(), time.process_time()
    # features are fitted inside each run so its time is a whole simulation
    r = run_simulation(ds, resolve_model(model), seed, Schedule())
    run = {**r.metrics, "wall": time.perf_counter() - w0, "cpu": time.process_time() - c0,
           "fits": r.n_fits, "seed": seed}
    print(f"  done {name} seed {seed}: WSS@95 {r.metrics['wss95']:.3f}, "
          f"{run['wall']:.1f} s", file=sys.stderr, flush=True)
    return name, len(ds.labels), ds.n_included, run


def run_ours(sets: list[str], seeds: list[int], model: str, jobs: int) -> dict[str, dict]:
    from concurrent.futures import ProcessPoolExecutor

    tasks = [(name, seed, model) for name in sets for seed in seeds]
    results: dict[str, dict] = {name: {"runs": []} for name in sets}
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for name, n, incl, run in pool.map(_one, tasks):
            results[name].update(n=n, incl=incl)
            results[name]["runs"].append(run)
    return results


def print_table(results: dict[str, dict], model: str, seeds: list[int]) -> None:
    print(f"\nModel {model}; seeds {','.join(map(str, seeds))}; retraining schedule: after every "
          "max(1, floor(1% of labelled)) labels (every label until 200)\n")
    head = (f"{'set':14s} {'records':>7s} {'incl':>4s} | {'ASReview':>8s} {'ours WSS@95':>11s} "
            f"{'(min-max)':>13s} {'diff':>6s} | {'WSS@100':>7s} {'RRF@10':>6s} {'ATD':>6s} | "
            f"{'wall s/sim':>10s} {'cpu s/sim':>9s} {'fits':>5s}")
    print(head)
    print("-" * len(head))
    ours_means, asr_means, wins = [], [], 0
    for name, res in results.items():
        label, asr = ASREVIEW[name]
        runs = res["runs"]
        w = [r["wss95"] for r in runs]
        mean = statistics.mean(w)
        ours_means.append(mean)
        asr_means.append(asr)
        wins += mean >= asr
        print(f"{label:14s} {res['n']:7d} {res['incl']:4d} | {asr:8.3f} {mean:11.3f} "
              f"({min(w):.3f}-{max(w):.3f}) {mean - asr:+6.3f} | "
              f"{statistics.mean(r['wss100'] for r in runs):7.3f} "
              f"{statistics.mean(r['rrf10'] for r in runs):6.3f} "
              f"{statistics.mean(r['td_mean'] for r in runs):6.1f} | "
              f"{statistics.median(r['wall'] for r in runs):10.2f} "
              f"{statistics.median(r['cpu'] for r in runs):9.2f} "
              f"{statistics.median(r['fits'] for r in runs):5.0f}")
    print("-" * len(head))
    print(f"{'mean':14s} {'':7s} {'':4s} | {statistics.mean(asr_means):8.3f} "
          f"{statistics.mean(ours_means):11.3f} {'':13s} "
          f"{statistics.mean(ours_means) - statistics.mean(asr_means):+6.3f}")
    print(f"\nsets where ours >= ASReview: {wins} of {len(results)}")


def run_asreview(sets: list[str], seeds: list[int], ours: dict[str, dict]) -> None:
    """Time ASReview's own simulate in a separate environment (never a dependency)."""
    venv = OUT / "asreview-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(py), "-c", "import asreview"], capture_output=True).returncode != 0:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "asreview==3.0.8"])
        if r.returncode != 0:
            print("asreview==3.0.8 could not be installed; side-by-side timing skipped")
            return
    exe = venv / "bin" / "asreview"
    import resource

    print("\nSide-by-side timing, median over seeds (ASReview: 1 prior include + 1 exclude by "
          "--prior-seed, its default model, stops when the last include is found)")
    print(f"{'set':14s} {'ASReview wall':>13s} {'cpu':>6s} | {'ours wall':>9s} {'cpu':>6s} | "
          f"{'speed-up wall':>13s} {'cpu':>6s} | {'WSS@95 ASReview':>15s} {'ours':>6s}  (same seeds,"
          " same metric code)")
    for name in sets:
        walls, cpus, wss = [], [], []
        for seed in seeds:
            out = OUT / f"{name}-{seed}.asreview"
            out.unlink(missing_ok=True)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            r = subprocess.run([str(exe), "simulate", str(SHARED / f"{name}.csv"), "-o", str(out),
                                "--n-prior-included", "1", "--n-prior-excluded", "1",
                                "--prior-seed", str(seed), "--seed", str(seed)],
                               capture_output=True, text=True)
            walls.append(time.perf_counter() - t0)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            if r.returncode != 0:
                print(f"{name}: asreview simulate failed: {r.stderr.strip().splitlines()[-1:]}")
                return
            wss.append(_asreview_wss(out))
        ours_runs = ours.get(name, {}).get("runs", [])
        ow = statistics.median(x["wall"] for x in ours_runs) if ours_runs else float("nan")
        oc = statistics.median(x["cpu"] for x in ours_runs) if ours_runs else float("nan")
        aw, ac = statistics.median(walls), statistics.median(cpus)
        ours_wss = statistics.mean(x["wss95"] for x in ours_runs) if ours_runs else float("nan")
        print(f"{ASREVIEW[name][0]:14s} {aw:13.1f} {ac:6.1f} | {ow:9.1f} {oc:6.1f} | "
              f"{aw / ow:12.1f}x {ac / oc:5.1f}x | {statistics.mean(wss):15.3f} {ours_wss:6.3f}")


def _asreview_wss(project: Path) -> float:
    """WSS@95 of an ASReview project file, by this project's metric code: the labels
    in ASReview's order, its two prior records left out, the unscreened rest as 0."""
    import sqlite3
    import tempfile
    import zipfile

    from screeners import metrics

    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(project) as zf:
        zf.extract("results.db", tmp)
        conn = sqlite3.connect(Path(tmp) / "results.db")
        rows = conn.execute("SELECT label, querier FROM results ORDER BY rowid").fetchall()
        n = conn.execute("SELECT count(*) FROM record").fetchone()[0]
        conn.close()
    labels = [int(lab) for lab, querier in rows if querier is not None]
    n_prior = sum(1 for _, querier in rows if querier is None)
    return metrics.wss(labels + [0] * (n - n_prior - len(labels)), 0.95)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(ASREVIEW))
    ap.add_argument("--seeds", default="1,2,3,4,5")
    ap.add_argument("--model", default="default")
    ap.add_argument("--with-asreview", action="store_true")
    ap.add_argument("--asreview-sets", default="Cohen_2006_ADHD")
    ap.add_argument("--jobs", type=int, default=1,
                    help="simulations run in parallel (wall times then include contention)")
    ap.add_argument("--json", help="also write the raw results to this file")
    args = ap.parse_args()
    if not SHARED.exists():
        print(f"../shared/data/screening is absent: benchmark skipped")
        return
    sets = [s for s in args.sets.split(",") if s]
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"{os.cpu_count()} CPUs, {args.jobs} simulation(s) at a time; wall times on a shared "
          "machine vary, CPU times less so")
    results = run_ours(sets, seeds, args.model, args.jobs)
    print_table(results, args.model, seeds)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    if args.with_asreview:
        run_asreview([s for s in args.asreview_sets.split(",") if s], seeds, results)


if __name__ == "__main__":
    main()
