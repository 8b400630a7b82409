"""PubMed MEDLINE / .nbib tagged text, read with Biopython's `Bio.Medline`.

ERIC and other services write the same layout without PMIDs, so the record
identifier falls back to the service's own id (`OID`).
"""

from __future__ import annotations

import io
import re

from Bio import Medline

from db.formats.common import ReadResult, first, first_doi, make_record


def _starts(text: str) -> list[int]:
    """Line numbers where records start (the first tag after a blank line)."""
    starts, blank = [], True
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            blank = True
        elif blank and re.match(r"^[A-Z][A-Z0-9]{1,3}\s*- ", line):
            starts.append(lineno)
            blank = False
        else:
            blank = False
    return starts


def _doi(rec: dict) -> str | None:
    tagged = [v for v in rec.get("AID", []) + [rec.get("LID", "")] if "[doi]" in v]
    return first_doi([v.replace("[doi]", "") for v in tagged],
                     rec.get("AID", []), rec.get("LID", ""))


_PMID_LINE = re.compile(r"^PMID- ?(\d+)")


def read_medline(text: str, name: str) -> ReadResult:
    # a line of spaces between records must count as the empty line that ends one, and a
    # PMID line always starts a record: without the blank line before it (a damaged or
    # hand-edited file) Biopython would run two records into one
    lines: list[str] = []
    pmid_lines: dict[str, int] = {}
    n_pmid_lines = 0
    for lineno, line in enumerate(text.split("\n"), 1):
        line = line.rstrip()
        m = _PMID_LINE.match(line)
        if m:
            pmid_lines.setdefault(m.group(1), lineno)
            n_pmid_lines += 1
            if lines and lines[-1]:
                lines.append("")
        lines.append(line)
    clean = "\n".join(lines)
    recs = list(Medline.parse(io.StringIO(clean)))
    recs = [r for r in recs if r]
    records = []
    for r in recs:
        authors = r.get("FAU") or r.get("AU") or []
        records.append(make_record(
            title=r.get("TI") or r.get("BTI"), abstract=r.get("AB"), authors=authors,
            year=r.get("DP") or r.get("DEP"), journal=r.get("JT") or r.get("TA"),
            volume=r.get("VI"), issue=r.get("IP"), pages=r.get("PG"), doi=_doi(r),
            pmid=r.get("PMID"), pmcid=r.get("PMC"), language=r.get("LA") or [],
            pub_types=r.get("PT") or [], keywords=r.get("OT") or [],
            issn=first(r.get("IS"), r.get("ISSN")), source_id=first(r.get("PMID"), r.get("OID")),
            extra={"mesh": r["MH"]} if r.get("MH") else None,
        ))
    read = {str(r.get("PMID") or "").strip() for r in recs}
    lost = tuple(f"PMID {pmid} (line {lineno})" for pmid, lineno in pmid_lines.items()
                 if pmid not in read)
    if pmid_lines:
        return ReadResult("medline", tuple(records), (), n_in_file=n_pmid_lines,
                          marker="PMID lines", lost=lost)
    # services that write no PMIDs (ERIC): a record starts with the first tag after a blank line
    return ReadResult("medline", tuple(records), (), n_in_file=len(_starts(clean)),
                      marker="record starts")
