"""The review store: SQLite schema, records, searches, provenance and the event log."""

from db.store import Store, StoreError, open_store

__all__ = ["Store", "StoreError", "open_store"]
