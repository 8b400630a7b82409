"""The child process plumbing the import and the screening rankings share."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from base.child_process import end_child, read_exact, start_child


ROOT = Path(__file__).resolve().parents[1]


class _Trickle(io.RawIOBase):
    """A stream giving its bytes a few at a time, as a pipe does."""

    def __init__(self, data: bytes, step: int):
        self.data, self.step = data, step

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        out, self.data = self.data[:min(n, self.step)], self.data[min(n, self.step):]
        return out


def test_read_exact_joins_short_reads_and_tells_an_early_end():
    s = _Trickle(b"abcdefghij", 3)
    assert read_exact(s, 4) == b"abcd"
    assert read_exact(s, 5) == b"efghi"
    assert read_exact(s, 2) is None  # one byte left: the stream ended first


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads the child's environment from /proc")
def test_a_child_runs_a_module_with_the_settings_added_not_forced(monkeypatch):
    # `json.tool` waits for its input, then echoes it
    monkeypatch.setenv("CLUSTER_TEST_SETTING", "mine")
    proc = start_child("json.tool", {"CLUSTER_TEST_SETTING": "theirs",
                                     "CLUSTER_TEST_OTHER": "added"})
    assert proc is not None
    with open(f"/proc/{proc.pid}/environ", "rb") as f:
        env = dict(v.split(b"=", 1) for v in f.read().split(b"\0") if b"=" in v)
    assert (env[b"CLUSTER_TEST_SETTING"], env[b"CLUSTER_TEST_OTHER"]) == (b"mine", b"added")
    assert env[b"PYTHONPATH"].split(os.pathsep.encode())[0] == str(ROOT).encode()
    out, _ = proc.communicate(b'{"a": 1}', timeout=30)
    assert (proc.returncode, out.decode().split()) == (0, ["{", '"a":', "1", "}"])


def test_a_child_that_ignores_termination_is_killed_and_reaped():
    code = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "sys.stdout.write('ready\\n'); sys.stdout.flush(); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    t = time.monotonic()
    end_child(proc)
    assert proc.returncode == -9 and time.monotonic() - t < 10
    assert proc.stdin is not None and proc.stdin.closed and proc.stdout.closed
