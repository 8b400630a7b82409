"""How long the reviewer waits between a key press and the next card.

A review the size of the compassion-training one (2,991 records), with two
reviewers part-way through title-abstract screening. Times, per key press:
the decision written alone (baseline: one `decide` call), then the whole
step the screen takes (decide, pick the next record, build its card and the
progress line). Prints medians and their ratio; no pass/fail.

Run from the repository root: python bench/screen_latency.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from base.record import Record  # noqa: E402
from db.store import open_store  # noqa: E402
from screeners.decisions import decide  # noqa: E402
from screeners.session import ScreeningSession  # noqa: E402

N_RECORDS, N_DONE, N_TIMED = 2991, 1500, 40


def build(path: Path):
    store = open_store(path)
    with store.transaction():
        store.add_reviewer("alice")
        store.add_reviewer("bob")
        for i in range(N_RECORDS):
            store.add_record(Record(title=f"Record {i} on compassion training",
                                    abstract="Words about care and staff. " * 30, year=2010))
        for rid in range(1, N_DONE + 1):
            for who in ("alice", "bob"):
                store.log_event("decision", record_id=rid, reviewer=who, stage="title-abstract",
                                value="include" if rid % 20 == 0 else "exclude")
    return store


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = build(Path(tmp) / "review.db")
        store.close()
        store = open_store(Path(tmp) / "review.db")
        base = []
        for rid in range(N_DONE + 1, N_DONE + 1 + N_TIMED):
            t = time.perf_counter()
            decide(store, rid, "bob", "title-abstract", "exclude")
            base.append(time.perf_counter() - t)
        session = ScreeningSession(store, "alice", "title-abstract")
        steps = []
        for _ in range(N_TIMED):
            t = time.perf_counter()
            session.decide("exclude")
            session.card()
            session.progress()
            steps.append(time.perf_counter() - t)
        session.close()
        b, s = statistics.median(base), statistics.median(steps)
        print(f"records {N_RECORDS}, decided by both {N_DONE}, key presses timed {N_TIMED}")
        print(f"baseline decide() alone      median {b * 1000:8.1f} ms")
        print(f"screen step (decide+next+card+progress) median {s * 1000:8.1f} ms")
        print(f"ratio step / baseline        {s / b:8.1f}")


if __name__ == "__main__":
    main()
