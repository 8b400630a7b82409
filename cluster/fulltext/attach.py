"""Step 3: attach the copies a team obtained by hand (a library, interlibrary loan, the
author), one file to one record, or a whole folder matched to the records.

A file is checked like a downloaded one (`check.check_file`), copied into the
store's full-text folder under its record id and SHA-256 (a temporary name
first, renamed once whole) and the record marked `retrieved` with source
`hand`. In a folder, each file is matched to a record at full text by, in
turn: a DOI or PMID in its name, the record's title as its name, the DOI in
the PDF's metadata or first pages, the record's title in the PDF's metadata
title or first-page text. A file matching no record, or more than one, is
named with why and left alone.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from base.errors import ClusterError
from base.record import Record, normalize_doi
from cluster.fulltext.check import Checked, NotFullText, check_file
from cluster.fulltext.fetch import file_name
from db.events import BY_HAND, FULL_TEXT
from db.state import retrievals, stage_records
from db.store import Store

#: files a folder is searched for
SUFFIXES = (".pdf", ".xml", ".nxml")
_DOI_IN_TEXT = re.compile(r"\b(10\.\d{4,9}/[^\s\"<>]+)", re.IGNORECASE)
_PMID_IN_NAME = re.compile(r"(?:pmid|pubmed)[\s_.-]*(\d{1,9})\b", re.IGNORECASE)
#: a title must be this long (letters and digits) to identify a record on its own
MIN_TITLE = 20


class AttachError(ClusterError):
    """A file cannot be attached; one sentence saying why and what to do."""


@dataclass(frozen=True)
class Attached:
    record_id: int
    source_file: str
    file: str          # its name in the full-text folder
    matched_by: str    # how the record was recognised ("given" for attach RECORD FILE)
    warning: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record_id, "source_file": self.source_file, "file": self.file,
                "matched_by": self.matched_by, "warning": self.warning}


@dataclass(frozen=True)
class FolderResult:
    attached: tuple[Attached, ...]
    unmatched: Mapping[str, str]   # file -> why it was left alone

    def to_dict(self) -> dict[str, Any]:
        return {"attached": [a.to_dict() for a in self.attached],
                "unmatched": dict(self.unmatched)}


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _keep(store: Store, folder: Path, record_id: int, path: Path, checked: Checked,
          matched_by: str, reviewer: str | None) -> Attached:
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 16), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    name = file_name(record_id, sha, checked.kind)
    target = folder / name
    if not target.exists():
        fd, tmp = tempfile.mkstemp(prefix=".attach-", suffix=".part", dir=folder)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    size = target.stat().st_size
    with store.transaction():
        store.log_event("fulltext", record_id=record_id, reviewer=reviewer, stage=FULL_TEXT,
                        value="retrieved", data={"source": BY_HAND, "file": name, "sha256": sha,
                                                 "bytes": size, "kind": checked.kind,
                                                 "original_name": path.name})
    warning = ("the PDF has no text layer (a scan?): it can be read, not searched"
               if checked.kind == "pdf" and not checked.has_text else None)
    return Attached(record_id, str(path), name, matched_by, warning)


def _check(path: Path) -> Checked:
    if not path.is_file():
        raise AttachError(f"{path} is not a file: give the path of a PDF or PMC XML file.")
    try:
        return check_file(path)
    except NotFullText as exc:
        raise AttachError(f"{path} is {exc}: attach the PDF of the report itself.") from None


def attach_file(store: Store, folder: Path, record_id: int, path: Path,
                reviewer: str | None = None) -> Attached:
    """Attach one file to one record (which must be at the full-text stage)."""
    if reviewer is not None:
        store.require_reviewer(reviewer)
    rid = store.canonical_id(record_id)
    if rid not in stage_records(store, FULL_TEXT):
        raise AttachError(f"Record {record_id} is not at the full-text stage (it has not "
                          f"passed title-abstract screening): there is no report to attach.")
    return _keep(store, folder, rid, path, _check(path), "given", reviewer)


def _title_key(record: Record) -> str | None:
    key = _squash(record.title or "")
    return key if len(key) >= MIN_TITLE else None


def _match_text(text: str, by_doi: Mapping[str, int], by_title: Mapping[str, int]
                ) -> tuple[set[int], str | None]:
    dois = {normalize_doi(m.rstrip(".,;)")) for m in _DOI_IN_TEXT.findall(text)}
    hits = {by_doi[d] for d in dois if d is not None and d in by_doi}
    if hits:
        return hits, "DOI"
    squashed = _squash(text)
    hits = {rid for key, rid in by_title.items() if key in squashed}
    return hits, "title" if hits else None


def match_file(path: Path, checked: Checked | None, records: Mapping[int, Record]
               ) -> tuple[set[int], str | None]:
    """The records a file may belong to, and how it was recognised."""
    by_doi = {r.doi.lower(): rid for rid, r in records.items() if r.doi}
    by_pmid = {r.pmid: rid for rid, r in records.items() if r.pmid}
    by_title = {k: rid for rid, r in records.items() if (k := _title_key(r))}
    stem = path.stem
    # a DOI in a file name has its "/" spelt as "_", "-" or nothing: compare squashed,
    # the longest DOI first so that 10.1/abc12 is not taken for 10.1/abc1
    name = _squash(stem)
    for doi, rid in sorted(by_doi.items(), key=lambda x: -len(x[0])):
        if len(_squash(doi)) >= 8 and _squash(doi) in name:
            return {rid}, "DOI in the file name"
    m = _PMID_IN_NAME.search(stem)
    if m and m.group(1) in by_pmid:
        return {by_pmid[m.group(1)]}, "PMID in the file name"
    if stem.isdigit() and stem in by_pmid:
        return {by_pmid[stem]}, "PMID as the file name"
    hits = {rid for key, rid in by_title.items() if key == name or (len(name) >= MIN_TITLE
                                                                    and name in key)}
    if hits:
        return hits, "title as the file name"
    if checked is None:
        return set(), None
    meta = " ".join(x for x in (checked.title, checked.subject) if x)
    for text, where in ((meta, "the PDF's metadata"), (checked.text, "the first pages")):
        found, how = _match_text(text, by_doi, by_title)
        if found:
            return found, f"{how} in {where}"
    return set(), None


def attach_folder(store: Store, folder: Path, source: Path, *, reviewer: str | None = None,
                  only_missing: bool = True) -> FolderResult:
    """Attach every PDF or XML in `source` that matches exactly one record at full text
    (with `only_missing`, one that has no copy in hand yet)."""
    if not source.is_dir():
        raise AttachError(f"{source} is not a folder: give the folder holding the PDFs.")
    if reviewer is not None:
        store.require_reviewer(reviewer)
    have = retrievals(store)
    ids = [rid for rid in stage_records(store, FULL_TEXT)
           if not (only_missing and have.get(rid) and have[rid].state == "retrieved")]
    records = {rid: store.get_record(rid) for rid in ids}
    attached: list[Attached] = []
    unmatched: dict[str, str] = {}
    taken: dict[int, str] = {}
    for path in sorted(p for p in source.iterdir()
                       if p.is_file() and p.suffix.lower() in SUFFIXES):
        try:
            checked = check_file(path)
        except NotFullText as exc:
            unmatched[path.name] = f"it is {exc}"
            continue
        hits, how = match_file(path, checked, records)
        if not hits:
            unmatched[path.name] = ("no record at full text matches its name, metadata or "
                                    "first page" + (" (or that record has a copy already)"
                                                    if only_missing else ""))
            continue
        if len(hits) > 1:
            unmatched[path.name] = (f"it matches {len(hits)} records "
                                    f"({', '.join(map(str, sorted(hits)))}) by {how}: attach it "
                                    f"with `cluster fulltext attach RECORD FILE`")
            continue
        rid = next(iter(hits))
        if rid in taken:
            unmatched[path.name] = f"record {rid} was matched to {taken[rid]} already"
            continue
        taken[rid] = path.name
        attached.append(_keep(store, folder, rid, path, checked, str(how), reviewer))
    return FolderResult(tuple(attached), unmatched)


