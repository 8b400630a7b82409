"""The one cache policy of the prioritiser.

Every value the prioritiser keeps in memory between calls (a store's fitted
features, the last model's scores, the float64 copies of a feature matrix, a
matrix's similarity columns) lives in a `Memo`, and every `Memo` follows the
same rule: one entry per owner (a store, a matrix), stored with the version
of the owner it was computed from. A lookup hits only when the version given
is the one stored, so a stale value is never returned; a new version replaces
the old one, so an owner never holds two; and only the `size` owners used
last are kept, so memory stays bounded in a long session. An owner that is an
object (a feature matrix) is held by identity and weakly: its entry counts
only while that very object lives, never for a new object that happens to
reuse its address.

Nothing else is cached in a module: what is cheap to recompute is recomputed.
`clear_all()` empties every memo (tests use it to start cold).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Generic, Hashable, TypeVar

V = TypeVar("V")

_ALL: list[Memo[Any]] = []


class Memo(Generic[V]):
    """One entry per owner, hit only at the version stored; the last `size` owners kept."""

    def __init__(self, size: int):
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[Hashable, V]] = OrderedDict()
        self._lock = threading.Lock()
        _ALL.append(self)

    def get(self, owner: Hashable, version: Hashable) -> V | None:
        """The value stored for `owner` at `version`, or None."""
        with self._lock:
            hit = self._entries.get(owner)
            if hit is None or hit[0] != version:
                return None
            self._entries.move_to_end(owner)
            return hit[1]

    def put(self, owner: Hashable, version: Hashable, value: V) -> V:
        """Store `value` as `owner`'s at `version`, replacing any other version."""
        with self._lock:
            self._entries[owner] = (version, value)
            self._entries.move_to_end(owner)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
        return value

    def get_or_make(self, owner: Hashable, version: Hashable, make: Callable[[], V]) -> V:
        hit = self.get(owner, version)
        return hit if hit is not None else self.put(owner, version, make())

    def for_object(self, obj: Any, make: Callable[[], V]) -> V:
        """The value derived from `obj` itself (held by identity, weakly)."""
        owner = id(obj)
        with self._lock:
            hit = self._entries.get(owner)
            if hit is not None and isinstance(hit[0], weakref.ref) and hit[0]() is obj:
                self._entries.move_to_end(owner)
                return hit[1]
        # a weak reference compares equal only to one of the same live object
        return self.put(owner, weakref.ref(obj), make())

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def clear_all() -> None:
    """Empty every memo."""
    for memo in _ALL:
        memo.clear()
