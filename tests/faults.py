"""Faults injected into a store by tests: a write that fails half-way through."""

from __future__ import annotations


def fail_on_event(store, monkeypatch, n: int = 2, message: str = "disk full") -> None:
    """Make the store's `n`th `log_event` call from now raise RuntimeError(message)."""
    real = store.log_event
    calls = {"n": 0}

    def failing(kind, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError(message)
        return real(kind, **kw)

    monkeypatch.setattr(store, "log_event", failing)
