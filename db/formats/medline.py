"""PubMed MEDLINE / .nbib tagged text, read with Biopython's `Bio.Medline`.

ERIC and other services write the same layout without PMIDs, so the record
identifier falls back to the service's own id (`OID`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from Bio import Medline

from db.formats.common import Labelled, Reading, Text, first, first_doi, make_record


def _doi(rec: dict) -> str | None:
    tagged = [v for v in rec.get("AID", []) + [rec.get("LID", "")] if "[doi]" in v]
    return first_doi([v.replace("[doi]", "") for v in tagged],
                     rec.get("AID", []), rec.get("LID", ""))


_PMID_LINE = re.compile(r"^PMID- ?(\d+)")
_FIRST_TAG = re.compile(r"^[A-Z][A-Z0-9]{1,3}\s*- ")


@dataclass
class _Marks:
    """What the line pass counts while Biopython reads the records."""

    pmid_lines: dict[str, int] = field(default_factory=dict)  # each PMID's first line
    n_pmid_lines: int = 0
    n_starts: int = 0  # records by their first tag after a blank line (files without PMIDs)


def _clean(lines: Iterable[str], marks: _Marks) -> Iterator[str]:
    """The lines Biopython reads, each with its newline but the last.

    A line of spaces between records must count as the empty line that ends one, and a
    PMID line always starts a record: without the blank line before it (a damaged or
    hand-edited file) Biopython would run two records into one.
    """
    previous: str | None = None
    blank = True  # the last line seen was empty: a tag after it starts a record

    def seen(line: str) -> None:
        nonlocal blank
        if not line.strip():
            blank = True
        elif blank and _FIRST_TAG.match(line):
            marks.n_starts += 1
            blank = False
        else:
            blank = False

    for lineno, line in enumerate(lines, 1):
        line = line.rstrip()
        m = _PMID_LINE.match(line)
        if m:
            marks.pmid_lines.setdefault(m.group(1), lineno)
            marks.n_pmid_lines += 1
            if previous:
                yield previous + "\n"
                seen(previous)
                previous = ""
        if previous is not None:
            yield previous + "\n"
            seen(previous)
        previous = line
    if previous:
        yield previous
    if previous is not None:
        seen(previous)


def read_medline(text: Text, name: str, reading: Reading) -> Iterator[Labelled]:
    marks = _Marks()
    read: set[str] = set()
    reading.marker = "record starts"
    for r in Medline.parse(_clean(text.split(), marks)):
        if not r:
            continue
        read.add(str(r.get("PMID") or "").strip())
        authors = r.get("FAU") or r.get("AU") or []
        yield make_record(
            title=r.get("TI") or r.get("BTI"), abstract=r.get("AB"), authors=authors,
            year=r.get("DP") or r.get("DEP"), journal=r.get("JT") or r.get("TA"),
            volume=r.get("VI"), issue=r.get("IP"), pages=r.get("PG"), doi=_doi(r),
            pmid=r.get("PMID"), pmcid=r.get("PMC"), language=r.get("LA") or [],
            pub_types=r.get("PT") or [], keywords=r.get("OT") or [],
            issn=first(r.get("IS"), r.get("ISSN")), source_id=first(r.get("PMID"), r.get("OID")),
            extra={"mesh": r["MH"]} if r.get("MH") else None,
        ), None
        reading.n_in_file = marks.n_pmid_lines or marks.n_starts
    if marks.pmid_lines:
        reading.n_in_file, reading.marker = marks.n_pmid_lines, "PMID lines"
        reading.lost.extend(f"PMID {pmid} (line {lineno})"
                            for pmid, lineno in marks.pmid_lines.items() if pmid not in read)
    else:
        # services that write no PMIDs (ERIC): a record starts with the first tag after a
        # blank line
        reading.n_in_file = marks.n_starts
