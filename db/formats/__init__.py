"""Reference import and export for the review store.

`read_file` turns one exported file into records (pure: no store); the format
is detected from the content, never from the file name. `import_files` writes
each file as one `searches` row plus its records and provenance, in one
transaction per file; `export_records` writes the store back out.
"""

from __future__ import annotations

import hashlib
import re
import stat
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from db.events import ROLES, TITLE_ABSTRACT
from db.formats.bibtex import read_bibtex
from db.formats.common import FileFormatError, ReadResult, decode
from db.formats.endnote_xml import read_endnote_xml
from db.formats.export import DECISION_FILTERS, EXPORT_FORMATS, ExportResult, export_records
from db.formats.medline import read_medline
from db.formats.ris import read_ris, read_wos
from db.formats.tabular import is_id_list, looks_tabular, read_csv, read_id_list

if TYPE_CHECKING:  # reading a file needs no SQLite layer
    from db.searches import SearchDetails
    from db.store import Store

__all__ = [
    "DECISION_FILTERS", "EXPORT_FORMATS", "ExportResult", "FileFormatError", "ImportResult",
    "ParsedFile", "ReadResult", "detect_format", "export_records",
    "import_files", "read_file",
]

LABEL_STAGE = TITLE_ABSTRACT

_READERS: dict[str, Callable[[str, str], ReadResult]] = {
    "endnote-xml": read_endnote_xml, "medline": read_medline, "ris": read_ris,
    "wos": read_wos, "bibtex": read_bibtex, "id-list": read_id_list, "csv": read_csv,
}

_FORMAT_HELP = ("RIS, BibTeX, PubMed MEDLINE/.nbib, EndNote XML, Web of Science plain text, "
                "CSV/TSV or a list of PMIDs/DOIs")


def detect_format(text: str, name: str) -> str:
    """The format of a decoded file, from its content alone."""
    body = text.strip()
    if not body:
        raise FileFormatError(f"{name} is empty: there is nothing to import.")
    if body.startswith("<"):
        if re.match(r"<\?xml|<xml\b|<records\b", body):
            return "endnote-xml"
        raise FileFormatError(f"{name} looks like HTML or other markup, not a reference export: "
                              f"export the records as {_FORMAT_HELP}.")
    if re.search(r"^(?:PMID- ?\d|OWN - )", text, re.M):
        return "medline"
    if re.search(r"^TY {1,2}-", text, re.M):
        return "ris"
    if re.search(r"^PT [A-Z]\s*$", text, re.M) and re.search(r"^ER\s*$", text, re.M):
        return "wos"
    if re.search(r"^\s*@\s*[A-Za-z]+\s*[{(]", text, re.M):
        return "bibtex"
    if is_id_list(text):
        return "id-list"
    if looks_tabular(text):
        return "csv"
    line = next(ln for ln in text.split("\n") if ln.strip())
    raise FileFormatError(f"{name} line 1 ({line.strip()[:60]!r}) is not in a format cluster can "
                          f"read: export the records as {_FORMAT_HELP}.")


@dataclass(frozen=True)
class ParsedFile:
    """One file read and parsed, not yet written anywhere."""

    path: Path
    sha256: str
    result: ReadResult

    @property
    def file_name(self) -> str:
        return self.path.name


def read_file(path: str | Path) -> ParsedFile:
    """Read, decode, detect and parse one file; raises `FileFormatError` naming it."""
    p = Path(path)
    name = p.name
    if not p.exists():
        raise FileFormatError(f"{p} does not exist: check the path and try again.")
    if p.is_dir():
        raise FileFormatError(f"{p} is a folder: give the files inside it instead.")
    try:
        info = p.stat()
    except OSError as exc:
        raise FileFormatError(f"{p} cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(info.st_mode):
        # a pipe would block for ever and a device (/dev/zero) never ends
        raise FileFormatError(f"{p} is not a regular file (a pipe, device or socket): save the "
                              "export as a file and import that.")
    if info.st_size > MAX_FILE_BYTES:
        raise FileFormatError(f"{p} is {info.st_size / 2**30:.1f} GB, more than the "
                              f"{MAX_FILE_BYTES // 2**30} GB one import can take: split the "
                              "export into smaller files.")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise FileFormatError(f"{p} cannot be read ({exc.strerror}).") from None
    sha256 = hashlib.sha256(data).hexdigest()
    text = decode(data, name)
    del data  # a large file is held once as text, not also as bytes, while it is parsed
    fmt = detect_format(text, name)
    try:
        result = _READERS[fmt](text, name)
    except FileFormatError:
        raise
    except Exception as exc:  # a third-party parser's own error becomes one sentence
        raise FileFormatError(f"{name} could not be read as {fmt} ({exc}).") from None
    del text
    shortfall = result.shortfall(name)
    result = replace(result, n_in_file=result.held,
                     warnings=result.warnings + ((shortfall,) if shortfall else ()))
    result = _capped(result, name)
    empty = [i for i, r in enumerate(result.records, 1)
             if not (r.title or r.authors or r.abstract or r.ids())]
    if empty:
        # a record with no title, author, abstract or identifier cannot be screened or matched
        keep = [i - 1 for i in range(1, len(result.records) + 1) if i not in set(empty)]
        shown = ", ".join(map(str, empty[:20])) + (" ..." if len(empty) > 20 else "")
        result = replace(
            result, records=tuple(result.records[i] for i in keep),
            labels=tuple(result.labels[i] for i in keep) if result.labels else (),
            warnings=result.warnings + (f"{name}: record(s) {shown} have no title, author, abstract "
                                        "or identifier and were not imported.",))
    if not result.records:
        raise FileFormatError(f"{name} was recognised as {fmt} but holds no records: "
                              "check that the export finished.")
    return ParsedFile(p, sha256, result)


#: the largest file one import reads (it is held in memory, decoded, at several bytes a byte)
MAX_FILE_BYTES = 2 * 2**30
#: the longest field kept, in characters; the longest real abstracts are some 10,000, so a
#: longer field is a damaged export (a quote never closed, a file pasted into a cell)
FIELD_CAPS = {"abstract": 1_000_000, "title": 10_000}
OTHER_FIELD_CAP = 10_000
MAX_LIST_ITEMS = 10_000  # authors, keywords, languages or types of one record


def _capped(result: ReadResult, name: str) -> ReadResult:
    """Fields longer than their cap cut to it, each cut named in a warning."""
    records = list(result.records)
    cuts: list[str] = []
    for i, rec in enumerate(records):
        changes: dict[str, Any] = {}
        for f in fields(rec):
            val = getattr(rec, f.name)
            cap = FIELD_CAPS.get(f.name, OTHER_FIELD_CAP)
            if isinstance(val, str) and len(val) > cap:
                changes[f.name] = val[:cap]
                cuts.append(f"record {i + 1}'s {f.name} ({len(val):,} characters, {cap:,} kept)")
            elif isinstance(val, tuple) and val and all(isinstance(v, str) for v in val):
                items = tuple(v[:cap] for v in val[:MAX_LIST_ITEMS])
                if items != val:
                    changes[f.name] = items
                    cuts.append(f"record {i + 1}'s {f.name} (cut to {MAX_LIST_ITEMS:,} items of "
                                f"at most {cap:,} characters)")
        if changes:
            records[i] = replace(rec, **changes)
    if not cuts:
        return result
    shown = "; ".join(cuts[:5]) + (f"; and {len(cuts) - 5} more" if len(cuts) > 5 else "")
    return replace(result, records=tuple(records), warnings=result.warnings + (
        f"{name}: fields too long for a reference were cut: {shown}.",))


@dataclass(frozen=True)
class ImportResult:
    """What one imported file did to the store."""

    file_name: str
    format: str
    sha256: str
    n_read: int
    n_in_file: int
    n_added: int
    n_labels: int
    search_id: int | None
    already_imported: bool
    warnings: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "warnings": list(self.warnings)}


def _insert(store: Store, table: str, row: dict) -> int:
    """One plain INSERT: the same row `Store.add_record`/`add_source` write, without
    sqlite-utils' per-call table introspection (a third of the cost of a large import)."""
    cols = list(row)
    cur = store.db.conn.execute(
        f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
        [row[c] for c in cols])
    if cur.lastrowid is None:
        from db.store import StoreError  # only reached when writing; reading needs no SQLite layer
        raise StoreError(f"The store did not return the id of the new row in {table}.")
    return cur.lastrowid


def _already_imported(store: Store, sha256: str) -> bool:
    row = store.db.execute(
        "SELECT 1 FROM searches WHERE kind = 'import' AND sha256 = ? AND status = 'done' LIMIT 1",
        [sha256]).fetchone()
    return row is not None


#: records written between two progress reports of an import (all inside the file's
#: one transaction: a failure at any record leaves nothing of the file written)
IMPORT_BATCH = 5000


def import_files(store: Store, paths: Sequence[str | Path], *, role: str,
                 source: str | None = None, labels_reviewer: str | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 details: SearchDetails | None = None) -> tuple[ImportResult, ...]:
    """Import files into the store, one `searches` row and one transaction per file.

    Every file is parsed before anything is written, so a bad file among
    several leaves the store untouched. Records are never merged here.
    `progress(done, total)` is called with the records of all the files written
    so far, after every `IMPORT_BATCH` records and at the end of each file.
    `details` (platform, date searched, strategy, limits: `db.searches.check_details`)
    are the PRISMA-S items of the search that produced the files.
    """
    if role not in ROLES:
        raise FileFormatError(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
    if not paths:
        raise FileFormatError("No files given: name at least one file to import.")
    parsed = [read_file(p) for p in paths]
    if labels_reviewer is not None and any(pf.result.labels for pf in parsed):
        store.require_reviewer(labels_reviewer)
    total = sum(len(pf.result.records) for pf in parsed)
    results = []
    done = 0
    for pf in parsed:

        def step(n: int, before: int = done) -> None:
            if progress is not None:
                progress(before + n, total)

        results.append(_import_one(store, pf, role=role, service=source or pf.path.stem,
                                   labels_reviewer=labels_reviewer, details=details,
                                   progress=step))
        done += len(pf.result.records)
        step(0, done)
    return tuple(results)


def _import_one(store: Store, pf: ParsedFile, *, role: str, service: str,
                labels_reviewer: str | None, details: SearchDetails | None,
                progress: Callable[[int], None]) -> ImportResult:
    from db.store import now, record_to_row

    res = pf.result
    warnings = list(res.warnings)
    n_labels = sum(1 for lab in res.labels if lab)
    if n_labels and labels_reviewer is None:
        warnings.append(f"{pf.file_name}: {n_labels} screening labels were not kept; "
                        "import again with --labels-reviewer NAME to keep them as decisions.")
    with store.transaction():
        # checked under the write lock, so two imports of one file cannot both land
        if _already_imported(store, pf.sha256):
            return ImportResult(pf.file_name, res.format, pf.sha256, len(res.records),
                                res.held, 0, 0, None, True, ())
        params: dict[str, Any] = {"labels_reviewer": labels_reviewer} if labels_reviewer else {}
        given = details.given() if details is not None else {}
        params.update({k: given[k] for k in ("platform", "searched") if k in given})
        sid = store.start_search(kind="import", service=service, role=role,
                                 file_name=pf.file_name, sha256=pf.sha256, format=res.format,
                                 params=params or None, query=given.get("query"),
                                 limits={"limits": given["limits"]} if "limits" in given else None)
        kept = 0
        for i, record in enumerate(res.records):
            rid = _insert(store, "records", {**record_to_row(record), "created_at": now()})
            _insert(store, "sources", {
                "record_id": rid, "search_id": sid, "role": role, "service": service,
                "rank": i + 1, "source_record_id": record.source_id, "created_at": now()})
            label = res.labels[i] if res.labels else None
            if label and labels_reviewer is not None:
                store.log_event("decision", record_id=rid, reviewer=labels_reviewer,
                                stage=LABEL_STAGE, value=label,
                                data={"imported_from": pf.file_name, "search_id": sid})
                kept += 1
            if (i + 1) % IMPORT_BATCH == 0:
                progress(i + 1)
        # found: what the file holds by its own markers; kept: what could be read from it
        store.finish_search(sid, n_found=res.held, n_kept=len(res.records),
                            n_added=len(res.records), notes="\n".join(warnings) or None)
    return ImportResult(pf.file_name, res.format, pf.sha256, len(res.records), res.held,
                        len(res.records), kept, sid, False, tuple(warnings))
