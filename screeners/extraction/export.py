"""The evidence table: the extracted data of the included records as CSV, JSON lines,
Markdown or an XLSX workbook.

By default one row per included record with the answers that stand
(`consensus.final_answers`), and a `conflicts` column naming the fields still
in conflict; with `all_reviewers`, one row per record and reviewer who
finished it. `by="item"` gives one row per item of the form's repeatable group
(e.g. per CMO configuration), the record's other answers repeated; a record
with no item has one row with the group's columns blank. In a row per record,
a group's items are written as a JSON list in CSV and Markdown.

XLSX is written with openpyxl (one worksheet, cells as the CSV's, text cells
stored as text so no answer runs as a formula).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from base.output import csv_text
from db.store import Store
from screeners.extraction.answers import ExtractionError, completed_extractions
from screeners.extraction.consensus import CONFLICT, final_answers
from screeners.extraction.form import Form, current_form

FORMATS = ("csv", "jsonl", "markdown", "xlsx")
LAYOUTS = ("record", "item")


@dataclass(frozen=True)
class Table:
    text: str | bytes  # bytes for xlsx, text for the rest
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


def render(columns: list[str], table: Iterable[Mapping[str, Any]], fmt: str) -> str | bytes:
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
        return _xlsx(columns, table)
    raise ExtractionError(f"Unknown format {fmt!r}: use one of {', '.join(FORMATS)}.")


def _xlsx(columns: list[str], table: list[Mapping[str, Any]]) -> bytes:
    """One worksheet, a header row and one row per table row. Every text cell is
    stored as text, so an answer starting with "=" is shown, never run as a formula."""
    from openpyxl import Workbook

    book = Workbook(write_only=False)
    book.remove(book.worksheets[0])
    sheet = book.create_sheet("evidence")
    for r, row in enumerate([dict(zip(columns, columns)), *table], start=1):
        for c, key in enumerate(columns, start=1):
            value = _flat(row.get(key))
            cell = sheet.cell(row=r, column=c, value=value)
            if isinstance(value, str):
                cell.data_type = "s"
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def export_table(store: Store, fmt: str, all_reviewers: bool = False, by: str = "record"
                 ) -> Table:
    form = current_form(store)
    assert form is not None
    if fmt not in FORMATS:
        render([], [], fmt)  # the one sentence for a format it does not write
    columns, table = rows(store, form, all_reviewers, by)
    return Table(render(columns, table, fmt), len(table))
