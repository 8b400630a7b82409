"""Disagreements between extractors, the answers that settle them, and the answers that stand.

A field of a record is in conflict when two reviewers who completed the record
disagree on it (by the rules in `congruence`) and no `consensus` event settles
it. The answer that stands for a field is, in order: the latest standing
consensus; the answer every extractor agrees on (the first reviewer's wording,
by name, where texts agree without being identical); the only extractor's
answer; otherwise none, and the field is in conflict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from db.events import EXTRACTION
from db.state import RESOLUTION_METHODS, resolution_method, standing_events
from db.store import Store
from screeners.extraction.answers import (ExtractionError, check_value, completed_extractions,
                                          included_records, item_key)
from screeners.extraction.congruence import comparisons
from screeners.extraction.form import Field, Form, current_form

AGREED, CONSENSUS, SINGLE, CONFLICT, MISSING = "agreed", "consensus", "single", "conflict", "missing"


@dataclass(frozen=True)
class FieldConflict:
    record_id: int
    title: str | None
    key: str
    label: str
    answers: Mapping[str, Any]  # reviewer -> answer

    def to_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "title": self.title, "field": self.key,
                "label": self.label, "answers": dict(self.answers)}


@dataclass(frozen=True)
class ConsensusResult:
    event_id: str
    record_id: int
    key: str
    value: Any
    resolver: str
    method: str
    decided_by: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "record_id": self.record_id, "field": self.key,
                "answer": self.value, "resolver": self.resolver, "method": self.method,
                "decided_by": list(self.decided_by)}


@dataclass(frozen=True)
class FinalRecord:
    record_id: int
    extractors: tuple[str, ...]
    answers: Mapping[str, Any] = field(default_factory=dict)  # field key -> the standing answer
    status: Mapping[str, str] = field(default_factory=dict)   # field key -> AGREED, CONSENSUS...


def _consensus_events(store: Store) -> dict[tuple[int, str], dict]:
    canon = store.canonical_map()
    out: dict[tuple[int, str], dict] = {}
    for e in standing_events(store, "kind = 'consensus' AND stage = ?", [EXTRACTION]):
        out[(canon.get(e["record_id"], e["record_id"]), e["value"])] = e
    return out


def _disagree(f: Field, per: Mapping[str, Mapping[str, Any]]) -> bool:
    names = sorted(per)
    return any(not ok for i, a in enumerate(names) for b in names[i + 1:]
               for _, ok in comparisons(f, per[a].get(f.key), per[b].get(f.key)))


def conflicts(store: Store, form: Form | None = None) -> list[FieldConflict]:
    """Fields that complete extractions of a record disagree on, not yet settled; this view
    is not blind: it is for the people settling them."""
    form = form or current_form(store)
    assert form is not None
    settled = _consensus_events(store)
    out = []
    for rid, per in sorted(completed_extractions(store, form).items()):
        if len(per) < 2:
            continue
        title = store.db.execute("SELECT title FROM records WHERE id = ?", [rid]).fetchone()[0]
        for f in form.fields:
            if (rid, f.key) not in settled and _disagree(f, per):
                out.append(FieldConflict(rid, title, f.key, f.title,
                                         {r: per[r].get(f.key) for r in sorted(per)}))
    return out


def parse_value(form: Form, f: Field, raw: str) -> Any:
    """A consensus answer typed on the command line: as for any answer, and for a group
    a JSON list of items (objects of part -> answer)."""
    if f.type != "group":
        return check_value(form, f.key, raw)
    try:
        items = json.loads(raw)
    except json.JSONDecodeError:
        items = None
    parts = {p.key for p in f.fields}
    if not isinstance(items, list) or not all(isinstance(x, dict) and set(x) <= parts
                                              for x in items):
        raise ExtractionError(f"The answer to {f.title} is a JSON list of items, each an object "
                              f"of {', '.join(sorted(parts))}; or give --take REVIEWER.")
    return [{p.key: check_value(form, item_key(f.key, i, p.key), x.get(p.key)) for p in f.fields}
            for i, x in enumerate(items, 1)]


def settle(store: Store, record_id: int, key: str, resolver: str, method: str = "consensus",
           value: str | None = None, take: str | None = None) -> ConsensusResult:
    """Set the answer that stands for a field the extractors disagree on (a `consensus`
    event): `value` as typed, or the answer of reviewer `take`."""
    form = current_form(store)
    assert form is not None
    method = resolution_method({"method": method})
    if method not in RESOLUTION_METHODS:
        raise ExtractionError(f"Unknown method {method!r}: use one of "
                              f"{', '.join(RESOLUTION_METHODS)}.")
    if (value is None) == (take is None):
        raise ExtractionError("Give the agreed answer with --value, or --take REVIEWER to keep "
                              "one reviewer's answer (one of the two).")
    f = form.field(key)
    answer = None if value is None else parse_value(form, f, value)
    with store.transaction():
        store.require_reviewer(resolver)
        rid = store.canonical_id(int(record_id))
        per = completed_extractions(store, form).get(rid, {})
        if len(per) < 2 or not _disagree(f, per):
            raise ExtractionError(f"The extractors of record {rid} do not disagree on {f.title}: "
                                  "there is nothing to settle.")
        if take is not None:
            if take not in per:
                raise ExtractionError(f"{take} has not extracted record {rid}: take the answer of "
                                      f"one of {', '.join(sorted(per))}.")
            answer = per[take].get(f.key)
        if method == "arbiter" and resolver in per:
            raise ExtractionError(f"{resolver} extracted record {rid}, so cannot settle it as the "
                                  "arbiter: give --method consensus if the extractors agreed "
                                  "together.")
        who = (resolver,) if method == "arbiter" else tuple(sorted({*per, resolver}))
        eid = store.log_event("consensus", record_id=rid, reviewer=resolver, stage=EXTRACTION,
                              value=f.key, data={"answer": answer, "method": method,
                                                 "decided_by": list(who), "form": form.version})
    return ConsensusResult(eid, rid, f.key, answer, resolver, method, who)


def final_answers(store: Store, form: Form | None = None) -> dict[int, FinalRecord]:
    """record id -> the answers that stand, for every included record."""
    form = form or current_form(store)
    assert form is not None
    done = completed_extractions(store, form)
    settled = _consensus_events(store)
    out = {}
    for rid in included_records(store):
        per = done.get(rid, {})
        answers: dict[str, Any] = {}
        status: dict[str, str] = {}
        for f in form.fields:
            e = settled.get((rid, f.key))
            if e is not None:
                answers[f.key], status[f.key] = e["data"].get("answer"), CONSENSUS
            elif not per:
                answers[f.key], status[f.key] = None, MISSING
            elif len(per) == 1:
                answers[f.key], status[f.key] = next(iter(per.values())).get(f.key), SINGLE
            elif _disagree(f, per):
                answers[f.key], status[f.key] = None, CONFLICT
            else:
                answers[f.key], status[f.key] = per[sorted(per)[0]].get(f.key), AGREED
        out[rid] = FinalRecord(rid, tuple(sorted(per)), answers, status)
    return out
