"""The review store: SQLite schema, records, searches, provenance and the event log."""

from typing import Any

__all__ = ["Store", "StoreError", "open_store"]


def __getattr__(name: str) -> Any:
    # imported on first use: reading a file (db.formats) needs no SQLite layer
    if name in __all__:
        from db import store

        return getattr(store, name)
    raise AttributeError(f"module 'db' has no attribute {name!r}")
