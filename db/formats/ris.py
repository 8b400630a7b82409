"""RIS and Web of Science tagged text: reading (through rispy) and writing.

Real RIS exports bend the format in many ways (tags with two spaces after the
hyphen, two tags glued on one line, untagged continuation lines, header lines
between records, a missing `ER`, 4-letter tags such as `PMID`). A small
line-level pass repairs those into lines rispy's parser reads; rispy's parser
then collects every tag raw and the mapping to `Record` is ours, so no field
is lost to a last-one-wins rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Iterable, Iterator

import rispy

from base.record import Record
from db.formats.common import (
    Labelled, PersonName, Reading, Text, first, first_doi, first_issn, join_pages, make_record,
    person_names, split_names, value,
)

# a tag, then its value (to be stripped) or only blanks; greedy, as a lazy value before
# `\s*$` was tried at every character of a long abstract
_TAG = re.compile(r"^([A-Z][A-Z0-9]{1,3}) {1,2}-(?: {1,2}(.*)|\s*)$")
_GLUED = re.compile(r"\s{3,}(?=[A-Z][A-Z0-9] {2}- )")


class _Identity(dict):
    """A tag mapping that keeps every tag under its own name."""

    def __missing__(self, key: str) -> str:
        return key


class _Everything:
    def __contains__(self, item: object) -> bool:
        return True


class _RawMixin:
    """Collect each tag as a list of raw values; continuation lines extend the last."""

    def _add_tag(self, record: dict, tag: str | None, content: str,
                 extend_multiline: bool = False) -> None:
        if tag is None:
            return  # text before the first tag of a record
        values = record.setdefault(tag, [])
        if isinstance(values, str):
            values = record[tag] = [values]
        if extend_multiline and values:
            values[-1] = f"{values[-1]}\n{content}"
        else:
            values.append(content)


class _RisRaw(_RawMixin, rispy.RisParser):
    def parse_line(self, line: str) -> tuple[str | None, str]:
        m = _TAG.match(line)
        if m:
            return m.group(1), (m.group(2) or "").strip()
        return None, line.strip()


class _WokRaw(_RawMixin, rispy.WokParser):
    pass


def _parser_kwargs() -> dict[str, Any]:
    return {"mapping": _Identity(), "list_tags": _Everything(), "delimiter_tags_mapping": {}}


#: records handed to rispy's parser at a time
_PARSE_BATCH = 500


def _repaired(lines: Iterable[str], name: str, reading: Reading) -> Iterator[list[str]]:
    """Each record of a RIS file as lines rispy can read, from its TY line to an ER line.

    Counts the records the file holds (TY lines, and ER lines that close a record no TY
    line opened) into `reading`, names the damaged ones and warns of missing ER lines.
    """
    record: list[str] = []
    reading.n_in_file = 0
    start = 0  # the line the open record starts on
    n_records = 0  # records seen so far, damaged ones included
    open_record = False
    orphan: int | None = None  # tagged lines seen outside any record, from this line on
    for lineno, raw in enumerate(lines, 1):
        for line in _GLUED.split(raw):
            m = _TAG.match(line)
            tag = m.group(1) if m else None
            if m is not None and tag == "TY":
                if open_record:
                    reading.warnings.append(f"{name}: the record starting at line {start} has no "
                                            f"ER end tag; it was closed at line {lineno}.")
                    record.append("ER  - ")
                    yield record
                start = lineno
                n_records += 1
                reading.n_in_file = n_records
                open_record, orphan = True, None
                record = ["TY  - " + (m.group(2) or "").strip()]
            elif tag == "ER":
                if open_record:
                    record.append("ER  - ")
                    yield record
                    record = []
                elif orphan is not None:
                    # a record's tags closed by ER with no TY: its TY line is damaged or gone
                    n_records += 1
                    reading.n_in_file = n_records
                    reading.lost.append(f"record {n_records} (line {orphan}: no TY line before it)")
                open_record, orphan = False, None
            elif open_record:
                record.append(f"{tag}  - {(m.group(2) or '').strip()}" if m else line)
            elif tag is not None and orphan is None:
                orphan = lineno
    if open_record:
        reading.warnings.append(f"{name}: the record starting at line {start} has no ER end tag; "
                                "it was read up to the end of the file.")
        record.append("ER  - ")
        yield record


def _batches(records: Iterator[list[str]], size: int = _PARSE_BATCH) -> Iterator[list[str]]:
    """The lines of `size` records at a time."""
    batch: list[str] = []
    n = 0
    for lines in records:
        batch.extend(lines)
        n += 1
        if n == size:
            yield batch
            batch, n = [], 0
    if batch:
        yield batch


def raw_records(lines: Iterable[str], name: str,
                reading: Reading) -> Iterator[dict[str, list[str]]]:
    """Each record of a RIS file as its tags, each with its list of raw values."""
    parser = _RisRaw(**_parser_kwargs())
    for batch in _batches(_repaired(lines, name, reading)):
        for e in rispy.RisParser.parse_lines(parser, iter(batch)):
            yield {k: (v if isinstance(v, list) else [v]) for k, v in e.items()}


def _lines(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in v.split("\n") if p.strip())
    return out


def _one(values: list[str] | None) -> str | None:
    """A single-valued tag; continuation lines join with a space."""
    if not values:
        return None
    for v in values:
        t = value(v.replace("\n", " "))
        if t:
            return t
    return None


_BOILERPLATE = re.compile(r"^(copyright of .* is the property of|copyright \(c\))", re.I)
_PUBMED_IN = re.compile(r"\bPUBMED\s+(\d+)", re.I)


def ris_to_record(e: Mapping[str, list[str]]) -> Record:
    g = e.get
    authors: list[str] = []
    for v in _lines((g("AU") or []) + (g("A1") or [])):
        # some R-written files put every author on one AU line, "; "-separated
        authors.extend(split_names(v) if ";" in v else [v])
    abstracts = [a for a in (g("AB") or []) if value(a) and not _BOILERPLATE.match(a.strip())]
    pmid = _one(g("PMID")) or _one(g("PM"))
    if not pmid:
        for v in (g("C3") or []) + (g("AN") or []) + (g("M1") or []):
            m = _PUBMED_IN.search(v)
            if m:
                pmid = m.group(1)
                break
    if not pmid and re.search(r"pubmed|medline|nlm", " ".join((g("DB") or []) + (g("DP") or [])), re.I):
        an = _one(g("AN"))
        pmid = an if an and an.isdigit() else None
    sp, ep = _one(g("SP")), _one(g("EP"))
    if sp and not re.search(r"\d", sp):
        sp, ep = None, None  # Ovid writes "SP - No / EP - Specified"
    ty = _one(g("TY"))
    notes = [n for n in _lines(g("N1") or [])]
    return make_record(
        title=_one(g("TI")) or _one(g("T1")) or _one(g("CT")) or _one(g("BT")),
        abstract=" ".join(a.replace("\n", " ") for a in abstracts[:1]) or _one(g("N2")),
        authors=authors,
        year=first(_one(g("PY")), _one(g("Y1")), _one(g("DA")), _one(g("Y2"))),
        journal=_one(g("T2")) or _one(g("JF")) or _one(g("JO")) or _one(g("JA")) or _one(g("J2")),
        volume=_one(g("VL")), issue=_one(g("IS")) or _one(g("CP")),
        pages=join_pages(sp, ep), doi=first_doi(g("DO") or [], g("UR") or [], g("L3") or [],
                                                g("M3") or []),
        pmid=pmid, language=_lines(g("LA") or []),
        pub_types=[t for t in [ty] + _lines(g("M3") or []) if t and not first_doi(t)],
        keywords=_lines(g("KW") or []),
        issn=first_issn(g("SN") or []), url=_one(g("UR")),
        source_id=_one(g("ID")) or _one(g("AN")),
        extra={"notes": notes} if notes else None,
    )


_ASREVIEW_NOTE = re.compile(r"\bASReview_(relevant|irrelevant)\b")


def _asreview_label(e: Mapping[str, list[str]]) -> str | None:
    """ASReview writes its labels into the notes of the records it exports to RIS."""
    for note in e.get("N1") or []:
        m = _ASREVIEW_NOTE.search(note)
        if m:
            return "include" if m.group(1) == "relevant" else "exclude"
    return None


def read_ris(text: Text, name: str, reading: Reading) -> Iterator[Labelled]:
    for e in ris_entries(text, name, reading):
        record, label = ris_record(e)
        if label:
            reading.has_labels = True
        yield record, label


def ris_entries(text: Text, name: str, reading: Reading) -> Iterator[dict[str, list[str]]]:
    """The records of a RIS file in order, each as its tags and raw values (`ris_record`
    makes its record)."""
    reading.marker = "TY and ER lines"
    yield from raw_records(text.split(), name, reading)


def ris_record(e: Mapping[str, list[str]]) -> Labelled:
    """The record of one entry `ris_entries` gave, and its screening label: a pure function
    of the entry, so entries can be made into records anywhere, in any order."""
    return ris_to_record(e), _asreview_label(e)


# --- Web of Science plain text ------------------------------------------------------


def _wos_records(lines: Iterable[str], reading: Reading) -> Iterator[list[str]]:
    """The lines of a Web of Science file cut after each ER line (records never span a cut),
    counting its PT lines into `reading`."""
    batch: list[str] = []
    n_records = 0
    n_pt = 0
    for line in lines:
        batch.append(line)
        if line.startswith("PT "):
            n_pt += 1
            reading.n_in_file = n_pt
        elif line[0:2] == "ER":  # rispy's WokParser reads the tag as a line's first two letters
            n_records += 1
            if n_records % _PARSE_BATCH == 0:
                yield batch
                batch = []
    yield batch


def read_wos(text: Text, name: str, reading: Reading) -> Iterator[Labelled]:
    reading.marker = "PT lines"
    reading.n_in_file = 0
    parser = _WokRaw(**_parser_kwargs())
    n_read = 0
    for batch in _wos_records(text.split(), reading):
        for raw in rispy.WokParser.parse_lines(parser, iter(batch)):
            e = {k: (v if isinstance(v, list) else [v]) for k, v in raw.items()}
            g = e.get
            n_read += 1
            yield make_record(
                title=_one(g("TI")), abstract=_one(g("AB")),
                authors=_lines(g("AF") or g("AU") or []), year=_one(g("PY")),
                journal=_one(g("SO")), volume=_one(g("VL")), issue=_one(g("IS")),
                pages=join_pages(_one(g("BP")), _one(g("EP"))) or _one(g("AR")),
                doi=_one(g("DI")), pmid=_one(g("PM")), language=_lines(g("LA") or []),
                pub_types=_lines(g("DT") or []),
                keywords=[k.strip() for v in _lines(g("DE") or []) for k in v.split(";")],
                issn=first_issn(g("SN") or [], g("EI") or []), source_id=_one(g("UT")),
            ), None
    n_pt = reading.n_in_file or 0
    if n_pt > n_read:
        reading.lost.append(f"{n_pt - n_read} record(s) with no ER end tag")


# --- writing ------------------------------------------------------------------------


class _PlainRisWriter(rispy.RisWriter):
    """rispy's RIS writer without the "1.", "2." line it puts before each record,
    which is not RIS (rispy's documented way to change it is a subclass)."""

    def set_header(self, count: int) -> str:
        return ""


def _ris_name(p: PersonName) -> str:
    return ", ".join(x for x in (p.family, p.given, p.suffix) if x)


def _line(v: Any) -> str:
    # a line break inside a value would start an untagged line
    return " ".join(str(v).split())


def write_ris(entries: Iterable[Mapping[str, Any]]) -> str:
    """RIS text for export rows (dicts with `record` and decision fields), via rispy:
    tag lines only, each record ended by `ER  - `, one AU line per person."""
    refs = []
    for row in entries:
        r: Record = row["record"]
        ref: dict[str, Any] = {"type_of_reference": _ris_type(r)}
        if r.title:
            ref["title"] = _line(r.title)
        if r.authors:
            # a name without a comma stays whole: reference managers keep it as one field
            ref["authors"] = [_line(_ris_name(p))
                              for p in person_names(r.authors, guess_order=False)]
        if r.year:
            ref["year"] = str(r.year)
        for key, val in (("secondary_title", r.journal), ("volume", r.volume),
                         ("number", r.issue), ("doi", r.doi), ("abstract", r.abstract),
                         ("issn", r.issn)):
            if val:
                ref[key] = _line(val)
        if r.pages:
            start, _, end = _line(r.pages).partition("-")
            ref["start_page"] = start
            if end:
                ref["end_page"] = end
        if r.language:
            ref["language"] = "; ".join(r.language)
        if r.url:
            ref["urls"] = [_line(r.url)]
        ref["id"] = str(row["record_id"])
        kws = [_line(k) for k in list(r.keywords) + list(row.get("keywords") or [])]
        if kws:
            ref["keywords"] = kws
        notes = [_line(n) for n in row.get("notes") or []]
        if notes:
            ref["notes"] = notes
        unknown: dict[str, list[str]] = {}
        if r.pmid:
            unknown["PM"] = [r.pmid]
        if r.pmcid:
            unknown["C2"] = [r.pmcid]
        if unknown:
            ref["unknown_tag"] = unknown
        refs.append(ref)
    if not refs:
        return ""
    return rispy.dumps(refs, implementation=_PlainRisWriter, skip_unknown_tags=False,
                       enforce_list_tags=False)


def _ris_type(r: Record) -> str:
    types = {t.upper() for t in r.pub_types}
    for t in ("JOUR", "BOOK", "CHAP", "CONF", "CPAPER", "THES", "RPRT", "GEN", "ELEC"):
        if t in types:
            return t
    return "JOUR" if not types or {t.lower() for t in r.pub_types} & {"journal article", "article"} else "GEN"
