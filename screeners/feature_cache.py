"""The prioritiser's term counts kept beside the store, a row per record, so a
new process (`cluster status --estimate`, a new `cluster screen`) reads them
instead of counting every text again, and a changed store costs only its
changed records.

The cache is a SQLite file beside the store, `<store file>.features.sqlite`.
Each canonical record has a row: its id, a hash of its title, abstract and
keywords (`text_hash`), and its term counts in each view of the features
(hashed columns, `Tfidf.term_counts`), deflated. A record whose text hash
differs from its row's, or that has no row, is counted again and its row
replaced; rows of records that are gone or became duplicates are deleted. The
weights are not stored: the document frequencies, and so the idf, change
whenever records are added, so they are computed from the counts on loading
(cheap next to counting). The file also holds each reviewer's last ranking,
so a sitting can show its first card before the ranking is computed again.

A file made with other feature settings, or that cannot be read, is started
again; a row that does not decode is counted again. The cache is only ever a
shortcut to the counts a fresh count gives. Nothing but numbers is stored
(no text, no terms), and nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from scipy import sparse

from db.files import features_path
from db.store import Store

FORMAT = 5  # bump when the file layout changes
ORDER_KEPT = 500  # records of a reviewer's last ranking kept for the next sitting's start


def cache_path(store: Store) -> Path | None:
    """Where the store's features are kept (None for an in-memory store)."""
    if store.path is None:
        return None
    return features_path(store.path)


def text_hash(title: str | None, abstract: str | None, keywords: str | None) -> bytes:
    """A hash of a record's texts (lengths first, so no two records hash alike by
    shifting text from one field to the next)."""
    parts = [(p or "").encode("utf-8", "surrogatepass") for p in (title, abstract, keywords)]
    h = hashlib.blake2b(b"%d\x1f%d\x1f%d\x1e" % tuple(len(p) for p in parts), digest_size=12)
    for p in parts:
        h.update(p)
    return h.digest()


def encode_rows(counts: Sequence[sparse.csr_matrix]) -> list[bytes]:
    """Each row's counts in every view, one deflated blob per row: the entries per
    view, then per view the column gaps, then per view the counts (all uint32).
    Every row's numbers are laid out in one array at once; only the deflating
    is done a row at a time."""
    views = [sparse.csr_matrix(C) for C in counts]
    for C in views:
        C.sort_indices()
    n_views, n_rows = len(views), views[0].shape[0]
    ns = [np.diff(C.indptr).astype(np.int64) for C in views]
    per_row = np.sum(ns, axis=0) if n_rows else np.zeros(0, dtype=np.int64)
    lengths = n_views + 2 * per_row
    starts = np.cumsum(lengths) - lengths
    out = np.zeros(int(lengths.sum()), dtype="<u4")
    before = np.zeros(n_rows, dtype=np.int64)  # entries of earlier views in each row
    for v, C in enumerate(views):
        n = ns[v]
        out[starts + v] = n
        cols = C.indices.astype(np.int64)
        row_start = C.indptr[:-1].astype(np.int64)
        gaps = np.diff(cols, prepend=0)
        filled = n > 0
        # each row's first gap is its first column itself
        gaps[row_start[filled]] = cols[row_start[filled]]
        row_of = np.repeat(np.arange(n_rows, dtype=np.int64), n)
        within = np.arange(len(cols), dtype=np.int64) - row_start[row_of]
        at = (starts + n_views + before)[row_of] + within
        out[at] = gaps
        out[at + per_row[row_of]] = C.data.astype(np.uint32)
        before += n
    raw = memoryview(out.tobytes())
    return [zlib.compress(raw[4 * a:4 * (a + k)], 6)
            for a, k in zip(starts.tolist(), lengths.tolist())]


DECODE_CHUNK = 20000  # rows decoded at a time: bounds the working arrays
READ_CHUNK = 2000  # rows decoded at a time by `read_rows` (a few tens of MB)


class Unreadable(Exception):
    """The cache does not hold every record's counts, or a row does not decode."""


def decode_rows(blobs: Sequence[bytes], n_views: int, width: int
                ) -> tuple[sparse.csr_matrix, ...] | None:
    """The count matrices `encode_rows` was given, rows in the order of `blobs`;
    None if any blob does not decode or does not hang together. Decoded a chunk
    of rows at a time, so the working arrays stay small beside the result."""
    parts: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = [[] for _ in range(n_views)]
    for at in range(0, len(blobs), DECODE_CHUNK):
        chunk = _decode_chunk(blobs[at:at + DECODE_CHUNK], n_views, width)
        if chunk is None:
            return None
        for v in range(n_views):
            parts[v].append(chunk[v])
    out = []
    for v in range(n_views):
        lens = np.concatenate([p[0] for p in parts[v]]) if parts[v] else np.zeros(0, np.int64)
        cols = np.concatenate([p[1] for p in parts[v]]) if parts[v] else np.zeros(0, np.int32)
        data = np.concatenate([p[2] for p in parts[v]]) if parts[v] else np.zeros(0, np.float32)
        parts[v] = []
        indptr = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        if indptr[-1] < 2**31:
            indptr = indptr.astype(np.int32)
        out.append(sparse.csr_matrix((data, cols, indptr), shape=(len(lens), width)))
    return tuple(out)


def _decode_chunk(blobs: Sequence[bytes], n_views: int, width: int
                  ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """Per view (entries per row, columns, counts) of these rows, or None."""
    try:
        raw = [zlib.decompress(b) for b in blobs]
    except (zlib.error, TypeError):
        return None
    if any(len(r) % 4 for r in raw):
        return None
    lengths = np.fromiter((len(r) // 4 for r in raw), dtype=np.int64, count=len(raw))
    a = np.frombuffer(b"".join(raw), dtype="<u4")
    del raw
    starts = np.cumsum(lengths) - lengths
    if len(lengths) and int(lengths.min()) < n_views:
        return None
    ns = np.stack([a[starts + v].astype(np.int64) for v in range(n_views)], axis=1) \
        if len(starts) else np.zeros((0, n_views), dtype=np.int64)
    per_row = ns.sum(axis=1)
    if not np.array_equal(lengths, n_views + 2 * per_row):
        return None
    out = []
    before = np.zeros(len(starts), dtype=np.int64)  # entries of earlier views in each row
    for v in range(n_views):
        n = ns[:, v]
        first = np.cumsum(n) - n
        total = int(n.sum())
        within = np.arange(total, dtype=np.int64) - np.repeat(first, n)
        gaps = a[np.repeat(starts + n_views + before, n) + within].astype(np.int64)
        data = a[np.repeat(starts + n_views + per_row + before, n) + within].astype(np.float32)
        # the gaps summed within each row give the columns back
        run = np.cumsum(gaps)
        base = np.zeros(len(n), dtype=np.int64)
        base[n > 0] = run[first[n > 0]] - gaps[first[n > 0]]
        cols = run - np.repeat(base, n)
        if total and (cols.min() < 0 or cols.max() >= width or data.min() <= 0):
            return None
        out.append((n, cols.astype(np.int32), data))
        before += n
    return out


class FeatureFile:
    """The cache file of one store, open."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    @classmethod
    def open(cls, path: Path, settings: str) -> FeatureFile | None:
        """The cache at `path` for feature settings `settings`, started again if it
        was made with other settings or cannot be read; None if it cannot be had
        (a read-only folder, a folder in its place): go on without it."""
        for attempt in (0, 1):
            try:
                new = not path.exists()
                conn = sqlite3.connect(str(path), timeout=10, isolation_level=None,
                                       check_same_thread=False)
                try:
                    ok = _prepare(conn, f"{FORMAT}:{settings}")
                    if new:
                        _same_mode(path)
                except sqlite3.DatabaseError:
                    conn.close()
                    ok = False
                if ok:
                    return cls(conn)
                conn.close()
                if attempt == 0 and path.is_file():
                    path.unlink()  # another layout, other settings, not a database: anew
            except (OSError, sqlite3.Error):
                return None
        return None

    def close(self) -> None:
        self.conn.close()

    def hashes(self) -> dict[int, bytes]:
        """record id -> the text hash its row was counted from."""
        return dict(self.conn.execute("SELECT id, hash FROM rows"))

    def write(self, ids: Sequence[int], hashes: Sequence[bytes],
              counts: Sequence[sparse.csr_matrix]) -> bool:
        """Store (or replace) these records' rows; False if they could not be written."""
        blobs = encode_rows(counts)
        sizes = [np.diff(C.indptr).tolist() for C in counts] + [[0] * len(ids)]
        return self._write("INSERT OR REPLACE INTO rows (id, hash, counts, first, second) "
                           "VALUES (?, ?, ?, ?, ?)", zip(ids, hashes, blobs, sizes[0], sizes[1]))

    def remove(self, ids: Iterable[int]) -> bool:
        return self._write("DELETE FROM rows WHERE id = ?", ((i,) for i in ids))

    def _write(self, sql: str, rows: Iterable[tuple]) -> bool:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(sql, rows)
                self.conn.execute("COMMIT")
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            return True
        except sqlite3.Error:  # a full disk, another writer holding on: go on without
            return False

    def read_rows(self, ids: np.ndarray, n_views: int, width: int
                  ) -> Iterator[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
        """The counts of records `ids` (sorted), `READ_CHUNK` rows at a time: per
        view (entries per row, columns, counts), as `Tfidf.weigh_blocks` takes
        them. Raises `Unreadable` (possibly after some chunks) if a record is
        missing or a row does not decode: the counts must then be made anew."""
        try:
            cur = self.conn.execute("SELECT id, first, second, counts FROM rows ORDER BY id")
            row = 0
            while True:
                got = cur.fetchmany(READ_CHUNK)
                if not got:
                    break
                if not np.array_equal(np.fromiter((g[0] for g in got), dtype=np.int64,
                                                  count=len(got)), ids[row:row + len(got)]):
                    raise Unreadable("the records differ")
                chunk = _decode_chunk([g[3] for g in got], n_views, width)
                if chunk is None:
                    raise Unreadable("a row does not decode")
                sizes = np.array([g[1:3] for g in got], dtype=np.int64).reshape(-1, 2)
                for v, (n, _, _) in enumerate(chunk):
                    if not np.array_equal(n, sizes[:, v]):
                        raise Unreadable("a row does not decode")
                row += len(got)
                del got
                yield chunk
            if row != len(ids):
                raise Unreadable("the records differ")
        except (sqlite3.Error, ValueError) as exc:
            raise Unreadable(str(exc)) from None

    def save_order(self, stage: str, reviewer: str, ids: Sequence[int]) -> bool:
        blob = np.asarray(list(ids)[:ORDER_KEPT], dtype="<i8").tobytes()
        return self._write("INSERT OR REPLACE INTO orders (stage, reviewer, ids) VALUES (?, ?, ?)",
                           [(stage, reviewer, blob)])

    def order(self, stage: str, reviewer: str) -> list[int]:
        row = self.conn.execute("SELECT ids FROM orders WHERE stage = ? AND reviewer = ?",
                                (stage, reviewer)).fetchone()
        if row is None or not isinstance(row[0], bytes) or len(row[0]) % 8:
            return []
        return np.frombuffer(row[0], dtype="<i8").tolist()


def _prepare(conn: sqlite3.Connection, layout: str) -> bool:
    """Make the tables of a new file; whether the file is of `layout`."""
    conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)")
    row = conn.execute("SELECT value FROM meta WHERE key = 'layout'").fetchone()
    if row is None:
        if conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0] != 1:
            return False  # tables of something else
        conn.executescript(
            "BEGIN;"
            "CREATE TABLE rows (id INTEGER PRIMARY KEY, hash BLOB NOT NULL, counts BLOB NOT NULL, "
            "first INTEGER NOT NULL, second INTEGER NOT NULL);"
            "CREATE TABLE orders (stage TEXT, reviewer TEXT, ids BLOB, "
            "PRIMARY KEY (stage, reviewer));"
            "COMMIT;")
        conn.execute("INSERT INTO meta (key, value) VALUES ('layout', ?)", (layout,))
        return True
    return bool(row[0] == layout)


def _same_mode(path: Path) -> None:
    # whoever may read the store may read its features
    store_file = path.with_name(path.name[: -len(path.suffix)].rsplit(".features", 1)[0])
    if store_file.exists():
        os.chmod(path, store_file.stat().st_mode & 0o666)
