"""The decision log as a person reads it: newest first, filtered, each event saying
whether it still stands.

Which events an undo has taken back is `db.state`'s to say (`undoers`);
this module only selects and orders. Every entry carries the event's id, the
name by which it can be taken back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from base.errors import ClusterError
from db.events import KINDS
from db.provenance import record_family
from db.state import undoers
from db.store import Store


def _short(value: Any, limit: int = 60) -> str:
    """An extraction answer in a log line: lists joined, long texts cut."""
    if isinstance(value, list):
        value = "; ".join(str(x) for x in value) if not value or not isinstance(
            value[0], dict) else f"{len(value)} item(s)"
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


class LogError(ClusterError):
    """A log request that cannot be met; one sentence."""


@dataclass(frozen=True)
class LogEntry:
    seq: int
    event_id: str
    ts: str
    kind: str
    record_id: int | None
    reviewer: str | None
    stage: str | None
    value: str | None
    reason: str | None
    note: str | None
    undoes: str | None
    data: dict[str, Any]
    undone_by: str | None  # the standing undo that took this event back

    @property
    def undone(self) -> bool:
        return self.undone_by is not None

    @property
    def summary(self) -> str:
        """What the event did, in a few words ("include at title-abstract")."""
        d, v = self.data, self.value
        stage = f" at {self.stage}" if self.stage else ""
        why = f" ({self.reason})" if self.reason else ""
        if self.kind == "decision":
            text = f"{v}{stage}{why}"
        elif self.kind == "resolution":
            who = ", ".join(d.get("decided_by") or ())
            method = d.get("method") or "unspecified"
            text = f"resolved: {v}{stage}{why} ({method}{'; ' + who if who else ''})"
        elif self.kind == "automation":
            forced = ", forced" if d.get("forced") else ""
            text = f"excluded{stage} by the {d.get('rule') or 'stopping'} rule{forced}"
        elif self.kind == "fulltext":
            text = f"full text {(v or '').replace('-', ' ')}{why}"
        elif self.kind == "appraisal":
            scores = " · ".join(f"{k} {d[k]}" for k in ("relevance", "rigour") if k in d)
            text = f"scores{stage}: {scores}"
        elif self.kind == "note":
            return f"note: {self.note}"
        elif self.kind == "assign":
            text = f"assigned to check{stage}"
        elif self.kind == "tag":
            text = f"tagged {v}"
        elif self.kind == "merge":
            others = [m for m in d.get("members") or () if m != d.get("canonical")]
            text = (f"merged record{'s' if len(others) != 1 else ''} "
                    f"{', '.join(map(str, others))} into {d.get('canonical')} "
                    f"(merge {d.get('merge_id')})")
        elif self.kind == "unmerge":
            text = f"split merge {d.get('merge_id')}"
        elif self.kind == "pair_decision":
            text = f"records {d.get('a')} and {d.get('b')}: {v}"
        elif self.kind == "undo":
            text = f"takes back event {self.undoes}"
        elif self.kind == "protocol":
            text = "protocol set"
        elif self.kind == "contact":
            text = f"contact with {d.get('author')}: {d.get('status')}"
        elif self.kind == "answer":
            answer = d.get("answer")
            text = f"extraction: {v} = " + ("(blank)" if answer is None else _short(answer))
        elif self.kind == "consensus":
            who = ", ".join(d.get("decided_by") or ())
            text = (f"extraction settled: {v} = {_short(d.get('answer'))} "
                    f"({d.get('method') or 'unspecified'}{'; ' + who if who else ''})")
        elif self.kind == "search":
            sid = d.get("search_id")
            if v == "relabel":
                was = d.get("was") or {}
                role, source = d.get("role") or was.get("role"), d.get("source") or was.get("source")
                text = (f"search {sid} relabelled: {was.get('role')}: {was.get('source')} -> "
                        f"{role}: {source}")
            elif v == "remove":
                text = f"search {sid} removed from the flow"
            else:
                text = f"search {sid} details: " + ", ".join(
                    f"{k} = {_short(val)}" for k, val in (d.get("details") or {}).items())
        else:
            text = v or ""
        if self.note:
            text += f"; note: {self.note}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "event_id": self.event_id, "ts": self.ts, "kind": self.kind,
                "record_id": self.record_id, "reviewer": self.reviewer, "stage": self.stage,
                "value": self.value, "reason": self.reason, "note": self.note,
                "undoes": self.undoes, "data": self.data, "undone": self.undone,
                "undone_by": self.undone_by, "summary": self.summary}


def parse_since(text: str) -> datetime:
    """A date (2026-12-01: from its start) or an ISO date and time (2026-12-01T14:30,
    with or without seconds and a UTC offset; without one it is UTC)."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise LogError(f"{text!r} is not a date or a date and time: give one like 2026-12-01 or "
                       f"2026-12-01T14:30.") from None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def _when(ts: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(ts)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=timezone.utc)


def read_log(store: Store, *, reviewer: str | None = None, kind: str | None = None,
             record: int | None = None, since: str | None = None,
             limit: int | None = None) -> list[LogEntry]:
    """The events matching every filter given, newest first (by time, then by the
    order they entered this store: logs merged from other copies arrive late).

    `record` selects the events on that record, on the record that stands for
    its work and on every duplicate merged into it: they count for one work.
    """
    return list(iter_log(store, reviewer=reviewer, kind=kind, record=record, since=since,
                         limit=limit))


def iter_log(store: Store, *, reviewer: str | None = None, kind: str | None = None,
             record: int | None = None, since: str | None = None,
             limit: int | None = None) -> Iterator[LogEntry]:
    """`read_log`'s entries one at a time, read as they are asked for, all from one
    snapshot of the store: a long log (a merge per duplicate of a large store) is never
    held whole. The filters are checked before the first entry is asked for."""
    if kind is not None and kind not in KINDS:
        raise LogError(f"Unknown event kind {kind!r}: use one of {', '.join(KINDS)}.")
    if limit is not None and limit < 1:
        raise LogError(f"The limit must be at least 1, not {limit}.")
    start = parse_since(since) if since is not None else None
    if reviewer is not None:
        store.require_reviewer(reviewer)
    return _entries(store, reviewer, kind, record, start, limit)


def _entries(store: Store, reviewer: str | None, kind: str | None, record: int | None,
             start: datetime | None, limit: int | None) -> Iterator[LogEntry]:
    with store.read_snapshot():
        where: list[str] = []
        params: list[Any] = []
        if reviewer is not None:
            where.append("reviewer = ?")
            params.append(reviewer)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        if record is not None:
            family = record_family(store, store.canonical_id(int(record)))
            where.append(f"record_id IN ({','.join('?' * len(family))})")
            params += family
        sql = ("SELECT seq, id, ts, kind, record_id, reviewer, stage, value, reason, note, "
               "undoes, data FROM events" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY ts DESC, seq DESC")
        if limit is not None and start is None:
            # the newest few of a long log without reading the rest
            sql += " LIMIT ?"
            params.append(limit)
        undone_by = undoers(store)
        shown = 0
        for seq, eid, ts, kind_, rid, who, stage, value, reason, note, undoes, data in \
                store.conn.execute(sql, params):
            # times compared as times: a log merged from another copy may write them otherwise
            if start is not None and ((w := _when(ts)) is None or w < start):
                continue
            yield LogEntry(seq, eid, ts, kind_, rid, who, stage, value, reason, note, undoes,
                           json.loads(data or "{}"), undone_by.get(eid))
            shown += 1
            if limit is not None and shown >= limit:
                return
