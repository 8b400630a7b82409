"""Benchmark: `cluster demo` wall time per stage, with the services' real rate
limits (NCBI 3 requests/s without a key), against the three-minute budget.

The baseline in the same run is the demo on a tenth of the world (300 works),
so the ratio shows how the time grows with the world. Run from the
repository root:

    python bench/bench_demo.py [--works 3000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.demo.run import DemoOptions, run_demo  # noqa: E402
from connectors.http import Settings  # noqa: E402

BUDGET = 180.0


def measure(works: int, repeat: int, seed: int) -> tuple[list[float], dict[str, list[float]], dict]:
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    last: dict = {}
    for i in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            # no key: NCBI allows 3 requests/s, the default limits of every service apply
            result = run_demo(Path(tmp) / "demo", Settings(email="bench@example.org"),
                              DemoOptions(seed=seed, works=works))
        totals.append(result.seconds)
        for k, v in result.stage_seconds.items():
            stages.setdefault(k, []).append(v)
        last = result.to_dict()
    return totals, stages, last


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--works", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    base_totals, _, base = measure(300, args.repeat, args.seed)
    totals, stages, last = measure(args.works, args.repeat, args.seed)
    s = last["flow"]["screening"]
    print(f"demo, {args.works} works ({last['world']['index_articles']} index articles), "
          f"{args.repeat} runs: {s['screened']} records screened, {last['flow']['total_studies']} "
          f"included; HTTP requests {sum(last['requests'].values())} {last['requests']}")
    for name, values in stages.items():
        print(f"  {name:<15} median {statistics.median(values):6.2f} s")
    med = statistics.median(totals)
    base_med = statistics.median(base_totals)
    print(f"  {'total':<15} median {med:6.2f} s  (runs: {', '.join(f'{t:.1f}' for t in totals)})")
    print(f"baseline: demo on 300 works ({base['world']['index_articles']} index articles): "
          f"median {base_med:.2f} s")
    print(f"ratio to baseline: {med / base_med:.2f}; share of the {BUDGET:.0f} s budget: "
          f"{med / BUDGET:.2f}")


if __name__ == "__main__":
    main()
