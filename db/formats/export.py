"""Export the store's records as RIS, BibTeX, CSV, JSON lines or ASReview CSV.

Decisions, exclusion reasons, notes and tags travel in fields reference
managers show (RIS `N1`/`KW`, BibTeX `note`/`keywords`, CSV columns); a tag
is a keyword `cluster tag: NAME`. CSV cells that a
spreadsheet would run as a formula are neutralised.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from base.errors import ClusterError
from base.output import csv_text
from base.record import Record
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


class ExportResult:
    """An export: its text in pieces, a batch of records at a time (`chunks()`, read once:
    write each piece as it comes and a large export is never held whole), or whole
    (`text`), and the number of records in it (known once the pieces are read)."""

    def __init__(self, fmt: str, pieces: Iterator[tuple[str, int]]):
        self.format = fmt
        self._pieces: Iterator[tuple[str, int]] | None = pieces  # (text, records in it)
        self._text: str | None = None
        self.counted = 0  # records in the pieces read so far

    def chunks(self) -> Iterator[str]:
        if self._pieces is None:
            raise ExportError("This export was already read.")
        pieces, self._pieces = self._pieces, None
        for text, n in pieces:
            self.counted += n
            yield text

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = "".join(self.chunks())
        return self._text

    @property
    def n_records(self) -> int:
        if self._pieces is not None:
            self.text  # noqa: B018  (reading it counts the records)
        return self.counted


#: records written per piece of an export
EXPORT_BATCH = 1000


def _one_line(text: str) -> str:
    # reasons and notes are typed by reviewers; a line break would end a RIS tag
    return " ".join(text.split())


def _rows(store: Store, stage: str, decision: str | None, include_duplicates: bool
          ) -> Iterator[list[dict]]:
    """The export rows, in batches of `EXPORT_BATCH`: the records are read as they are
    written, never all at once."""
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
    batch: list[tuple[int, Record, str]] = []
    for rid, record in store.records(include_duplicates=include_duplicates):
        state = states.get(rid, "undecided")
        if decision and state != decision and not (decision == "partial" and is_partial(state)):
            continue
        batch.append((rid, record, state))
        if len(batch) == EXPORT_BATCH:
            yield _batch_rows(store, stage, batch, reasons, notes, tags)
            batch = []
    if batch:
        yield _batch_rows(store, stage, batch, reasons, notes, tags)


def _batch_rows(store: Store, stage: str, batch: list[tuple[int, Record, str]],
                reasons: Mapping[int, list[str]], notes: Mapping[int, list[str]],
                tags: Mapping[int, Sequence[str]]) -> list[dict]:
    source_ids: dict[int, list[str]] = {}
    ids = [rid for rid, _, _ in batch]
    for rid, sid, service in store.conn.execute(
            f"SELECT record_id, source_record_id, service FROM sources WHERE record_id IN "
            f"({','.join('?' * len(ids))}) ORDER BY id", ids):
        if sid:
            source_ids.setdefault(rid, []).append(f"{service}:{sid}")
    out = []
    for rid, record, state in batch:
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


def _write_csv(rows: list[dict], columns: tuple[str, ...], header: bool = True) -> str:
    return csv_text(columns, (_csv_row(row) for row in rows), header_row=header)


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


#: format -> (the text of a batch of rows, given whether it is the first; what goes
#: between two batches' texts), so that the pieces joined are the text of all the rows
_WRITERS: dict[str, tuple[Callable[[list[dict], bool], str], str]] = {
    "ris": (lambda rows, first: write_ris(rows), "\n"),  # a blank line between records
    "bibtex": (lambda rows, first: write_bibtex(rows), "\n\n"),
    "csv": (lambda rows, first: _write_csv(rows, CSV_COLUMNS, header=first), ""),
    "asreview": (lambda rows, first: _write_csv(rows, ASREVIEW_COLUMNS, header=first), ""),
    "jsonl": (lambda rows, first: _write_jsonl(rows), ""),
}


def export_records(store: Store, fmt: str, *, stage: str = TITLE_ABSTRACT,
                   decision: str | None = None, include_duplicates: bool = False) -> ExportResult:
    """The records (canonical ones unless `include_duplicates`) in `fmt`, as pieces that
    read the store as they are taken (see `ExportResult`)."""
    if fmt not in _WRITERS:
        raise ExportError(f"Unknown export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}.")
    if stage not in STAGES:
        raise ExportError(f"Unknown stage {stage!r}: choose one of {', '.join(STAGES)}.")
    if decision is not None and decision not in DECISION_FILTERS:
        raise ExportError(f"Unknown decision {decision!r}: choose one of {', '.join(DECISION_FILTERS)}.")
    return ExportResult(fmt, _pieces(store, fmt, stage, decision, include_duplicates))


def _pieces(store: Store, fmt: str, stage: str, decision: str | None, include_duplicates: bool
            ) -> Iterator[tuple[str, int]]:
    write, between = _WRITERS[fmt]
    # one snapshot: records decided or imported while the file is written wait for the next
    with store.read_snapshot():
        keys: dict[int, str] = {}
        if fmt == "bibtex":
            # keys from every record of the store, so a subset export cites as the full one;
            # only the first author and the year make a key
            keys = citation_keys((rid, Record(authors=r.authors[:1], year=r.year))
                                 for rid, r in store.records(include_duplicates=True))
        first = True
        for rows in _rows(store, stage, decision, include_duplicates):
            if keys:
                rows = [{**row, "cite_key": keys[row["record_id"]]} for row in rows]
            text = write(rows, first)
            yield (text if first else between + text), len(rows)
            first = False
        if first:
            yield write([], True), 0  # no record: a CSV's header alone
