"""The evidence table: the extracted data of the included records as CSV, JSON lines or Markdown.

By default one row per included record with the answers that stand
(`consensus.final_answers`), and a `conflicts` column naming the fields still
in conflict; with `all_reviewers`, one row per record and reviewer who
finished it. `by="item"` gives one row per item of the form's repeatable group
(e.g. per CMO configuration), the record's other answers repeated; a record
with no item has one row with the group's columns blank. In a row per record,
a group's items are written as a JSON list in CSV and Markdown.

XLSX is not written: no spreadsheet library is among the dependencies, and
every spreadsheet opens the CSV (its cells are neutralised against formulas).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from base.output import csv_text
from db.store import Store
from screeners.extraction.answers import ExtractionError, completed_extractions
from screeners.extraction.consensus import CONFLICT, final_answers
from screeners.extraction.form import Form, current_form

FORMATS = ("csv", "jsonl", "markdown")
LAYOUTS = ("record", "item")


@dataclass(frozen=True)
class Table:
    text: str
    rows: int


def study_label(store: Store, rid: int) -> dict[str, Any]:
    """How a table names a record: its id, "First-author year", title and DOI."""
    rec = store.get_record(rid)
    first = rec.authors[0].split(",")[0] if rec.authors else ""
    return {"record_id": rid, "study": f"{first} {rec.year or 'n.d.'}".strip(),
            "title": rec.title, "doi": rec.doi}


def rows(store: Store, form: Form, all_reviewers: bool = False, by: str = "record"
         ) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of the evidence table."""
    groups = [f for f in form.fields if f.type == "group"]
    if by == "item" and len(groups) != 1:
        raise ExtractionError("One row per item needs a form with exactly one repeatable group; "
                              f"this form has {len(groups)}.")
    head = ["record_id", "study", "title", "doi"] + (["reviewer"] if all_reviewers else [])
    plain = [f.key for f in form.fields if f.type != "group"]
    if by == "item":
        g = groups[0]
        columns = head + plain + ["item"] + [f"{g.key}.{p.key}" for p in g.fields]
    else:
        columns = head + [f.key for f in form.fields]
    if not all_reviewers:
        columns.append("conflicts")
    base_rows: list[tuple[dict[str, Any], Mapping[str, Any]]] = []
    if all_reviewers:
        for rid, per in sorted(completed_extractions(store, form).items()):
            for reviewer in sorted(per):
                base_rows.append(({**study_label(store, rid), "reviewer": reviewer}, per[reviewer]))
    else:
        for rid, final in sorted(final_answers(store, form).items()):
            conflicts = [k for k, s in final.status.items() if s == CONFLICT]
            base_rows.append(({**study_label(store, rid), "conflicts": "; ".join(conflicts)},
                              final.answers))
    out: list[dict[str, Any]] = []
    for desc, answers in base_rows:
        row = {**desc, **{k: answers.get(k) for k in plain}}
        if by != "item":
            out.append({**row, **{g.key: answers.get(g.key) for g in groups}})
            continue
        g = groups[0]
        items = answers.get(g.key) or [{}]
        for i, item in enumerate(items, 1):
            out.append({**row, "item": i if item else None,
                        **{f"{g.key}.{p.key}": item.get(p.key) for p in g.fields}})
    return columns, out


def _flat(value: Any) -> Any:
    if isinstance(value, list):
        if value and isinstance(value[0], dict):
            return json.dumps(value, ensure_ascii=False)
        return "; ".join(str(v) for v in value)
    return value


def render(columns: list[str], table: Iterable[Mapping[str, Any]], fmt: str) -> str:
    table = list(table)
    if fmt == "jsonl":
        return "".join(json.dumps({c: r.get(c) for c in columns}, ensure_ascii=False) + "\n"
                       for r in table)
    if fmt == "csv":
        return csv_text(columns, ({c: _flat(r.get(c)) for c in columns} for r in table))
    if fmt == "markdown":
        def cell(v: Any) -> str:
            text = "" if v is None else str(_flat(v))
            return " ".join(text.replace("|", "\\|").split())
        lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in table]
        return "\n".join(lines) + "\n"
    if fmt == "xlsx":
        raise ExtractionError("XLSX is not available: no spreadsheet library is installed with "
                              "cluster; export --format csv, which every spreadsheet opens.")
    raise ExtractionError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")


def export_table(store: Store, fmt: str, all_reviewers: bool = False, by: str = "record"
                 ) -> Table:
    form = current_form(store)
    assert form is not None
    if fmt not in FORMATS:
        render([], [], fmt)  # the one sentence for a format it does not write
    columns, table = rows(store, form, all_reviewers, by)
    return Table(render(columns, table, fmt), len(table))
