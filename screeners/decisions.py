"""Writing screening work to the decision log, with every check a mistake needs.

Decisions, undos, notes, appraisal scores, conflict resolutions, full-text
retrieval, check subsamples, and the export/import of decision logs between
copies of a review all pass through here. Each function validates its input
first and then writes in one transaction, so a wrong reviewer name, an unknown
record or a reason outside the protocol's list leaves the store untouched.
States are never derived here: `db.state` does that from the log.
"""

from __future__ import annotations

import json
import random
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from base.errors import ClusterError
from base.output import write_file
from base.record import valid_text
from db.events import (DECISIONS, EXTRACTION, FULL_TEXT, FULLTEXT_STATES, STAGES, TITLE_ABSTRACT,
                       event_problem)
from db.files import store_files
from db.protocol import get_protocol
from db.state import (CONFLICT, RESOLUTION_METHODS, included_records, records_from,
                      removed_search_records, resolution_method, stage_records, stage_states,
                      standing_events)
from db.state import fulltext_states as fulltext_states  # read where retrieval is logged
from db.store import Store
from db.undo import undo_last as undo_decision

RESOLUTION_VALUES = ("include", "exclude")
SCORES = ("relevance", "rigour")
#: the event kinds a decisions file carries between copies of one review (extraction
#: answers and consensus too: extractors work on their own copies as screeners do)
EXPORT_KINDS = ("decision", "undo", "resolution", "fulltext", "appraisal", "note", "assign",
                "automation", "tag", "answer", "consensus")
_EVENT_COLUMNS = ("id", "ts", "kind", "record_id", "reviewer", "stage", "value", "reason",
                  "note", "undoes", "data", "review_id")


class DecisionError(ClusterError):
    """A screening action that cannot be recorded; the message says why and what to do."""


@dataclass(frozen=True)
class DecisionResult:
    """A decision as logged. `record_id` is the record it counts for, which is the
    canonical record when `requested_id` was merged into it as a duplicate."""

    event_id: str
    record_id: int
    requested_id: int
    reviewer: str
    stage: str
    value: str
    reason: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "record_id": self.record_id,
                "requested_record_id": self.requested_id, "reviewer": self.reviewer,
                "stage": self.stage, "value": self.value, "reason": self.reason}

    @property
    def redirected(self) -> bool:
        return self.record_id != self.requested_id

    @property
    def message(self) -> str:
        text = f"Record {self.record_id}: {self.value}"
        if self.reason:
            text += f" ({self.reason})"
        text += f" by {self.reviewer} at {self.stage}."
        if self.redirected:
            text = (f"Record {self.requested_id} is a duplicate of record {self.record_id}, "
                    f"so the decision applies to record {self.record_id}. " + text)
        return text


@dataclass(frozen=True)
class UndoResult:
    event_id: str
    undone_event_id: str
    record_id: int
    reviewer: str
    stage: str
    value: str

    @property
    def message(self) -> str:
        return f"Undid {self.reviewer}'s {self.value} on record {self.record_id} at {self.stage}."


@dataclass(frozen=True)
class Appraisal:
    event_id: str
    record_id: int
    reviewer: str
    relevance: int | None
    rigour: int | None


@dataclass(frozen=True)
class ResolutionResult(DecisionResult):
    """A resolution as logged; `reviewer` is the resolver, `decided_by` everyone who
    decided it (the resolver alone for an arbiter, with the record's reviewers for
    consensus)."""

    method: str = "arbiter"
    decided_by: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "record_id": self.record_id, "value": self.value,
                "reason": self.reason, "resolver": self.reviewer, "method": self.method,
                "decided_by": list(self.decided_by)}


@dataclass(frozen=True)
class SampleResult:
    reviewer: str
    stage: str
    population: int
    chosen: tuple[int, ...]
    newly_assigned: tuple[int, ...]
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return {"reviewer": self.reviewer, "stage": self.stage, "population": self.population,
                "records": list(self.chosen), "newly_assigned": list(self.newly_assigned),
                "seed": self.seed}


@dataclass(frozen=True)
class ImportResult:
    added: int
    already_present: int
    reviewers_added: tuple[str, ...]


# --- checks --------------------------------------------------------------------


def check_stage(stage: str) -> str:
    if stage not in STAGES:
        raise DecisionError(f"Unknown stage {stage!r}: use {' or '.join(STAGES)}.")
    return stage


def _check_value(value: str, allowed: Iterable[str], what: str) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise DecisionError(f"Unknown {what} {value!r}: use one of {', '.join(allowed)}.")
    return value


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip()
    return text or None


def _canonical(store: Store, record_id: int) -> int:
    # StoreError ("Record N is not in this store.") when the id is unknown
    return store.canonical_id(int(record_id))


_FULL_TEXT_CACHE: "weakref.WeakKeyDictionary[Store, tuple[int, tuple, tuple[int, ...]]]" = (
    weakref.WeakKeyDictionary())


def full_text_records(store: Store) -> tuple[int, ...]:
    """The records that passed title-abstract screening, in id order.

    Deriving them reads the whole title-abstract log, which a reviewer at full
    text would otherwise pay for at every key press; the answer is kept until
    an event of the title-abstract stage or of none (the protocol, a merge) is
    logged, or the records or their sources change.
    """
    conn = store.conn
    with store.read_snapshot():
        seq = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
        records = (*store.records_signature(),
                   conn.execute("SELECT max(id) FROM sources").fetchone()[0])
    hit = _FULL_TEXT_CACHE.get(store)
    if hit is not None and hit[1] == records and hit[0] <= seq:
        # only the events logged since are read (the log is append-only)
        if hit[0] == seq or conn.execute(
                "SELECT 1 FROM events WHERE seq > ? AND seq <= ? AND (stage IS NULL OR "
                "stage = ?) LIMIT 1", [hit[0], seq, TITLE_ABSTRACT]).fetchone() is None:
            _FULL_TEXT_CACHE[store] = (seq, records, hit[2])
            return hit[2]
    ids = tuple(stage_records(store, FULL_TEXT))
    _FULL_TEXT_CACHE[store] = (seq, records, ids)
    return ids


def _require_in_stage(store: Store, record_id: int, stage: str) -> None:
    if record_id in removed_search_records(store):
        raise DecisionError(
            f"Record {record_id} was found only by searches since removed, so it takes no "
            "part in screening: undo the removal (`cluster undo EVENT_ID`) to screen it.")
    if stage == FULL_TEXT and record_id not in full_text_records(store):
        raise DecisionError(
            f"Record {record_id} has not passed title-abstract screening, so it has no "
            "full-text stage yet."
        )


def _exclusion_reason(store: Store, value: str, reason: str | None, stage: str) -> str | None:
    reason = _clean(reason)
    if value != "exclude":
        if reason is not None:
            raise DecisionError("A reason goes with an exclusion only: drop the reason or exclude.")
        return None
    protocol = get_protocol(store)
    if reason is None:
        if stage == FULL_TEXT:
            raise DecisionError(
                "A full-text exclusion needs a reason from the protocol's list: "
                + "; ".join(protocol.exclusion_reasons) + "."
            )
        return None
    return protocol.check_reason(reason)


# --- decisions -------------------------------------------------------------------


def decide(store: Store, record_id: int, reviewer: str, stage: str, value: str,
           reason: str | None = None, note: str | None = None) -> DecisionResult:
    """Log `reviewer`'s decision on a record at `stage`, after every check.

    A decision on a record merged as a duplicate is logged for its canonical
    record (the result says so). At full text an exclusion needs a reason from
    the protocol's fixed list.
    """
    check_stage(stage)
    _check_value(value, DECISIONS, "decision")
    with store.transaction():
        store.require_reviewer(reviewer)
        rid = _canonical(store, record_id)
        why = _exclusion_reason(store, value, reason, stage)
        _require_in_stage(store, rid, stage)
        data = {"requested_record_id": int(record_id)} if rid != int(record_id) else {}
        text = _clean(note)
        eid = store.log_event("decision", record_id=rid, reviewer=reviewer, stage=stage,
                              value=value, reason=why, note=text, data=data)
    return DecisionResult(eid, rid, int(record_id), reviewer, stage, value, why, text)


def undo_last(store: Store, reviewer: str, stage: str) -> UndoResult:
    """Take back `reviewer`'s latest standing decision at `stage` (an `undo` event);
    `cluster undo` without a stage takes back their latest event of any kind."""
    check_stage(stage)
    out = undo_decision(store, reviewer, ("decision",), stage)
    target = store.events("id = ?", [out.undone[0]])[0]
    return UndoResult(out.undo_ids[0], target["id"], target["record_id"], reviewer, stage,
                      target["value"])


def add_note(store: Store, record_id: int, reviewer: str, note: str,
             stage: str | None = None) -> str:
    """Attach a free-text note to a record; returns the event id."""
    if stage is not None:
        check_stage(stage)
    text = _clean(note)
    if text is None:
        raise DecisionError("The note is empty: type some text to save a note.")
    with store.transaction():
        store.require_reviewer(reviewer)
        rid = _canonical(store, record_id)
        return store.log_event("note", record_id=rid, reviewer=reviewer, stage=stage, note=text)


def notes_for(store: Store, record_id: int, reviewer: str | None = None) -> list[dict]:
    """Notes on a record (its duplicates' too), oldest first; only `reviewer`'s when given."""
    rid = _canonical(store, record_id)
    ids = [rid] + [r[0] for r in store.conn.execute(
        "SELECT id FROM records WHERE duplicate_of = ?", [rid])]
    marks = ",".join("?" * len(ids))
    where = f"kind = 'note' AND record_id IN ({marks})"
    params: list[Any] = list(ids)
    if reviewer is not None:
        where += " AND reviewer = ?"
        params.append(reviewer)
    return standing_events(store, where, params)


def current_appraisal(store: Store, record_id: int, reviewer: str,
                      stage: str = FULL_TEXT) -> dict[str, int]:
    """`reviewer`'s standing relevance/rigour scores for a record (latest event wins)."""
    rows = standing_events(store, "kind = 'appraisal' AND record_id = ? AND reviewer = ? "
                           "AND stage = ?", [record_id, reviewer, stage])
    return {k: v for k, v in (rows[-1]["data"] if rows else {}).items() if k in SCORES}


def appraise(store: Store, record_id: int, reviewer: str, relevance: int | None = None,
             rigour: int | None = None, stage: str = FULL_TEXT) -> Appraisal:
    """Score relevance and/or rigour 1-5 (realist reviews); unscored keep their value."""
    check_stage(stage)
    given = {k: v for k, v in (("relevance", relevance), ("rigour", rigour)) if v is not None}
    if not given:
        raise DecisionError("Give a relevance or a rigour score from 1 to 5.")
    for name, v in given.items():
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 5:
            raise DecisionError(f"The {name} score must be a whole number from 1 to 5, not {v!r}.")
    with store.transaction():
        store.require_reviewer(reviewer)
        rid = _canonical(store, record_id)
        _require_in_stage(store, rid, stage)
        scores = {**current_appraisal(store, rid, reviewer, stage), **given}
        eid = store.log_event("appraisal", record_id=rid, reviewer=reviewer, stage=stage,
                              data=scores)
    return Appraisal(eid, rid, reviewer, scores.get("relevance"), scores.get("rigour"))


# --- conflicts -------------------------------------------------------------------


@dataclass(frozen=True)
class Conflict:
    record_id: int
    title: str | None
    stage: str
    decisions: tuple[Mapping[str, Any], ...]  # reviewer, value, reason, note
    notes: tuple[Mapping[str, Any], ...]      # reviewer, note, ts

    def to_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "title": self.title, "stage": self.stage,
                "decisions": list(self.decisions), "notes": list(self.notes)}


def conflicts(store: Store, stage: str = TITLE_ABSTRACT) -> list[Conflict]:
    """Records whose reviewers disagree at `stage` and that no one has resolved yet.

    This view is not blind: it is for the people resolving the conflicts.
    """
    check_stage(stage)
    out = []
    for rid, st in stage_states(store, stage).items():
        if st.status != CONFLICT:
            continue
        decs = tuple(
            {"reviewer": d.reviewer, "value": d.value, "reason": d.reason, "note": d.note}
            for d in sorted(st.decisions.values(), key=lambda d: (d.reviewer or "")))
        notes = tuple({"reviewer": n["reviewer"], "note": n["note"], "ts": n["ts"]}
                      for n in notes_for(store, rid))
        title = store.db.execute("SELECT title FROM records WHERE id = ?", [rid]).fetchone()[0]
        out.append(Conflict(rid, title, stage, decs, notes))
    return out


def resolve(store: Store, record_id: int, stage: str, value: str, resolver: str,
            method: str = "arbiter", reason: str | None = None) -> ResolutionResult:
    """Settle a conflict (a `resolution` event) by an arbiter, one person who did not
    screen the record, or by consensus of the reviewers who disagreed (`resolver`
    records it). The event says how and who decided."""
    check_stage(stage)
    _check_value(value, RESOLUTION_VALUES, "resolution")
    method = resolution_method({"method": method})
    _check_value(method, RESOLUTION_METHODS, "resolution method")
    with store.transaction():
        store.require_reviewer(resolver)
        rid = _canonical(store, record_id)
        _require_in_stage(store, rid, stage)
        st = stage_states(store, stage)[rid]
        if st.status != CONFLICT:
            raise DecisionError(
                f"Record {rid} is not in conflict at {stage} (it is {st.status}): "
                "there is nothing to resolve.")
        if method == "arbiter" and resolver in st.decisions:
            raise DecisionError(
                f"{resolver} screened record {rid}, so cannot resolve it as the arbiter: "
                "choose another resolver, or give --method consensus if the reviewers agreed together.")
        why = _exclusion_reason(store, value, reason, stage)
        who = ((resolver,) if method == "arbiter"
               else tuple(sorted({*st.decisions, resolver})))
        eid = store.log_event("resolution", record_id=rid, reviewer=resolver, stage=stage,
                              value=value, reason=why,
                              data={"method": method, "decided_by": list(who)})
    return ResolutionResult(eid, rid, int(record_id), resolver, stage, value, why, method=method,
                            decided_by=who)


# --- full text ---------------------------------------------------------------------


def mark_fulltext(store: Store, record_id: int, state: str, reason: str | None = None,
                  reviewer: str | None = None) -> str:
    """Mark a report as sought, retrieved or not retrieved (with a reason); returns the event id."""
    _check_value(state, FULLTEXT_STATES, "full-text state")
    why = _clean(reason)
    if state == "not-retrieved" and why is None:
        raise DecisionError("Say why the report could not be retrieved with a reason.")
    with store.transaction():
        if reviewer is not None:
            store.require_reviewer(reviewer)
        rid = _canonical(store, record_id)
        _require_in_stage(store, rid, FULL_TEXT)
        return store.log_event("fulltext", record_id=rid, reviewer=reviewer, stage=FULL_TEXT,
                               value=state, reason=why)


# --- check subsamples -----------------------------------------------------------------


def assigned_records(store: Store, reviewer: str, stage: str) -> set[int]:
    """The records assigned to `reviewer` at `stage` as a check subsample (canonical ids)."""
    return {store.canonical_id(e["record_id"]) for e in standing_events(
        store, "kind = 'assign' AND reviewer = ? AND stage = ?", [reviewer, stage])}


def sample(store: Store, fraction: float, reviewer: str, seed: int,
           stage: str = TITLE_ABSTRACT, role: str | None = None,
           source: str | None = None) -> SampleResult:
    """Assign a random `fraction` of the stage's records (at extraction: the included
    records) to a further reviewer to check,
    only those found with source `role` or from search source `source` when given
    (a protocol may check "10 % of the index articles").

    The same seed picks the same records, and records already assigned are not
    assigned again, so repeating the command adds nothing.
    """
    if stage != EXTRACTION:
        check_stage(stage)
    if not 0 < fraction <= 1:
        raise DecisionError(f"The fraction must be above 0 and at most 1, not {fraction}.")
    with store.transaction():
        store.require_reviewer(reviewer)
        # data extraction draws from the included records
        population = (included_records(store) if stage == EXTRACTION
                      else stage_records(store, stage))
        limits = []
        if role is not None or source is not None:
            found = records_from(store, role=role, source=source)
            population = [r for r in population if r in found]
            limits = [f"{k} {v!r}" for k, v in (("source role", role), ("source", source)) if v]
        if not population:
            raise DecisionError(f"There are no records at {stage}"
                                + (" with " + " and ".join(limits) if limits else "")
                                + " to sample from.")
        k = max(1, int(fraction * len(population) + 0.5))
        chosen = sorted(random.Random(seed).sample(population, k))
        already = assigned_records(store, reviewer, stage)
        new = tuple(r for r in chosen if r not in already)
        data: dict[str, Any] = {"fraction": fraction, "seed": seed}
        data.update({k: v for k, v in (("role", role), ("source", source)) if v})
        store.log_batch("assign", ({"record_id": rid, "reviewer": reviewer, "stage": stage,
                                    "data": data} for rid in new))
    return SampleResult(reviewer, stage, len(population), tuple(chosen), new, seed)


# --- export / import ---------------------------------------------------------------


def decisions_jsonl(store: Store) -> tuple[str, int]:
    """The screening events as JSON lines (one event a line), and how many there are."""
    marks = ",".join("?" * len(EXPORT_KINDS))
    # an undo of a merge or a pair verdict stays here: those events do not travel
    rows = store.events(f"kind IN ({marks}) AND (kind != 'undo' OR undoes IN "
                        f"(SELECT id FROM events WHERE kind IN ({marks})))",
                        [*EXPORT_KINDS, *EXPORT_KINDS])
    text = "".join(json.dumps({k: r[k] for k in _EVENT_COLUMNS}, ensure_ascii=False,
                              sort_keys=True) + "\n" for r in rows)
    return text, len(rows)


def export_decisions(store: Store, path: str | Path) -> int:
    """Write the screening events to a JSONL file (never over the store's own files);
    returns how many."""
    text, n = decisions_jsonl(store)
    write_file(path, text, store_files(store.path) if store.path else ())
    return n


def _read_events(store: Store, path: Path) -> list[dict]:
    name = path.name
    try:
        # "\n" only: a note may hold other characters that splitlines() would break at
        lines = path.read_text(encoding="utf-8").split("\n")
    except FileNotFoundError:
        raise DecisionError(f"No decisions file at {path}.") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise DecisionError(f"{name} is not a decisions file written by `cluster decisions export`.") from None
    events = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            # a `\\ud800` escape in a note or name decodes to a lone surrogate
            e = valid_text(json.loads(line))
        except json.JSONDecodeError:
            e = None
        # an event without its own id would get a new one here, and again at each import
        if not isinstance(e, dict) or not all(isinstance(e.get(k), str) and e[k]
                                              for k in ("id", "kind", "review_id", "ts")):
            raise DecisionError(
                f"Line {n} of {name} is not a decision event: is it a file written by "
                "`cluster decisions export`?")
        if e["review_id"] != store.review_id:
            raise DecisionError(
                f"{name} holds decisions from a different review ({e['review_id']}), not this one "
                f"({store.review_id}): nothing was imported.")
        if e["kind"] not in EXPORT_KINDS:
            raise DecisionError(f"Line {n} of {name} has an event of kind {e['kind']!r}, which a "
                                "decisions file does not carry: nothing was imported.")
        if not isinstance(e.get("data") or {}, dict):
            raise DecisionError(f"Line {n} of {name} has malformed data: nothing was imported.")
        problem = event_problem(e["kind"], {k: e.get(k) for k in (
            "record_id", "reviewer", "stage", "value", "reason", "note", "undoes")})
        if problem:
            raise DecisionError(f"Line {n} of {name} is not a valid event ({problem}): nothing "
                                "was imported.")
        events.append(e)
    return events


def import_decisions(store: Store, path: str | Path) -> ImportResult:
    """Merge a decisions file from another copy of this review.

    Events carry globally unique ids, so importing a file twice adds nothing,
    and files can be imported in any order. Everything is checked before the
    first write; one transaction writes it all.
    """
    p = Path(path)
    events = _read_events(store, p)
    with store.transaction():
        known_records = {r[0] for r in store.db.execute("SELECT id FROM records")}
        for e in events:
            if e.get("record_id") is not None and e["record_id"] not in known_records:
                raise DecisionError(
                    f"{p.name} refers to record {e['record_id']}, which is not in this store: "
                    "nothing was imported.")
        present = {r[0] for r in store.db.execute("SELECT id FROM events")}
        reviewers = set(store.reviewer_names())
        added, skipped, new_reviewers = 0, 0, []
        for e in events:
            if e["id"] in present:
                skipped += 1
                continue
            who = e.get("reviewer")
            if who and who not in reviewers:
                store.add_reviewer(who)
                reviewers.add(who)
                new_reviewers.append(who)
            store.log_event(
                e["kind"], record_id=e.get("record_id"), reviewer=who, stage=e.get("stage"),
                value=e.get("value"), reason=e.get("reason"), note=e.get("note"),
                undoes=e.get("undoes"), data=e.get("data") or {}, event_id=e["id"], ts=e["ts"])
            present.add(e["id"])
            added += 1
    return ImportResult(added, skipped, tuple(sorted(new_reviewers)))
