"""Simulation benchmark on the nine labelled datasets in ../shared/data/screening.

Runs the prioritiser's simulation (the library function behind `cluster
simulate`) with seeds 1-5 on every set and prints WSS@95 beside ASReview 3.0.8's
default model (elas_u4: TF-IDF 1-2 grams + linear SVM), plus WSS@100, RRF@10 and
the wall and CPU time of each simulation. Every WSS is the published
asreview-insights definition (`screeners/prioritiser/metrics.py`). ASReview's
figures in the first table are stored numbers (the mean over its seeds 1-5,
computed from its project files with that definition when the benchmark was
first written); --with-asreview recomputes them: it builds a separate virtual
environment under bench/out/, installs asreview==3.0.8 there, runs its
`simulate` against `cluster simulate` on the same sets and seeds, whole commands
run alternately, and prints per-set medians, time ratios and both tools' WSS@95
from the same function. Prints figures, never pass/fail.

    python bench/bench_simulate.py [--sets A,B] [--seeds 1,2,3,4,5] [--model default]
                                   [--with-asreview] [--asreview-sets all|A,B]
                                   [--asreview-seeds 1] [--no-table]
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

ASREVIEW = {  # WSS@95 (asreview-insights definition), ASReview 3.0.8 elas_u4, seeds 1-5
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
    from screeners.prioritiser.presets import resolve_model
    from screeners.prioritiser.simulation import Schedule, load_dataset, run_simulation

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
    from screeners.prioritiser.simulation import Schedule

    sch = Schedule()
    print(f"\nModel {model}; seeds {','.join(map(str, seeds))}; retraining schedule: after every "
          f"max(1, floor({sch.growth:.1%} of labelled x records / {sch.per_records:,})) labels\n")
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
    print("WSS@95 as asreview-insights defines it in both columns (ASReview's stored, "
          "seeds 1-5; --with-asreview recomputes it with the same function)")


def _ensure_asreview() -> Path | None:
    venv = OUT / "asreview-venv"
    py = venv / "bin" / "python"
    if not py.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(py), "-c", "import asreview"], capture_output=True).returncode != 0:
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", "asreview==3.0.8"])
        if r.returncode != 0:
            return None
    return venv / "bin" / "asreview"


def _timed(cmd: list[str], cwd: Path | None = None, env: dict | None = None
           ) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds of one command run to completion (its children included)."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return wall, cpu, r


def run_asreview(sets: list[str], seeds: list[int], model: str) -> None:
    """ASReview's `simulate` and this project's `cluster simulate`, each a whole
    command (start-up, reading the CSV, features, the replay), run one after the
    other on the same set and seed, the order swapped every run so both sides
    share whatever else the machine is doing. ASReview runs in its own virtual
    environment and is never a dependency."""
    exe = _ensure_asreview()
    if exe is None:
        print("asreview==3.0.8 could not be installed; side-by-side timing skipped")
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    print("\nSide by side, whole commands, alternating (ASReview: 1 prior include + 1 exclude by "
          "--prior-seed, its default model elas_u4, stops when the last include is found; "
          f"ours: cluster simulate --model {model}, same stop)")
    head = (f"{'set':14s} {'records':>7s} | {'ASReview wall':>13s} {'cpu':>6s} | {'ours wall':>9s} "
            f"{'cpu':>6s} | {'ratio wall':>10s} {'cpu':>6s} | {'WSS@95 ASReview':>15s} "
            f"{'ours':>6s}")
    print(head)
    print("-" * len(head))
    ratios_w, ratios_c, k = [], [], 0
    for name in sets:
        csv_path = SHARED / f"{name}.csv"
        a_w, a_c, o_w, o_c, a_wss, o_wss, n = [], [], [], [], [], [], 0
        for seed in seeds:
            out = OUT / f"{name}-{seed}.asreview"
            out.unlink(missing_ok=True)
            asr = [str(exe), "simulate", str(csv_path), "-o", str(out),
                   "--n-prior-included", "1", "--n-prior-excluded", "1",
                   "--prior-seed", str(seed), "--seed", str(seed)]
            ours = [sys.executable, "-m", "cli", "simulate", str(csv_path), "--seed", str(seed),
                    "--model", model, "--json", "--quiet"]
            runs = {}
            # swap who goes first on every run
            for side in (("asr", "ours") if k % 2 == 0 else ("ours", "asr")):
                runs[side] = _timed(asr) if side == "asr" else _timed(ours, ROOT, env)
            k += 1
            for side, (w, c, r) in runs.items():
                if r.returncode != 0:
                    print(f"{name} seed {seed}: {side} failed: "
                          f"{r.stderr.strip().splitlines()[-1:]}")
                    return
            a_w.append(runs["asr"][0])
            a_c.append(runs["asr"][1])
            o_w.append(runs["ours"][0])
            o_c.append(runs["ours"][1])
            a_wss.append(_asreview_wss(out))
            res = json.loads(runs["ours"][2].stdout)
            n = res["records"]
            o_wss.append(res["runs"][0]["wss95"])
            print(f"  {name} seed {seed}: ASReview {runs['asr'][0]:.1f} s, "
                  f"ours {runs['ours'][0]:.1f} s",
                  file=sys.stderr, flush=True)
        aw, ac = statistics.median(a_w), statistics.median(a_c)
        ow, oc = statistics.median(o_w), statistics.median(o_c)
        ratios_w.append(aw / ow)
        ratios_c.append(ac / oc)
        print(f"{ASREVIEW[name][0]:14s} {n:7d} | {aw:13.1f} {ac:6.1f} | {ow:9.1f} {oc:6.1f} | "
              f"{aw / ow:9.1f}x {ac / oc:5.1f}x | {statistics.mean(a_wss):15.3f} "
              f"{statistics.mean(o_wss):6.3f}", flush=True)
    print("-" * len(head))
    print(f"{'median ratio':14s} {'':7s} | {'':13s} {'':6s} | {'':9s} {'':6s} | "
          f"{statistics.median(ratios_w):9.1f}x {statistics.median(ratios_c):5.1f}x")
    print(f"lowest ratio: wall {min(ratios_w):.1f}x, cpu {min(ratios_c):.1f}x; "
          f"medians over seeds {','.join(map(str, seeds))} per set")


def _asreview_wss(project: Path) -> float:
    """WSS@95 of an ASReview project file, by this project's metric code: the labels
    in ASReview's order, its two prior records left out, the unscreened rest as 0."""
    import sqlite3
    import tempfile
    import zipfile

    from screeners.prioritiser import metrics

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
    ap.add_argument("--asreview-sets", default="Cohen_2006_ADHD",
                    help="sets for the side-by-side timing, comma-separated, or all")
    ap.add_argument("--asreview-seeds", help="seeds for the side-by-side timing (default: --seeds)")
    ap.add_argument("--no-table", action="store_true",
                    help="skip the WSS table of our own runs (for the side-by-side timing only)")
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
    if not args.no_table:
        results = run_ours(sets, seeds, args.model, args.jobs)
        print_table(results, args.model, seeds)
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1))
    if args.with_asreview:
        asr_sets = list(ASREVIEW) if args.asreview_sets == "all" else [
            s for s in args.asreview_sets.split(",") if s]
        asr_seeds = [int(s) for s in (args.asreview_seeds or args.seeds).split(",")]
        run_asreview(asr_sets, asr_seeds, args.model)


if __name__ == "__main__":
    main()
