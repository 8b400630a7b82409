"""BibTeX: reading and writing through bibtexparser 2.

Field names are matched case-insensitively (Web of Science writes `Author`),
LaTeX escapes and protective braces are undone, and an entry bibtexparser
cannot parse is reported by line, never dropped silently.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from typing import Any, Iterable, Iterator, Mapping

import bibtexparser
from bibtexparser.model import (
    DuplicateBlockKeyBlock, Entry, Field, ImplicitComment, ParsingFailedBlock,
)

# the parser logs each broken entry; we report them in the import result instead
logging.getLogger("bibtexparser").addHandler(logging.NullHandler())

from base.record import Record
from db.formats.common import (
    Labelled, PersonName, Reading, Text, first, make_record, person_names, split_names,
)

_ACCENTS = {
    "'": "\u0301", "`": "\u0300", "^": "\u0302", '"': "\u0308", "~": "\u0303",
    "c": "\u0327", "=": "\u0304", ".": "\u0307", "u": "\u0306", "v": "\u030c", "H": "\u030b",
}
_SYMBOLS = {"ss": "ß", "o": "ø", "O": "Ø", "ae": "æ", "AE": "Æ", "aa": "å", "AA": "Å",
            "l": "ł", "L": "Ł", "i": "ı"}
_TEXT_COMMANDS = {"textless": "<", "textgreater": ">", "textbackslash": "\\",
                  "textbraceleft": "{", "textbraceright": "}",
                  "textasciitilde": "~", "textasciicircum": "^", "textendash": "\u2013",
                  "textemdash": "\u2014", "textbar": "|", "textquotesingle": "'"}
_PRIVATE = {name: chr(0xE000 + i) for i, name in enumerate(_TEXT_COMMANDS)}
_FROM_PRIVATE = {ord(_PRIVATE[name]): ch for name, ch in _TEXT_COMMANDS.items()}


def latex_to_text(text: str | None) -> str | None:
    """Undo the LaTeX an export uses: accents, escaped specials, protective braces."""
    if text is None:
        return None
    if not any(c in text for c in "\\{}~-"):
        return text

    def accent(m: re.Match) -> str:
        return unicodedata.normalize("NFC", m.group(2) + _ACCENTS[m.group(1)])

    t = re.sub(r"\\([`'^\"~=.])\s*\{?\s*([A-Za-z])\s*\}?", accent, text)
    t = re.sub(r"\\([cuvH])\s*\{\s*([A-Za-z])\s*\}", accent, t)
    t = re.sub(r"\\(ss|ae|AE|aa|AA|o|O|l|L|i)\b\s*(?:\{\})?",
               lambda m: _SYMBOLS[m.group(1)], t)
    t = re.sub(r"\\([&%$#_{}])", lambda m: "\x00" + m.group(1), t)
    # text commands become private-use characters so later steps leave them alone
    t = re.sub(r"\\(text[a-z]+)\b\s*(?:\{\})?",
               lambda m: _PRIVATE[m.group(1)] if m.group(1) in _PRIVATE else m.group(0), t)
    t = t.replace("---", "\u2014").replace("--", "\u2013").replace("~", " ")
    t = t.replace("{", "").replace("}", "").replace("\x00", "")
    if any(c in t for c in _PRIVATE.values()):
        t = t.translate(_FROM_PRIVATE)
    return t


# Each LaTeX special written so that BibTeX, biber and LaTeX read it as the
# character: braces as commands, since an escaped brace still counts towards the
# field's brace balance in BibTeX
_LATEX_SPECIALS = {
    "\\": "\\textbackslash{}", "{": "\\textbraceleft{}", "}": "\\textbraceright{}",
    "~": "\\textasciitilde{}", "^": "\\textasciicircum{}",
    "&": "\\&", "%": "\\%", "$": "\\$", "#": "\\#", "_": "\\_",
}
_LATEX_TABLE = str.maketrans(_LATEX_SPECIALS)


def text_to_latex(text: str) -> str:
    """Plain text as a BibTeX field value: each LaTeX special escaped once.

    Letters beyond ASCII stay UTF-8 (biber and LaTeX read UTF-8). Two hyphens
    in a row would print as a dash, so they are kept apart with `{}`.
    """
    t = text.translate(_LATEX_TABLE)
    return re.sub(r"-(?=-)", "-{}", t) if "--" in t else t


def _fields(entry: Entry) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in entry.fields:
        key = f.key.strip().lower()
        if key not in out:
            out[key] = str(f.value)
    return out


def _authors(raw: str | None) -> list[str]:
    if not raw:
        return []
    text = re.sub(r"\s+", " ", raw).strip()
    parts = re.split(r"\s+and\s+", text, flags=re.IGNORECASE)
    if len(parts) == 1 and text.count(" , ") >= 1:
        # Scopus (2017) separated authors with " , " and glued affiliation
        # letters to the initials: "D'Ambrosio, A.a , Aria, M.a , ..."
        pieces = [c.strip() for c in text.split(" , ") if c.strip()]
        parts = [re.sub(r"(\.)[a-z]{1,2}$", r"\1", p) for p in pieces]
    return [latex_to_text(p) or "" for p in parts if p.strip()]


def _keywords(raw: str | None) -> list[str]:
    if not raw:
        return []
    sep = ";" if ";" in raw else ","
    return [latex_to_text(k) or "" for k in split_names(raw, sep)]


def _salvage(raw: str) -> tuple[str, str, dict[str, str]] | None:
    """Fields of an entry bibtexparser gave up on, read one `key = {value}` line at a time.

    EBSCO writes scraped page fragments with unbalanced braces into
    `Keywords`; every other field of such an entry is still intact.
    """
    head = re.match(r"\s*@\s*(\w+)\s*[{(]\s*([^,\s]*)\s*,", raw)
    if not head:
        return None
    fields: dict[str, str] = {}
    for line in raw[head.end():].split("\n"):
        m = re.match(r"^\s*([A-Za-z][\w-]*)\s*=\s*[{\"](.*?)[}\"]?\s*,?\s*$", line)
        if m and m.group(1).lower() not in fields:
            fields[m.group(1).lower()] = m.group(2)
    if not fields.get("title"):
        return None
    return head.group(1).lower(), head.group(2), fields


_USED = ("title", "abstract", "year", "date", "journal", "journaltitle", "booktitle", "volume",
         "number", "issue", "pages", "doi", "pmid", "pmcid", "language", "type", "issn", "url", "note")


def _verbatim_text(text: str) -> str:
    """A DOI or URL as written: biber reads these fields verbatim, so "--" stays two
    hyphens; only escaped specials and grouping braces some tools add are undone."""
    return re.sub(r"\\([&%$#_])", r"\1", text).replace("{", "").replace("}", "").strip()


def _entry_record(entry_type: str, key: str, f: Mapping[str, str]) -> Record:
    d = {k: _verbatim_text(f[k]) if k in _VERBATIM else latex_to_text(f[k])
         for k in _USED if k in f}
    return make_record(
        title=d.get("title"), abstract=d.get("abstract"), authors=_authors(f.get("author")),
        year=first(d.get("year"), d.get("date")),
        journal=first(d.get("journal"), d.get("journaltitle"), d.get("booktitle")),
        volume=d.get("volume"), issue=first(d.get("number"), d.get("issue")),
        pages=d.get("pages"), doi=d.get("doi"), pmid=first(d.get("pmid"), _note_pmid(d)),
        pmcid=d.get("pmcid"), language=d.get("language"),
        pub_types=[entry_type] + ([d["type"]] if d.get("type") else []),
        keywords=_keywords(f.get("keywords") or f.get("author_keywords")),
        issn=d.get("issn"), url=first(d.get("url")), source_id=key.strip(),
        extra={"note": d["note"]} if d.get("note") else None,
    )


_ENTRY_LINE = re.compile(r"^\s*@\s*([A-Za-z]+)\s*[{(]", re.M)
_FIELD_LINE = re.compile(r"^\s*(?:title|author|year|journal|doi)\s*=\s*[{\"\d]", re.I | re.M)


def read_bibtex(text: Text, name: str, reading: Reading) -> Iterator[Labelled]:
    # bibtexparser parses a whole string (its splitter finds the blocks, then @string
    # macros are resolved across the file), so a BibTeX file is held whole while it is
    # read; its records are still written as they are made
    whole = "".join(text.pieces())
    reading.marker = "@type{ lines"
    reading.n_in_file = sum(1 for m in _ENTRY_LINE.finditer(whole)
                            if m.group(1).lower() not in ("comment", "string", "preamble"))
    blocks = list(bibtexparser.parse_string(whole).blocks)
    del whole
    warnings, lost = reading.warnings, reading.lost
    failed_tail = False  # comments right after a failed entry are that entry's tail
    for i, block in enumerate(blocks):
        line = (getattr(block, "start_line", None) or 0) + 1
        failed_tail = isinstance(block, ImplicitComment) and (
            failed_tail or (i > 0 and isinstance(blocks[i - 1], ParsingFailedBlock)))
        if isinstance(block, Entry):
            yield _entry_record(block.entry_type, block.key, _fields(block)), None
        elif isinstance(block, DuplicateBlockKeyBlock):
            # a second entry with the same key is still a record of its own
            entry = block.ignore_error_block
            if isinstance(entry, Entry):
                warnings.append(f"{name}: the entry at line {line} reuses the key {entry.key!r}; "
                                "it was imported as a separate record.")
                yield _entry_record(entry.entry_type, entry.key, _fields(entry)), None
            else:
                # a repeated @string: the parser keeps the first definition
                warnings.append(f"{name}: the @string at line {line} defines {block.key!r} "
                                "again; the first definition was used.")
        elif isinstance(block, ParsingFailedBlock):
            head = (block.raw or "").strip().split("\n")[0][:60]
            raw = block.raw or ""
            # the splitter restarts at any "@" and leaves the entry's tail as comments
            for nxt in blocks[i + 1:]:
                if not isinstance(nxt, ImplicitComment):
                    break
                raw += nxt.raw or ""
            salvaged = _salvage(raw)
            if salvaged is None:
                lost.append(f"the entry at line {line} ({head!r}), which could not be parsed")
                continue
            etype, key, fields = salvaged
            warnings.append(f"{name}: the entry at line {line} ({head!r}) has unbalanced braces; "
                            "it was read line by line and may miss parts of broken fields.")
            yield _entry_record(etype, key, fields), None
        elif (isinstance(block, ImplicitComment) and not failed_tail
              and _FIELD_LINE.search(block.raw or "")):
            # fields with no "@type{key," line above them: an entry whose first line is damaged
            reading.n_in_file = (reading.n_in_file or 0) + 1
            raw_text = block.raw or ""
            field = _FIELD_LINE.search(raw_text)
            at = line + raw_text[:field.start() if field else 0].count("\n")
            lost.append(f"the fields at line {at}, which have no @type{{ line")


def _note_pmid(d: Mapping[str, Any]) -> str | None:
    m = re.search(r"PMID:\s*(\d+)", d.get("note") or "")
    return m.group(1) if m else None


# what reference managers write as a type, to the entry types BibTeX's standard
# styles and biblatex define; a journal's article types (MEDLINE's "Comparative
# Study", "Letter", ...) are articles
_ENTRY_TYPES = {
    "book": "book", "edbook": "book",
    "chap": "incollection", "chapter": "incollection", "incollection": "incollection",
    "inbook": "incollection", "booksection": "incollection",
    "conf": "inproceedings", "cpaper": "inproceedings", "conference": "inproceedings",
    "conferencepaper": "inproceedings", "inproceedings": "inproceedings",
    "proceedings": "proceedings",
    "thes": "phdthesis", "thesis": "phdthesis", "phdthesis": "phdthesis",
    "mastersthesis": "mastersthesis", "dissertation": "phdthesis",
    "rprt": "techreport", "report": "techreport", "techreport": "techreport",
    "gen": "misc", "generic": "misc", "elec": "misc", "html": "misc", "pdf": "misc",
    "misc": "misc", "webpage": "misc", "online": "misc", "unpublished": "unpublished",
}
# biblatex and biber take these as written: escaping them would break the link
_VERBATIM = ("doi", "url")


def _entry_type(r: Record) -> str:
    if not r.pub_types:
        return "article"
    kind = _ENTRY_TYPES.get(re.sub(r"\W", "", r.pub_types[0].lower()))
    return kind or ("article" if r.journal or r.pub_types[0].lower() in (
        "article", "journal article", "jour") else "misc")


def _bibtex_name(p: PersonName) -> str:
    """"Family, Given" (or "Family, Jr., Given"), each part escaped; a part
    holding the word "and" is braced so it is not read as a second name."""
    parts = [text_to_latex(x) for x in (p.family, p.suffix, p.given) if x]
    return ", ".join("{" + x + "}" if re.search(r"(?:^|\s)and(?:\s|$)", x, re.IGNORECASE)
                     else x for x in parts)


def _verbatim(text: str) -> str:
    # a brace would end the field early; in a link it is the same character percent-encoded
    return text.replace("{", "%7B").replace("}", "%7D")


def _key_suffix(n: int) -> str:
    """"", "b", "c", ... "z", "aa", "ab", ...: the first record keeps the bare key."""
    if n == 0:
        return ""
    out, m = "", n + 1
    while m:
        m, r = divmod(m - 1, 26)
        out = chr(ord("a") + r) + out
    return out


def citation_keys(records: Iterable[tuple[int, Record]]) -> dict[int, str]:
    """A key per record id: first author's family name and year, "Liu2014".

    Records are taken in id order and a key that is taken (BibTeX compares keys
    without regard to case) gets the next suffix, so a record keeps its key
    when records are added to the store and whichever subset is exported.
    """
    used: set[str] = set()
    keys: dict[int, str] = {}
    for rid, r in sorted(records, key=lambda x: x[0]):
        people = person_names(r.authors[:1])
        family = unicodedata.normalize("NFKD", people[0].family) if people else ""
        family = re.sub(r"[^A-Za-z]", "", family)
        if family.isupper():
            family = family.capitalize()
        base = f"{family or 'Anon'}{r.year or ''}"
        n = 0
        while (base + _key_suffix(n)).lower() in used:
            n += 1
        keys[rid] = base + _key_suffix(n)
        used.add(keys[rid].lower())
    return keys


def write_bibtex(entries: Iterable[Mapping[str, Any]]) -> str:
    """BibTeX for export rows (dicts with `record`, `record_id`, decision fields and,
    from `export_records`, the `cite_key` the store gives the record)."""
    rows = list(entries)
    fallback = citation_keys((row["record_id"], row["record"]) for row in rows
                             if not row.get("cite_key"))
    lib = bibtexparser.Library()
    for row in rows:
        r: Record = row["record"]
        fields: list[Field] = []

        def add(k: str, v: Any) -> None:
            if v:
                text = " ".join(str(v).split())  # a field is one line of text
                fields.append(Field(k, _verbatim(text) if k in _VERBATIM else text_to_latex(text)))

        add("title", r.title)
        if r.authors:
            fields.append(Field("author", " and ".join(
                _bibtex_name(p) for p in person_names(r.authors))))
        add("year", r.year)
        add("journal", r.journal)
        add("volume", r.volume)
        add("number", r.issue)
        if r.pages:
            # a range is "1023--1095" in BibTeX; a lone hyphen would print as one
            fields.append(Field("pages", "--".join(
                text_to_latex(x) for x in " ".join(r.pages.split()).split("-"))))
        add("doi", r.doi)
        add("pmid", r.pmid)
        add("pmcid", r.pmcid)
        add("issn", r.issn)
        add("url", r.url)
        add("language", ", ".join(r.language))
        add("abstract", r.abstract)
        add("keywords", "; ".join(list(r.keywords) + list(row.get("keywords") or [])))
        add("note", " | ".join(row.get("notes") or []))
        add("cluster_id", row["record_id"])
        key = row.get("cite_key") or fallback[row["record_id"]]
        lib.add(Entry(_entry_type(r), key, fields))
    return bibtexparser.write_string(lib)
