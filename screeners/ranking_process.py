"""A screening sitting's rankings computed in a process of their own.

Fitting the prioritiser on a large store takes seconds of CPU, and a thread
computing it holds the interpreter most of that time: every key press of the
sitting then waits for it. A child process ranks instead: it opens the store
itself (reads only), reads the term counts kept beside the store, fits, and
sends back the order and the estimate of relevant records left, while the
sitting's process only draws cards and records decisions.

The two talk over pipes. The sitting sends one byte per decision (`WANTED`);
the child answers each batch of requests it found waiting with one message: a
new ranking, the last one standing (the prioritiser refits in batches on a
large store), or why ranking failed. Closing the child's input tells it to
stop; it also stops when the sitting's process is gone (no orphan left when
the sitting is killed), and ignores Ctrl-C, which is the sitting's to handle:
the sitting then ends it (`RankingProcess.stop`). Nothing is unpickled: the
messages are a JSON header and the order as 64-bit integers.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import select
import struct
import subprocess
import sys
import threading
import weakref
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable

from base.child_process import (STOP_WAIT, answers_out, end_child, read_exact, start_child,
                                watch_parent)

WANTED = b"r"  # one byte per decision: a ranking is wanted
_FRAME = struct.Struct("<II")  # JSON header length, payload length
MMAP_THRESHOLD = 1 << 20  # bytes from which the child's allocations are mapped on their own


@dataclass(frozen=True)
class Reply:
    """One answer of the child: `kind` "ranked" (with `order` and `left`),
    "stands" (the last ranking stands) or "failed" (with `error`)."""

    kind: str
    order: list[int] | None = None
    left: float | None = None
    error: str = ""


class RankingProcess:
    """The parent's side: the child, the thread reading its answers, and stopping it."""

    def __init__(self, proc: subprocess.Popen, on_reply: Callable[[Reply], None],
                 on_lost: Callable[[], None]):
        self._proc = proc
        self._on_reply, self._on_lost = on_reply, on_lost
        self._stopping = False
        self._write_lock = threading.Lock()
        # the child is ended however this object goes (garbage, interpreter exit)
        self._finalizer = weakref.finalize(self, end_child, proc)
        self._reader = threading.Thread(target=self._read, name="cluster-ranker-reader",
                                        daemon=True)

    def listen(self) -> None:
        """Start taking the child's answers (`on_reply`, `on_lost`): once the owner
        holds this object, so an answer never finds it without one."""
        self._reader.start()

    @classmethod
    def start(cls, worker: str, store_path: Path, reviewer: str, stage: str,
              on_reply: Callable[[Reply], None], on_lost: Callable[[], None]
              ) -> RankingProcess | None:
        """The child ranking `reviewer`'s queue at `stage` of the store at
        `store_path`, its first ranking under way; None if it cannot be started.
        `worker` names what ranks there ("module:function", called with the
        store's path, the reviewer and the stage; see `main`), so this module
        needs none of the session's."""
        # the C library's allocator (glibc's) maps arrays of a megabyte or more on
        # their own and gives them back when freed, instead of raising the threshold
        # as blocks are freed and keeping them in its heap: a ranking frees and makes
        # blocks of arrays of a few megabytes, and the heap then grew by gigabytes
        proc = start_child("screeners.ranking_process",
                           {"MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)})
        if proc is None:
            return None
        assert proc.stdin is not None
        try:
            head = json.dumps({"worker": worker, "store": str(store_path), "reviewer": reviewer,
                               "stage": stage, "parent": os.getpid()}).encode()
            proc.stdin.write(head + b"\n")
            proc.stdin.flush()
        except OSError:
            end_child(proc)
            return None
        return cls(proc, on_reply, on_lost)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def want(self) -> bool:
        """Ask for a ranking (one decision more); False if the child is gone."""
        if self._stopping:
            return False
        try:
            with self._write_lock:
                assert self._proc.stdin is not None
                self._proc.stdin.write(WANTED)
                self._proc.stdin.flush()
            return True
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        """End the child (at once if it is computing) and wait for it."""
        self._stopping = True
        self._finalizer()
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(STOP_WAIT)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def _read(self) -> None:
        out = self._proc.stdout
        assert out is not None
        try:
            while True:
                reply = _read_reply(out)
                if reply is None:
                    break
                self._on_reply(reply)
        except (OSError, ValueError):
            pass  # a broken pipe or a garbled message: as if the child were gone
        if not self._stopping:
            self._finalizer()
            self._on_lost()


def _payload(ids: list[int]) -> bytes:
    """`ids` as little-endian 64-bit integers (the sitting loads no numpy for them)."""
    packed = array("q", ids)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tobytes()


def _ids(payload: bytes) -> list[int]:
    """The ids `_payload` packed."""
    packed = array("q")
    packed.frombytes(payload)
    if sys.byteorder == "big":
        packed.byteswap()
    return packed.tolist()


def _read_reply(stream: IO[bytes]) -> Reply | None:
    head = read_exact(stream, _FRAME.size)
    if head is None:
        return None
    n_json, n_payload = _FRAME.unpack(head)
    meta = read_exact(stream, n_json)
    payload = read_exact(stream, n_payload) if n_payload else b""
    if meta is None or payload is None or len(payload) % 8:
        return None
    info = json.loads(meta)
    kind = info.get("kind")
    if kind == "ranked":
        left = info.get("left")
        return Reply("ranked", _ids(payload), None if left is None else float(left))
    if kind == "stands":
        return Reply("stands")
    return Reply("failed", error=str(info.get("error", "")))


def _send(out: IO[bytes], kind: str, order: list[int] | None = None,
          left: float | None = None, error: str = "") -> None:
    payload = _payload(order or []) if kind == "ranked" else b""
    meta = json.dumps({"kind": kind, "error": error,
                       "left": None if left is None or math.isnan(left) else left}).encode()
    out.write(_FRAME.pack(len(meta), len(payload)) + meta + payload)
    out.flush()


# --- the child -------------------------------------------------------------------------


def _requests(fd: int, block: bool) -> int | None:
    """How many rankings were asked for since the last call (waiting for one
    if `block`); None once the input is closed: time to stop."""
    n = 0
    while True:
        if not block or n:
            ready, _, _ = select.select([fd], [], [], 0)
            if not ready:
                return n
        data = os.read(fd, 4096)
        if not data:
            return None
        n += data.count(WANTED)
        block = False


def main() -> None:
    """The child: rank at once, then again whenever asked, until told to stop.
    Its first line of input names the worker and what it ranks (`start`)."""
    out = answers_out()  # Ctrl-C is the sitting's to handle
    fd = sys.stdin.fileno()
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            return
        line += chunk
    info = json.loads(line)
    watch_parent(int(info["parent"]))

    module, _, name = str(info["worker"]).partition(":")
    make = getattr(importlib.import_module(module), name)
    # the worker: called with the decisions since the last ranking, it answers
    # (kind, order, estimate, why); closed at the end
    worker = make(info["store"], info["reviewer"], info["stage"])
    try:
        since = 0
        block = False  # the first ranking is computed at once
        while True:
            asked = _requests(fd, block)
            if asked is None:
                return
            since += asked
            block = True
            kind, order, left, error = worker(since)
            if kind != "stands":  # computed, or failed computing
                since = 0
            _send(out, kind, order, left, error)
    except (BrokenPipeError, KeyboardInterrupt):
        return
    finally:
        worker.close()


if __name__ == "__main__":
    main()
