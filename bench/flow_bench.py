"""How long `compute_flow` and the diagram take as a review grows.

Builds in-memory stores shaped like the review this tool follows (index
articles, CLUSTER routes, dual title-abstract screening, ~2 % to full text)
at several sizes, and prints medians of 3 runs: the two `stage_states` calls
every flow needs (the baseline: the floor of any flow computation), the whole
`compute_flow`, and laying out plus writing the SVG. Prints, never asserts.

Run from the repository root: python bench/flow_bench.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.record import Record  # noqa: E402
from db.diagram import layout, to_svg  # noqa: E402
from db.flow import compute_flow  # noqa: E402
from db.state import stage_states  # noqa: E402
from db.store import open_store  # noqa: E402

TA, FT = "title-abstract", "full-text"
ROUTES = (("cited-by", "OpenAlex"), ("references", "Crossref"), ("lead-author", "PubMed"),
          ("related", "PubMed"))


def build(n: int):
    store = open_store(None)
    with store.transaction():
        for i in range(n):
            rid = store.add_record(Record(title=f"record {i}"))
            if i < 42:
                store.add_source(rid, None, role="index", service="previous review")
            else:
                strategy, service = ROUTES[i % 4]
                store.add_source(rid, None, role="other", service=service, strategy=strategy)
            value = "include" if i < 42 or i % 50 == 0 else "exclude"
            for who in ("ann", "bob"):
                store.log_event("decision", record_id=rid, reviewer=who, stage=TA, value=value)
            if value == "include":
                for who in ("ann", "bob"):
                    store.log_event("decision", record_id=rid, reviewer=who, stage=FT,
                                    value="include" if i % 3 else "exclude",
                                    reason=None if i % 3 else "wrong outcome")
    return store


def median_time(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    print(f"{'records':>8} {'events':>8} {'states (s)':>11} {'flow (s)':>9} {'ratio':>6} "
          f"{'svg (s)':>8}")
    for n in (3_000, 10_000, 20_000):
        store = build(n)
        events = store.db["events"].count
        base = median_time(lambda: (stage_states(store, TA), stage_states(store, FT)))
        flow_t = median_time(lambda: compute_flow(store, "screen-other"))
        fl = compute_flow(store, "screen-other")
        svg_t = median_time(lambda: to_svg(layout(fl)))
        print(f"{n:>8,} {events:>8,} {base:>11.3f} {flow_t:>9.3f} {flow_t / base:>6.2f} "
              f"{svg_t:>8.4f}")
        store.close()


if __name__ == "__main__":
    main()
