"""Export the store's records as RIS, BibTeX, CSV, JSON lines or ASReview CSV.

Decisions, exclusion reasons, notes and tags travel in fields reference
managers show (RIS `N1`/`KW`, BibTeX `note`/`keywords`, CSV columns); a tag
is a keyword `cluster tag: NAME`. CSV cells that a
spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from base.errors import ClusterError
from base.output import csv_text
from db.events import STAGES, TITLE_ABSTRACT
from db.formats.bibtex import citation_keys, write_bibtex
from db.formats.ris import write_ris

if TYPE_CHECKING:
    from db.store import Store

EXPORT_FORMATS = ("ris", "bibtex", "csv", "jsonl", "asreview")
#: what `--decision` selects: final decisions, open conflicts, records only some of
#: their reviewers have decided ("1 of 2 reviewers: include"), and the rest
DECISION_FILTERS = ("include", "exclude", "conflict", "partial", "undecided")


class ExportError(ClusterError):
    """An export request that cannot be met."""


@dataclass(frozen=True)
class ExportResult:
    format: str
    text: str
    n_records: int


def _one_line(text: str) -> str:
    # reasons and notes are typed by reviewers; a line break would end a RIS tag
    return " ".join(text.split())


def _rows(store: Store, stage: str, decision: str | None, include_duplicates: bool) -> list[dict]:
    # here, not at the top: reading a reference file must not load the SQLite layer
    from db.state import current_decisions, is_partial, standing_events
    from db.tags import record_tags

    states = current_decisions(store, stage)
    tags = record_tags(store)
    reasons: dict[int, list[str]] = {}
    notes: dict[int, list[str]] = {}
    for ev in standing_events(store, "kind IN ('decision', 'resolution') AND stage = ? "
                              "AND record_id IS NOT NULL", [stage]):
        who = ev["reviewer"] or ev["kind"]
        if ev["reason"]:
            reasons.setdefault(ev["record_id"], [])
            if _one_line(ev["reason"]) not in reasons[ev["record_id"]]:
                reasons[ev["record_id"]].append(_one_line(ev["reason"]))
        if ev["note"]:
            notes.setdefault(ev["record_id"], []).append(f"{who}: {_one_line(ev['note'])}")
    for ev in standing_events(store, "kind = 'note' AND record_id IS NOT NULL"):
        if ev["note"]:
            notes.setdefault(ev["record_id"], []).append(
                f"{ev['reviewer'] or 'note'}: {_one_line(ev['note'])}")
    source_ids: dict[int, list[str]] = {}
    for rid, sid, service in store.conn.execute(
            "SELECT record_id, source_record_id, service FROM sources ORDER BY id"):
        if sid:
            source_ids.setdefault(rid, []).append(f"{service}:{sid}")
    out = []
    for rid, record in store.records(include_duplicates=include_duplicates):
        state = states.get(rid, "undecided")
        if decision and state != decision and not (decision == "partial" and is_partial(state)):
            continue
        rs, ns = reasons.get(rid, []), notes.get(rid, [])
        kw = [f"cluster {stage} decision: {state}"] if state != "undecided" else []
        kw += [f"cluster exclusion reason: {r}" for r in rs]
        kw += [f"cluster tag: {t}" for t in tags.get(rid, ())]
        note_lines = []
        if state != "undecided":
            line = f"cluster {stage} decision: {state}"
            if rs:
                line += f" (reasons: {'; '.join(rs)})"
            note_lines.append(line)
        note_lines += [f"cluster note: {n}" for n in ns]
        out.append({"record_id": rid, "record": record, "decision": state, "reasons": rs,
                    "notes": note_lines, "note_texts": ns, "keywords": kw,
                    "tags": list(tags.get(rid, ())), "source_ids": source_ids.get(rid, [])})
    return out


CSV_COLUMNS = ("record_id", "title", "abstract", "authors", "year", "journal", "volume", "issue",
               "pages", "doi", "pmid", "pmcid", "issn", "url", "language", "pub_types", "keywords",
               "decision", "reasons", "notes", "source_ids", "tags")
ASREVIEW_COLUMNS = ("record_id", "title", "abstract", "authors", "year", "doi", "pmid", "journal",
                    "keywords", "included")


def _csv_row(row: dict) -> dict[str, Any]:
    r = row["record"]
    return {
        "record_id": row["record_id"], "title": r.title, "abstract": r.abstract,
        "authors": "; ".join(r.authors), "year": r.year, "journal": r.journal, "volume": r.volume,
        "issue": r.issue, "pages": r.pages, "doi": r.doi, "pmid": r.pmid, "pmcid": r.pmcid,
        "issn": r.issn, "url": r.url, "language": "; ".join(r.language),
        "pub_types": "; ".join(r.pub_types), "keywords": "; ".join(r.keywords),
        "decision": row["decision"], "reasons": "; ".join(row["reasons"]),
        "notes": " | ".join(row["note_texts"]), "source_ids": "; ".join(row["source_ids"]),
        "tags": "; ".join(row["tags"]),
        # ASReview reads a label as settled: only final decisions are labels
        "included": {"include": 1, "exclude": 0, "excluded at title-abstract": 0}.get(
            row["decision"], ""),
    }


def _write_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    return csv_text(columns, (_csv_row(row) for row in rows))


def _write_jsonl(rows: list[dict]) -> str:
    lines = []
    for row in rows:
        r = row["record"]
        obj = {"record_id": row["record_id"], "title": r.title, "abstract": r.abstract,
               "authors": list(r.authors), "year": r.year, "journal": r.journal,
               "volume": r.volume, "issue": r.issue, "pages": r.pages, "doi": r.doi,
               "pmid": r.pmid, "pmcid": r.pmcid, "openalex": r.openalex, "issn": r.issn,
               "url": r.url, "language": list(r.language), "pub_types": list(r.pub_types),
               "keywords": list(r.keywords), "needs_metadata": r.needs_metadata,
               "decision": row["decision"], "reasons": row["reasons"],
               "notes": row["note_texts"], "source_ids": row["source_ids"], "tags": row["tags"]}
        lines.append(json.dumps(obj, ensure_ascii=False))
    return "".join(line + "\n" for line in lines)


_WRITERS: dict[str, Callable[[list[dict]], str]] = {
    "ris": write_ris,
    "bibtex": write_bibtex,
    "csv": lambda rows: _write_csv(rows, CSV_COLUMNS),
    "asreview": lambda rows: _write_csv(rows, ASREVIEW_COLUMNS),
    "jsonl": _write_jsonl,
}


def export_records(store: Store, fmt: str, *, stage: str = TITLE_ABSTRACT,
                   decision: str | None = None, include_duplicates: bool = False) -> ExportResult:
    """The records (canonical ones unless `include_duplicates`) as text in `fmt`."""
    if fmt not in _WRITERS:
        raise ExportError(f"Unknown export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}.")
    if stage not in STAGES:
        raise ExportError(f"Unknown stage {stage!r}: choose one of {', '.join(STAGES)}.")
    if decision is not None and decision not in DECISION_FILTERS:
        raise ExportError(f"Unknown decision {decision!r}: choose one of {', '.join(DECISION_FILTERS)}.")
    rows = _rows(store, stage, decision, include_duplicates)
    if fmt == "bibtex":
        # keys from every record of the store, so a subset export cites as the full one
        keys = citation_keys(store.records(include_duplicates=True))
        rows = [{**row, "cite_key": keys[row["record_id"]]} for row in rows]
    return ExportResult(fmt, _WRITERS[fmt](rows), len(rows))
