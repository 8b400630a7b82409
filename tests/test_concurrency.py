"""Two reviewers screening one store at the same time, from two processes (WAL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from screenkit import TA, make_review

from db.state import EXCLUDED, INCLUDED, stage_states
from db.store import open_store
from screeners.agreement import agreement

ROOT = Path(__file__).resolve().parents[1]

WORKER = """
import sys
from db.store import open_store
from screeners.decisions import decide
store = open_store(sys.argv[1], create=False)
# what is checked is that concurrent writers lose or duplicate nothing; skipping the
# per-commit disk flush (WAL stays safe against a killed process) keeps the test fast
store.db.execute("PRAGMA synchronous=NORMAL")
reviewer, n = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()  # start together
for rid in range(1, n + 1):
    decide(store, rid, reviewer, "title-abstract", "include" if rid % 3 else "exclude")
print("done", flush=True)
"""


def test_two_processes_deciding_500_records_each_lose_nothing(tmp_path):
    path = tmp_path / "review.db"
    store = open_store(path)
    make_review(store, 500)
    store.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(path), name, "500"], cwd=ROOT,
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for name in ("alice", "bob")]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "done"
    store = open_store(path)
    events = store.events("kind = 'decision'")
    assert len(events) == 1000
    assert len({e["id"] for e in events}) == 1000
    assert {(e["reviewer"], e["record_id"]) for e in events} == {
        (r, i) for r in ("alice", "bob") for i in range(1, 501)}
    states = stage_states(store, TA)
    assert sum(s.status == INCLUDED for s in states.values()) == 334
    assert sum(s.status == EXCLUDED for s in states.values()) == 166
    (pair,) = agreement(store, TA)
    assert (pair.agreements, pair.disagreements) == (500, 0)
