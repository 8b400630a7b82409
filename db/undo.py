"""Taking events back: `cluster undo`, for every kind the log registers as undoable.

An undo never edits the log: it appends one `undo` event per event taken back
(`undoes` = its id), and `db.state.standing_events` leaves those out of every
count. Events one action wrote together (a batch: a stopping rule's
exclusions, a study link) go back together, each undo carrying the batch's
data {"batch": ...} in turn, so the undo is itself one batch.

Undoing an undo redoes what it took back (`db.state.undone_ids` reads the log
that way), except for a merge: splitting one restored the records' own
fields, and joining them again is deduplication's work, not the log's.
A merge is the one kind whose undo changes more than the log: its members
stand apart from the canonical record again and the canonical's fields are
restored as they were before the merge filled them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from base.errors import ClusterError
from db.events import EXTRACTION, STAGES, UNDOABLE
from db.state import batch_members, last_standing, undone_ids
from db.store import Store, id_list, new_id


class UndoError(ClusterError):
    """An undo that cannot be carried out; the message says why and what to do."""


@dataclass(frozen=True)
class UndoOutcome:
    """What one undo did. `undone` are the events taken back (for a redo: the undos
    taken back), `undo_ids` the new `undo` events."""

    undo_ids: tuple[str, ...]
    undone: tuple[str, ...]
    kind: str
    redo: bool
    records: tuple[int, ...]
    reviewer: str | None
    description: str
    batch: str | None

    @property
    def message(self) -> str:
        return f"{'Redid' if self.redo else 'Undid'} {self.description}."

    def to_dict(self) -> dict[str, Any]:
        return {"undo_ids": list(self.undo_ids), "undone": list(self.undone), "kind": self.kind,
                "amends": UNDOABLE[self.kind].amends if self.kind in UNDOABLE else None,
                "redo": self.redo, "records": list(self.records), "reviewer": self.reviewer,
                "batch": self.batch, "message": self.message}


def find_event(store: Store, event_id: str) -> dict:
    """The event named by its id, by a unique start of it (at least 8 characters), or,
    for a merge, by its merge id."""
    given = event_id.strip()
    if not given:
        raise UndoError("Give the id of the event to undo (`cluster log` lists them).")
    rows = store.events("id = ?", [given])
    if not rows and len(given) >= 8:
        rows = store.events("substr(id, 1, ?) = ?", [len(given), given])
    if not rows:
        rows = store.events("kind = 'merge' AND json_extract(data, '$.merge_id') = ?", [given])
    if not rows:
        raise UndoError(f"No event with id {given!r} in this store: `cluster log` lists the "
                        "event ids.")
    if len(rows) > 1:
        raise UndoError(f"{len(rows)} events have ids starting {given!r}: give more of the id.")
    return rows[0]


def undo_event(store: Store, event_id: str, reviewer: str | None = None) -> UndoOutcome:
    """Take back the event named `event_id` and the rest of its batch, in one transaction
    (an `undo` event's id: redo what it took back)."""
    with store.transaction():
        if reviewer is not None:
            store.require_reviewer(reviewer)
        return _undo(store, find_event(store, event_id), reviewer)


def undo_last(store: Store, reviewer: str, kinds: Iterable[str] | None = None,
              stage: str | None = None) -> UndoOutcome:
    """Take back `reviewer`'s latest event that still stands, of any undoable kind (or
    of `kinds`), at `stage` when given, with the rest of its batch."""
    if stage is not None and stage not in (*STAGES, EXTRACTION):
        raise UndoError(f"Unknown stage {stage!r}: use {', '.join((*STAGES, EXTRACTION))}.")
    wanted = tuple(UNDOABLE) if kinds is None else tuple(kinds)
    for k in wanted:
        if k not in UNDOABLE:
            raise UndoError(f"Events of kind {k!r} cannot be undone: undoable kinds are "
                            f"{', '.join(UNDOABLE)}.")
    with store.transaction():
        store.require_reviewer(reviewer)
        event = last_standing(store, reviewer, wanted, stage)
        if event is None:
            what = ("decision" if wanted == ("decision",) else
                    " or ".join(UNDOABLE[k].label for k in wanted) if kinds is not None
                    else "event")
            raise UndoError(f"{reviewer} has no {what} to undo"
                            + (f" at {stage}." if stage else "."))
        return _undo(store, event, reviewer)


def _undo(store: Store, event: dict, reviewer: str | None) -> UndoOutcome:
    undone = undone_ids(store)
    kind = event["kind"]
    if event["id"] in undone:
        raise UndoError(f"Event {event['id']} ({kind}) was already undone.")
    redo = kind == "undo"
    if not redo and kind not in UNDOABLE:
        raise UndoError(f"Event {event['id']} is {'an' if kind[0] in 'aeiou' else 'a'} {kind} "
                        "event, which cannot be undone: "
                        f"undoable kinds are {', '.join(UNDOABLE)}.")
    members = [e for e in batch_members(store, event) if e["id"] not in undone]
    originals = _originals(store, members) if redo else members
    if redo and any(e["kind"] in ("merge", "unmerge") for e in originals):
        raise UndoError(f"Event {event['id']} split a merge, and a split is not merged again by "
                        "undo: decide the pair same (`cluster dedup --import-pairs`).")
    # the undos of a batch are a batch: undoing any one of them redoes them all
    batch = new_id() if len(members) > 1 else None
    ids: list[str] = []
    for e in members:
        data: dict[str, Any] = {"batch": batch} if batch else {}
        if e["kind"] == "merge":
            data.update(_split_merge(store, e))
        ids.append(store.log_event(
            "undo", record_id=e["record_id"], reviewer=reviewer, stage=e["stage"],
            undoes=e["id"], data=data, event_id=None if ids or not batch else batch))
    records = tuple(dict.fromkeys(e["record_id"] for e in originals
                                  if e["record_id"] is not None))
    # undoing a redo takes the events back again: say what they are now
    stands = bool(originals) and originals[0]["id"] not in undone_ids(store)
    return UndoOutcome(tuple(ids), tuple(e["id"] for e in members), kind, redo and stands,
                       records, reviewer, describe(originals), batch)


def _originals(store: Store, undos: Sequence[Mapping[str, Any]]) -> list[dict]:
    """The events a chain of undos comes down to (what a redo brings back)."""
    out: list[dict] = []
    for u in undos:
        target = store.events("id = ?", [u["undoes"]])
        if target and target[0]["kind"] == "undo":
            out.extend(_originals(store, target))
        else:
            out.extend(target)
    return out


def _split_merge(store: Store, event: Mapping[str, Any]) -> dict[str, Any]:
    """Make a merge's members stand apart again and restore the canonical's own fields;
    returns what the undo event records."""
    data = event["data"]
    canonical = data["canonical"]
    for m in data["members"]:
        if m != canonical:
            store.db.execute("UPDATE records SET duplicate_of = NULL WHERE id = ? "
                             "AND duplicate_of = ?", [m, canonical])
    if data.get("before"):
        store.db.table("records").update(canonical, data["before"])
    return {"merge_id": data.get("merge_id"), "canonical": canonical,
            "members": list(data["members"])}


def _records(ids: Sequence[int]) -> str:
    return f"record {ids[0]}" if len(ids) == 1 else f"records {id_list(ids)}"


def _whose(e: Mapping[str, Any]) -> str:
    return f"{e['reviewer']}'s " if e.get("reviewer") else "the "


def describe(events: Sequence[Mapping[str, Any]]) -> str:
    """The events of one batch as a message names them ("carol's 567 automated
    exclusions at title-abstract (hypergeometric rule)")."""
    if not events:
        return "nothing"
    e = events[0]
    kind, n = e["kind"], len(events)
    ids = list(dict.fromkeys(x["record_id"] for x in events if x["record_id"] is not None))
    at = f" at {e['stage']}" if e.get("stage") else ""
    if kind == "decision":
        return f"{_whose(e)}{e['value']} on record {e['record_id']}{at}"
    if kind == "resolution":
        return f"{_whose(e)}resolution ({e['value']}) of record {e['record_id']}{at}"
    if kind == "automation":
        rule = e["data"].get("rule")
        what = f"{n} automated exclusions" if n > 1 else f"automated exclusion of record {ids[0]}"
        return f"{_whose(e)}{what}{at}" + (f" ({rule} rule)" if rule else "")
    if kind == "tag" and (e["value"] or "").startswith("study:"):
        key = e["value"][len("study:"):].strip()
        if not key:
            return f"the unlinking of {_records(ids)} from their study"
        return f"the link of {_records(ids)} as reports of study {key}"
    if kind == "tag":
        return f"the tag {e['value']!r} on {_records(ids)}"
    if kind == "merge":
        d = e["data"]
        apart = [m for m in d.get("members", []) if m != d.get("canonical")]
        text = (f"merge {d.get('merge_id')}: {_records(apart)} "
                f"stand{'s' if len(apart) == 1 else ''} apart from record {d.get('canonical')} again")
        verdicts = [x for x in events if x["kind"] == "pair_decision"]
        return text + (f" (and {_whose(verdicts[0])}verdict same)" if verdicts else "")
    if kind == "pair_decision":
        return (f"{_whose(e)}verdict {e['value']!r} on records {e['data'].get('a')} and "
                f"{e['data'].get('b')}")
    if kind == "note":
        return f"{_whose(e)}note on record {e['record_id']}"
    if kind == "appraisal":
        return f"{_whose(e)}scores for record {e['record_id']}{at}"
    if kind == "fulltext":
        return f"full text {(e['value'] or '').replace('-', ' ')} for record {e['record_id']}"
    if kind in ("answer", "consensus"):
        what = "answer" if kind == "answer" else "consensus answer"
        return f"{_whose(e)}{what} to {e['value']} on record {e['record_id']}"
    if kind == "search":
        d = e["data"]
        what = {"relabel": f"relabelling as {d.get('role')}: {d.get('source')}",
                "remove": "removal", "edit": "edit of the details"}.get(e["value"], e["value"])
        return f"{_whose(e)}{what} of search {d.get('search_id')}"
    if kind == "assign":
        return f"the check sample of {n} record{'s' if n > 1 else ''} for {e['reviewer']}{at}"
    label = UNDOABLE[kind].label if kind in UNDOABLE else kind
    return (f"{n} {label} events" if n > 1 else f"the {label}") + (
        f" on {_records(ids)}" if ids else "")


__all__ = ["UndoError", "UndoOutcome", "describe", "find_event", "undo_event", "undo_last"]
