"""Answers extracted in a spreadsheet, read from CSV or JSON lines and checked against the form.

A row (a CSV line after the header, or a JSON object a line) carries a
`record_id` and answers keyed by field: a field's key, or `group.part` for a
part of a repeatable group's item. Several rows may share a record: the
record's other answers then repeat (or stay blank in all but one row), and each
row holding a group part is one item of the group (a row per CMO
configuration). A group may instead be one cell holding a JSON list of items,
as `cluster extraction export` writes it; the export's other columns (study,
title, doi, item, conflicts) are ignored, so an exported table can be
reimported. A field with no column is left unanswered; an empty cell answers
it blank.

Everything is checked before anything is written; one transaction writes it
all, each answer as its own event marked with the file it came from.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from base.output import unneutralise
from db.store import Store
from screeners.extraction.answers import (ExtractionError, check_value, included_records,
                                          item_key)
from screeners.extraction.form import Form, FormError, current_form

IGNORED = {"study", "title", "doi", "item", "conflicts", "reviewer"}


@dataclass(frozen=True)
class ImportResult:
    records: int
    answers: int


def _rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ExtractionError(f"No answers file at {path}.") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise ExtractionError(f"{path.name} is not a CSV or JSON lines file (UTF-8 text).") from None
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson"):
        out = []
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                obj = None
            if not isinstance(obj, dict):
                raise ExtractionError(f"Line {n} of {path.name} is not a JSON object of answers.")
            out.append((n, obj))
        return out
    reader = csv.DictReader(io.StringIO(text))
    out = []
    for row in reader:
        out.append((reader.line_num, {k: unneutralise(v) if isinstance(v, str) else v
                                      for k, v in row.items() if k is not None}))
    return out


def read_answers(store: Store, path: str | Path, form: Form) -> dict[int, dict[str, Any]]:
    """record id -> answer key -> stored answer, every cell checked against `form`."""
    p = Path(path)
    rows = _rows(p)
    if not rows:
        raise ExtractionError(f"{p.name} holds no answers.")
    groups = {f.key: f for f in form.fields if f.type == "group"}
    plain = {f.key for f in form.fields if f.type != "group"}
    parts = {f"{g.key}.{x.key}": (g, x) for g in groups.values() for x in g.fields}
    included = set(included_records(store))
    out: dict[int, dict[str, Any]] = {}
    items: dict[int, dict[str, int]] = {}
    for n, row in rows:
        where = f"Line {n} of {p.name}"
        for col in row:
            if col not in plain and col not in groups and col not in parts and col != "record_id" \
                    and col not in IGNORED:
                raise ExtractionError(f"{where}: the column {col!r} is not a field of the form "
                                      f"(its fields: {', '.join(f.key for f in form.fields)}).")
        raw_id = row.get("record_id")
        try:
            rid = store.canonical_id(int(str(raw_id).strip()))
        except (TypeError, ValueError):
            raise ExtractionError(f"{where}: the record_id {raw_id!r} is not a record number.") \
                from None
        if rid not in included:
            raise ExtractionError(f"{where}: record {rid} is not an included record, so it has "
                                  "no data extraction.")
        got = out.setdefault(rid, {})
        try:
            for key in plain & set(row):
                value = check_value(form, key, row[key])
                if key in got and got[key] is not None and value is not None and got[key] != value:
                    raise ExtractionError(f"record {rid} has two answers to {key} "
                                          f"({got[key]!r} and {value!r})")
                if got.get(key) is None:
                    got[key] = value
            for gkey, g in groups.items():
                if gkey in row and row[gkey] not in (None, ""):
                    cell = row[gkey]
                    listed = json.loads(cell) if isinstance(cell, str) else cell
                    if not isinstance(listed, list) or not all(isinstance(x, dict) for x in listed):
                        raise ExtractionError(f"the {gkey} cell is not a JSON list of items")
                    for x in listed:
                        _add_item(form, got, items.setdefault(rid, {}), g.key,
                                  {k: x.get(k) for k in (q.key for q in g.fields)})
                    continue
                cells = {x.key: row[f"{gkey}.{x.key}"] for x in g.fields if f"{gkey}.{x.key}" in row}
                if cells:
                    items.setdefault(rid, {}).setdefault(gkey, 0)
                    if any(v not in (None, "") for v in cells.values()):
                        _add_item(form, got, items[rid], gkey, cells)
        except json.JSONDecodeError:
            raise ExtractionError(f"{where}: a group cell is not a JSON list of items.") from None
        except (ExtractionError, FormError) as exc:
            text = str(exc)
            raise ExtractionError(f"{where}: {text[0].lower() + text[1:]}".rstrip(".") + ".") \
                from None
    for rid, counts in items.items():
        for gkey, count in counts.items():
            out[rid][gkey] = count
    return out


def _add_item(form: Form, got: dict[str, Any], counts: dict[str, int], gkey: str,
              cells: dict[str, Any]) -> None:
    i = counts.get(gkey, 0) + 1
    counts[gkey] = i
    for part, raw in cells.items():
        got[item_key(gkey, i, part)] = check_value(form, item_key(gkey, i, part), raw)


def import_answers(store: Store, path: str | Path, reviewer: str) -> ImportResult:
    form = current_form(store)
    assert form is not None
    store.require_reviewer(reviewer)
    answers = read_answers(store, path, form)
    source = f"import {Path(path).name}"
    n = 0
    with store.transaction():
        for rid, got in sorted(answers.items()):
            for key, value in got.items():
                data = {"answer": value, "form": form.version, "source": source}
                store.log_event("answer", record_id=rid, reviewer=reviewer, stage="extraction",
                                value=key, data=data)
                n += 1
    return ImportResult(len(answers), n)
