"""Records made from a file's raw entries a batch at a time, here or in a child process.

Reading a large export is mostly making records (the shared normalisers on a
dozen fields a row, then the store's row of each), not cutting the file into
entries, which must go in order. A reader split in two (`Split`: one function
cutting the file into entries, one pure function making an entry's record)
lets that second part run on the second core: `Conversions` hands batches of
entries to a child process while it has room for them and converts the others
itself, and gives the results back in the file's order, so the rows written
are the same whichever process made them.

The child is started with `subprocess` (no fork of a process with threads)
and talks over its standard input and output: frames of a length and a
pickle, between two processes running this very code. It ignores Ctrl-C,
which is the importing process's to handle (that process then ends it), stops
when its input closes or its parent is gone, and a child that dies ends the
import with one sentence (`ConversionError`).
"""

from __future__ import annotations

import importlib
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field, fields
from itertools import chain
from operator import attrgetter
from typing import IO, Any, Callable, Iterator, Sequence

from base.child_process import (STOP_WAIT, answers_out, end_child, read_exact, start_child,
                                watch_parent)
from base.errors import ClusterError
from base.record import Record
from db.formats.common import FileFormatError, Labelled
from db.store import record_values

#: the longest field kept, in characters; the longest real abstracts are some 10,000, so a
#: longer field is a damaged export (a quote never closed, a file pasted into a cell)
FIELD_CAPS = {"abstract": 1_000_000, "title": 10_000}
OTHER_FIELD_CAP = 10_000
MAX_LIST_ITEMS = 10_000  # authors, keywords, languages or types of one record
#: cuts described in a file's warning (all are counted)
SHOWN_CUTS = 5
#: record numbers a file's warning of empty records names, and one more (to say "...")
SHOWN_EMPTY = 21

#: the longest value each field of a record keeps
_CAPS = {f.name: FIELD_CAPS.get(f.name, OTHER_FIELD_CAP) for f in fields(Record)}
_SHORTEST_CAP = min(_CAPS.values())

#: a record's fields of text besides the abstract (all capped at `_SHORTEST_CAP`), and its
#: lists of text
_TEXT_FIELDS = tuple(f.name for f in fields(Record) if f.type == "str | None"
                     and f.name != "abstract")
_LIST_FIELDS = tuple(f.name for f in fields(Record) if f.type == "tuple[str, ...]")
_SHORT_TEXTS = attrgetter(*_TEXT_FIELDS)
_TEXT_LISTS = attrgetter(*_LIST_FIELDS)
_TEXT_TYPES = {str, type(None)}


def _within_caps(record: Record) -> bool:
    """Whether no field of `record` is over its cap, told at once for a record of a usual
    size (one with a long field, or a field of an unexpected type, is left to `capped`)."""
    abstract = record.abstract
    if abstract is not None and (type(abstract) is not str or len(abstract) > _CAPS["abstract"]):
        return False
    texts = _SHORT_TEXTS(record)
    lists = _TEXT_LISTS(record)
    try:
        return (set(map(type, texts)) <= _TEXT_TYPES
                and sum(map(len, filter(None, texts))) <= _SHORTEST_CAP
                and sum(map(len, lists)) <= MAX_LIST_ITEMS
                and sum(map(len, chain.from_iterable(lists))) <= OTHER_FIELD_CAP)
    except TypeError:  # a list holding something other than text
        return False


def capped(record: Record, number: int, cuts: list[str]) -> tuple[Record, int]:
    """`record` (the file's `number`th) with fields longer than their cap cut to it, and
    how many were cut; the cuts are described in `cuts` while it holds fewer than
    `SHOWN_CUTS`."""
    if _within_caps(record):
        return record, 0
    changes: dict[str, Any] = {}
    for name, val in vars(record).items():
        if type(val) is str:
            if len(val) > _SHORTEST_CAP and len(val) > _CAPS[name]:
                cap = _CAPS[name]
                changes[name] = val[:cap]
                if len(cuts) < SHOWN_CUTS:
                    cuts.append(f"record {number}'s {name} ({len(val):,} characters, "
                                f"{cap:,} kept)")
        elif type(val) is tuple and val and type(val[0]) is str:
            cap = _CAPS[name]
            try:
                over = len(val) > MAX_LIST_ITEMS or max(map(len, val)) > cap
            except TypeError:  # not all text: a list of another kind is never cut
                over = False
            if over and all(isinstance(v, str) for v in val):
                changes[name] = tuple(v[:cap] for v in val[:MAX_LIST_ITEMS])
                if len(cuts) < SHOWN_CUTS:
                    cuts.append(f"record {number}'s {name} (cut to "
                                f"{MAX_LIST_ITEMS:,} items of at most {cap:,} characters)")
    return (record.replace(**changes) if changes else record), len(changes)


def is_empty(record: Record) -> bool:
    """A record with no title, author, abstract or identifier: it cannot be screened or
    matched, and is not imported."""
    return not (record.title or record.authors or record.abstract or record.ids())


@dataclass(frozen=True)
class Split:
    """A reader in two parts: `entries(text, name, reading)` cuts a file into raw entries
    in order (filling in `reading` as a reader does), and `convert`, a pure function
    named "module:function" so a child process can find it, makes an entry's record and
    label."""

    entries: Callable[..., Iterator[Any]]
    convert: str

    def converter(self) -> Callable[[Any], Labelled]:
        return _function(self.convert)


def _function(name: str) -> Callable[[Any], Labelled]:
    module, _, attr = name.partition(":")
    fn: Callable[[Any], Labelled] = getattr(importlib.import_module(module), attr)
    return fn


#: a record made from an entry: the values of its `records` row (`record_values`), its
#: id in the source file, its screening label
Row = tuple[tuple[Any, ...], "str | None", "str | None"]


@dataclass
class Converted:
    """One batch of entries made into records: the rows of those kept, in order, and what
    was left out or cut (numbered by the entries' place in the file), or why the batch
    could not be converted (`error`, one sentence: the rows before it are kept)."""

    rows: list[Row] = field(default_factory=list)
    n_read: int = 0
    empty: list[int] = field(default_factory=list)  # the first `SHOWN_EMPTY` empty records
    n_empty: int = 0
    cuts: list[str] = field(default_factory=list)  # the first `SHOWN_CUTS` cuts described
    n_cuts: int = 0
    error: str | None = None


def convert_batch(convert: Callable[[Any], Labelled], name: str, fmt: str, first_number: int,
                  entries: Sequence[Any]) -> Converted:
    """The records of `entries`, the first of them the file's `first_number`th; a failure
    ends the batch with its one sentence (a library's own error named as `_records` in
    db.formats names it)."""
    out = Converted()
    rows, cuts = out.rows, out.cuts
    number = first_number - 1
    try:
        for entry in entries:
            number += 1
            record, label = convert(entry)
            out.n_read += 1
            record, n_cut = capped(record, number, cuts)
            out.n_cuts += n_cut
            if is_empty(record):
                out.n_empty += 1
                if len(out.empty) < SHOWN_EMPTY:
                    out.empty.append(number)
                continue
            rows.append((record_values(record), record.source_id, label))
    except FileFormatError as exc:
        out.error = str(exc)
    except Exception as exc:  # a third-party parser's own error becomes one sentence
        out.error = f"{name} could not be read as {fmt} ({exc})."
    return out


# --- the importing process's side ----------------------------------------------------------


class ConversionError(ClusterError):
    """The child process making an import's records stopped; the message is one sentence."""


#: batches a child holds at most (the one it converts and the next, waiting in its pipe)
IN_CHILD = 2
#: batches converted and not yet taken, at most (beside those in the child)
AHEAD = 3
_FRAME = struct.Struct("<Q")


class _Child:
    """A child process converting batches, with a thread feeding it and one taking its
    answers (so neither process ever waits on a full pipe while the other waits too)."""

    def __init__(self, proc: subprocess.Popen, setup: tuple[Any, ...]):
        self.proc = proc
        self._to_send: queue.Queue[tuple[int, Sequence[Any]] | None] = queue.Queue()
        self.answers: queue.Queue[Converted | None] = queue.Queue()  # None: the child is gone
        self._feeder = threading.Thread(target=self._feed, args=(setup,),
                                        name="import-convert-feeder", daemon=True)
        self._taker = threading.Thread(target=self._take, name="import-convert-taker",
                                       daemon=True)
        self._feeder.start()
        self._taker.start()

    @classmethod
    def start(cls, split: Split, name: str, fmt: str) -> _Child | None:
        """The child converting with `split.convert`; None if it cannot be started."""
        proc = start_child("db.formats.convert")
        if proc is None:
            return None
        return cls(proc, (split.convert, name, fmt, os.getpid()))

    def send(self, first_number: int, entries: Sequence[Any]) -> None:
        self._to_send.put((first_number, entries))

    def _feed(self, setup: tuple[Any, ...]) -> None:
        out = self.proc.stdin
        assert out is not None
        try:
            _write_frame(out, setup)
            while (batch := self._to_send.get()) is not None:
                _write_frame(out, batch)
        except (OSError, ValueError):
            return  # the child is gone: the taking thread tells
        finally:
            try:
                out.close()  # the child's signal to stop
            except OSError:
                pass

    def _take(self) -> None:
        source = self.proc.stdout
        assert source is not None
        try:
            while (answer := _read_frame(source)) is not None:
                self.answers.put(Converted(*answer))
        except (OSError, ValueError, EOFError, pickle.UnpicklingError, TypeError):
            pass  # a broken pipe or a garbled answer: as if the child were gone
        self.answers.put(None)

    def gone(self) -> str:
        """Why the child stopped, as the end of a sentence."""
        try:
            code = self.proc.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            return "stopped answering"
        if code < 0:
            try:
                return f"was killed ({signal.Signals(-code).name})"
            except ValueError:
                return f"was killed (signal {-code})"
        return f"ended with status {code}"

    def close(self, *, finished: bool) -> None:
        """End the child and its threads: at once unless every batch was answered
        (`finished`: its input is closed, and it exits)."""
        self._to_send.put(None)
        end_child(self.proc, at_once=not finished)
        self._feeder.join()
        self._taker.join()


class Conversions:
    """Batches of a file's entries made into records in the file's order: in a child
    process while it holds fewer than `IN_CHILD` of them, here otherwise, so both
    cores work whichever side is the slower. At most `AHEAD` batches wait, converted,
    for one before them (memory is bounded by the batches in flight).

    `put` a batch (it may return batches now ready, in order), `finish` for the rest;
    `close` must be called either way (it ends the child). A batch's failure is
    given back in its place, as `Converted.error`, so the first failure in the
    file's order is the one told.
    """

    def __init__(self, split: Split, name: str, fmt: str, *, child: bool):
        self._convert = split.converter()
        self._name, self._fmt = name, fmt
        self._child = _Child.start(split, name, fmt) if child else None
        self._in_child = 0
        self._pending: deque[Converted | None] = deque()  # None: the child's, not yet back
        self.in_child_batches = 0  # batches the child converted (for measurements)

    def put(self, first_number: int, entries: Sequence[Any]) -> Iterator[Converted]:
        if self._child is not None and self._in_child < IN_CHILD:
            self._child.send(first_number, entries)
            self._in_child += 1
            self._pending.append(None)
        else:
            self._pending.append(convert_batch(self._convert, self._name, self._fmt,
                                               first_number, entries))
        return self._ready(len(self._pending) > AHEAD)

    def finish(self) -> Iterator[Converted]:
        """The batches still under way, in order."""
        while self._pending:
            yield from self._ready(True)

    def _ready(self, wait: bool) -> Iterator[Converted]:
        """The batches at the head of the queue that are ready; with `wait`, waiting for
        the first of them if need be."""
        while self._pending:
            head = self._pending[0]
            if head is None:
                answer = self._answer(wait)
                if answer is None:
                    return
                self._pending[0] = head = answer
            self._pending.popleft()
            wait = False
            yield head

    def _answer(self, wait: bool) -> Converted | None:
        assert self._child is not None
        try:
            answer = self._child.answers.get(block=wait)
        except queue.Empty:
            return None
        if answer is None:
            raise ConversionError(
                f"The process making the records of {self._name} {self._child.gone()}; "
                "nothing was imported: run the import again.")
        self._in_child -= 1
        self.in_child_batches += 1
        return answer

    def close(self) -> None:
        if self._child is not None:
            child, self._child = self._child, None
            child.close(finished=not self._in_child)


def _write_frame(out: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    out.write(_FRAME.pack(len(data)))
    out.write(data)
    out.flush()


def _read_frame(source: IO[bytes]) -> Any:
    """The next object sent, or None at the end of the stream."""
    head = read_exact(source, _FRAME.size)
    if head is None:
        return None
    data = read_exact(source, _FRAME.unpack(head)[0])
    if data is None:
        return None
    return pickle.loads(data)


# --- the child ------------------------------------------------------------------------------


def main() -> None:
    """The child: convert each batch sent, in order, until the input closes. Its first
    frame names the converter, the file and the importing process (`_Child.start`)."""
    out = answers_out()  # Ctrl-C is the importing process's
    source = sys.stdin.buffer
    setup = _read_frame(source)
    if setup is None:
        return
    convert_name, name, fmt, parent = setup
    watch_parent(int(parent))
    convert = _function(convert_name)
    try:
        while (batch := _read_frame(source)) is not None:
            first_number, entries = batch
            done = convert_batch(convert, name, fmt, first_number, entries)
            _write_frame(out, (done.rows, done.n_read, done.empty, done.n_empty, done.cuts,
                               done.n_cuts, done.error))
    except BrokenPipeError:
        return


if __name__ == "__main__":
    main()
