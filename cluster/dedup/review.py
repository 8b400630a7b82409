"""Deciding grey-zone pairs: side by side in the terminal, or in a CSV file elsewhere.

The interactive loop takes its keypress reader and its printer as arguments,
so the command line passes `click.getchar`/`click.echo` and tests pass a
scripted list of keys. Each decision is written as soon as it is made (one
transaction each), so quitting half-way loses nothing.
"""

from __future__ import annotations

import csv
import textwrap
from pathlib import Path
from typing import Callable

from base.output import csv_text, unneutralise, write_file
from base.terminal import visible
from cluster.dedup.apply import FIELDS, DedupError, decide_pairs, pending_pairs, record_fields
from db.files import store_files
from db.store import Store

KEYS = {"s": "same", "d": "different", "k": "skip", "q": "quit"}
PROMPT = "[s]ame  [d]ifferent  s[k]ip  [q]uit > "


#: what a person sees of each record of a pair: the fields the CSV carries, the abstract
#: (trimmed) and the searches that found it
REVIEW_FIELDS = (*FIELDS, "abstract", "found by")
ABSTRACT_CHARS = 300


def review_fields(store: Store, record_id: int) -> dict[str, str]:
    """A record as the pair review shows it: `record_fields`, the abstract cut to
    ABSTRACT_CHARS at a word, and each source that found it or its duplicates."""
    out = record_fields(store, record_id)
    abstract = " ".join((store.get_record(record_id).abstract or "").split())
    out["abstract"] = textwrap.shorten(abstract, ABSTRACT_CHARS, placeholder=" ...")
    out["found by"] = "; ".join(found_by(store, record_id))
    return out


def found_by(store: Store, record_id: int) -> list[str]:
    """The sources of a record and of the records merged into it, each once:
    "database: Embase", "other: OpenAlex cited-by of #12"."""
    rows = store.db.execute(
        "SELECT role, service, strategy, seed_record_id FROM sources WHERE record_id = ? OR "
        "record_id IN (SELECT id FROM records WHERE duplicate_of = ?) ORDER BY id",
        [record_id, record_id]).fetchall()
    out = []
    for role, service, strategy, seed in rows:
        text = f"{role}: {service}" + (f" {strategy}" if strategy and strategy != service else "")
        text += f" of #{seed}" if seed is not None else ""
        if text not in out:
            out.append(text)
    return out


def side_by_side(left: dict[str, str], right: dict[str, str], *, width: int = 100,
                 header: tuple[str, str] = ("A", "B"),
                 fields: tuple[str, ...] = REVIEW_FIELDS) -> str:
    """Two records in two columns, field by field, wrapped so that no line is longer
    than `width` - 1 (a line that fills the terminal wraps on some); differing
    fields marked."""
    label_w = max(len(f) for f in fields)
    # label, space, mark, space, left column, " | ", right column
    col = max(12, (width - 1 - label_w - 6) // 2)
    lines = [f"{'':{label_w}}   {header[0]:<{col}} | {header[1]}"]
    for f in fields:
        a, b = left.get(f, ""), right.get(f, "")
        # shown before wrapping, so an escape sequence takes the columns it is shown in
        wa = textwrap.wrap(visible(a, keep=""), col) or [""]
        wb = textwrap.wrap(visible(b, keep=""), col) or [""]
        mark = " " if a.strip().lower() == b.strip().lower() else "*"
        for k in range(max(len(wa), len(wb))):
            name = f if k == 0 else ""
            lines.append(f"{name:<{label_w}} {mark if k == 0 else ' '} "
                         f"{(wa[k] if k < len(wa) else ''):<{col}} | "
                         f"{wb[k] if k < len(wb) else ''}".rstrip())
    return "\n".join(lines)


def review_session(store: Store, getchar: Callable[[], str], echo: Callable[[str], None], *,
                   reviewer: str | None = None, width: int = 100) -> dict[str, int]:
    """Show each pending pair and record the key pressed; returns counts per answer."""
    if reviewer is not None:
        store.require_reviewer(reviewer)
    pairs = pending_pairs(store)
    counts = {"same": 0, "different": 0, "skip": 0, "left": len(pairs)}
    if not pairs:
        echo("No pairs are waiting for review.")
        return counts
    for n, p in enumerate(pairs, 1):
        echo(f"\nPair {n} of {len(pairs)} (score {p.score:.2f}, {p.rule})")
        if p.reason:
            echo(f"Uncertain: {p.reason}")
        echo(side_by_side(review_fields(store, p.a), review_fields(store, p.b), width=width,
                          header=(f"record {p.a}", f"record {p.b}")))
        answer = None
        while answer is None:
            echo(PROMPT)
            answer = KEYS.get((getchar() or "").lower())
        if answer == "quit":
            break
        counts["left"] -= 1
        if answer == "skip":
            counts["skip"] += 1
            continue
        decide_pairs(store, [(p.a, p.b, answer)], reviewer=reviewer)
        counts[answer] += 1
    counts["left"] = len(pending_pairs(store))
    return counts


EXPORT_COLUMNS = ["a", "b", "score", "rule", "why", "decision"] + [
    f"{side}_{f}" for f in FIELDS for side in ("a", "b")]


def export_pairs(store: Store, path: str | Path) -> int:
    """Write the pending pairs to CSV with an empty `decision` column; returns how many."""
    pairs = pending_pairs(store)
    rows = []
    for p in pairs:
        ra, rb = record_fields(store, p.a), record_fields(store, p.b)
        row = {"a": p.a, "b": p.b, "score": f"{p.score:.3f}", "rule": p.rule, "why": p.reason,
               "decision": ""}
        for f in FIELDS:
            row[f"a_{f}"], row[f"b_{f}"] = ra[f], rb[f]
        rows.append(row)
    write_file(path, csv_text(EXPORT_COLUMNS, rows), store_files(store.path) if store.path else ())
    return len(pairs)


def import_pairs(store: Store, path: str | Path, *, reviewer: str | None = None) -> dict[str, int]:
    """Apply the decisions (same / different; blank or skip = undecided) of an exported CSV."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            # cells as the tool wrote them, before neutralising formulas
            rows = [{k: unneutralise(v) if isinstance(v, str) else v for k, v in r.items()}
                    for r in reader]
            columns = set(reader.fieldnames or ())
    except FileNotFoundError:
        raise DedupError(f"No file at {path}: give the CSV written by --export-pairs.") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DedupError(f"Cannot read {path} ({exc}): give the CSV written by --export-pairs.") from None
    if not {"a", "b", "decision"} <= columns:
        raise DedupError(f"{path} has no a, b and decision columns: give the CSV written by --export-pairs.")
    decisions, skipped = [], 0
    for line, row in enumerate(rows, 2):
        value = (row.get("decision") or "").strip().lower()
        if value in ("", "skip"):
            skipped += 1
            continue
        if value not in ("same", "different"):
            raise DedupError(f"{path} line {line}: decision {value!r} is not same, different or skip.")
        try:
            a, b = int(row["a"]), int(row["b"])
        except (TypeError, ValueError):
            raise DedupError(f"{path} line {line}: a and b must be record ids.") from None
        decisions.append((a, b, value))
    counts = decide_pairs(store, decisions, reviewer=reviewer)
    counts["skipped"] = skipped
    counts["left"] = len(pending_pairs(store))
    return counts
