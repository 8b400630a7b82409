"""Does the direct liblinear call (`screeners.prioritiser.fitting`) save enough
per fit to keep?

Runs the default model's simulation on a few of the labelled sets in
../shared/data/screening three times per seed in one process: with the direct
fits; through scikit-learn's public `LinearSVC` and `ComplementNB`; and with
the public `LinearSVC` but the direct naive Bayes (numpy alone, no private
call), the order rotated every run so all share whatever else the machine is
doing. The features are fitted once per set and shared, so the times are the
replay's fits alone. Prints per set the median CPU seconds of each, the ratios
to the direct fits, the fits per simulation and the saving per fit; then the
one-off cost of importing the public classes in a fresh interpreter. Prints
figures, never pass/fail.

    python bench/bench_fitting.py [--sets A,B] [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data" / "screening"
SETS = ("Cohen_2006_OralHypoglycemics", "Cohen_2006_ADHD", "Nagtegaal_2019", "Kitchenham_2010")


SIDES = {"direct": (True, True), "public": (False, False), "public SVM": (False, True)}


def _run(ds, model, X, seed: int, side: str) -> tuple[float, float, int, tuple[str, ...]]:
    from screeners.prioritiser import fitting
    from screeners.prioritiser.simulation import Schedule, run_simulation

    fitting._CHECKED.clear()
    svc, cnb = SIDES[side]
    if not svc:
        fitting._CHECKED.put("svc", None, False)
    if not cnb:
        fitting._CHECKED.put("cnb", None, False)
    w0, c0 = time.perf_counter(), time.process_time()
    r = run_simulation(ds, model, seed, Schedule(), X)
    return time.perf_counter() - w0, time.process_time() - c0, r.n_fits, r.order


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", default="1,2,3")
    args = ap.parse_args()
    if not SHARED.exists():
        print("../shared/data/screening is absent: benchmark skipped")
        return
    from screeners.prioritiser.presets import resolve_model
    from screeners.prioritiser.simulation import load_dataset

    model = resolve_model("default")
    seeds = [int(s) for s in args.seeds.split(",")]
    head = (f"{'set':32s} {'records':>7s} {'fits':>5s} | {'cpu s: direct':>13s} {'public':>7s} "
            f"{'public SVM':>10s} | {'ratio: public':>13s} {'public SVM':>10s} | "
            f"{'saved ms/fit':>12s} {'same order':>10s}")
    print(head)
    print("-" * len(head))
    ratios: dict[str, list[float]] = {"public": [], "public SVM": []}
    order = list(SIDES)
    k = 0
    for name in [s for s in args.sets.split(",") if s]:
        ds = load_dataset(SHARED / f"{name}.csv")
        X = model.feature.fit_transform(ds.texts, ds.titles)
        for side in order:  # warm-up: imports, first-use checks
            _run(ds, model, X, seeds[0], side)
        cpu: dict[str, list[float]] = {side: [] for side in order}
        fits, same = [], 0
        for seed in seeds:
            runs = {}
            for side in order[k % 3:] + order[:k % 3]:
                runs[side] = _run(ds, model, X, seed, side)
            k += 1
            for side in order:
                cpu[side].append(runs[side][1])
            fits.append(runs["direct"][2])
            same += runs["direct"][3] == runs["public"][3]
        med = {side: statistics.median(v) for side, v in cpu.items()}
        f = statistics.median(fits)
        d = med["direct"]
        for side in ratios:
            ratios[side].append(med[side] / d)
        print(f"{name:32s} {len(ds.labels):7d} {f:5.0f} | {d:13.2f} {med['public']:7.2f} "
              f"{med['public SVM']:10.2f} | {med['public'] / d:12.2f}x "
              f"{med['public SVM'] / d:9.2f}x | {1000 * (med['public'] - d) / f:12.1f} "
              f"{same:>4d} of {len(seeds)}", flush=True)
    print("-" * len(head))
    print(f"median ratio to the direct fits: public {statistics.median(ratios['public']):.2f}x, "
          f"public SVM with direct naive Bayes {statistics.median(ratios['public SVM']):.2f}x "
          f"(per set: medians over seeds {args.seeds})")
    imp = []
    for _ in range(5):
        r = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); "
                            "import sklearn.svm, sklearn.naive_bayes; "
                            "print(time.perf_counter() - t)"], capture_output=True, text=True)
        imp.append(float(r.stdout))
    print(f"importing LinearSVC and ComplementNB in a fresh interpreter: median "
          f"{statistics.median(imp):.2f} s of 5")


if __name__ == "__main__":
    main()
