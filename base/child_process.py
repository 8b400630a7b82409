"""A Python child process that works beside the command, talking over pipes.

What the import's second process (`db.formats.convert`) and a screening
sitting's ranking process (`screeners.ranking_process`) share: the child runs a
module of this very project in its own session (Ctrl-C reaches only the
command, which ends the child), writes its answers to a private copy of its
stdout (whatever a library prints goes nowhere), stops when the command's
process is gone (no orphan is left when the command is killed), and is ended
at once, then killed if it does not exit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Mapping

STOP_WAIT = 2.0  # seconds an ended child gets to exit before it is killed


def _project_root() -> str:
    # the folder holding the project's packages, first on the child's path, so it runs
    # this very code whatever its working folder
    return str(Path(__file__).resolve().parents[1])


def start_child(module: str, env: Mapping[str, str] | None = None) -> subprocess.Popen | None:
    """`python -m module` with pipes to its stdin and stdout, in a session of its own;
    `env` is added to this process's environment where it does not set the name
    already. None if it cannot be started."""
    full = dict(os.environ)
    full["PYTHONPATH"] = os.pathsep.join(
        [_project_root(), *([full["PYTHONPATH"]] if full.get("PYTHONPATH") else [])])
    for name, value in (env or {}).items():
        full.setdefault(name, value)
    try:
        return subprocess.Popen(
            [sys.executable, "-m", module], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, env=full, start_new_session=True, close_fds=True)
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def end_child(proc: subprocess.Popen, *, at_once: bool = True) -> None:
    """End the child (`at_once`: without waiting for it to finish its work), close its
    input (a waiting child exits), kill it if it has not exited within `STOP_WAIT`
    seconds, reap it and close its output. Ended before its input is closed: a thread
    blocked writing to it is then let go."""
    if at_once and proc.poll() is None:
        try:
            proc.terminate()
        except OSError:
            pass
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except (OSError, ValueError):
        pass
    try:
        proc.wait(STOP_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    try:
        if proc.stdout is not None:
            proc.stdout.close()
    except (OSError, ValueError):
        pass


def answers_out() -> IO[bytes]:
    """In the child: its answers' stream (a private copy of stdout, fd 1 sent to
    nowhere), with Ctrl-C left to the command's process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    return out


def watch_parent(parent: int) -> None:
    """In the child: end it once the process `parent` is gone (killed, crashed)."""
    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="watch-parent", daemon=True).start()


def read_exact(stream: IO[bytes], n: int) -> bytes | None:
    """`n` bytes from `stream`, or None if it ends first."""
    chunks, got = [], 0
    while got < n:
        b = stream.read(n - got)
        if not b:
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)
