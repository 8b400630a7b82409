"""The files a review store is made of: the SQLite file, SQLite's own companions
beside it, the caches cluster keeps next to it, and the folder of full texts.

Named here once, so that what writes them (the store, the feature cache, the
HTTP cache) and what must never overwrite them (every output a user names) agree.
"""

from __future__ import annotations

from pathlib import Path

#: SQLite's companions of a database file: write-ahead log, shared memory, rollback journal
SQLITE_COMPANIONS = (("-wal", "write-ahead log"), ("-shm", "shared-memory file"),
                     ("-journal", "rollback journal"))
FEATURES_SUFFIX = ".features.sqlite"
HTTP_CACHE_SUFFIX = ".http-cache.sqlite"
FULLTEXT_SUFFIX = ".fulltext"


def features_path(store_path: str | Path) -> Path:
    """The prioritiser's feature cache beside the store (`review.db.features.sqlite`)."""
    p = Path(store_path)
    return p.with_name(p.name + FEATURES_SUFFIX)


def http_cache_path(store_path: str | Path) -> Path:
    """The cache of service answers beside the store (`review.http-cache.sqlite`)."""
    p = Path(store_path)
    return p.with_name(p.stem + HTTP_CACHE_SUFFIX)


def fulltext_dir(store_path: str | Path) -> Path:
    """The folder of full texts beside the store (`review.db.fulltext/`)."""
    p = Path(store_path)
    return p.with_name(p.name + FULLTEXT_SUFFIX)


def store_files(store_path: str | Path) -> tuple[tuple[Path, str], ...]:
    """Every file that belongs to the store at `store_path`, each with what it is
    (a noun phrase naming the store), whether or not it exists yet."""
    store = Path(store_path)
    out: list[tuple[Path, str]] = [(store, f"the review store {store}")]
    for db, what in ((store, f"of the review store {store}"),
                     (http_cache_path(store), f"of the HTTP cache of the review store {store}")):
        if db != store:
            out.append((db, f"the HTTP cache of the review store {store}"))
        out += [(Path(str(db) + suffix), f"the {name} {what}") for suffix, name in SQLITE_COMPANIONS]
    out.append((features_path(store), f"the feature cache of the review store {store}"))
    out.append((fulltext_dir(store), f"the full-text folder of the review store {store}"))
    return tuple(out)
