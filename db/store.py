"""The review store: one SQLite file per review, its schema and its write paths.

Tables (see the design notes in README): `records`, `searches` (the PRISMA-S
log, one row per query or imported file), `sources` (provenance, many per
record), `events` (the append-only decision log) and `reviewers`. The schema is
built by numbered migrations; a store written by a newer version is refused
rather than silently misread.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping

from base.errors import ClusterError
from base.record import Author, Record, valid_text
from db.events import event_problem

if TYPE_CHECKING:  # loaded where a store is written or migrated (see `Store.db`)
    import sqlite_utils

APP_ID = 0x434C5354  # "CLST": marks a file as a cluster store


class MigrationSteps:
    """The schema's numbered steps, each registered with `@migrations(name=...)` as on
    sqlite-utils' `Migrations`, which runs them. sqlite-utils (with its plugins) takes
    longer to import than a whole `cluster status` may: a store that needs no step,
    the usual case, is opened and read without it."""

    def __init__(self, name: str):
        self.name = name
        self.steps: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = []

    def __call__(self, *, name: str) -> Callable[[Callable], Callable]:
        def register(fn: Callable) -> Callable:
            self.steps.append((name, fn))
            return fn
        return register

    def runner(self) -> sqlite_utils.Migrations:
        """sqlite-utils' `Migrations` holding these steps."""
        from sqlite_utils import Migrations

        runner = Migrations(self.name)
        for name, fn in self.steps:
            runner(name=name)(fn)
        return runner


migrations = MigrationSteps("cluster")


class StoreError(ClusterError):
    """A problem with the store a user can fix; the message is one sentence."""


class DuplicateLinkError(StoreError):
    """`duplicate_of` links that run in a loop or to a missing record; names the records."""

    def __init__(self, message: str, record_ids: Iterable[int] = ()):
        super().__init__(message)
        self.record_ids = tuple(sorted(set(record_ids)))


def follow_duplicates(record_id: int, parent_of: Callable[[int], int | None]) -> int:
    """Follow `duplicate_of` links (`parent_of`; KeyError for a record not in the store)
    from `record_id` to the record that stands for the work.

    The one walk over the links. A chain that loops or ends at a missing record
    cannot say which record stands for the work, so it is an error naming the
    records, never a guess.
    """
    seen: list[int] = []
    cur = record_id
    while True:
        try:
            nxt = parent_of(cur)
        except KeyError:
            if not seen:
                raise StoreError(f"Record {record_id} is not in this store.") from None
            nxt, broken = None, seen
        else:
            broken = seen + [cur] if cur in seen else []
        if broken:
            raise DuplicateLinkError(
                f"Records {id_list(broken)} are marked as duplicates in a loop or of a missing "
                "record: undo the merge that linked them and deduplicate again.", broken)
        if nxt is None:
            return cur
        seen.append(cur)
        cur = nxt


def id_list(ids: Iterable[int], limit: int = 10) -> str:
    """Record ids for a message: sorted, the first `limit`, and how many more."""
    s = sorted(set(ids))
    text = ", ".join(str(i) for i in s[:limit])
    return text + (f" (and {len(s) - limit} more)" if len(s) > limit else "")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def new_id() -> str:
    return str(uuid.uuid4())


def _inserted_id(table: sqlite_utils.db.Table, what: str) -> int:
    """The integer key of the row `table` has just inserted."""
    if not isinstance(table.last_pk, int):
        raise StoreError(f"The store did not return the id of the new {what}.")
    return table.last_pk


# --- schema ------------------------------------------------------------------


@migrations(name="m001_initial")
def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("meta").create({"key": str, "value": str}, pk="key")
    db.table("records").create(
        {
            "id": int, "title": str, "abstract": str, "authors": str, "year": int,
            "journal": str, "volume": str, "issue": str, "pages": str,
            "doi": str, "pmid": str, "pmcid": str, "openalex": str,
            "language": str, "pub_types": str, "keywords": str, "issn": str, "url": str,
            "author_details": str, "needs_metadata": int, "duplicate_of": int,
            "extra": str, "created_at": str,
        },
        pk="id",
    )
    for col in ("doi", "pmid", "pmcid", "openalex", "duplicate_of"):
        db.table("records").create_index([col])
    db.table("searches").create(
        {
            "id": int, "uuid": str, "kind": str, "service": str, "strategy": str,
            "role": str, "query": str, "params": str, "seed_record_id": int,
            "file_name": str, "sha256": str, "format": str, "limits": str,
            "started_at": str, "finished_at": str, "status": str,
            "n_found": int, "n_kept": int, "n_added": int, "error": str, "notes": str,
        },
        pk="id",
    )
    db.table("searches").create_index(["uuid"], unique=True)
    db.table("searches").create_index(["sha256"])
    db.table("sources").create(
        {
            "id": int, "record_id": int, "search_id": int, "role": str, "service": str,
            "strategy": str, "seed_record_id": int, "rank": int, "score": float,
            "source_record_id": str, "created_at": str,
        },
        pk="id",
        foreign_keys=[("record_id", "records", "id"), ("search_id", "searches", "id")],
    )
    db.table("sources").create_index(["record_id"])
    db.table("sources").create_index(["search_id"])
    db.table("events").create(
        {
            "seq": int, "id": str, "ts": str, "kind": str, "record_id": int,
            "reviewer": str, "stage": str, "value": str, "reason": str, "note": str,
            "undoes": str, "data": str, "review_id": str,
        },
        pk="seq",
    )
    db.table("events").create_index(["id"], unique=True)
    db.table("events").create_index(["record_id"])
    db.table("events").create_index(["kind"])
    db.table("reviewers").create({"name": str, "role": str, "created_at": str}, pk="name")
    # the decision log is append-only: the database itself refuses edits
    db.execute(
        "CREATE TRIGGER events_no_update BEFORE UPDATE ON events "
        "BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER events_no_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END"
    )


@migrations(name="m002_event_indexes")
def m002_event_indexes(db: sqlite_utils.Database) -> None:
    # a reviewer's own queue reads their decisions at one stage on every keypress
    db.table("events").create_index(["reviewer", "stage", "kind"])
    db.table("events").create_index(["kind", "stage"])


@migrations(name="m003_dedup_keys")
def m003_dedup_keys(db: sqlite_utils.Database) -> None:
    # a record's normalised deduplication keys, so a run re-normalises only new or edited
    # records; `fingerprint` ties a row to the record's fields and the normaliser version
    # (cluster/dedup/keys.py), and a row whose fingerprint differs is never used
    db.execute(
        "CREATE TABLE dedup_keys (record_id INTEGER PRIMARY KEY REFERENCES records(id) "
        "ON DELETE CASCADE, fingerprint BLOB NOT NULL, keys TEXT NOT NULL)"
    )



@migrations(name="m004_records_study")
def m004_records_study(db: sqlite_utils.Database) -> None:
    # the few records whose import named their study, found without reading every record:
    # the PRISMA flow asks for them on every call (db/flow.py, `_study_links`)
    db.execute("CREATE INDEX idx_records_study ON records(id) WHERE instr(extra, 'study')")

KNOWN_MIGRATIONS = {name for name, _ in migrations.steps}
#: the tables every migrated store has
TABLES = ("meta", "records", "searches", "sources", "events", "reviewers", "dedup_keys")


# --- opening -----------------------------------------------------------------


def _check_is_store(path: Path) -> None:
    with open(path, "rb") as fh:
        head = fh.read(100)
    if len(head) == 0:
        return  # an empty file becomes a store
    if not head.startswith(b"SQLite format 3\x00"):
        raise StoreError(f"{path} is not a cluster review store (not an SQLite database).")
    app_id = int.from_bytes(head[68:72], "big")
    if app_id != APP_ID and not _store_in_creation(path):
        raise StoreError(f"{path} is an SQLite database but not a cluster review store.")


def _store_in_creation(path: Path) -> bool:
    """Whether another command is creating a store here (or has, not yet checkpointed).

    Until the first checkpoint the application id sits in the write-ahead log,
    not in the file's header; a reader sees it, or an empty database while the
    creator's first transaction is still open. Read-only: a foreign database is
    never touched.
    """
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)
    except sqlite3.Error:
        return False
    try:
        app_id = conn.execute("PRAGMA application_id").fetchone()[0]
        n_objects = conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error:
        return False
    finally:
        conn.close()
    return app_id == APP_ID or n_objects == 0


def _undo(conn: sqlite3.Connection, *statements: str) -> None:
    """Roll back after a failure, keeping the failure as the error a user sees.

    After some errors (a full disk, an I/O error, a failed COMMIT) SQLite has
    already rolled the whole transaction back itself; rolling back again would
    raise "no transaction is active" and hide the real cause.
    """
    if not conn.in_transaction:
        return
    try:
        for sql in statements:
            conn.execute(sql)
    except sqlite3.Error:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the connection is unusable; closing it discards the transaction


@contextmanager
def _begun(conn: sqlite3.Connection, begin: str) -> Iterator[None]:
    """A transaction opened with `begin`: committed when the block ends, rolled back
    (see `_undo`) when it fails, however it fails."""
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        _undo(conn, "ROLLBACK")
        raise


def _quick_check(conn: sqlite3.Connection) -> str | None:
    """What `PRAGMA quick_check` finds wrong with the file (None: nothing)."""
    try:
        rows = conn.execute("PRAGMA quick_check(1)").fetchall()
        return None if rows == [("ok",)] else str(rows[0][0] if rows else "no answer")
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError) and "malformed" not in str(exc):
            raise  # busy, locked, read-only: the CLI words those itself
        return str(exc)


class _EarlyCheck:
    """`_quick_check` of the store's file on a read-only connection in a thread
    (SQLite lets other threads run while it reads the pages)."""

    def __init__(self, path: Path):
        self._path = path
        self._answered = False  # busy, locked, not opened: the first write checks itself
        self._problem: str | None = None
        self._thread = threading.Thread(target=self._run, name="cluster-store-check",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path.resolve().as_uri() + "?mode=ro", uri=True,
                                   timeout=30, check_same_thread=False)
        except sqlite3.Error:
            return  # not answered: the first write checks on its own connection
        try:
            self._problem = _quick_check(conn)
            self._answered = True
        except sqlite3.Error:
            pass  # busy or locked: not answered
        finally:
            conn.close()

    def result(self) -> tuple[bool, str | None]:
        """(whether the check ran, what it found wrong), once it has finished."""
        self._thread.join()
        return self._answered, self._problem


class Store:
    """An open review store. Use `open_store()` to get one."""

    def __init__(self, conn: sqlite3.Connection, path: Path | None,
                 db: sqlite_utils.Database | None = None):
        self.conn = conn  # reads go straight to it
        self._db = db
        self.path = path
        self._checked = path is None  # an in-memory store cannot be damaged on disk
        self._early_check: _EarlyCheck | None = None
        self._canonical: tuple[tuple[int, int], tuple[int, int | None, int, float],
                               dict[int, int]] | None = None

    @property
    def db(self) -> sqlite_utils.Database:
        """sqlite-utils' view of the store, for writes: loaded on first use, so a command
        that only reads never imports it."""
        if self._db is None:
            import sqlite_utils

            self._db = sqlite_utils.Database(self.conn)
        return self._db

    def check_integrity(self) -> None:
        """Refuse to write into a damaged file: once per open store, before its first write.

        `quick_check` reads every page (about 0.1 s for a 30 MB store) but not the
        indexes' agreement with their tables; a write into a file with damaged
        pages could spread the damage to the decision log.
        """
        if self._checked:
            return
        early, self._early_check = self._early_check, None
        answered, problem = early.result() if early is not None else (False, None)
        if not answered:
            problem = _quick_check(self.conn)
        if problem:
            problem = " ".join(problem.replace("*** in database main ***", "").split())
            raise StoreError(f"The review store {self.path} is damaged ({problem}); nothing was "
                             "written: restore it from a backup or a copy.")
        self._checked = True

    def check_integrity_soon(self) -> None:
        """Start `check_integrity`'s reading of every page now, on a connection of its
        own in a thread, so the first write waits only for what is left of it: on a
        large store it takes a second or more, which a screening sitting spends
        showing its first card. The first write still refuses a damaged file."""
        if self._checked or self._early_check is not None or self.path is None:
            return
        self._early_check = _EarlyCheck(self.path)

    @contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """A read of several tables that sees one state of the store, whatever others write
        meanwhile (a WAL reader keeps the snapshot its transaction started with)."""
        conn = self.conn
        if conn.in_transaction:
            yield  # already inside a transaction: that is one snapshot
            return
        with _begun(conn, "BEGIN DEFERRED"):
            yield

    # -- transactions
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic unit: everything inside is written, or nothing is."""
        conn = self.conn
        if conn.in_transaction:
            # nested: a savepoint keeps inner failures from leaking half-writes
            name = f"sp_{uuid.uuid4().hex}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                _undo(conn, f"ROLLBACK TO {name}", f"RELEASE {name}")
                raise
            conn.execute(f"RELEASE {name}")
            return
        self.check_integrity()
        with _begun(conn, "BEGIN IMMEDIATE"):
            yield

    def close(self) -> None:
        self.conn.close()

    @property
    def review_id(self) -> str:
        # from the connection itself: a screening key press need not load sqlite-utils
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'review_id'").fetchone()
        return row[0] if row is not None else self.db.table("meta").get("review_id")["value"]

    # -- meta
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.table("meta").upsert({"key": key, "value": value}, pk="key")

    # -- records
    def add_record(self, record: Record) -> int:
        row = record_to_row(record)
        row["created_at"] = now()
        return _inserted_id(self.db.table("records").insert(row), "record")

    def update_record(self, record_id: int, record: Record) -> None:
        self.db.table("records").update(record_id, record_to_row(record))

    def get_record(self, record_id: int) -> Record:
        row = next(self.record_rows("id = ?", [record_id], include_duplicates=True), None)
        if row is None:
            raise StoreError(f"Record {record_id} is not in this store.")
        return row_to_record(row)

    def record_rows(self, where: str | None = None, params: Iterable[Any] = (),
                    include_duplicates: bool = False) -> Iterator[dict]:
        clauses = [] if include_duplicates else ["duplicate_of IS NULL"]
        if where:
            clauses.append(f"({where})")
        sql = "SELECT * FROM records"
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY id"
        cur = self.conn.execute(sql, list(params))
        cols = [c[0] for c in cur.description]
        for r in cur:
            yield dict(zip(cols, r))

    def records(self, **kw: Any) -> Iterator[tuple[int, Record]]:
        for row in self.record_rows(**kw):
            yield row["id"], row_to_record(row)

    def version(self) -> tuple[int, int]:
        """Changes whenever the store may have changed: a write through this connection
        or a commit by another one. Asks SQLite only for two counters, so a cache keyed
        on it costs nothing to check on a store of any size."""
        return (self.conn.total_changes,
                self.conn.execute("PRAGMA data_version").fetchone()[0])

    def records_signature(self) -> tuple[int, int | None, int, float]:
        """What changes when records are added, removed, merged or unmerged (by anyone):
        their count, the highest id, and the duplicate links' count and sum."""
        # three reads SQLite answers from an index each (count(*) alone walks the
        # smallest index, the duplicate links are a range of theirs), not a pass over
        # every row of a large table
        conn = self.conn
        with self.read_snapshot():
            count = conn.execute("SELECT count(*) FROM records").fetchone()[0]
            top = conn.execute("SELECT max(id) FROM records").fetchone()[0]
            links, total = conn.execute(
                "SELECT count(duplicate_of), total(duplicate_of) FROM records "
                "WHERE duplicate_of IS NOT NULL").fetchone()
        return count, top, links, total

    def canonical_map(self) -> dict[int, int]:
        """record id -> the canonical record that stands for its work, for every
        record marked as a duplicate.

        Kept until the records change (`records_signature`): a screening key press
        asks for it several times, and writes only events, while on a large store
        each reading costs a good part of a second."""
        state = self.version()
        kept = self._canonical
        if kept is None or kept[0] != state:
            signature = self.records_signature()
            if kept is None or kept[1] != signature:
                kept = (state, signature, self._read_canonical_map())
            self._canonical = kept = (state, signature, kept[2])
        return dict(kept[2])

    def _read_canonical_map(self) -> dict[int, int]:
        parent: dict[int, int] = {}
        missing: set[int] = set()
        for rid, dup, target in self.conn.execute(
                "SELECT r.id, r.duplicate_of, p.id FROM records r "
                "LEFT JOIN records p ON p.id = r.duplicate_of WHERE r.duplicate_of IS NOT NULL"):
            parent[rid] = dup
            if target is None:
                missing.add(dup)

        def parent_of(rid: int) -> int | None:
            if rid in missing:
                raise KeyError(rid)
            return parent.get(rid)

        return {rid: follow_duplicates(rid, parent_of) for rid in parent}

    def canonical_id(self, record_id: int) -> int:
        """The record that stands for `record_id`'s work (itself unless it is a duplicate)."""
        def parent_of(rid: int) -> int | None:
            row = self.conn.execute("SELECT duplicate_of FROM records WHERE id = ?",
                                  [rid]).fetchone()
            if row is None:
                raise KeyError(rid)
            return row[0]

        return follow_duplicates(record_id, parent_of)

    def find_by_ids(self, record: Record) -> int | None:
        """An existing record with the same DOI, PMID, PMCID or OpenAlex id."""
        for col, val in record.ids().items():
            row = self.conn.execute(
                f"SELECT id FROM records WHERE {col} = ? ORDER BY id LIMIT 1", [val]
            ).fetchone()
            if row:
                return row[0]
        return None

    # -- searches (PRISMA-S log)
    def start_search(self, *, kind: str, service: str, strategy: str | None = None,
                     role: str | None = None, query: str | None = None,
                     params: Mapping[str, Any] | None = None, seed_record_id: int | None = None,
                     file_name: str | None = None, sha256: str | None = None,
                     format: str | None = None, limits: Mapping[str, Any] | None = None,
                     search_uuid: str | None = None) -> int:
        return _inserted_id(self.db.table("searches").insert({
            "uuid": search_uuid or new_id(), "kind": kind, "service": service,
            "strategy": strategy, "role": role, "query": query,
            "params": json.dumps(dict(params or {}), sort_keys=True),
            "seed_record_id": seed_record_id, "file_name": file_name, "sha256": sha256,
            "format": format, "limits": json.dumps(dict(limits or {}), sort_keys=True),
            "started_at": now(), "status": "running",
        }), "search")

    def finish_search(self, search_id: int, *, status: str = "done", n_found: int | None = None,
                      n_kept: int | None = None, n_added: int | None = None,
                      error: str | None = None, notes: str | None = None) -> None:
        changes: dict[str, Any] = {"status": status, "finished_at": now()}
        for k, v in (("n_found", n_found), ("n_kept", n_kept), ("n_added", n_added),
                     ("error", error), ("notes", notes)):
            if v is not None:
                changes[k] = v
        self.db.table("searches").update(search_id, changes)

    # -- sources (provenance)
    def add_source(self, record_id: int, search_id: int | None, *, role: str, service: str,
                   strategy: str | None = None, seed_record_id: int | None = None,
                   rank: int | None = None, score: float | None = None,
                   source_record_id: str | None = None) -> int:
        return _inserted_id(self.db.table("sources").insert({
            "record_id": record_id, "search_id": search_id, "role": role, "service": service,
            "strategy": strategy, "seed_record_id": seed_record_id, "rank": rank,
            "score": score, "source_record_id": source_record_id, "created_at": now(),
        }), "source")

    # -- events (append-only)
    def log_event(self, kind: str, *, record_id: int | None = None, reviewer: str | None = None,
                  stage: str | None = None, value: str | None = None, reason: str | None = None,
                  note: str | None = None, undoes: str | None = None,
                  data: Mapping[str, Any] | None = None, event_id: str | None = None,
                  ts: str | None = None) -> str:
        row = self._event_row(kind, record_id=record_id, reviewer=reviewer, stage=stage,
                              value=value, reason=reason, note=note, undoes=undoes, data=data,
                              event_id=event_id, ts=ts)
        # a plain INSERT: a screening key press need not load sqlite-utils
        self.conn.execute(f"INSERT INTO events ({', '.join(row)}) VALUES "
                          f"({', '.join('?' * len(row))})", list(row.values()))
        eid: str = row["id"]
        return eid

    def log_events(self, kind: str, events: Iterable[Mapping[str, Any]]) -> int:
        """Log many events of one kind (each a dict of `log_event`'s keywords), each as
        `log_event` would, in one statement: an import's screening labels. Returns how many."""
        review_id = self.review_id
        rows = [self._event_row(kind, review_id=review_id, **fields) for fields in events]
        if rows:
            cols = list(rows[0])
            self.db.conn.executemany(
                f"INSERT INTO events ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [[row[c] for c in cols] for row in rows])
        return len(rows)

    def _event_row(self, kind: str, *, record_id: int | None = None,
                   reviewer: str | None = None, stage: str | None = None,
                   value: str | None = None, reason: str | None = None, note: str | None = None,
                   undoes: str | None = None, data: Mapping[str, Any] | None = None,
                   event_id: str | None = None, ts: str | None = None,
                   review_id: str | None = None) -> dict[str, Any]:
        """The row of one event, checked (`StoreError` names what is wrong with it)."""
        problem = event_problem(kind, {"record_id": record_id, "reviewer": reviewer,
                                       "stage": stage, "value": value, "reason": reason,
                                       "note": note, "undoes": undoes})
        if problem:
            raise StoreError(f"The event was not logged: {problem}.")
        eid = event_id or new_id()
        # a note typed on a terminal that is not UTF-8 arrives with lone surrogates
        row: dict[str, Any] = valid_text({
            "id": eid, "ts": ts or now(), "kind": kind, "record_id": record_id,
            "reviewer": reviewer, "stage": stage, "value": value, "reason": reason,
            "note": note, "undoes": undoes,
            "data": json.dumps(dict(data or {}), sort_keys=True),
            "review_id": self.review_id if review_id is None else review_id,
        })
        return row

    def log_batch(self, kind: str, events: Iterable[Mapping[str, Any]]) -> list[str]:
        """Log the events one action writes (each a dict of `log_event`'s keywords) as one
        batch: each carries data {"batch": the first one's id}, so one undo takes them
        all back. Call it inside a transaction."""
        ids: list[str] = []
        for fields in events:
            fields = dict(fields)
            lead = ids[0] if ids else new_id()
            fields["data"] = {**dict(fields.get("data") or {}), "batch": lead}
            ids.append(self.log_event(kind, event_id=None if ids else lead, **fields))
        return ids

    def events(self, where: str | None = None, params: Iterable[Any] = ()) -> list[dict]:
        sql = "SELECT * FROM events"
        if where:
            sql += f" WHERE {where}"
        sql += " ORDER BY seq"
        cur = self.conn.execute(sql, list(params))
        cols = [c[0] for c in cur.description]
        out = []
        for r in cur:
            row = dict(zip(cols, r))
            row["data"] = json.loads(row["data"] or "{}")
            out.append(row)
        return out

    # -- reviewers
    def add_reviewer(self, name: str, role: str = "reviewer") -> None:
        if not name.strip():
            raise StoreError("A reviewer name cannot be blank: give a name such as alice.")
        self.db.table("reviewers").upsert({"name": name, "role": role, "created_at": now()}, pk="name")

    def reviewer_roles(self) -> dict[str, str]:
        """Each reviewer's name and role label, by name."""
        return dict(self.conn.execute("SELECT name, role FROM reviewers ORDER BY name").fetchall())

    def reviewer_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT name FROM reviewers ORDER BY name")]

    def require_reviewer(self, name: str) -> None:
        if name not in self.reviewer_names():
            raise StoreError(
                f"Unknown reviewer {name!r}: add them with `cluster reviewers add {name}`."
            )


def open_store(path: str | Path | None, *, create: bool = True) -> Store:
    """Open (and if needed create and migrate) the store at `path`.

    `path=None` gives an in-memory store, for tests and simulations.
    """
    if path is None:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        p = None
    else:
        p = Path(path)
        if p.exists():
            if p.is_dir():
                raise StoreError(f"{p} is a folder, not a cluster review store.")
            _check_is_store(p)
        elif not create:
            raise StoreError(f"No review store at {p}: run `cluster init` first.")
        elif not p.parent.exists():
            raise StoreError(f"Cannot create {p}: the folder {p.parent} does not exist.")
        try:
            conn = sqlite3.connect(str(p), timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            # the file is fine but cannot be opened or switched to WAL (which writes beside it)
            raise StoreError(f"Cannot open the review store {p} ({exc}): check that you may "
                             f"write to it and to its folder.") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{p} is not a cluster review store ({exc}).") from None
    conn.isolation_level = None  # we manage transactions explicitly
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA foreign_keys = ON")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "_sqlite_migrations" not in tables:
        raise StoreError(f"{p} is a damaged review store (its table _sqlite_migrations is "
                         "missing): restore it from a backup or a copy.")
    applied = _applied_steps(conn) if tables else set()
    unknown = applied - KNOWN_MIGRATIONS
    if unknown:
        raise StoreError(
            f"{p} was written by a newer version of cluster (schema {max(unknown)}): upgrade cluster to open it."
        )
    store = Store(conn, p)
    if KNOWN_MIGRATIONS - applied:
        db = store.db
        runner = migrations.runner()
        db.execute("BEGIN IMMEDIATE")
        try:
            # re-check under the write lock: another process may have migrated
            if runner.pending(db):
                runner.ensure_migrations_table(db)
                for m in runner.pending(db):
                    m.fn(db)
                    runner._record_applied(db, m.name)
                db.execute(f"PRAGMA application_id = {APP_ID}")
                if not db.execute("SELECT 1 FROM meta WHERE key='review_id'").fetchone():
                    db.table("meta").insert({"key": "review_id", "value": new_id()})
                    db.table("meta").insert({"key": "created_at", "value": now()})
            db.execute("COMMIT")
        except BaseException:
            _undo(db.conn, "ROLLBACK")
            raise
        # in WAL mode the header (with the application id that marks a cluster
        # store) reaches the main file only at a checkpoint; without one, a second
        # connection opened while this one lives would refuse the new store
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = sorted(set(TABLES) - tables)
    if missing:
        raise StoreError(f"{p} is a damaged review store (its table {missing[0]} is missing): "
                         "restore it from a backup or a copy.")
    return store


def _applied_steps(conn: sqlite3.Connection) -> set[str]:
    """The names of the schema steps applied to the store (as sqlite-utils records them)."""
    return {r[0] for r in conn.execute(
        "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [migrations.name])}


# --- row <-> record ------------------------------------------------------------

_JSON_TUPLES = ("authors", "language", "pub_types", "keywords")


#: `json.dumps` with these settings, without building an encoder per call (an import
#: writes every record through here)
_TO_JSON = json.JSONEncoder(ensure_ascii=False).encode
_EXTRA_TO_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str).encode


#: the columns of `records` a record fills, in the order `record_values` gives them
RECORD_COLUMNS = ("title", "abstract", "year", "journal", "volume", "issue", "pages", "doi",
                  "pmid", "pmcid", "openalex", "issn", "url", *_JSON_TUPLES, "author_details",
                  "needs_metadata", "extra")


#: the characters JSON (and `json.dumps`) write escaped inside a string
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _json_text(text: str) -> str:
    """`_TO_JSON(text)`: most text needs no escape and is quoted as it is."""
    return _TO_JSON(text) if _NEEDS_ESCAPE.search(text) else '"' + text + '"'


def _json_list(items: tuple[Any, ...]) -> str:
    """`_TO_JSON(list(items))`; a list of text written without building an encoder."""
    if not items:
        return "[]"
    if all(type(i) is str for i in items):
        return "[" + ", ".join(map(_json_text, items)) + "]"
    return _TO_JSON(list(items))


def _extra_json(record: Record) -> str:
    """The record's `extra` as JSON, with its `source_id` unless `extra` has one."""
    source_id = record.source_id
    if not record.extra:
        if source_id is None:
            return "{}"
        if type(source_id) is str:
            return '{"source_id": ' + _json_text(source_id) + "}"
    extra = dict(record.extra)
    if source_id is not None:
        extra.setdefault("source_id", source_id)
    return _EXTRA_TO_JSON(extra)


def record_values(record: Record) -> tuple[Any, ...]:
    """The values of the `records` row of `record`, in the order of `RECORD_COLUMNS`."""
    r = record
    values = (r.title, r.abstract, r.year, r.journal, r.volume, r.issue, r.pages, r.doi, r.pmid,
              r.pmcid, r.openalex, r.issn, r.url, _json_list(r.authors), _json_list(r.language),
              _json_list(r.pub_types), _json_list(r.keywords),
              _TO_JSON([asdict(a) for a in r.author_details]) if r.author_details else "[]",
              int(r.needs_metadata), _extra_json(r))
    # every record enters the store here, from whatever source: SQLite refuses lone
    # surrogates (the text checked in one call, repaired value by value only if need be)
    try:
        "".join([v for v in values if type(v) is str]).encode("utf-8")
    except UnicodeEncodeError:
        return tuple(valid_text(v) for v in values)
    return values


def record_to_row(record: Record) -> dict[str, Any]:
    return dict(zip(RECORD_COLUMNS, record_values(record)))


def row_to_record(row: Mapping[str, Any]) -> Record:
    extra = json.loads(row.get("extra") or "{}")
    details = tuple(
        Author(**{**a, "affiliations": tuple(a.get("affiliations") or ())})
        for a in json.loads(row.get("author_details") or "[]")
    )
    return Record(
        title=row.get("title"), abstract=row.get("abstract"),
        authors=tuple(json.loads(row.get("authors") or "[]")), year=row.get("year"),
        journal=row.get("journal"), volume=row.get("volume"), issue=row.get("issue"),
        pages=row.get("pages"), doi=row.get("doi"), pmid=row.get("pmid"),
        pmcid=row.get("pmcid"), openalex=row.get("openalex"),
        language=tuple(json.loads(row.get("language") or "[]")),
        pub_types=tuple(json.loads(row.get("pub_types") or "[]")),
        keywords=tuple(json.loads(row.get("keywords") or "[]")),
        issn=row.get("issn"), url=row.get("url"), source_id=extra.get("source_id"),
        needs_metadata=bool(row.get("needs_metadata")), author_details=details, extra=extra,
    )
