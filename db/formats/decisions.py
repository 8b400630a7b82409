"""The current screening decision of each record, as exports need it.

A thin view over `screeners.state` (the one derivation of screening states
from the log), adding what an export wants to show: a single reviewer's
decision while the second one is still to come.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from db.store import Store


def active_events(store: Store, stage: str) -> list[dict]:
    """Decision and resolution events of a stage that no standing undo takes back."""
    from screeners.state import undone_ids

    undone = undone_ids(store)
    return [r for r in store.events("kind IN ('decision', 'resolution') AND stage = ? "
                                    "AND record_id IS NOT NULL", [stage])
            if r["id"] not in undone]


def current_decisions(store: Store, stage: str) -> dict[int, str]:
    """record id -> "include" | "exclude" | "maybe" | "conflict"; absent means undecided."""
    from screeners.state import CONFLICT, effective_decisions, stage_states

    votes: dict[int, set[str]] = {}
    for (rid, _reviewer), d in effective_decisions(store, stage).items():
        votes.setdefault(rid, set()).add(d.value)
    out = {rid: (next(iter(v)) if len(v) == 1 else "conflict") for rid, v in votes.items()}
    for rid, st in stage_states(store, stage).items():
        if st.resolution is not None:
            out[rid] = st.resolution.value
        elif st.status == CONFLICT:
            out[rid] = "conflict"
        elif st.automated:
            out[rid] = "exclude"
    return out
