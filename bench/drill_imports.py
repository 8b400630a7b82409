"""Damaged-import drill: mutate every shared import file many times and import each copy.

Each mutation (truncation at a random point, a damaged record marker line, a
deleted line, byte flips, byte insertions) is imported through the `cluster
import` command into a fresh store. An import ends in one of four ways:

- a traceback (any exception other than the command's own one-sentence error);
- a clean error (exit 1, one `Error:` line);
- a silent loss: fewer records read than the file holds by its own markers
  (RIS `TY`/`ER`, MEDLINE `PMID-`, BibTeX `@type{`, EndNote `<record>`, CSV
  rows), and no warning saying records were lost;
- otherwise fine (every record read, or the shortfall named in a warning).

The marker counts here are the drill's own, written independently of the
readers, so a reader that miscounts cannot hide its own losses.

    python bench/drill_imports.py [--per-file 12] [--seed 1]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cli import cli  # noqa: E402

FILES = ROOT.parent / "shared" / "fixtures" / "files"
MARKER_LINE = {
    "ris": re.compile(rb"^TY {1,2}-", re.M), "medline": re.compile(rb"^PMID- ?\d", re.M),
    "bibtex": re.compile(rb"^\s*@\s*[A-Za-z]+\s*[{(]", re.M), "endnote-xml": re.compile(rb"<record>"),
}


def fixture_files() -> list[Path]:
    return sorted(p for p in FILES.rglob("*") if p.is_file() and p.parent != FILES)


def _text(data: bytes) -> str:
    for enc in ("utf-8-sig", "cp1252", "latin-1"):
        try:
            return data.decode(enc).replace("\r\n", "\n").replace("\r", "\n")
        except UnicodeDecodeError:
            continue
    return ""


def markers(data: bytes, fmt: str) -> int | None:
    """Records the file holds by its format's own markers (None: the drill does not count it)."""
    text = _text(data)
    if fmt == "ris":
        # a record is closed by ER; a TY without ER before the next TY or the end still counts
        n, open_record, body = 0, False, False
        for line in text.split("\n"):
            if re.match(r"^TY {1,2}-", line):
                n += 1
                open_record, body = True, False
            elif re.match(r"^ER {1,2}-", line) or line.strip() == "ER":
                if not open_record and body:
                    n += 1  # tagged lines closed by ER with no TY: a record whose TY line is damaged
                open_record, body = False, False
            elif re.match(r"^[A-Z][A-Z0-9]{1,3} {1,2}- ", line):
                body = True
        return n
    if fmt == "medline":
        return sum(1 for line in text.split("\n") if re.match(r"^PMID- ?\d", line)) or None
    if fmt == "bibtex":
        return sum(1 for m in re.finditer(r"^\s*@\s*([A-Za-z]+)\s*[{(]", text, re.M)
                   if m.group(1).lower() not in ("comment", "string", "preamble"))
    if fmt == "endnote-xml":
        return text.count("<record>")
    return None


def csv_rows(data: bytes) -> list[int]:
    """The 0-based line on which each data row of an undamaged CSV/TSV file starts."""
    text = _text(data)
    lines = text.split("\n")
    head = next((i for i, ln in enumerate(lines) if "title" in ln.lower()), 0)
    delim = max(("\t", ";", ","), key=lambda d: lines[head].count(d))
    reader = csv.reader(io.StringIO("\n".join(lines[head:])), delimiter=delim)
    starts, line = [], head
    for i, row in enumerate(reader):
        if i and len(row) > 1 and any(c.strip() for c in row):
            starts.append(line)
        line = head + reader.line_num
    return starts


def csv_held(original: bytes, kind: str, mutated: bytes) -> int | None:
    """Rows a mutated CSV still holds: all of them after flips and insertions (which damage
    but remove nothing), those begun before the cut after a truncation."""
    starts = csv_rows(original)
    if kind in ("flip", "insert"):
        return len(starts)
    if kind == "truncate":
        lines = _text(mutated).split("\n")
        last = len(lines) - 1
        complete = sum(1 for s in starts if s < last)
        partial = any(s == last for s in starts) and any(d in lines[last] for d in ",;\t")
        return complete + int(partial)
    return None  # a deleted or damaged line may or may not have been a whole row


def mutate(data: bytes, rng: random.Random, fmt: str) -> tuple[str, bytes]:
    kind = rng.choice(["truncate", "truncate", "marker", "delete-line", "flip", "insert"])
    if kind == "truncate":
        return kind, data[:rng.randrange(1, max(2, len(data)))]
    if kind in ("marker", "delete-line"):
        lines = data.split(b"\n")
        pattern = MARKER_LINE.get(fmt)
        candidates = [i for i, ln in enumerate(lines) if pattern and pattern.match(ln)]
        if kind == "delete-line" or not candidates:
            candidates = candidates or list(range(len(lines)))
            i = rng.choice(candidates)
            if kind == "delete-line":
                del lines[i]
                return kind, b"\n".join(lines)
        i = rng.choice(candidates)
        line = bytearray(lines[i])
        j = rng.randrange(0, min(len(line), 4) or 1)
        if line:
            line[j] = rng.choice(b"XZ?# \t")
        lines[i] = bytes(line)
        return kind, b"\n".join(lines)
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        pos = rng.randrange(0, len(buf) or 1)
        if kind == "flip" and buf:
            buf[pos] = rng.randrange(256)
        else:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
    return kind, bytes(buf)


FORMAT_OF_FOLDER = {"ris": "ris", "medline": "medline", "bibtex": "bibtex",
                    "endnote-xml": "endnote-xml", "csv": "csv"}

LOSS_WORDS = re.compile(r"not recovered|could not be (read|parsed)|not imported|holds \d+ record")


def run(per_file: int, seed: int) -> dict:
    rng = random.Random(seed)
    tally: Counter[str] = Counter()
    examples: dict[str, list[str]] = {"traceback": [], "silent loss": []}
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        for path in fixture_files():
            original = path.read_bytes()
            folder_fmt = FORMAT_OF_FOLDER.get(path.parent.name, path.parent.name)
            for k in range(per_file):
                kind, data = mutate(original, rng, folder_fmt)
                tally["tried"] += 1
                f = tmpdir / f"{k}-{path.name}"
                f.write_bytes(data)
                db = tmpdir / f"{k}-{path.stem}.db"
                res = runner.invoke(cli, ["import", str(f), "--db", str(db), "--json", "--quiet"])
                f.unlink()
                for extra in ("", "-wal", "-shm"):
                    Path(f"{db}{extra}").unlink(missing_ok=True)
                label = f"{path.name} ({kind})"
                if res.exception is not None and not isinstance(res.exception, SystemExit):
                    tally["traceback"] += 1
                    examples["traceback"].append(f"{label}: {type(res.exception).__name__}: "
                                                 f"{str(res.exception)[:100]}")
                    continue
                if res.exit_code != 0:
                    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
                    clean = len(lines) == 1 and lines[0].startswith("Error: ")
                    tally["clean error" if clean else "unclean error"] += 1
                    continue
                (result,) = json.loads(res.stdout)
                fmt = result["format"]
                held = (csv_held(original, kind, data) if fmt in ("csv", "tsv")
                        else markers(data, fmt))
                n_read = result["n_read"]
                warned = any(LOSS_WORDS.search(w) for w in result["warnings"])
                if held is not None and n_read < held:
                    if warned:
                        tally["warned loss"] += 1
                    else:
                        tally["silent loss"] += 1
                        examples["silent loss"].append(f"{label}: holds {held}, read {n_read}")
                else:
                    tally["imported"] += 1
    return {"tally": tally, "examples": examples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-file", type=int, default=12, help="mutations per shared file")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--examples", type=int, default=8, help="examples shown per kind of failure")
    args = ap.parse_args()
    if not FILES.is_dir():
        sys.exit(f"No shared import files at {FILES.relative_to(ROOT.parent)}: nothing to drill.")
    start = time.perf_counter()
    out = run(args.per_file, args.seed)
    t = out["tally"]
    print(f"files tried: {t['tried']} ({len(fixture_files())} shared files x {args.per_file} "
          f"mutations, seed {args.seed}, {time.perf_counter() - start:.0f} s)")
    for key in ("traceback", "silent loss", "warned loss", "clean error", "unclean error", "imported"):
        print(f"{key}: {t[key]}")
    for key, items in out["examples"].items():
        for line in items[:args.examples]:
            print(f"  {key}: {line}")


if __name__ == "__main__":
    main()
