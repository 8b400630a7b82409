"""What the event log means: which events still stand, and where each record
stands at each screening stage.

This is the single place that reads `undo` events (`standing_events`: any
kind, a batch as a whole, merges as well) and turns `decision`, `resolution`
and `automation` events into states; screening sessions, the prioritiser's
labels, agreement statistics, exports, reports, deduplication and the PRISMA
flow all read it, so they can never disagree.

Rules: a reviewer's latest decision that has not been undone counts; with the
protocol's k reviewers per record, k decisions that are all include/maybe
advance the record, all exclude exclude it, anything else is a conflict (at
full text, exclusions for different reasons too: the flow counts one reason per
report); a resolution (by consensus or by an arbiter) overrides; an `automation` exclusion
(stopping rule) applies to records with no final state yet. Decisions on a
record merged as a duplicate count for its canonical record.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping

from db.events import FULL_TEXT, STAGES, TITLE_ABSTRACT
from db.protocol import get_protocol
from db.provenance import record_family
from db.store import Store

PENDING, CONFLICT, INCLUDED, EXCLUDED = "pending", "conflict", "included", "excluded"
POSITIVE = ("include", "maybe")


@dataclass(frozen=True)
class Decision:
    event_id: str
    record_id: int
    reviewer: str | None
    value: str
    reason: str | None
    note: str | None
    ts: str


@dataclass(frozen=True)
class RecordState:
    record_id: int
    stage: str
    status: str
    decisions: Mapping[str, Decision] = field(default_factory=dict)
    resolution: Decision | None = None
    automated: bool = False
    reason: str | None = None  # the exclusion reason that stands

    @property
    def final(self) -> bool:
        return self.status in (INCLUDED, EXCLUDED)


def undone_ids(store: Store) -> set[str]:
    """Ids of events taken back by a standing undo."""
    return set(undoers(store))


def undoers(store: Store) -> dict[str, str]:
    """Undone event id -> the standing undo (or older `unmerge`) that took it back.

    Walking newest first, an undo that was itself undone (a redo) takes
    nothing back. Older logs split a merge with an `unmerge` event, which
    counts as an undo of its merge (named by `undoes` or by its merge id).
    """
    rows = store.conn.execute(
        "SELECT id, coalesce(undoes, (SELECT m.id FROM events m WHERE m.kind = 'merge' AND "
        "json_extract(m.data, '$.merge_id') = json_extract(u.data, '$.merge_id'))) "
        "FROM events u WHERE (kind = 'undo' AND undoes IS NOT NULL) OR kind = 'unmerge' "
        "ORDER BY seq DESC").fetchall()
    out: dict[str, str] = {}
    for eid, target in rows:
        if eid not in out and target is not None and target not in out:
            out[target] = eid
    return out


def standing_events(store: Store, where: str, params: Iterable[Any] = ()) -> list[dict]:
    """The events matching `where` that no standing undo takes back, by time, then id:
    logs merged from several copies arrive in any order, and "the latest counts"
    must not depend on that order."""
    return _standing(store, where, params, undone_ids(store))


def standing_merges(store: Store) -> list[dict]:
    """The `merge` events that still stand (not undone), oldest first."""
    return standing_events(store, "kind = 'merge'")


def undone_merges(store: Store) -> list[dict]:
    """The `merge` events that were undone: their records stand apart, and a later
    deduplication run must not join them again."""
    standing = {e["id"] for e in standing_merges(store)}
    return [e for e in store.events("kind = 'merge'") if e["id"] not in standing]


def batch_members(store: Store, event: Mapping[str, Any]) -> list[dict]:
    """The events logged with `event` by one action, `event` among them, by seq.

    Events of a batch carry data {"batch": the first one's id}. Stores written
    before batches were logged kept a stopping rule's exclusions (and a study
    link's or a search's tags) as a run of events of one kind, with one stage,
    reviewer, value and data, written in one transaction; that run is the batch.
    """
    key = event["data"].get("batch")
    if key is not None:
        lead = store.conn.execute("SELECT seq FROM events WHERE id = ?", [key]).fetchone()
        return store.events("seq >= ? AND json_extract(data, '$.batch') = ?",
                            [lead[0] if lead else 0, key])
    if event["kind"] in ("merge", "pair_decision"):
        # a person's "same" verdict was a manual merge and the verdict, one after the other
        if event["kind"] == "merge" and event["data"].get("rule") == "manual":
            pair = store.events("seq = ? AND kind = 'pair_decision' AND value = 'same'",
                                [event["seq"] + 1])
            return [dict(event), *pair]
        if event["kind"] == "pair_decision" and event["value"] == "same":
            merge = store.events("seq = ? AND kind = 'merge'", [event["seq"] - 1])
            return [*(m for m in merge if m["data"].get("rule") == "manual"), dict(event)]
        return [dict(event)]
    if event["kind"] not in ("automation", "tag"):
        return [dict(event)]
    same = store.events(
        "kind = ? AND stage IS ? AND reviewer IS ? AND value IS ? AND data = ?",
        [event["kind"], event["stage"], event["reviewer"], event["value"],
         json.dumps(event["data"], sort_keys=True)])
    seqs = {e["seq"]: e for e in same}
    first = last = event["seq"]
    while first - 1 in seqs:
        first -= 1
    while last + 1 in seqs:
        last += 1
    return [seqs[s] for s in range(first, last + 1)]


def last_standing(store: Store, reviewer: str, kinds: Iterable[str],
                  stage: str | None = None) -> dict | None:
    """`reviewer`'s latest event of one of `kinds` (at `stage` when given) that
    still stands, or None."""
    kinds = tuple(kinds)
    if not kinds:
        return None
    where = f"reviewer = ? AND kind IN ({','.join('?' * len(kinds))})"
    params: list[Any] = [reviewer, *kinds]
    if stage is not None:
        where, params = where + " AND stage = ?", params + [stage]
    undone = undone_ids(store)
    rows = store.conn.execute(
        f"SELECT seq, id FROM events WHERE {where} ORDER BY ts DESC, seq DESC", params).fetchall()
    seq = next((seq for seq, eid in rows if eid not in undone), None)
    return None if seq is None else store.events("seq = ?", [seq])[0]


def _to_decision(e: dict, canon: Mapping[int, int]) -> Decision:
    rid = canon.get(e["record_id"], e["record_id"])
    return Decision(e["id"], rid, e["reviewer"], e["value"], e["reason"], e["note"], e["ts"])


def effective_decisions(store: Store, stage: str, reviewer: str | None = None
                        ) -> dict[tuple[int, str], Decision]:
    """(record, reviewer) -> that reviewer's standing decision at `stage`
    (only `reviewer`'s when given: a screening queue needs no one else's)."""
    return _effective_decisions(store, stage, reviewer, store.canonical_map(), undone_ids(store))


def _effective_decisions(store: Store, stage: str, reviewer: str | None, canon: Mapping[int, int],
                         undone: set[str]) -> dict[tuple[int, str], Decision]:
    where, params = "kind = 'decision' AND stage = ?", [stage]
    if reviewer is not None:
        where, params = where + " AND reviewer = ?", params + [reviewer]
    # the columns a Decision holds alone (a large log's `data` need not be parsed), in
    # `_standing`'s order: by time, then id
    rows = [r for r in store.conn.execute(
        f"SELECT id, record_id, reviewer, value, reason, note, ts FROM events WHERE {where}",
        params) if r[0] not in undone]
    rows.sort(key=lambda r: (r[6], r[0]))
    latest: dict[tuple[int, str], tuple] = {}
    for r in rows:
        latest[(canon.get(r[1], r[1]), r[2] or "")] = r  # later events replace earlier ones
    return {key: Decision(r[0], key[0], r[2], r[3], r[4], r[5], r[6])
            for key, r in latest.items()}


def _standing(store: Store, where: str, params: Iterable[Any], undone: set[str]) -> list[dict]:
    """`standing_events` with the undone ids already read."""
    return sorted((e for e in store.events(where, params) if e["id"] not in undone),
                  key=lambda e: (e["ts"], e["id"]))


def stage_records(store: Store, stage: str, states_before: Mapping[int, RecordState] | None = None
                  ) -> list[int]:
    """The records that take part in `stage`: all canonical records at title-abstract
    (but those only removed searches found), those that passed title-abstract at full
    text (`states_before`: title-abstract's states, or only its touched ones, as
    `StageView.touched` holds them)."""
    if stage != TITLE_ABSTRACT:
        # title-abstract's states are of its records alone: those it included pass
        before = (states_before if states_before is not None
                  else stage_view(store, TITLE_ABSTRACT).touched)
        return sorted(i for i, st in before.items() if st.status == INCLUDED)
    ids = [r[0] for r in store.conn.execute(
        "SELECT id FROM records WHERE duplicate_of IS NULL ORDER BY id")]
    withdrawn = removed_search_records(store)
    if withdrawn:
        ids = [i for i in ids if i not in withdrawn]
    return ids


def stage_states(store: Store, stage: str) -> dict[int, RecordState]:
    """record id -> RecordState for every record taking part in `stage`."""
    return stage_view(store, stage).states()


@dataclass(frozen=True)
class StageView:
    """One stage as the log leaves it, read once: the records taking part (`ids`, in id
    order), the states of those of them that a standing decision, resolution or
    stopping rule touched (`touched`), and the standing decisions (as
    `effective_decisions` gives them). Every other record of the stage is pending, with
    no decision; a large store's status need not build a state for each of those."""

    stage: str
    ids: list[int]
    touched: dict[int, RecordState]
    decisions: dict[tuple[int, str], Decision]

    def states(self) -> dict[int, RecordState]:
        """record id -> RecordState for every record taking part in the stage."""
        touched, stage = self.touched, self.stage
        return {rid: touched.get(rid) or RecordState(rid, stage, PENDING) for rid in self.ids}


def stage_view(store: Store, stage: str, canon: Mapping[int, int] | None = None,
               before: StageView | None = None) -> StageView:
    """`stage`'s `StageView` (its states are `stage_states`, one for one). `canon`: the
    store's `canonical_map` (or every record's canonical id), `before`: title-abstract's
    view for the full-text one, when already read."""
    k = get_protocol(store).reviewers_per_record
    canon = canon if canon is not None else store.canonical_map()
    undone = undone_ids(store)
    decisions = _effective_decisions(store, stage, None, canon, undone)
    by_record: dict[int, dict[str, Decision]] = {}
    for (rid, reviewer), d in decisions.items():
        by_record.setdefault(rid, {})[reviewer] = d
    resolutions: dict[int, Decision] = {}
    for e in _standing(store, "kind = 'resolution' AND stage = ?", [stage], undone):
        d = _to_decision(e, canon)
        resolutions[d.record_id] = d
    automated = _automated(store, stage, canon, undone)
    if stage == TITLE_ABSTRACT:
        ids = stage_records(store, stage)
    else:
        ta = before if before is not None else stage_view(store, TITLE_ABSTRACT, canon)
        ids = stage_records(store, stage, ta.touched)
    members = set(ids)
    touched = {rid: _record_state(rid, stage, by_record.get(rid, {}), resolutions.get(rid),
                                  automated, k)
               for rid in sorted(by_record.keys() | resolutions.keys() | automated.keys())
               if rid in members}
    return StageView(stage, ids, touched, decisions)


def _record_state(rid: int, stage: str, decs: Mapping[str, Decision], res: Decision | None,
                  automated: Mapping[int, str | None], k: int) -> RecordState:
    """Where one record stands at `stage`, from its reviewers' standing decisions, its
    resolution and any stopping rule (the rules in the module's docstring)."""
    reason = None
    auto = False
    if res is not None:
        status = INCLUDED if res.value in POSITIVE else EXCLUDED
        reason = (res.reason or _common_reason(decs)) if status == EXCLUDED else None
    elif len(decs) >= k:
        values = {d.value for d in decs.values()}
        if values <= set(POSITIVE):
            status = INCLUDED
        elif values == {"exclude"} and stage == FULL_TEXT and len(
                {d.reason for d in decs.values() if d.reason}) > 1:
            status = CONFLICT
        elif values == {"exclude"}:
            status = EXCLUDED
            reason = _common_reason(decs)
        else:
            status = CONFLICT
    elif rid in automated:
        status, auto = EXCLUDED, True
        reason = automated[rid]
    else:
        status = PENDING
    return RecordState(rid, stage, status, dict(decs), res, auto, reason)


def included_records(store: Store) -> list[int]:
    """The records included after full-text assessment, in id order: the included studies'
    reports, which data are extracted from."""
    return [rid for rid, st in stage_states(store, FULL_TEXT).items() if st.status == INCLUDED]


def automated_records(store: Store, stage: str) -> dict[int, str | None]:
    """record id -> rule, for records a stopping rule marked ineligible at `stage`
    (as `stage_states` reads them; they count as excluded only where reviewers
    have not settled them)."""
    return _automated(store, stage, store.canonical_map(), undone_ids(store))


def _automated(store: Store, stage: str, canon: Mapping[int, int], undone: set[str]
               ) -> dict[int, str | None]:
    out: dict[int, str | None] = {}
    for e in _standing(store, "kind = 'automation' AND stage = ?", [stage], undone):
        out[canon.get(e["record_id"], e["record_id"])] = e["data"].get("rule")
    return out


def _common_reason(decs: Mapping[str, Decision]) -> str | None:
    reasons = [d.reason for d in sorted(decs.values(), key=lambda d: d.ts) if d.reason]
    if not reasons:
        return None
    return Counter(reasons).most_common(1)[0][0]


#: how a resolution was reached: together by the reviewers who disagreed, or by one
#: person who did not screen the record; logs written before the name changed say
#: "third-reviewer" for an arbiter
RESOLUTION_METHODS = ("consensus", "arbiter")
_METHOD_SPELLINGS = {"third-reviewer": "arbiter"}


def resolution_method(data: Mapping[str, Any] | None) -> str:
    """The method a `resolution` event's data records ("unspecified" when none)."""
    method = (data or {}).get("method") or "unspecified"
    return _METHOD_SPELLINGS.get(method, method)


def fulltext_states(store: Store) -> dict[int, str]:
    """record id (canonical) -> its latest standing full-text retrieval state."""
    canon = store.canonical_map()
    out: dict[int, str] = {}
    for e in standing_events(store, "kind = 'fulltext' AND record_id IS NOT NULL"):
        out[canon.get(e["record_id"], e["record_id"])] = e["value"]
    return out


@dataclass(frozen=True)
class Retrieval:
    """Where a record's full text stands: its latest standing `fulltext` event (state,
    reason, and for a copy in hand its source and file) and its latest candidate
    locations (`located` is False until someone looked for them)."""

    record_id: int
    state: str | None = None
    reason: str | None = None
    source: str | None = None
    file: str | None = None
    url: str | None = None
    kind: str | None = None
    locations: tuple[Mapping[str, Any], ...] = ()
    located: bool = False
    #: services that failed when the locations were last looked up, with why
    unanswered: Mapping[str, str] = field(default_factory=dict)
    #: services asked, and those that did not know the record's DOI or PMID
    asked: tuple[str, ...] = ()
    unknown_to: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record_id, "state": self.state, "reason": self.reason,
                "source": self.source, "file": self.file, "url": self.url, "kind": self.kind,
                "locations": [dict(x) for x in self.locations], "located": self.located,
                "unanswered": dict(self.unanswered)}


def retrievals(store: Store) -> dict[int, Retrieval]:
    """record id (canonical) -> its `Retrieval`, for the records with any such event."""
    canon = store.canonical_map()
    out: dict[int, Retrieval] = {}
    for e in standing_events(store, "kind IN ('fulltext', 'locations') AND record_id IS NOT NULL"):
        rid = canon.get(e["record_id"], e["record_id"])
        now = out.get(rid, Retrieval(rid))
        data = e["data"] or {}
        if e["kind"] == "locations":
            locs = tuple(x for x in data.get("locations") or () if isinstance(x, Mapping))
            failed = data.get("failed")
            out[rid] = replace(now, locations=locs, located=True,
                               unanswered=dict(failed) if isinstance(failed, Mapping) else {},
                               asked=tuple(map(str, data.get("services") or ())),
                               unknown_to=tuple(map(str, data.get("unknown") or ())))
        else:
            out[rid] = replace(now, state=e["value"], reason=e["reason"],
                               source=data.get("source"), file=data.get("file"),
                               url=data.get("url"), kind=data.get("kind"))
    return out


def fulltext_sources(store: Store) -> Counter[str]:
    """How many retrieved reports came from each source: a service's name, `hand` for a
    file a person attached, `unrecorded` for a report marked retrieved without a file."""
    return Counter((r.source or "unrecorded") for r in retrievals(store).values()
                   if r.state == "retrieved")


def records_from(store: Store, role: str | None = None, source: str | None = None) -> set[int]:
    """The canonical records found with source `role` (index, database, ...) and/or by
    a search whose source is `source` (a service or a file's named source, any case)."""
    canon = store.canonical_map()
    return {canon.get(rid, rid) for _, rid, r, service, _ in standing_sources(store)
            if (role is None or r == role)
            and (source is None or (service or "").lower() == source.lower())}


@dataclass(frozen=True)
class SearchChanges:
    """What the standing `search` events say of one logged search."""

    removed: bool = False
    role: str | None = None        # relabelled to this role
    source: str | None = None      # relabelled to this source name
    details: Mapping[str, str | None] = field(default_factory=dict)   # edited PRISMA-S details
    event_ids: tuple[str, ...] = ()


def search_changes(store: Store) -> dict[str, SearchChanges]:
    """Search uuid -> its relabels, removal and edits, as the standing events leave them
    (latest counts; an undone event counts for nothing)."""
    out: dict[str, SearchChanges] = {}
    for e in standing_events(store, "kind = 'search'"):
        key = e["data"].get("search")
        if not key:
            continue
        now = out.get(key, SearchChanges())
        d = e["data"]
        if e["value"] == "remove":
            now = SearchChanges(True, now.role, now.source, now.details, now.event_ids)
        elif e["value"] == "relabel":
            now = SearchChanges(now.removed, d.get("role") or now.role,
                                d.get("source") or now.source, now.details, now.event_ids)
        elif e["value"] == "edit":
            details = {**now.details, **{k: v for k, v in (d.get("details") or {}).items()}}
            now = SearchChanges(now.removed, now.role, now.source, details, now.event_ids)
        out[key] = SearchChanges(now.removed, now.role, now.source, now.details,
                                 now.event_ids + (e["id"],))
    return out


def standing_sources(store: Store) -> list[tuple[int, int, str, str | None, str | None]]:
    """Every source row as the flow counts it, (id, record id, role, service, strategy),
    oldest first: rows of removed searches left out, relabelled ones with their new role
    and source. `sources` itself is never changed: the log says what changed."""
    changes = search_changes(store)
    if not changes:
        return store.conn.execute(
            "SELECT id, record_id, role, service, strategy FROM sources ORDER BY id").fetchall()
    rows = store.conn.execute(
        "SELECT so.id, so.record_id, so.role, so.service, so.strategy, s.uuid FROM sources so "
        "LEFT JOIN searches s ON s.id = so.search_id ORDER BY so.id").fetchall()
    out = []
    for sid, rid, role, service, strategy, key in rows:
        c = changes.get(key) if key else None
        if c is not None:
            if c.removed:
                continue
            role, service = c.role or role, c.source or service
        out.append((sid, rid, role, service, strategy))
    return out


def removed_search_records(store: Store) -> set[int]:
    """Canonical records that only removed searches found: every source row of the
    record and of its duplicates comes from a removed search. They leave the flow and
    the screening queues; the decisions about them stay in the log."""
    changes = search_changes(store)
    gone = {k for k, c in changes.items() if c.removed}
    if not gone:
        return set()
    canon = store.canonical_map()
    found: dict[int, bool] = {}
    for rid, key in store.conn.execute(
            "SELECT so.record_id, s.uuid FROM sources so LEFT JOIN searches s "
            "ON s.id = so.search_id"):
        c = canon.get(rid, rid)
        found[c] = found.get(c, False) or key not in gone
    return {rid for rid, standing in found.items() if not standing}


def partial_label(st: RecordState, k: int) -> str:
    """A record some but not all of its k reviewers have decided, named as such:
    "1 of 2 reviewers: include" (never promoted to a decision)."""
    values = sorted({d.value for d in st.decisions.values()})
    return f"{len(st.decisions)} of {k}{_PARTIAL_MARK}{', '.join(values)}"


_PARTIAL_MARK = " reviewers: "


def is_partial(label: str) -> bool:
    """Whether a `current_decisions` label names a partial state."""
    return _PARTIAL_MARK in label


def current_decisions(store: Store, stage: str) -> dict[int, str]:
    """record id -> where it stands at `stage`, as exports and reports show it;
    absent means undecided.

    "include" and "exclude" are final decisions only: the protocol's reviewers per
    record agreed, a resolution settled a conflict, or a stopping rule excluded it.
    Otherwise "conflict", or the partial state by name ("1 of 2 reviewers: include").
    At full text, records that never reached the stage say why ("excluded at
    title-abstract", "awaiting title-abstract") and reports not retrieved say so,
    as the PRISMA flow counts them.
    """
    k = get_protocol(store).reviewers_per_record
    # records no event touched at title-abstract are pending there: no state is built
    # for them, a large store has hundreds of thousands
    before = stage_view(store, TITLE_ABSTRACT)
    retrieval = fulltext_states(store) if stage == FULL_TEXT else {}
    states: Mapping[int, RecordState] = before.touched
    out: dict[int, str] = {}
    if stage == FULL_TEXT:
        states = stage_view(store, FULL_TEXT, before=before).states()
        for rid in before.ids:
            ta = before.touched.get(rid)
            if ta is None:
                out[rid] = _AWAITING_TA
            elif ta.status != INCLUDED:
                out[rid] = _before_full_text(ta)
    for rid, st in states.items():
        label = _label(st, retrieval.get(rid), k)
        if label is not None:
            out[rid] = label
    return out


def _before_full_text(ta: RecordState) -> str:
    """Why a record that did not pass title-abstract has no full-text state."""
    return "excluded at title-abstract" if ta.status == EXCLUDED else _AWAITING_TA


_AWAITING_TA = "awaiting title-abstract"


def _label(st: RecordState, retrieval: str | None, k: int) -> str | None:
    """A record's state at its stage as `current_decisions` names it (None: undecided)."""
    if st.status == INCLUDED:
        return "include"
    if retrieval == "not-retrieved":
        # as the PRISMA flow counts it: a report not obtained cannot be assessed
        return "not retrieved"
    if st.status == EXCLUDED:
        return "exclude"
    if st.status == CONFLICT:
        return "conflict"
    if st.decisions:
        return partial_label(st, k)
    return None


def record_decisions(store: Store, record_id: int) -> dict[str, str]:
    """stage -> where one record (the record standing for its work) stands, named as
    `current_decisions` names it ("undecided" where that leaves it out).

    Read from the events on the record and its duplicates alone, so one record
    costs what its own log costs, not the whole store's.
    """
    canonical = store.canonical_id(record_id)
    family = record_family(store, canonical)
    canon = {rid: canonical for rid in family}
    k = get_protocol(store).reviewers_per_record
    events = standing_events(
        store, f"record_id IN ({','.join('?' * len(family))}) AND kind IN "
               "('decision', 'resolution', 'automation', 'fulltext')", family)
    states: dict[str, RecordState] = {}
    for stage in STAGES:
        decs: dict[str, Decision] = {}
        res: Decision | None = None
        automated: dict[int, str | None] = {}
        for e in events:
            if e["stage"] != stage:
                continue
            if e["kind"] == "decision":
                decs[e["reviewer"] or ""] = _to_decision(e, canon)  # the latest counts
            elif e["kind"] == "resolution":
                res = _to_decision(e, canon)
            elif e["kind"] == "automation":
                automated[canonical] = e["data"].get("rule")
        states[stage] = _record_state(canonical, stage, decs, res, automated, k)
    retrieval = [e["value"] for e in events if e["kind"] == "fulltext"]
    ta = states[TITLE_ABSTRACT]
    return {
        TITLE_ABSTRACT: _label(ta, None, k) or "undecided",
        FULL_TEXT: (_label(states[FULL_TEXT], retrieval[-1] if retrieval else None, k)
                    or "undecided") if ta.status == INCLUDED else _before_full_text(ta),
    }


def training_labels(store: Store, stage: str = TITLE_ABSTRACT, reviewer: str | None = None,
                    states: Mapping[int, RecordState] | None = None,
                    decisions: Mapping[tuple[int, str], Decision] | None = None
                    ) -> dict[int, int]:
    """record id -> 1 (relevant) / 0 for the prioritiser.

    Final states give the team's label; where a record is not final yet, any
    reviewer's own decision is used (the given reviewer's first), so the model
    learns from every keypress without waiting for the second reviewer.
    `states` and `decisions`, when given, are this stage's `stage_states` and
    `effective_decisions`, already derived in the same read.
    """
    labels: dict[int, int] = {}
    partial: dict[int, int] = {}
    if decisions is None:
        decisions = effective_decisions(store, stage)
    if states is None:
        states = stage_states(store, stage)
    for (rid, rev), d in decisions.items():
        y = 1 if d.value in POSITIVE else 0
        if reviewer is not None and rev == reviewer:
            partial[rid] = y
        else:
            partial.setdefault(rid, y)
    for rid, st in states.items():
        if st.final and not st.automated:
            labels[rid] = 1 if st.status == INCLUDED else 0
        elif rid in partial:
            labels[rid] = partial[rid]
    return labels


def screening_sequence(store: Store, stage: str, reviewer: str | None = None,
                       states: Mapping[int, RecordState] | None = None,
                       decisions: Mapping[tuple[int, str], Decision] | None = None
                       ) -> list[tuple[int, int]]:
    """(record id, label) for every labelled record, in the order of its first decision
    (`states`, `decisions`: as for `training_labels`)."""
    if decisions is None:
        decisions = effective_decisions(store, stage)
    labels = training_labels(store, stage, reviewer, states, decisions)
    first: dict[int, int] = {}
    seq_of = dict(store.conn.execute(
        "SELECT id, seq FROM events WHERE kind IN ('decision', 'resolution') AND stage = ?",
        [stage]).fetchall())
    for d in decisions.values():
        s = seq_of.get(d.event_id, 0)
        if d.record_id not in first or s < first[d.record_id]:
            first[d.record_id] = s
    ordered = sorted((rid for rid in labels), key=lambda r: (first.get(r, math.inf), r))
    return [(rid, labels[rid]) for rid in ordered]
