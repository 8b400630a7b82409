"""Reference import and export for the review store.

`import_files` reads each file as a stream: one pass over its bytes for the
checksum and the text encoding, then its records parsed and written a batch at
a time, so a file of any size is never held whole; all the files of one import
land in one transaction (a failure at any record of any file writes nothing).
The format is detected from the content, never from the file name.
`read_file` reads one file into memory (pure: no store); `export_records`
writes the store back out.
"""

from __future__ import annotations

import os
import queue
import re
import stat
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Generator, Iterator, Sequence

from db.events import ROLES, TITLE_ABSTRACT
from db.formats.bibtex import read_bibtex
from db.formats.common import (FileFormatError, Labelled, ReadResult, Reader, Reading, Scan, Text,
                               require_text, scan, shortfall)
from db.formats.convert import (SHOWN_CUTS, SHOWN_EMPTY, Conversions, Converted, Row, Split,
                                capped, is_empty)
from db.formats.endnote_xml import read_endnote_xml
from db.formats.export import DECISION_FILTERS, EXPORT_FORMATS, ExportResult, export_records
from db.formats.medline import read_medline
from db.formats.ris import read_ris, read_wos, ris_entries
from db.formats.tabular import csv_rows, is_id_list, looks_tabular, read_csv, read_id_list

if TYPE_CHECKING:  # reading a file needs no SQLite layer
    from db.searches import SearchDetails
    from db.store import Store

__all__ = [
    "DECISION_FILTERS", "EXPORT_FORMATS", "ExportResult", "FileFormatError", "ImportResult",
    "ParsedFile", "ReadResult", "detect_format", "export_records",
    "import_files", "read_file",
]

LABEL_STAGE = TITLE_ABSTRACT

_READERS: dict[str, Reader] = {
    "endnote-xml": read_endnote_xml, "medline": read_medline, "ris": read_ris,
    "wos": read_wos, "bibtex": read_bibtex, "id-list": read_id_list, "csv": read_csv,
}

#: the readers whose records can be made in a second process (see db.formats.convert)
_SPLITS: dict[str, Split] = {"csv": Split(csv_rows, "db.formats.tabular:csv_record"),
                              "ris": Split(ris_entries, "db.formats.ris:ris_record")}

_FORMAT_HELP = ("RIS, BibTeX, PubMed MEDLINE/.nbib, EndNote XML, Web of Science plain text, "
                "CSV/TSV or a list of PMIDs/DOIs")


def detect_format(text: str, name: str) -> str:
    """The format of a decoded file, from its content alone (its first megabyte or so:
    `Text.head`)."""
    body = text.strip()
    if not body:
        raise FileFormatError(f"{name} is empty: there is nothing to import.")
    if body.startswith("<"):
        if re.match(r"<\?xml|<xml\b|<records\b", body):
            return "endnote-xml"
        raise FileFormatError(f"{name} looks like HTML or other markup, not a reference export: "
                              f"export the records as {_FORMAT_HELP}.")
    if re.search(r"^(?:PMID- ?\d|OWN - )", text, re.M):
        return "medline"
    if re.search(r"^TY {1,2}-", text, re.M):
        return "ris"
    if re.search(r"^PT [A-Z]\s*$", text, re.M) and re.search(r"^ER\s*$", text, re.M):
        return "wos"
    if re.search(r"^\s*@\s*[A-Za-z]+\s*[{(]", text, re.M):
        return "bibtex"
    if is_id_list(text):
        return "id-list"
    if looks_tabular(text):
        return "csv"
    line = next(ln for ln in text.split("\n") if ln.strip())
    raise FileFormatError(f"{name} line 1 ({line.strip()[:60]!r}) is not in a format cluster can "
                          f"read: export the records as {_FORMAT_HELP}.")


@dataclass(frozen=True)
class ParsedFile:
    """One file read and parsed, not yet written anywhere."""

    path: Path
    sha256: str
    result: ReadResult

    @property
    def file_name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class _Opened:
    """A file checked, scanned and its format told from its start; nothing parsed yet."""

    path: Path
    found: Scan
    format: str
    size: int

    @property
    def file_name(self) -> str:
        return self.path.name

    def text(self) -> Text:
        return Text(self.path, self.path.name, self.found)


def _open(path: str | Path) -> _Opened:
    """Check one file, read its bytes once (checksum, encoding) and tell its format;
    raises `FileFormatError` naming it."""
    p = Path(path)
    name = p.name
    if not p.exists():
        raise FileFormatError(f"{p} does not exist: check the path and try again.")
    if p.is_dir():
        raise FileFormatError(f"{p} is a folder: give the files inside it instead.")
    try:
        info = p.stat()
    except OSError as exc:
        raise FileFormatError(f"{p} cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(info.st_mode):
        # a pipe would block for ever and a device (/dev/zero) never ends
        raise FileFormatError(f"{p} is not a regular file (a pipe, device or socket): save the "
                              "export as a file and import that.")
    if info.st_size > MAX_FILE_BYTES:
        raise FileFormatError(f"{p} is {info.st_size / 2**30:.1f} GB, more than the "
                              f"{MAX_FILE_BYTES // 2**30} GB one import can take: split the "
                              "export into smaller files.")
    found = scan(p, name)
    head = Text(p, name, found).head()
    require_text(head, name)
    return _Opened(p, found, detect_format(head, name), info.st_size)


@dataclass
class _Tally:
    """What reading one file found besides its records; complete once they are exhausted."""

    reading: Reading
    n_read: int = 0  # records the reader made
    n_kept: int = 0  # of those, records with something to screen or match by
    cuts: list[str] = field(default_factory=list)
    n_cuts: int = 0
    empty: list[int] = field(default_factory=list)
    n_empty: int = 0


def _records(opened: _Opened, text: Text, tally: _Tally) -> Iterator[Labelled]:
    """The file's records one at a time, over-long fields cut and empty records left out."""
    name, fmt = opened.file_name, opened.format
    try:
        for record, label in _READERS[fmt](text, name, tally.reading):
            tally.n_read += 1
            record, n_cut = capped(record, tally.n_read, tally.cuts)
            tally.n_cuts += n_cut
            if is_empty(record):
                tally.n_empty += 1
                if len(tally.empty) < SHOWN_EMPTY:
                    tally.empty.append(tally.n_read)
                continue
            tally.n_kept += 1
            yield record, label
    except FileFormatError:
        raise
    except Exception as exc:  # a third-party parser's own error becomes one sentence
        raise FileFormatError(f"{name} could not be read as {fmt} ({exc}).") from None


def _finished(opened: _Opened, tally: _Tally) -> tuple[int, tuple[str, ...]]:
    """(the records the file holds, the warnings of reading it) once its records are read;
    raises `FileFormatError` when none could be kept."""
    name, reading = opened.file_name, tally.reading
    held = max(reading.n_in_file or 0, tally.n_read)
    warnings = list(reading.warnings)
    short = shortfall(name, held, tally.n_read, reading.marker, reading.lost)
    if short:
        warnings.append(short)
    if tally.cuts:
        more = tally.n_cuts - SHOWN_CUTS
        warnings.append(f"{name}: fields too long for a reference were cut: "
                        + "; ".join(tally.cuts[:SHOWN_CUTS])
                        + (f"; and {more} more" if more > 0 else "") + ".")
    if tally.empty:
        last = SHOWN_EMPTY - 1
        shown = ", ".join(map(str, tally.empty[:last])) + (" ..." if tally.n_empty > last else "")
        warnings.append(f"{name}: record(s) {shown} have no title, author, abstract or "
                        "identifier and were not imported.")
    if not tally.n_kept:
        raise FileFormatError(f"{name} was recognised as {opened.format} but holds no records: "
                              "check that the export finished.")
    return held, tuple(warnings)


def read_file(path: str | Path) -> ParsedFile:
    """Read, decode, detect and parse one file into memory; raises `FileFormatError` naming
    it. (`import_files` reads files as streams instead.)"""
    opened = _open(path)
    tally = _Tally(Reading(opened.format))
    read = list(_records(opened, opened.text(), tally))
    held, warnings = _finished(opened, tally)
    reading = tally.reading
    return ParsedFile(opened.path, opened.found.sha256, ReadResult(
        reading.format, tuple(r for r, _ in read),
        tuple(label for _, label in read) if reading.has_labels else (), warnings,
        n_in_file=held, marker=reading.marker, lost=tuple(reading.lost)))


#: the largest file one import reads (it is held in memory, decoded, at several bytes a byte)
MAX_FILE_BYTES = 2 * 2**30

@dataclass(frozen=True)
class ImportResult:
    """What one imported file did to the store."""

    file_name: str
    format: str
    sha256: str
    n_read: int
    n_in_file: int
    n_added: int
    n_labels: int
    search_id: int | None
    already_imported: bool
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warnings": list(self.warnings)}


def _already_imported(store: Store, sha256: str) -> tuple[str, int, int] | None:
    """(format, records in the file, records read) of the earlier import of these bytes."""
    row = store.db.execute(
        "SELECT format, n_found, n_kept FROM searches WHERE kind = 'import' AND sha256 = ? "
        "AND status = 'done' ORDER BY id LIMIT 1", [sha256]).fetchone()
    if row is None:
        return None
    n_read = row[2] or 0
    return row[0], max(row[1] or 0, n_read), n_read


#: records written at a time (entries converted at a time, for a reader in `_SPLITS`), with
#: a progress report after each batch (all inside the import's one transaction: a failure
#: at any record leaves nothing of the import written)
IMPORT_BATCH = 5000


class _Progress:
    """Reports records written so far against an estimate of the import's records, from
    the share of its bytes read (exact once the last file is written)."""

    def __init__(self, report: Callable[[int, int], None] | None, total_bytes: int):
        self.report = report
        self.total_bytes = max(total_bytes, 1)
        self.done = 0  # records of the finished files
        self.bytes_done = 0  # bytes of the finished files

    def __call__(self, n: int, bytes_read: int, *, last: bool = False) -> None:
        """Report `n` records written of the file under way, `bytes_read` of it read."""
        if self.report is None:
            return
        done = self.done + n
        if last:
            self.report(done, done)
            return
        read = min(self.bytes_done + bytes_read, self.total_bytes)
        estimate = round(done * self.total_bytes / read) if read else done
        self.report(done, max(estimate, done + 1))

    def file_done(self, n: int, size: int) -> None:
        self.done += n
        self.bytes_done += size


#: one batch of an import: its records' rows, their source rows, their labels
_Batch = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[int, str]]]


class _BatchWriter:
    """Writes an import's batches in a thread of its own while the next batch is parsed:
    SQLite lets go of the GIL while it writes rows, so parsing and writing share two
    cores. A batch is handed over once the one before it is written: two batches are
    held at most, the one being written and the one being parsed.

    `threaded=False` writes each batch as it is given (a store in memory can be used
    from one thread only). The first failure is raised in the reading thread, by `put`
    or `drain`; `close` ends the thread, and must be called before the transaction
    ends either way, so a rollback never meets a write under way.
    """

    def __init__(self, write: Callable[[_Batch], None], *, threaded: bool):
        self._write = write
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=1)
            self._thread = threading.Thread(target=self._run, name="import-writer", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            # after a failure, or once abandoned, batches are taken and dropped: nothing
            # waiting to hand one over is left blocked
            if self._error is None and not self._abandoned:
                try:
                    self._write(batch)
                except BaseException as exc:  # raised again in the reading thread
                    self._error = exc
            self._queue.task_done()
        self._queue.task_done()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def put(self, batch: _Batch) -> None:
        if self._thread is None:
            self._write(batch)
            return
        self._queue.join()
        self._raise()
        self._queue.put(batch)

    def drain(self) -> None:
        """Wait until every batch given is written (raising the first failure), so the
        store can be used from this thread."""
        if self._thread is not None:
            self._queue.join()
            self._raise()

    def close(self) -> None:
        """End the thread; batches not yet written are dropped (the import failed)."""
        if self._thread is None:
            return
        self._abandoned = True
        self._queue.put(None)
        self._thread.join()
        self._thread = None


def import_files(store: Store, paths: Sequence[str | Path], *, role: str,
                 source: str | None = None, labels_reviewer: str | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 details: SearchDetails | None = None) -> tuple[ImportResult, ...]:
    """Import files into the store, one `searches` row per file, all in one transaction.

    Every file is checked and its format told before anything is written, then
    read as a stream and written `IMPORT_BATCH` records at a time; a bad file
    among several, or a failure at any record, leaves the store untouched.
    Records are never merged here. `progress(done, total)` is called with the
    records written so far after every batch and at the end of each file;
    `total` is estimated from the bytes read until the last file is written.
    `details` (platform, date searched, strategy, limits: `db.searches.check_details`)
    are the PRISMA-S items of the search that produced the files.
    """
    if role not in ROLES:
        raise FileFormatError(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
    if not paths:
        raise FileFormatError("No files given: name at least one file to import.")
    opened = [_open(p) for p in paths]
    steps = _Progress(progress, sum(o.size for o in opened))
    results = []
    with store.transaction():
        for i, o in enumerate(opened):
            results.append(_import_one(store, o, role=role, service=source or o.path.stem,
                                       labels_reviewer=labels_reviewer, details=details,
                                       progress=steps, last=i == len(opened) - 1))
    return tuple(results)


#: files this large, of a format in `_SPLITS`, have their records made in a second process
#: as well (one costs some 0.4 s to start: about what converting 2,000 rows takes)
PARALLEL_FROM_BYTES = 16 * 2**20


def _import_one(store: Store, opened: _Opened, *, role: str, service: str,
                labels_reviewer: str | None, details: SearchDetails | None,
                progress: _Progress, last: bool) -> ImportResult:
    from db.store import RECORD_COLUMNS, now

    name, sha256 = opened.file_name, opened.found.sha256
    # checked under the write lock, so two imports of one file cannot both land
    earlier = _already_imported(store, sha256)
    if earlier is not None:
        fmt, held, n_read = earlier
        progress.file_done(0, opened.size)
        progress(0, 0, last=last)
        return ImportResult(name, fmt, sha256, n_read, held, 0, 0, None, True, ())
    text = opened.text()
    tally = _Tally(Reading(opened.format))
    # a small file is read in this process alone: a second one costs more to start than
    # it would save
    split = (_SPLITS.get(opened.format) if opened.size >= PARALLEL_FROM_BYTES
             and (os.cpu_count() or 1) > 1 else None)
    items: Iterator[Any] = (_entries(opened, text, tally, split) if split is not None
                            else _records(opened, text, tally))
    first = next(items, None)  # the reader has told the format by now (CSV or TSV)
    if first is None:
        _finished(opened, tally)  # raises: no records
    params: dict[str, Any] = {"labels_reviewer": labels_reviewer} if labels_reviewer else {}
    given = details.given() if details is not None else {}
    params.update({k: given[k] for k in ("platform", "searched") if k in given})
    sid = store.start_search(kind="import", service=service, role=role, file_name=name,
                             sha256=sha256, format=tally.reading.format, params=params or None,
                             query=given.get("query"),
                             limits={"limits": given["limits"]} if "limits" in given else None)
    conn = store.db.conn
    stamp = now()
    next_id = (conn.execute("SELECT max(id) FROM records").fetchone()[0] or 0) + 1
    n_labels = 0
    kept = 0
    checked = False  # the labels' reviewer is known
    columns = ["id", *RECORD_COLUMNS, "created_at"]
    insert_records = (f"INSERT INTO records ({', '.join(columns)}) "
                      f"VALUES ({', '.join('?' * len(columns))})")

    def write(batch: _Batch) -> None:
        rows, sources, labels = batch
        # ids given, not left to SQLite: a source row names its record before either is written
        conn.executemany(insert_records, rows)
        conn.executemany("INSERT INTO sources (record_id, search_id, role, service, rank, "
                         "source_record_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)", sources)
        if labels:
            store.log_events("decision", ({
                "record_id": rid, "reviewer": labels_reviewer, "stage": LABEL_STAGE,
                "value": label, "data": {"imported_from": name, "search_id": sid}}
                for rid, label in labels))

    # a store in memory is bound to the thread that opened it; a file's connection is not
    writer = _BatchWriter(write, threaded=store.path is not None)
    batches = (_converted(opened, text, tally, split, _chain(first, items))
               if split is not None else _batches(_chain(first, items)))
    i = 0  # records kept so far
    try:
        for batch in batches:
            rows: list[tuple[Any, ...]] = []
            sources: list[tuple[Any, ...]] = []
            labels: list[tuple[int, str]] = []
            for values, source_id, label in batch:
                rid = next_id + i
                i += 1
                rows.append((rid, *values, stamp))
                sources.append((rid, sid, role, service, i, source_id, stamp))
                if label:
                    n_labels += 1
                    if labels_reviewer is not None:
                        if not checked:
                            writer.drain()  # the store is read from this thread
                            store.require_reviewer(labels_reviewer)
                            checked = True
                        labels.append((rid, label))
                        kept += 1
            if rows:
                writer.put((rows, sources, labels))
            if len(batch) == IMPORT_BATCH:  # the end of a file is reported by `file_done`
                progress(i, text.bytes_read)
        writer.drain()
    finally:
        batches.close()  # a second process, if any, is ended before the rollback
        writer.close()
    held, read_warnings = _finished(opened, tally)
    if tally.reading.has_labels and labels_reviewer is not None and not checked:
        store.require_reviewer(labels_reviewer)
    warnings = list(read_warnings)
    if n_labels and labels_reviewer is None:
        warnings.append(f"{name}: {n_labels} screening labels were not kept; "
                        "import again with --labels-reviewer NAME to keep them as decisions.")
    n = tally.n_kept
    # found: what the file holds by its own markers; kept: what could be read from it
    store.finish_search(sid, n_found=held, n_kept=n, n_added=n, notes="\n".join(warnings) or None)
    progress.file_done(n, opened.size)
    progress(0, 0, last=last)
    return ImportResult(name, tally.reading.format, sha256, n, held, n, kept, sid, False,
                        tuple(warnings))


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    if first is not None:
        yield first
    yield from rest


def _batches(records: Iterator[Labelled]) -> Generator[list[Row], None, None]:
    """The rows of `records`, `IMPORT_BATCH` at a time."""
    from db.store import record_values

    rows: list[Row] = []
    for record, label in records:
        rows.append((record_values(record), record.source_id, label))
        if len(rows) == IMPORT_BATCH:
            yield rows
            rows = []
    if rows:
        yield rows


def _entries(opened: _Opened, text: Text, tally: _Tally, split: Split) -> Iterator[Any]:
    """The raw entries of a file whose reader is split in two, a failure worded as
    `_records` words it."""
    name = opened.file_name
    try:
        yield from split.entries(text, name, tally.reading)
    except FileFormatError:
        raise
    except Exception as exc:  # a third-party parser's own error becomes one sentence
        raise FileFormatError(f"{name} could not be read as {opened.format} ({exc}).") from None


def _converted(opened: _Opened, text: Text, tally: _Tally, split: Split,
               entries: Iterator[Any]) -> Generator[list[Row], None, None]:
    """The rows of a file's entries, `IMPORT_BATCH` entries at a time and in order, made
    in a second process as well as in this one (`Conversions`); what each batch cut or
    left out is counted in `tally`, and the first failure in the file's order is raised."""
    name = opened.file_name
    conversions = Conversions(split, name, opened.format, child=True)

    def taken(done: Converted) -> list[Row]:
        tally.n_read += done.n_read
        tally.n_kept += len(done.rows)
        tally.n_cuts += done.n_cuts
        tally.cuts.extend(done.cuts[:SHOWN_CUTS - len(tally.cuts)])
        tally.n_empty += done.n_empty
        tally.empty.extend(done.empty[:SHOWN_EMPTY - len(tally.empty)])
        if done.error is not None:
            raise FileFormatError(done.error)
        if not tally.reading.has_labels and any(row[2] is not None for row in done.rows):
            tally.reading.has_labels = True  # as a reader in one piece says on a label
        return done.rows

    try:
        number = 1  # the file's number of the batch's first entry
        batch: list[Any] = []
        failure: FileFormatError | None = None
        while True:
            try:
                entry = next(entries)
            except StopIteration:
                break
            except FileFormatError as exc:
                # the entries before the failure are made into records first, as a reader
                # in one piece would have made them: one of them may fail first, or bring
                # the first label
                failure = exc
                break
            batch.append(entry)
            if len(batch) == IMPORT_BATCH:
                for done in conversions.put(number, batch):
                    yield taken(done)
                number += len(batch)
                batch = []
        if batch:
            for done in conversions.put(number, batch):
                yield taken(done)
        for done in conversions.finish():
            yield taken(done)
        if failure is not None:
            raise failure
    finally:
        conversions.close()
