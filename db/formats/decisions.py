"""The current screening decision of each record, as exports need it.

Deliberately minimal and in one function: the latest decision of each
reviewer that has not been undone, a resolution overriding them, and
"conflict" where reviewers disagree. The screening package owns the full rules.
"""

from __future__ import annotations

from db.store import Store


def active_events(store: Store, stage: str) -> list[dict]:
    """Decision and resolution events of a stage that no (standing) undo takes back."""
    rows = store.events("kind IN ('decision', 'resolution', 'undo')")
    undone: set[str] = set()
    for ev in reversed([r for r in rows if r["kind"] == "undo"]):
        # walking newest first, an undo that was itself undone does not count
        if ev["id"] not in undone and ev["undoes"]:
            undone.add(ev["undoes"])
    return [r for r in rows if r["kind"] != "undo" and r["id"] not in undone
            and r["stage"] == stage and r["record_id"] is not None]


def current_decisions(store: Store, stage: str) -> dict[int, str]:
    """record id -> "include" | "exclude" | "maybe" | "conflict"; absent means undecided."""
    by_reviewer: dict[int, dict[str, str]] = {}
    resolved: dict[int, str] = {}
    for ev in active_events(store, stage):
        if ev["kind"] == "resolution":
            resolved[ev["record_id"]] = ev["value"]
        else:
            by_reviewer.setdefault(ev["record_id"], {})[ev["reviewer"] or ""] = ev["value"]
    out: dict[int, str] = {}
    for rid, votes in by_reviewer.items():
        values = set(votes.values())
        out[rid] = values.pop() if len(values) == 1 else "conflict"
    out.update(resolved)
    return out
