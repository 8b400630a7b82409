"""BibTeX: reading and writing through bibtexparser 2.

Field names are matched case-insensitively (Web of Science writes `Author`),
LaTeX escapes and protective braces are undone, and an entry bibtexparser
cannot parse is reported by line, never dropped silently. A file is parsed a
part of `ENTRIES_PER_PART` entries at a time, so it is never held whole.
"""

from __future__ import annotations

import itertools
import logging
import re
import unicodedata
from typing import Any, Iterable, Iterator, Mapping

import bibtexparser
from bibtexparser.model import (
    DuplicateBlockKeyBlock, Entry, Field, ImplicitComment, ParsingFailedBlock, String,
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


#: entries parsed at a time: bibtexparser holds a parsed string whole (about 14 KB an
#: entry), so a file is handed to it a part at a time
ENTRIES_PER_PART = 2000
#: a block's start as bibtexparser's splitter finds it, at the start of a line: there
#: it always starts a block, ending (as failed) any block still open
_BLOCK_START = re.compile(r"\s*@(\w*)[ \t]*[{(]")
_NOT_RECORDS = ("comment", "string", "preamble")


def _lines(text: Text) -> Iterator[tuple[str, str | None]]:
    """Each line of the file, with the type of the block it starts (lower case), if
    it starts one, else None."""
    for line in text.split():
        m = _BLOCK_START.match(line) if "@" in line else None
        yield line, m.group(1).lower() if m else None


def _parts(text: Text) -> Iterator[tuple[int, list[str]]]:
    """The file in parts of about `ENTRIES_PER_PART` blocks: (the number of lines before
    the part, its lines). A part ends only before a line that starts a block, where
    the parser of the whole file would start one too."""
    lines: list[str] = []
    before = blocks = 0  # lines of the parts already given; blocks of this one
    for line, opens in _lines(text):
        if opens:
            if blocks >= ENTRIES_PER_PART:
                yield before, lines
                before += len(lines)
                lines, blocks = [], 0
            blocks += 1
        lines.append(line)
    if lines:
        yield before, lines


def _strings(text: Text) -> list[tuple[int, str]]:
    """(line index, text) of each @string block of the file, in order."""
    found: list[tuple[int, str]] = []
    block: list[str] | None = None  # the lines of the @string under way
    for i, (line, opens) in enumerate(_lines(text)):
        if opens:
            block = [line] if opens.startswith("string") else None
            if block is not None:
                found.append((i, ""))
        elif block is not None:
            block.append(line)
        if block is not None:
            found[-1] = (found[-1][0], "\n".join(block) + "\n")
    return found


def _blocks(text: Text, reading: Reading) -> Iterator[tuple[int, Any]]:
    """(line, block) of every block bibtexparser finds in the file, read a part at a
    time; counts the file's entries in `reading.n_in_file` as it goes.

    bibtexparser resolves a macro against every @string of the string it parses,
    before or after the use, and keeps a key's first definition: so each part is
    parsed between the file's @string blocks before it and those after it, in their
    order in the file, and only the part's own blocks are given."""
    strings = _strings(text)
    reading.n_in_file = 0
    for before, lines in _parts(text):
        after = before + len(lines)
        prelude = "".join(s for at, s in strings if at < before)
        postlude = "".join(s for at, s in strings if at >= after)
        part = "\n".join(lines) + "\n"
        reading.n_in_file += sum(1 for m in _ENTRY_LINE.finditer(part)
                                 if m.group(1).lower() not in _NOT_RECORDS)
        n_prelude = prelude.count("\n")
        end = n_prelude + len(lines)
        for block in bibtexparser.parse_string(prelude + part + postlude).blocks:
            start = block.start_line
            if start is not None and not n_prelude <= start < end:
                continue  # another part's @string, parsed beside this one
            line = (start or 0) - n_prelude + before + 1
            if (isinstance(block, DuplicateBlockKeyBlock)
                    and isinstance(block.ignore_error_block, Entry)):
                # the parser leaves an entry whose key was used before as written (quotes
                # kept, macros not resolved): parsed alone it is read as any other entry,
                # as it is when the first use of its key is in an earlier part
                block = _alone(block.ignore_error_block, strings, line - 1)
            yield line, block


def _alone(entry: Entry, strings: list[tuple[int, str]], at: int) -> Entry:
    """`entry` (at line index `at`) parsed by itself between the file's @strings."""
    prelude = "".join(s for i, s in strings if i < at)
    postlude = "".join(s for i, s in strings if i > at)
    for block in bibtexparser.parse_string(prelude + (entry.raw or "") + "\n" + postlude).blocks:
        if isinstance(block, Entry):
            return block
    return entry


def read_bibtex(text: Text, name: str, reading: Reading) -> Iterator[Labelled]:
    reading.marker = "@type{ lines"
    warnings, lost = reading.warnings, reading.lost
    seen: set[str] = set()  # the entries' keys so far (earlier parts' too)
    # a block bibtexparser could not parse, with the comments after it: the splitter
    # restarts at any "@" and leaves the entry's tail as comments
    failed: tuple[int, Any, str] | None = None
    tail = False  # comments right after a failed block are its tail
    for line, block in itertools.chain(_blocks(text, reading), [(0, None)]):
        tail = isinstance(block, ImplicitComment) and tail
        if failed is not None:
            if tail:
                failed = (failed[0], failed[1], failed[2] + (block.raw or ""))
                continue
            yield from _salvaged(name, reading, *failed)
            failed = None
        if block is None:
            break
        repeated = False  # a key an entry before used (in the same part: the parser says so)
        if isinstance(block, DuplicateBlockKeyBlock):
            tail = repeated = True
            if not isinstance(block.ignore_error_block, Entry):
                # a repeated @string: the parser keeps the first definition
                warnings.append(f"{name}: the @string at line {line} defines {block.key!r} "
                                "again; the first definition was used.")
                continue
            block = block.ignore_error_block
        if isinstance(block, Entry):
            if repeated or block.key in seen:
                # a second entry with the same key is still a record of its own
                tail = True
                warnings.append(f"{name}: the entry at line {line} reuses the key {block.key!r}; "
                                "it was imported as a separate record.")
            seen.add(block.key)
            yield _entry_record(block.entry_type, block.key, _fields(block)), None
        elif isinstance(block, ParsingFailedBlock):
            failed, tail = (line, block, block.raw or ""), True
        elif (isinstance(block, ImplicitComment) and not tail
              and _FIELD_LINE.search(block.raw or "")):
            # fields with no "@type{key," line above them: an entry whose first line is damaged
            reading.n_in_file = (reading.n_in_file or 0) + 1
            raw_text = block.raw or ""
            field = _FIELD_LINE.search(raw_text)
            at = line + raw_text[:field.start() if field else 0].count("\n")
            lost.append(f"the fields at line {at}, which have no @type{{ line")


def _salvaged(name: str, reading: Reading, line: int, block: Any, raw: str
              ) -> Iterator[Labelled]:
    """The record of a block bibtexparser could not parse (`raw`: it and its tail), read
    line by line, with a warning; or nothing, and the entry named as lost."""
    head = (block.raw or "").strip().split("\n")[0][:60]
    salvaged = _salvage(raw)
    if salvaged is None:
        reading.lost.append(f"the entry at line {line} ({head!r}), which could not be parsed")
        return
    etype, key, fields = salvaged
    reading.warnings.append(f"{name}: the entry at line {line} ({head!r}) has unbalanced braces; "
                            "it was read line by line and may miss parts of broken fields.")
    yield _entry_record(etype, key, fields), None


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
