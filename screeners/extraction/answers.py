"""Extraction answers: one `answer` event per field, read back as each reviewer's extraction.

A reviewer's answer to a field is the latest `answer` event for that record,
reviewer and field key that no standing undo takes back (`db.state`). A
repeatable group's items are keyed `group[i].part`; the group's own key holds
the number of items once the reviewer has finished it. An extraction is
complete when every field of the form in force has an answer (blank counts: it
says there was nothing to extract); answers to fields a later form dropped stay
in the log, unread, and come back if the field does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from db.events import EXTRACTION
from db.protocol import get_protocol
from db.state import included_records, records_from, standing_events, undone_ids
from db.store import Store
from screeners.extraction.form import Field, Form, FormError, check_answer, current_form

_ITEM = re.compile(r"^([A-Za-z][A-Za-z0-9_-]*)\[(\d+)\]\.([A-Za-z][A-Za-z0-9_-]*)$")


class ExtractionError(FormError):
    """An extraction step that cannot be taken; the message says why and what to do."""


@dataclass(frozen=True)
class Answer:
    event_id: str
    record_id: int
    reviewer: str
    key: str
    value: Any
    form_version: int | None
    ts: str


def item_key(group: str, item: int, part: str) -> str:
    return f"{group}[{item}].{part}"


def split_key(key: str) -> tuple[str, int | None, str | None]:
    """(field, item, part) of an answer key; item and part are None outside a group."""
    m = _ITEM.match(key)
    return (m.group(1), int(m.group(2)), m.group(3)) if m else (key, None, None)


def field_for(form: Form, key: str) -> tuple[Field, Field | None]:
    """The form's field an answer key names, and the group part where it names one."""
    name, item, part = split_key(key)
    f = form.field(name)
    if part is None:
        return f, None
    if f.type != "group":
        raise ExtractionError(f"{f.title} is not a repeatable group, so {key!r} names no answer.")
    for p in f.fields:
        if p.key == part:
            return f, p
    raise ExtractionError(f"Group {f.title} has no part {part!r}: its parts are "
                          f"{', '.join(p.key for p in f.fields)}.")


def extractors_needed(store: Store, records: Iterable[int]) -> dict[int, int]:
    """record id -> how many reviewers the protocol asks to extract it."""
    protocol = get_protocol(store)
    index = records_from(store, role="index") if protocol.extraction_reviewers_index else set()
    return {rid: (protocol.extraction_reviewers_index or protocol.extraction_reviewers)
            if rid in index else protocol.extraction_reviewers for rid in records}


# --- reading ---------------------------------------------------------------------------------


def standing_answers(store: Store, reviewer: str | None = None, record_id: int | None = None
                     ) -> dict[tuple[int, str], dict[str, Answer]]:
    """(record, reviewer) -> field key -> the answer that stands."""
    where = "kind = 'answer' AND stage = ?"
    params: list[Any] = [EXTRACTION]
    for column, value in (("reviewer", reviewer), ("record_id", record_id)):
        if value is not None:
            where += f" AND {column} = ?"
            params.append(value)
    canon = store.canonical_map()
    out: dict[tuple[int, str], dict[str, Answer]] = {}
    for e in standing_events(store, where, params):
        rid = canon.get(e["record_id"], e["record_id"])
        a = Answer(e["id"], rid, e["reviewer"], e["value"], e["data"].get("answer"),
                   e["data"].get("form"), e["ts"])
        out.setdefault((rid, a.reviewer), {})[a.key] = a  # later events replace earlier ones
    return out


def assemble(form: Form, answers: Mapping[str, Answer | Any]) -> dict[str, Any]:
    """field key -> answer for the fields answered; a group's answer is its list of items
    (part key -> answer), only once the group is finished."""
    values = {k: (a.value if isinstance(a, Answer) else a) for k, a in answers.items()}
    out: dict[str, Any] = {}
    for f in form.fields:
        if f.key not in values:
            continue
        if f.type != "group":
            out[f.key] = values[f.key]
            continue
        n = int(values[f.key] or 0)
        out[f.key] = [{p.key: values.get(item_key(f.key, i, p.key)) for p in f.fields}
                      for i in range(1, n + 1)]
    return out


def is_complete(form: Form, answers: Mapping[str, Any]) -> bool:
    return all(f.key in answers for f in form.fields)


def items_begun(group: Field, answers: Mapping[str, Any]) -> int:
    """How many items of a group the reviewer has begun (the highest item answered)."""
    n = 0
    for key in answers:
        name, item, _ = split_key(key)
        if name == group.key and item is not None:
            n = max(n, item)
    return n


def completed_extractions(store: Store, form: Form
                          ) -> dict[int, dict[str, dict[str, Any]]]:
    """record id -> reviewer -> assembled answers, for every complete extraction."""
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for (rid, reviewer), answers in standing_answers(store).items():
        if is_complete(form, answers):
            out.setdefault(rid, {})[reviewer] = assemble(form, answers)
    return out


# --- writing ---------------------------------------------------------------------------------


def check_value(form: Form, key: str, raw: Any) -> Any:
    """The stored form of an answer to `key` (a field, a group's item part, or a group's
    number of items), or a one-sentence error."""
    f, part = field_for(form, key)
    if part is not None:
        return check_answer(part, raw)
    if f.type == "group":
        if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
            raise ExtractionError(f"The number of items of {f.title} must be a whole number "
                                  f"0 or above, not {raw!r}.")
        return raw
    return check_answer(f, raw)


def save_answer(store: Store, record_id: int, reviewer: str, key: str, raw: Any,
                form: Form | None = None, source: str | None = None,
                check_record: bool = True) -> Answer:
    """Log `reviewer`'s answer to one field of a record, after every check; in its own
    transaction, so what is typed is saved before the next field is asked."""
    form = form or current_form(store)
    assert form is not None
    value = check_value(form, key, raw)
    with store.transaction():
        store.require_reviewer(reviewer)
        rid = store.canonical_id(int(record_id))
        if check_record and rid not in included_records(store):
            raise ExtractionError(f"Record {rid} is not an included record, so it has no data "
                                  "extraction: only records included at full text do.")
        data: dict[str, Any] = {"answer": value, "form": form.version}
        if source:
            data["source"] = source
        eid = store.log_event("answer", record_id=rid, reviewer=reviewer, stage=EXTRACTION,
                              value=key, data=data)
        ts = store.db.execute("SELECT ts FROM events WHERE id = ?", [eid]).fetchone()[0]
    return Answer(eid, rid, reviewer, key, value, form.version, ts)


def undo_last_answer(store: Store, reviewer: str, record_id: int | None = None) -> Answer:
    """Take back `reviewer`'s latest standing answer (on `record_id` when given)."""
    with store.transaction():
        store.require_reviewer(reviewer)
        undone = undone_ids(store)
        where = "kind = 'answer' AND reviewer = ? AND stage = ?"
        params: list[Any] = [reviewer, EXTRACTION]
        if record_id is not None:
            where += " AND record_id = ?"
            params.append(record_id)
        rows = store.events(where, params)
        target = next((e for e in reversed(rows) if e["id"] not in undone), None)
        if target is None:
            raise ExtractionError(f"{reviewer} has no extraction answer to undo"
                                  + (f" on record {record_id}." if record_id is not None else "."))
        store.log_event("undo", record_id=target["record_id"], reviewer=reviewer,
                        stage=EXTRACTION, undoes=target["id"])
    return Answer(target["id"], target["record_id"], reviewer, target["value"],
                  target["data"].get("answer"), target["data"].get("form"), target["ts"])
