"""Prepared keys that persist in the review store, so a later run re-normalises only what changed.

Normalising every record is the largest fixed cost of a deduplication run
(about 20 s at 50,000 records) while an incremental run blocks only the new
records. The `dedup_keys` table (migration m003) keeps, per record id, the
`Prepared` fields as a JSON array and a fingerprint; a stored row is reused only
when its fingerprint equals the one computed from the record as it is now, so
a row can never stand for fields the record no longer has. The fingerprint
covers the fields `prepare_one` reads (`PREPARED_FROM`), `NORMALISER_VERSION`
and the `Prepared` field layout: editing a record invalidates its row, and a
change to the normalisation (with its version bump) invalidates all of them.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import fields
from operator import attrgetter
from typing import Any, Collection, Iterator, Mapping

from base.record import Record
from cluster.dedup import prepare
from cluster.dedup.prepare import (PREPARED_FROM, Prepared, PreparedCache, prepare_fields, prepare_one,
                                   prepared_values)
from db.store import Store, row_to_record

TABLE = "dedup_keys"
_NAMES = tuple(f.name for f in fields(Prepared))
# the caller's identifier is not a key: it is given again when a row is loaded
if _NAMES[0] != "key":
    raise ImportError("Prepared must keep `key` as its first field: stored keys are encoded without it.")


def layout() -> str:
    """The `Prepared` field names and types, as the fingerprint sees them."""
    return ",".join(f"{f.name}:{f.type}" for f in fields(Prepared))


def salt() -> bytes:
    """What every fingerprint starts from: the normaliser version and the field layout."""
    # read through the module, so that the version in force is the one used
    return f"v{prepare.NORMALISER_VERSION}|{layout()}|".encode()


def fingerprint(item: Record | Mapping[str, Any], seed: Any = None) -> bytes:
    """16 bytes that change when a field `prepare_one` reads, the version or the layout changes.

    `seed`: `hashlib.blake2b(salt(), digest_size=16)`, made once by a caller that
    fingerprints many records.
    """
    return _fingerprint_values(prepared_values(item), seed)


def _fingerprint_values(values: tuple[Any, ...], seed: Any = None) -> bytes:
    """`fingerprint` of a record whose fields are `values`, in the order of `PREPARED_FROM`."""
    try:
        # pickle writes each value typed and length-prefixed, so no value runs into the next
        # and 2019 differs from "2019"; at C speed, where repr() would escape whole abstracts.
        # Equal bytes always mean equal values; the converse may fail (a value shared by two
        # fields, another Python), which only costs a record prepared again.
        data = pickle.dumps(values, protocol=4)
    except Exception:  # a value pickle cannot write (from a caller's own mapping): its repr
        data = repr(values).encode("utf-8", "surrogatepass")
    h = (seed if seed is not None else _new_seed()).copy()
    h.update(data)
    return h.digest()


def _new_seed() -> Any:
    return hashlib.blake2b(salt(), digest_size=16)


_ENCODE = json.JSONEncoder(separators=(",", ":")).encode
_VALUES = attrgetter(*_NAMES[1:])


def encode(prepared: Prepared) -> str:
    """The fields of `prepared` but its key, as a compact JSON array in field order."""
    # ASCII escapes: any str, even one with a lone surrogate, is stored and read back
    return _ENCODE(_VALUES(prepared))


def decode(key: Any, text: str) -> Prepared:
    """The `Prepared` that `encode` wrote, under the caller's `key`."""
    return Prepared(key, *json.loads(text))


_COLUMNS = ", ".join(f"r.{c}" for c in PREPARED_FROM)
#: each record that stands for a work, with its stored keys if it has any
_SCAN_KEYS = (f"SELECT r.id, {_COLUMNS}, k.fingerprint, k.keys FROM records r "
              f"LEFT JOIN {TABLE} k ON k.record_id = r.id WHERE r.duplicate_of IS NULL ORDER BY r.id")
_SCAN = f"SELECT r.id, {_COLUMNS} FROM records r WHERE r.duplicate_of IS NULL ORDER BY r.id"


class StoredKeys:
    """The keys source of one run: reuses the store's rows, prepares (and remembers) the rest.

    `scan(store, keys)` gives it each record with its stored row. `prepared` and
    `reused` count what this run did; `save()` writes the newly prepared keys and
    belongs in the transaction that writes the run's outcome.
    """

    def __init__(self, fallback: PreparedCache | None = None) -> None:
        self._fallback = fallback
        self._fresh: dict[int, tuple[bytes, Prepared]] = {}
        self._seed = _new_seed()
        self.prepared = 0
        self.reused = 0

    def prepare(self, item: Record | Mapping[str, Any], key: Any, record_id: int,
                stored: tuple[bytes, str] | None = None) -> Prepared:
        """The keys of `item` (record `record_id`): the `stored` (fingerprint, keys) when they
        still fit its fields, else prepared afresh (and kept for `save()`)."""
        fp = fingerprint(item, self._seed)
        if stored is not None and stored[0] == fp:
            self.reused += 1
            return decode(key, stored[1])
        self.prepared += 1
        found = self._fallback.prepare(item, key) if self._fallback is not None else prepare_one(item, key)
        self._fresh[record_id] = (fp, found)
        return found

    def prepare_values(self, values: tuple[Any, ...], key: Any, record_id: int,
                       stored: tuple[bytes, str] | None = None) -> Prepared:
        """`prepare` on a record's fields (`PREPARED_FROM`, in order) rather than on a `Record`."""
        fp = _fingerprint_values(values, self._seed)
        if stored is not None and stored[0] == fp:
            self.reused += 1
            return decode(key, stored[1])
        self.prepared += 1
        if self._fallback is not None:
            found = self._fallback.prepare(Record(**dict(zip(PREPARED_FROM, values))), key)
        else:
            found = prepare_fields(key, *values)
        self._fresh[record_id] = (fp, found)
        return found

    def save(self, store: Store, *, changed: Collection[int] = (), gone: Collection[int] = ()) -> int:
        """Write the keys prepared in this run; returns how many rows were written.

        `changed`: record ids whose fields this run rewrote (a merge filled
        them): they are prepared again from the store as it now stands, so the
        next run finds their keys current. `gone`: record ids this run marked
        as duplicates. No row is kept for a record that no longer stands for a
        work: no run reads it, and one that stands again after an undo is
        prepared afresh.
        """
        dropped = set(gone)
        wanted = sorted(set(changed))
        redone: dict[int, tuple[bytes, Prepared]] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for row in store.record_rows(f"id IN ({', '.join('?' * len(chunk))})", chunk):
                record = row_to_record(row)
                redone[row["id"]] = (fingerprint(record, self._seed), prepare_one(record, row["id"]))
        written = 0

        def rows() -> Iterator[tuple[int, bytes, str]]:
            # encoded one at a time as SQLite takes them: a million rows are never held as text
            nonlocal written
            for rid, (fp, p) in self._fresh.items():
                if rid not in dropped and rid not in redone:
                    written += 1
                    yield rid, fp, encode(p)
            for rid, (fp, p) in redone.items():
                written += 1
                yield rid, fp, encode(p)

        store.db.conn.executemany(
            f"INSERT OR REPLACE INTO {TABLE} (record_id, fingerprint, keys) VALUES (?, ?, ?)", rows())
        store.db.execute(f"DELETE FROM {TABLE} WHERE record_id IN "
                         f"(SELECT id FROM records WHERE duplicate_of IS NOT NULL)")
        return written


_AUTHORS = PREPARED_FROM.index("authors")


def _values(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """The fields the keys are made of (`PREPARED_FROM`, in order), as `row_to_record` reads
    them; the record's other columns are neither read nor decoded, and no `Record` is built."""
    return (*row[:_AUTHORS], tuple(json.loads(row[_AUTHORS] or "[]")), *row[_AUTHORS + 1:])


def scan(store: Store, keys: StoredKeys | None,
         cache: PreparedCache | None = None) -> Iterator[tuple[int, str | None, Prepared]]:
    """(id, title, keys) of each record that stands for a work, in id order; the key of each
    `Prepared` is its position. The records and their stored keys are read in one pass and
    neither is held beyond the record being prepared. Without `keys`, stored keys are
    neither read nor remembered: each record is prepared (through `cache`, if given)."""
    width = len(PREPARED_FROM)
    for i, row in enumerate(store.db.execute(_SCAN if keys is None else _SCAN_KEYS)):
        values = _values(row[1:width + 1])
        if keys is not None:
            fp = row[width + 1]
            p = keys.prepare_values(values, i, row[0], None if fp is None else (fp, row[width + 2]))
        elif cache is not None:
            p = cache.prepare(Record(**dict(zip(PREPARED_FROM, values))), i)
        else:
            p = prepare_fields(i, *values)
        yield row[0], values[0], p


__all__ = ["StoredKeys", "scan", "fingerprint", "encode", "decode", "layout", "salt", "TABLE"]
