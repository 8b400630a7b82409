"""Readers of the RIS and BibTeX exports that share no code with the writers.

BibTeX is read by pybtex (the writer uses bibtexparser), RIS by a line
grammar written here (the writer uses rispy). Each exported record is compared
field by field with the store it came from; `bench/bench_exports.py` prints
the same counts for the whole corpus.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import pybtex.errors
from pybtex.database import Person, parse_string

from base.record import Record

# RIS: every line is a tag line "XX  - value"; a record opens with TY and ends with "ER  - "
RIS_TAG_LINE = re.compile(r"^([A-Z][A-Z0-9])  - (.*)$")
COMPARED = ("title", "authors", "year", "journal", "volume", "issue", "pages", "doi", "pmid")


@dataclass
class ReadBack:
    """One exported record as another program sees it."""

    record_id: int | None
    fields: dict[str, str | None]
    authors: list[str] = field(default_factory=list)
    # names read as something other than one person (a list in one name, a
    # given name in the suffix's place)
    bad_names: int = 0


def ris_grammar_errors(text: str) -> list[str]:
    """Every line of `text` that is not RIS: numbering lines, text outside a record,
    a blank line inside a record, a record without its `ER  - ` end."""
    errors = []
    in_record = False
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    for n, line in enumerate(lines, 1):
        m = RIS_TAG_LINE.match(line)
        if line == "":
            if in_record:
                errors.append(f"line {n}: blank line inside a record")
        elif not m:
            errors.append(f"line {n}: not a tag line: {line[:40]!r}")
        elif m.group(1) == "TY":
            if in_record:
                errors.append(f"line {n}: TY before the previous record's ER")
            in_record = True
        elif m.group(1) == "ER":
            if not in_record or m.group(2) != "":
                errors.append(f"line {n}: ER outside a record or with a value")
            in_record = False
        elif not in_record:
            errors.append(f"line {n}: tag line outside a record")
    if in_record:
        errors.append("the last record has no ER line")
    return errors


def read_ris_lines(text: str) -> list[ReadBack]:
    """The records of an RIS export, read from the tag lines alone."""
    out: list[ReadBack] = []
    tags: dict[str, list[str]] = {}
    for line in text.split("\n"):
        m = RIS_TAG_LINE.match(line)
        if not m:
            continue
        tag, val = m.groups()
        if tag == "TY":
            tags = {}
        elif tag == "ER":
            one = {t: v[0] for t, v in tags.items()}
            sp, ep = one.get("SP"), one.get("EP")
            rid = one.get("ID")
            out.append(ReadBack(
                int(rid) if rid and rid.isdigit() else None,
                {"title": one.get("TI"), "year": one.get("PY"), "journal": one.get("T2"),
                 "volume": one.get("VL"), "issue": one.get("IS"),
                 "pages": f"{sp}-{ep}" if sp and ep else sp or ep, "doi": one.get("DO"),
                 "pmid": one.get("PM")},
                list(tags.get("AU", [])),
                sum(1 for a in tags.get("AU", []) if not _one_ris_person(a))))
        else:
            tags.setdefault(tag, []).append(val)
    return out


_ESCAPES = {"&": "&", "%": "%", "$": "$", "#": "#", "_": "_", "{": "{", "}": "}"}
_TEXT_SYMBOLS = {"textasciitilde": "~", "textasciicircum": "^", "textbackslash": "\\",
                 "textbraceleft": "{", "textbraceright": "}"}


def latex_text(value: str) -> str:
    """Plain text of a BibTeX field as LaTeX typesets it (the escapes the spec lists)."""
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            m = re.match(r"\\([a-z]+)\{\}", value[i:])
            if m and m.group(1) in _TEXT_SYMBOLS:
                out.append(_TEXT_SYMBOLS[m.group(1)])
                i += m.end()
                continue
            if i + 1 < len(value) and value[i + 1] in _ESCAPES:
                out.append(value[i + 1])
                i += 2
                continue
            out.append("\\?")  # any other command is not plain text
            i += 1
        elif c in "{}":
            i += 1  # grouping braces print nothing
        elif c == "~":
            out.append("\u00a0")
            i += 1
        elif value.startswith("--", i):
            out.append("\u2013")  # LaTeX's en dash ligature
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


_LINEAGE = re.compile(r"^(Jr|Sr|II|III|IV|V)\.?$", re.IGNORECASE)


def _one_ris_person(name: str) -> bool:
    """RIS names are "Last, First" or "Last, First, Suffix"."""
    parts = [p.strip() for p in name.split(",")]
    return all(parts) and (len(parts) <= 2 or (len(parts) == 3 and bool(_LINEAGE.match(parts[2]))))


def _one_bibtex_person(p: Person) -> bool:
    parts = p.first_names + p.middle_names + p.prelast_names + p.last_names + p.lineage_names
    return bool(p.last_names) and not any("," in x for x in parts) and all(
        _LINEAGE.match(x) for x in p.lineage_names)


def _person_text(p: Person) -> str:
    parts = [" ".join(p.prelast_names + p.last_names), " ".join(p.lineage_names),
             " ".join(p.first_names + p.middle_names)]
    return latex_text(", ".join(x for x in parts if x))


def read_bibtex_pybtex(text: str, *, strict: bool) -> tuple[list[ReadBack], list[str]]:
    """The entries of a BibTeX export as pybtex reads them, and pybtex's complaints.

    In strict mode the first complaint raises; otherwise each is counted.
    """
    old = pybtex.errors.strict
    pybtex.errors.set_strict_mode(strict)
    try:
        if strict:
            data = parse_string(text, "bibtex")
            complaints: list[str] = []
        else:
            with pybtex.errors.capture() as captured:
                data = parse_string(text, "bibtex")
            complaints = [str(e) for e in captured]
    finally:
        pybtex.errors.set_strict_mode(old)
    out = []
    for entry in data.entries.values():
        f = entry.fields
        pages = f.get("pages")
        rid = f.get("cluster_id")
        out.append(ReadBack(
            int(rid) if rid and rid.isdigit() else None,
            {"title": _text(f.get("title")), "year": f.get("year"),
             "journal": _text(f.get("journal")), "volume": _text(f.get("volume")),
             "issue": _text(f.get("number")),
             # a range is "1023--1095"; anything else in the field is taken as written
             "pages": pages.replace("--", "-") if pages else None,
             "doi": f.get("doi"), "pmid": _text(f.get("pmid"))},
            [_person_text(p) for p in entry.persons.get("author", [])],
            sum(1 for p in entry.persons.get("author", []) if not _one_bibtex_person(p))))
    return out, complaints


def _text(value: str | None) -> str | None:
    return latex_text(value) if value is not None else None


def name_tokens(names: Iterable[str]) -> Counter:
    """The words of a list of names, whatever their order and punctuation.

    "CM Danu" and "Danu, C. M." give the same words: a run of two or three
    capitals is read as initials.
    """
    words: Counter = Counter()
    for name in names:
        for w in re.findall(r"[^\W_]+", name):
            if 2 <= len(w) <= 3 and w.isupper():
                words.update(w.lower())
            else:
                words[w.lower()] += 1
    return words


def store_fields(r: Record) -> dict[str, str | None]:
    return {"title": r.title, "year": str(r.year) if r.year else None, "journal": r.journal,
            "volume": r.volume, "issue": r.issue, "pages": r.pages, "doi": r.doi, "pmid": r.pmid}


def _pairs(records: dict[int, Record], read: list[ReadBack]) -> list[tuple[Record, ReadBack]]:
    by_id = {b.record_id: b for b in read}
    return [(r, by_id[rid]) for rid, r in records.items() if rid in by_id]


def mismatches(records: dict[int, Record], read: list[ReadBack]) -> Counter:
    """How many records differ from the store, per compared field; records that
    were not read back (or read twice) are counted as "missing"/"extra"."""
    bad: Counter = Counter()
    ids = Counter(b.record_id for b in read)
    bad["missing"] = sum(1 for rid in records if rid not in ids)
    bad["extra"] = sum(n - 1 for n in ids.values()) + sum(
        1 for rid in ids if rid not in records)
    for r, back in _pairs(records, read):
        want = store_fields(r)
        for name, val in want.items():
            if back.fields.get(name) != val:
                bad[name] += 1
        if name_tokens(r.authors) != name_tokens(back.authors) or back.bad_names:
            bad["authors"] += 1
    return +bad


def mismatch_examples(records: dict[int, Record], read: list[ReadBack], n: int = 5) -> list[str]:
    out = []
    for r, back in _pairs(records, read):
        for name, val in store_fields(r).items():
            if back.fields.get(name) != val and len(out) < n:
                out.append(f"{name}: store {val!r}, read back {back.fields.get(name)!r}")
        if (name_tokens(r.authors) != name_tokens(back.authors) or back.bad_names) and len(out) < n:
            out.append(f"authors: store {list(r.authors)!r}, read back {back.authors!r}")
    return out
