"""Rankings computed in a process of their own: the same order as in place, no
key press waiting on a fit, and no process left behind however the sitting ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from screenkit import TA, make_review

import screeners.session as session_module
from db.store import open_store
from screeners import ranking_process
from screeners.session import ScreeningSession


def _wait(cond, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # a zombie is gone too, as far as a reviewer can tell: reaped by now or never
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def any_size(monkeypatch):
    """Every store on disk is ranked in a process, however small."""
    monkeypatch.setattr(session_module, "PROCESS_FROM", 0)
    # the first ranking may take long on a loaded machine: the sitting waits for it here
    monkeypatch.setattr(session_module, "STARTUP_WAIT", 60.0)


def _in_place_order(tmp_path, n: int, decisions: list[str]) -> tuple[list[int], float | None]:
    store = open_store(tmp_path / "same.db")
    make_review(store, n)
    s = ScreeningSession(store, "alice", TA, background=False)
    for value in decisions:
        s.decide(value)
    order, left = s._ranker.snapshot()
    s.close()
    store.close()
    return order, left


def test_a_process_ranks_as_the_sitting_would_in_place(tmp_path, any_size):
    decisions = ["include", "exclude", "exclude"]
    expected, expected_left = _in_place_order(tmp_path, 12, decisions)
    store = open_store(tmp_path / "review.db")
    make_review(store, 12)
    s = ScreeningSession(store, "alice", TA)
    ranker = s._ranker
    assert ranker.process is not None and ranker._thread is None
    pid = ranker.process.pid
    assert pid != os.getpid() and ranker.generation == 1
    for value in decisions:
        handled = ranker.handled
        s.decide(value)
        assert _wait(lambda: ranker.handled > handled)
    order, left = ranker.snapshot()
    assert (order, left) == (expected, expected_left)
    assert ranker.generation == 4 and ranker.failure is None
    assert s.current == expected[0]
    s.close()
    assert _gone(pid) and ranker.process is not None and not ranker.process.alive()
    store.close()


def test_small_stores_and_stand_ins_are_ranked_on_a_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(session_module, "STARTUP_WAIT", 60.0)
    store = open_store(tmp_path / "review.db")
    make_review(store, 6)
    s = ScreeningSession(store, "alice", TA)  # fewer records than PROCESS_FROM
    assert s._ranker.process is None and s._ranker._thread is not None
    s.close()
    monkeypatch.setattr(session_module, "PROCESS_FROM", 0)
    import screeners.prioritise as prioritise

    real = prioritise.rank
    # a stand-in for the model that another interpreter would not have: a thread
    monkeypatch.setattr(prioritise, "rank", lambda *a: real(*a))
    s = ScreeningSession(store, "alice", TA)
    assert s._ranker.process is None and s._ranker._thread is not None
    assert s._ranker.generation == 1
    s.close()
    store.close()


def test_a_thread_ranks_when_no_process_can_be_started(tmp_path, any_size, monkeypatch):
    def refused(*args, **kwargs):
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(ranking_process.subprocess, "Popen", refused)
    store = open_store(tmp_path / "review.db")
    make_review(store, 8)
    s = ScreeningSession(store, "alice", TA)
    assert s._ranker.process is None and s._ranker._thread is not None
    assert s._ranker.generation == 1 and s._ranker.failure is None
    s.close()
    store.close()


def test_a_thread_takes_over_when_the_process_dies(tmp_path, any_size):
    store = open_store(tmp_path / "review.db")
    make_review(store, 8)
    s = ScreeningSession(store, "alice", TA)
    ranker = s._ranker
    process = ranker.process
    assert process is not None and ranker.generation == 1
    os.kill(process.pid, signal.SIGKILL)
    assert _wait(lambda: ranker._thread is not None)
    assert ranker.process is None and _gone(process.pid)
    s.decide("include")
    s.decide("exclude")
    assert _wait(lambda: ranker.generation >= 3 and not ranker._wanted.is_set())
    assert ranker.failure is None
    s.close()
    store.close()


def test_a_process_that_exits_at_once_is_followed_by_a_thread(tmp_path, any_size, monkeypatch):
    import shutil

    # a child that starts and ends before answering (an interpreter that cannot run it)
    monkeypatch.setattr(ranking_process.sys, "executable", shutil.which("false"))
    store = open_store(tmp_path / "review.db")
    make_review(store, 8)
    s = ScreeningSession(store, "alice", TA)
    ranker = s._ranker
    assert _wait(lambda: ranker.generation >= 1)
    assert ranker.process is None and ranker._thread is not None and ranker.failure is None
    s.decide("include")
    assert _wait(lambda: ranker.generation >= 2)
    s.close()
    store.close()


def test_the_process_reports_a_failing_ranking(tmp_path, any_size):
    store = open_store(tmp_path / "review.db")
    make_review(store, 8)
    s = ScreeningSession(store, "alice", TA)
    ranker = s._ranker
    assert ranker.generation == 1
    order = ranker.snapshot()[0]
    handled = ranker.handled
    ranker._received(ranking_process.Reply("failed", error="model file missing"))
    assert ranker.failure == "The prioritiser failed (model file missing); the last order is kept."
    assert (ranker.handled, ranker.generation, ranker.snapshot()[0]) == (handled + 1, 1, order)
    s.close()
    store.close()


_CHILD_SITTING = """
import signal, sys, time
# as from a terminal: Ctrl-C neither blocked nor ignored, whatever the test process
# inherited (a test run in the background of a shell ignores it)
signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
signal.signal(signal.SIGINT, signal.default_int_handler)
import screeners.session as session_module
session_module.PROCESS_FROM = 0
session_module.STARTUP_WAIT = 60.0
from db.store import open_store
from screeners.session import ScreeningSession
store = open_store(sys.argv[1])
s = ScreeningSession(store, "alice", "title-abstract")
try:
    print(s._ranker.process.pid, flush=True)
    time.sleep(60)
except KeyboardInterrupt:
    s.close()
    print("closed", flush=True)
"""


@pytest.mark.parametrize("how", ["interrupt", "kill"])
def test_no_ranking_process_outlives_its_sitting(tmp_path, how):
    store = open_store(tmp_path / "review.db")
    make_review(store, 8)
    store.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    p = subprocess.Popen([sys.executable, "-c", _CHILD_SITTING, str(tmp_path / "review.db"), how],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert p.stdout is not None
    child = int(p.stdout.readline())
    assert not _gone(child)
    p.send_signal(signal.SIGINT if how == "interrupt" else signal.SIGKILL)
    out, err = p.communicate(timeout=30)
    if how == "interrupt":
        assert (out, err, p.returncode) == ("closed\n", "", 0)
        assert _gone(child)
    else:
        # the sitting killed outright: its ranking process notices and ends itself
        assert _wait(lambda: _gone(child), 10.0)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the child's environment from /proc")
def test_the_ranking_process_maps_its_large_arrays_on_their_own(tmp_path, any_size, monkeypatch):
    # glibc's allocator keeps freed blocks of a few MB in its heap otherwise, and a
    # ranking of a million records frees and makes such blocks by the gigabyte
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    store = open_store(tmp_path / "review.db")
    make_review(store, 12)
    s = ScreeningSession(store, "alice", TA)
    try:
        pid = s._ranker.process.pid
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
        assert env[b"MALLOC_MMAP_THRESHOLD_"] == str(1 << 20).encode()
    finally:
        s.close()
        store.close()
