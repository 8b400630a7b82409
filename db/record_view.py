"""One record whole, as `cluster show` prints it: its fields, identifiers and links,
where it was found, its duplicates, and everything the team logged about it.

The view is assembled here from the store and the meaning of the log
(`db.state`: which events stand and where the record stands at each stage;
`db.tags`; `db.provenance`); the CLI only lays it out. Events on a record
merged as a duplicate count for the record that stands for its work, so a
duplicate's view shows its own fields and sources and its canonical record's
screening.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from base.links import record_links
from base.record import Record
from db.events import STAGES
from db.flow import study_keys
from db.protocol import get_protocol
from db.provenance import Source, record_family, sources_of
from db.state import (is_partial, record_decisions, resolution_method, standing_events,
                      undone_ids)
from db.store import Store, row_to_record
from db.tags import tags_of

_FIELDS = ("title", "authors", "year", "journal", "volume", "issue", "pages", "language",
           "pub_types", "keywords", "issn", "url", "abstract")
_IDENTIFIERS = (("doi", "DOI"), ("pmid", "PMID"), ("pmcid", "PMCID"), ("openalex", "OpenAlex"))


@dataclass(frozen=True)
class RecordView:
    record_id: int
    record: Record
    needs_metadata: bool
    created_at: str | None
    merged_into: int | None  # the record that stands for its work, when this one is a duplicate
    merge_id: str | None  # the merge that made it a duplicate
    duplicates: tuple[dict[str, Any], ...]  # records merged into it: record_id, title, merge_id
    sources: tuple[Source, ...]
    study: str | None
    tags: tuple[str, ...]
    stages: dict[str, dict[str, Any]]
    fulltext: dict[str, Any]
    notes: tuple[dict[str, Any], ...]
    appraisals: dict[str, dict[str, Any]]
    assigned: tuple[dict[str, Any], ...]

    @property
    def canonical_id(self) -> int:
        return self.merged_into if self.merged_into is not None else self.record_id

    @property
    def identifiers(self) -> dict[str, str]:
        return {label: getattr(self.record, f) for f, label in _IDENTIFIERS
                if getattr(self.record, f)}

    @property
    def links(self) -> dict[str, str]:
        return record_links(self.record)

    def to_dict(self) -> dict[str, Any]:
        r = self.record
        fields: dict[str, Any] = {}
        for f in _FIELDS:
            v = getattr(r, f)
            fields[f] = list(v) if isinstance(v, tuple) else v
        return {
            "record_id": self.record_id, "fields": fields,
            "identifiers": {f: getattr(r, f) for f, _ in _IDENTIFIERS},
            "links": self.links, "needs_metadata": self.needs_metadata,
            "added_at": self.created_at, "merged_into": self.merged_into,
            "merge_id": self.merge_id,
            "duplicates": list(self.duplicates),
            "sources": [s.to_dict() for s in self.sources],
            "study": self.study, "tags": list(self.tags), "stages": self.stages,
            "fulltext": self.fulltext, "notes": list(self.notes),
            "appraisals": self.appraisals, "assigned": list(self.assigned),
        }


def record_view(store: Store, record_id: int) -> RecordView:
    """Everything the store knows of one record (StoreError for an unknown one).

    Read in one snapshot, so a decision landing meanwhile is either all in or not.
    """
    with store.read_snapshot():
        return _view(store, int(record_id))


def _view(store: Store, record_id: int) -> RecordView:
    canonical = store.canonical_id(record_id)  # "Record N is not in this store." when unknown
    row = store.conn.execute("SELECT * FROM records WHERE id = ?", [record_id])
    cols = [c[0] for c in row.description]
    data = dict(zip(cols, row.fetchone()))
    record = row_to_record(data)
    family = record_family(store, canonical)
    on_family = f"record_id IN ({','.join('?' * len(family))})"
    undone = undone_ids(store)
    events = store.events(on_family, family)
    merges = _merge_ids(store)
    states = record_decisions(store, canonical)

    return RecordView(
        record_id=record_id, record=record, needs_metadata=bool(data.get("needs_metadata")),
        created_at=data.get("created_at"),
        merged_into=canonical if canonical != record_id else None,
        merge_id=merges.get(record_id) if canonical != record_id else None,
        duplicates=_duplicates(store, record_id, merges),
        sources=tuple(sources_of(store, record_id)),
        study=study_keys(store, {rid: canonical for rid in family}, family).get(canonical),
        tags=tags_of(store, canonical),
        stages={stage: _stage(store, canonical, stage, states[stage], events, undone)
                for stage in STAGES},
        fulltext=_fulltext(events, undone),
        notes=tuple({"event_id": e["id"], "ts": e["ts"], "reviewer": e["reviewer"],
                     "stage": e["stage"], "note": e["note"]}
                    for e in events if e["kind"] == "note" and e["id"] not in undone),
        appraisals=_appraisals(events, undone),
        assigned=tuple({"reviewer": e["reviewer"], "stage": e["stage"], "ts": e["ts"]}
                       for e in events if e["kind"] == "assign" and e["id"] not in undone),
    )


def _duplicates(store: Store, record_id: int, merges: dict[int, str]
                ) -> tuple[dict[str, Any], ...]:
    """The records merged into `record_id`, each with its title and merge."""
    out = []
    for rid in record_family(store, record_id)[1:]:
        title = store.conn.execute("SELECT title FROM records WHERE id = ?", [rid]).fetchone()[0]
        out.append({"record_id": rid, "title": title, "merge_id": merges.get(rid)})
    return tuple(out)


def _merge_ids(store: Store) -> dict[int, str]:
    """record id -> the standing merge that made it a duplicate."""
    out: dict[int, str] = {}
    for e in standing_events(store, "kind = 'merge'"):
        for m in e["data"].get("members") or ():
            if m != e["data"].get("canonical"):
                out[m] = e["data"].get("merge_id")
    return out


def _event(e: dict[str, Any], undone: set[str]) -> dict[str, Any]:
    return {"event_id": e["id"], "ts": e["ts"], "reviewer": e["reviewer"], "value": e["value"],
            "reason": e["reason"], "note": e["note"], "undone": e["id"] in undone}


def _stage(store: Store, canonical: int, stage: str, state: str, events: list[dict[str, Any]],
           undone: set[str]) -> dict[str, Any]:
    """Where the record stands at `stage` (`state`, as exports name it), and every decision."""
    decisions = [e for e in events if e["kind"] == "decision" and e["stage"] == stage]
    # the reviewer's latest standing decision counts; earlier ones were changed
    counting: dict[str, str] = {}
    for e in sorted((e for e in decisions if e["id"] not in undone),
                    key=lambda e: (e["ts"], e["id"])):
        counting[e["reviewer"] or ""] = e["id"]
    shown = []
    for e in sorted(decisions, key=lambda e: (e["ts"], e["id"])):
        d = _event(e, undone)
        d["counts"] = e["id"] in counting.values()
        if e["data"].get("requested_record_id") not in (None, canonical):
            d["decided_on_record"] = e["data"]["requested_record_id"]
        shown.append(d)
    resolutions = []
    for e in sorted((e for e in events if e["kind"] == "resolution" and e["stage"] == stage),
                    key=lambda e: (e["ts"], e["id"])):
        d = _event(e, undone)
        d["method"] = resolution_method(e["data"])
        d["decided_by"] = list(e["data"].get("decided_by") or ([e["reviewer"]] if e["reviewer"]
                                                               else []))
        resolutions.append(d)
    automation = [{"event_id": e["id"], "ts": e["ts"], "reviewer": e["reviewer"],
                   "rule": e["data"].get("rule"), "forced": bool(e["data"].get("forced")),
                   "undone": e["id"] in undone}
                  for e in events if e["kind"] == "automation" and e["stage"] == stage]
    k = get_protocol(store).reviewers_per_record
    return {"state": state, "final": state in ("include", "exclude"),
            "partial": is_partial(state), "reviewers_per_record": k,
            "decisions": shown, "resolutions": resolutions, "automation": automation}


def _fulltext(events: list[dict[str, Any]], undone: set[str]) -> dict[str, Any]:
    history = [{"event_id": e["id"], "ts": e["ts"], "reviewer": e["reviewer"],
                "state": e["value"], "reason": e["reason"], "undone": e["id"] in undone}
               for e in sorted((e for e in events if e["kind"] == "fulltext"),
                               key=lambda e: (e["ts"], e["id"]))]
    standing = [h for h in history if not h["undone"]]
    return {"state": standing[-1]["state"] if standing else None,
            "reason": standing[-1]["reason"] if standing else None, "history": history}


def _appraisals(events: list[dict[str, Any]], undone: set[str]) -> dict[str, dict[str, Any]]:
    """reviewer -> their latest standing relevance and rigour scores."""
    out: dict[str, dict[str, Any]] = {}
    for e in sorted((e for e in events if e["kind"] == "appraisal" and e["id"] not in undone),
                    key=lambda e: (e["ts"], e["id"])):
        out[e["reviewer"]] = {"relevance": e["data"].get("relevance"),
                              "rigour": e["data"].get("rigour"), "stage": e["stage"],
                              "ts": e["ts"]}
    return out

