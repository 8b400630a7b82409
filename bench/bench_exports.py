"""How well other programs read the RIS and BibTeX exports of the real corpus.

Imports every file in ../shared/fixtures/files (RIS, MEDLINE, BibTeX, EndNote
XML, CSV) into one new store through the CLI, exports it as BibTeX and RIS,
and prints:

- pybtex's warnings on the BibTeX (non-strict mode, counted);
- RIS lines outside the grammar (tag lines `XX  - value`, `ER  - ` closing
  each record, blank lines only between records);
- fields that differ from the store when each export is read back (title,
  authors, year, journal, volume, issue, pages, DOI, PMID), per field.

Counts, not pass/fail (tests/test_exports_read_back.py asserts them).

On the corpus of 59 files (1,695 records), before and after the writers were
fixed (pybtex 0.26.1, rispy 0.10.0):

    pybtex warnings                     15 -> 0  (14 "Too many commas", 1 repeated key)
    BibTeX entries pybtex reads      1,694 -> 1,695
    BibTeX read-back mismatches        912 -> 0  (pages 862, DOI 25, authors 24, missing 1)
    RIS lines outside the grammar    1,695 -> 0  (a "1.", "2." line before each record)
    RIS read-back mismatches            23 -> 0  (authors: several people in one AU line)

Run from the repository root: python bench/bench_exports.py
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from click.testing import CliRunner  # noqa: E402

from cli import cli  # noqa: E402
from db.store import open_store  # noqa: E402
from tests.export_readers import (  # noqa: E402
    mismatch_examples, mismatches, read_bibtex_pybtex, read_ris_lines, ris_grammar_errors,
)

FILES = ROOT.parent / "shared" / "fixtures" / "files"


def _cli(*args: str) -> None:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if result.exit_code:
        raise SystemExit(f"cluster {args[0]} failed: {result.output}")


def main() -> None:
    if not (FILES / "index.json").exists():
        print("../shared/fixtures/files is absent: nothing to measure")
        return
    paths = [str(FILES / e["path"]) for e in json.loads((FILES / "index.json").read_text())]
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "review.db")
        t = time.perf_counter()
        _cli("import", "--db", db, "-q", *paths)
        bib, ris = Path(tmp) / "all.bib", Path(tmp) / "all.ris"
        _cli("export", "--db", db, "--format", "bibtex", "-o", str(bib))
        _cli("export", "--db", db, "--format", "ris", "-o", str(ris))
        store = open_store(db)
        records = dict(store.records())
        store.close()
        bib_text, ris_text = bib.read_text(encoding="utf-8"), ris.read_text(encoding="utf-8")
        elapsed = time.perf_counter() - t

    entries, complaints = read_bibtex_pybtex(bib_text, strict=False)
    bib_bad = mismatches(records, entries)
    ris_errors = ris_grammar_errors(ris_text)
    ris_read = read_ris_lines(ris_text)
    ris_bad = mismatches(records, ris_read)

    print(f"{len(paths)} files, {len(records)} records (import + both exports {elapsed:.1f} s)")
    print(f"BibTeX: {len(entries)} entries read by pybtex, {len(complaints)} pybtex warnings")
    for kind, n in Counter(c.split(":")[0][:60] for c in complaints).most_common(5):
        print(f"    {n:5d}  {kind}")
    print(f"BibTeX read-back mismatches: {sum(bib_bad.values())} {dict(sorted(bib_bad.items()))}")
    for ex in mismatch_examples(records, entries, 4):
        print(f"    {ex[:150]}")
    print(f"RIS: {len(ris_read)} records, {len(ris_errors)} lines outside the grammar")
    for err in ris_errors[:3]:
        print(f"    {err}")
    print(f"RIS read-back mismatches: {sum(ris_bad.values())} {dict(sorted(ris_bad.items()))}")
    for ex in mismatch_examples(records, ris_read, 4):
        print(f"    {ex[:150]}")
    doi_lines = [line for line in bib_text.splitlines() if line.strip().startswith("doi")]
    escaped = sum(1 for line in doi_lines if "\\_" in line)
    print(f"BibTeX: '-{{}}-' written {bib_text.count('-{}-')} times; DOIs with '\\_': {escaped}")


if __name__ == "__main__":
    main()
