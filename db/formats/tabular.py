"""CSV/TSV exports (Covidence, Rayyan, Zotero, Scopus, Embase, Cochrane, Lens,
RefWorks, PubMed, ASReview...) and plain-text lists of PMIDs/DOIs.

Columns are recognised by name, whatever tool wrote them; the delimiter is
sniffed (Excel in European locales saves with semicolons) and preamble lines
above the header (Embase's search query) are skipped. ASReview-style label
columns (`included`, `label_included`) come back as screening labels.
"""

from __future__ import annotations

import ast
import csv
import re
from operator import methodcaller
from typing import Any, Iterator

from base.output import unneutralise
from base.record import normalize_doi, normalize_pmid
from db.formats.common import (FileFormatError, Labelled, Reading, Text, collapse_spaces, first,
                               join_pages, make_record, split_names)

# Scopus and Lens put every cited reference of a record into one cell, far past
# the csv module's 128 KB default
csv.field_size_limit(2**31 - 1)


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9#]", "", name.lower())


# each field: the column names tools use for it, best first
COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title", "titleprimary", "articletitle", "primarytitle", "documenttitle", "ti"),
    "abstract": ("abstract", "abstractnote", "notesabstract", "ab"),
    "authors": ("authors", "author", "authornames", "authorsprimary", "firstauthors",
                "authorfullnames", "au"),
    "year": ("year", "publicationyear", "publishedyear", "pubyear", "py", "date", "datepublished"),
    "journal": ("journal", "sourcetitle", "publicationtitle", "journalbook", "periodicalfull",
                "secondarytitle", "journaltitle", "periodicalabbrev", "journalabbreviation", "source"),
    "volume": ("volume", "vl"),
    "issue": ("issue", "issuenumber", "number", "is"),
    "pages": ("pages", "page", "pagination"),
    "start_page": ("pagestart", "firstpage", "startpage", "sp"),
    "end_page": ("pageend", "lastpage", "endpage", "otherpages", "ep"),
    "doi": ("doi", "do", "di"),
    "pmid": ("pmid", "pubmedid", "pm"),
    "pmcid": ("pmcid",),
    "keywords": ("keywords", "authorkeywords", "manualtags", "kw", "tags"),
    "language": ("language", "languageoforiginaldocument", "la"),
    "url": ("url", "link", "externalurl", "sourceurls"),
    "issn": ("issn", "issns", "issnisbn", "sn"),
    "pub_type": ("publicationtype", "itemtype", "documenttype", "typeofreference", "referencetype"),
    "id": ("recordid", "id", "covidence#", "key", "lensid", "referenceid", "centralid",
           "internalid", "eid", "accessionnumber", "ref"),
    "label": ("included", "labelincluded", "asreviewlabel", "finalincluded"),
    "notes": ("notes", "note"),
}
_ALIASES = {a: f for f, names in COLUMNS.items() for a in names}


def _columns(header: list[str]) -> dict[str, int]:
    found: dict[str, tuple[int, int]] = {}
    for i, col in enumerate(header):
        key = _norm(col)
        field = _ALIASES.get(key) or _ALIASES.get(key.replace("#", ""))
        if field is None:
            continue
        rank = COLUMNS[field].index(key) if key in COLUMNS[field] else 99
        if field not in found or rank < found[field][1]:
            found[field] = (i, rank)
    return {f: i for f, (i, _) in found.items()}


#: whether a cell, stripped, carries the mark our own export puts before a formula-like
#: cell (taken back off when read)
_MARKED = methodcaller("startswith", "'")


_INITIALS_TAIL = re.compile(r"^\S.*\s(?:[A-Z]\.?-?){1,4}\.?$")
_AND = re.compile(r"\sand\s")
_AND_SPLIT = re.compile(r"\s+and\s+")


def parse_authors(cell: str | None) -> list[str]:
    """Split an author cell written by any of the tools we know."""
    if not cell or not cell.strip():
        return []
    text = cell.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = ast.literal_eval(text)
            if isinstance(items, (list, tuple)):
                return [str(i) for i in items]
        except (ValueError, SyntaxError):
            pass
    text = collapse_spaces(text)  # stripped, so each run of whitespace becomes one space
    if ";" in text:
        return split_names(text, ";")
    if _AND.search(text):
        return [p.strip() for p in _AND_SPLIT.split(text) if p.strip()]
    pieces = [p.strip() for p in text.rstrip(".").split(",") if p.strip()]
    if len(pieces) > 1 and all(_INITIALS_TAIL.match(p) for p in pieces):
        return pieces  # "Liu R., Adler D.G." / "Griffin DK, Larkin DM"
    return [text]


def _keywords(cell: str | None) -> list[str]:
    if not cell:
        return []
    text = cell.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            items = ast.literal_eval(text)
            return [str(i) for i in items]
        except (ValueError, SyntaxError):
            pass
    sep = ";" if ";" in text else ("\n" if "\n" in text else ",")
    return split_names(text, sep)


def _label(cell: str | None) -> str | None:
    t = (cell or "").strip().lower()
    if t in ("1", "1.0", "yes", "true", "included", "include", "relevant"):
        return "include"
    if t in ("0", "0.0", "no", "false", "excluded", "exclude", "irrelevant"):
        return "exclude"
    return None  # empty or -1: not labelled


_EMBASE_SOURCE = re.compile(r"^(.+?) \((\d{4})\) (\w+)?(?::(\w+))?(?: \(([^)]*)\))?\.")
_RAYYAN = re.compile(r"RAYYAN-INCLUSION: \{([^}]*)\}")


def _find_header(text: str) -> tuple[str, int, list[str]] | None:
    """(delimiter, index of the header row, header) for the first row naming a title column."""
    best = None
    for delim in (",", ";", "\t"):
        reader = csv.reader(_lines(text), delimiter=delim)
        try:
            for idx, row in enumerate(reader):
                if idx > 20:
                    break
                cols = _columns([c.strip() for c in row])
                if "title" in cols and len(row) > 1:
                    if best is None or len(row) > len(best[2]):
                        best = (delim, idx, [c.strip() for c in row])
                    break
        except csv.Error:
            continue
    return best


def _lines(text: str) -> Iterator[str]:
    """The lines of `text` (newlines as LF), each with its newline, one at a time: the
    csv module reads them as from a file, and a large file is not copied whole (an
    io.StringIO holds four bytes a character)."""
    return (m.group(0) for m in _LINE.finditer(text))


_LINE = re.compile(r"[^\n]*\n|[^\n]+")


def looks_tabular(text: str) -> bool:
    """Two consecutive rows (within the first twenty) with the same number (>1) of cells,
    or a lone header row."""
    for delim in (",", ";", "\t"):
        try:
            rows = [r for _, r in zip(range(20), csv.reader(_lines(text), delimiter=delim))
                    if any(c.strip() for c in r)]
        except csv.Error:
            continue
        if any(len(a) == len(b) > 1 for a, b in zip(rows, rows[1:])):
            return True
        if len(rows) == 1 and len(rows[0]) > 2:
            return True  # a header with no rows under it
    return False


class _RowLines:
    """The lines of a file as the csv module reads them, keeping those of the row being read
    (to tell a row cut off at the end of the file from a caption line)."""

    def __init__(self, lines: Iterator[str]):
        self._lines = lines
        self.row: list[str] = []
        self.done = False  # every line has been read
        self.last = "\n"  # the last line read

    def __iter__(self) -> "_RowLines":
        return self

    def __next__(self) -> str:
        try:
            line = next(self._lines)
        except StopIteration:
            self.done = True
            raise
        self.row.append(line)
        self.last = line
        return line

    def take(self) -> list[str]:
        row, self.row = self.row, []
        return row


#: one CSV row as `csv_rows` cuts it: the cells of the columns recognised (only those not
#: empty, by field), and the labels of abstrackr's reviewer columns with the number of
#: such columns (None: the file has none); `csv_record` makes its record
CsvRow = tuple[dict[str, str], "dict[str, str] | None", int]


def read_csv(text: Text, name: str, reading: Reading) -> Iterator[Labelled]:
    for row in csv_rows(text, name, reading):
        record, label = csv_record(row)
        if label is not None:
            reading.has_labels = True
        yield record, label


def csv_rows(text: Text, name: str, reading: Reading) -> Iterator[CsvRow]:
    """The rows of a CSV/TSV file in order, cut into the cells `csv_record` reads; what is
    wrong with the file as a table (captions, extra cells, rows read into a cell, a cut
    end) goes into `reading`."""
    head = text.head()
    found = _find_header(head)
    if found is None:
        first_line = next((ln for ln in head.split("\n") if ln.strip()), "")[:120]
        raise FileFormatError(
            f"{name} line 1: this CSV/TSV file has no title column (header {first_line!r}); "
            "export it with a Title column or rename the column holding titles to 'title'.")
    del head
    delim, header_idx, header = found
    reading.format = "tsv" if delim == "\t" else "csv"
    reading.marker = "rows"
    cols = _columns(header)
    col_items = tuple(cols.items())
    lines = _RowLines(text.lines())
    reader = csv.reader(lines, delimiter=delim)
    warnings = reading.warnings
    # abstrackr: each reviewer's label column follows a "labeled_at" column
    reviewer_cols = {i: h for i, h in enumerate(header) if i and header[i - 1] == "labeled_at"
                     and h != "labeled_at" and "notes" not in h.lower()}
    n_reviewers = len(reviewer_cols)
    if "label" in cols:
        reading.has_labels = True
    row_start = 1  # the line the row being read starts on
    last_row_start = None
    last_row: list[str] = []
    cut_row = None
    swallowed = 0
    inside = 0
    n_read = 0
    for idx, row in enumerate(reader):
        start, row_start = row_start, reader.line_num + 1
        row_lines = lines.take()
        if idx <= header_idx:
            continue
        last_row_start, last_row = start, row_lines
        cells = list(map(str.strip, row))
        if any(map(_MARKED, cells)):
            cells = [unneutralise(c) if c[:1] == "'" else c for c in cells]
        if not any(cells):
            continue
        if len(cells) == 1 and len(header) > 1:
            # the row runs to the end of a file that ends in no newline, inside a quote
            if lines.done and not lines.last.endswith("\n") and _ends_in_open_quote(row_lines,
                                                                                     delim):
                cut_row = start  # the file ends inside this row's first cell: it is cut off
                continue
            # abstrackr puts a caption line between its labelled and unlabelled rows
            warnings.append(f"{name} line {reader.line_num}: {cells[0][:60]!r} has no delimiter; "
                            "it was read as a caption, not a record.")
            continue
        # a cell can hold a newline only if its row spans lines
        inside = _rows_inside(row, delim, len(header)) if len(row_lines) > 1 else 0
        if inside:
            swallowed += inside
            reading.lost.append(f"{inside} row(s) after line {start}, read into one cell of that "
                                "row (a quote there is not closed where it should be)")
        if len(cells) > len(header) and any(cells[len(header):]):
            warnings.append(f"{name} line {reader.line_num}: the row has {len(cells)} cells but the "
                            f"header has {len(header)}; the extra cells were ignored.")

        n_cells = len(cells)
        n_read += 1
        reading.n_in_file = n_read + swallowed
        given = ({h: cells[i] for i, h in reviewer_cols.items() if i < n_cells and cells[i]}
                 if n_reviewers else None)
        yield {f: cells[i] for f, i in col_items if i < n_cells and cells[i]}, given, n_reviewers
    # a last row that ran into no other row but never closes its quote: the file is cut off
    if cut_row is None and not inside and last_row_start is not None and _ends_in_open_quote(
            last_row, delim):
        warnings.append(f"{name} line {last_row_start}: the file ends inside a quoted cell of "
                        "its last row (cut off?); that record may be incomplete.")
    if cut_row is not None:
        reading.lost.append(f"the row at line {cut_row}, cut off inside its first cell")
    reading.n_in_file = n_read + swallowed + (cut_row is not None)


def csv_record(row: CsvRow) -> Labelled:
    """The record of one row `csv_rows` cut, and its screening label: a pure function of
    the row, so rows can be made into records anywhere, in any order."""
    cells, given, n_reviewers = row
    get = cells.get
    pages = get("pages") or join_pages(get("start_page"), get("end_page"))
    journal, year, volume, issue = get("journal"), get("year"), get("volume"), get("issue")
    packed = _EMBASE_SOURCE.match(journal or "") if not year else None
    if packed:
        # older Embase CSVs pack "Journal (2014) 3:3 (152-160). Date of Publication: 2014"
        journal, year = packed.group(1), packed.group(2)
        volume, issue = volume or packed.group(3), issue or packed.group(4)
        pages = pages or packed.group(5)
    notes = get("notes")
    rayyan = _RAYYAN.search(notes) if notes else None
    extra: dict[str, Any] = {}
    if notes:
        extra["notes"] = notes
    if rayyan:
        extra["rayyan_inclusion"] = dict(re.findall(r'"([^"]+)"=>"([^"]+)"', rayyan.group(1)))
    label = _row_label(get("label"), extra, given, n_reviewers)
    authors = get("authors")
    keywords = get("keywords")
    pub_type = get("pub_type")
    return make_record(
        title=get("title"), abstract=get("abstract"),
        authors=parse_authors(authors) if authors else (),
        year=year, journal=journal, volume=volume, issue=issue,
        pages=pages, doi=get("doi"), pmid=get("pmid"), pmcid=get("pmcid"),
        language=get("language"), pub_types=[pub_type] if pub_type else [],
        keywords=_keywords(keywords) if keywords else (), issn=get("issn"),
        url=first(get("url")), source_id=get("id"), extra=extra or None,
    ), label


def _ends_in_open_quote(lines: list[str], delim: str) -> bool:
    """Whether the last row of a file, given as its lines, opens a quote it never closes."""
    try:
        for _ in csv.reader(lines, delimiter=delim, strict=True):
            pass
    except csv.Error as exc:
        return "unexpected end of data" in str(exc)
    return False


def _rows_inside(row: list[str], delim: str, width: int) -> int:
    """Rows a cell ran into: a quote opened and not closed where it should be reads the
    lines after it into one cell (the csv module does so without a word). Counted as the
    lines inside a cell that, read alone, have a full row's cells; a header of fewer than
    four columns gives too little to tell such a line from prose with commas in it."""
    if width < 4:
        return 0
    n = 0
    for cell in row:
        if "\n" in cell:
            n += sum(1 for line in cell.split("\n")[1:]
                     if len(next(csv.reader([line], delimiter=delim), [])) >= width)
    return n


_TOOL_LABELS = {"1": "include", "-1": "exclude", "0": "maybe",
                "included": "include", "excluded": "exclude", "maybe": "maybe"}


def _row_label(asreview: str | None, extra: dict[str, Any], given: dict[str, str] | None,
               n_reviewers: int) -> str | None:
    """The row's screening label: ASReview's column, else a single abstrackr/Rayyan
    reviewer's (`given`: the labels in the file's `n_reviewers` reviewer columns)."""
    if asreview is not None:
        return _label(asreview)
    if n_reviewers:
        if given:
            extra["reviewer_labels"] = given
        if n_reviewers == 1 and given:
            return _TOOL_LABELS.get(next(iter(given.values())).lower())
    votes = extra.get("rayyan_inclusion") or {}
    if len(votes) == 1:
        return _TOOL_LABELS.get(next(iter(votes.values())).lower())
    return None


# --- lists of identifiers -------------------------------------------------------------

_ID_LINE = re.compile(r"^(?:pmid:?\s*)?\d{1,9}$|^(?:doi:?\s*|https?://(?:dx\.)?doi\.org/)?10\.\d{4,9}/\S+$",
                      re.IGNORECASE)


def is_id_list(text: str) -> bool:
    lines = (ln.strip().rstrip(",;") for ln in _lines(text) if ln.strip() and not ln.startswith("#"))
    # stops at the first line that is no identifier: a large file of another format is not split
    return all(_ID_LINE.match(ln) for ln in _nonempty(lines))


def _nonempty(lines: Iterator[str]) -> Iterator[str]:
    """`lines`, or one line that matches nothing when there is none."""
    empty = True
    for ln in lines:
        empty = False
        yield ln
    if empty:
        yield ""


def read_id_list(text: Text, name: str, reading: Reading) -> Iterator[Labelled]:
    for lineno, line in enumerate(text.split(), 1):
        token = line.strip().rstrip(",;")
        if not token or token.startswith("#"):
            continue
        if not line.startswith("#") and not _ID_LINE.match(token):
            # the start of the file, where its format was told, held identifiers only
            raise FileFormatError(f"{name} line {lineno} ({token[:60]!r}) is not a PMID or DOI, "
                                  "though the lines above it are: give one identifier a line.")
        doi = normalize_doi(token)
        pmid = None if doi else normalize_pmid(token)
        yield make_record(doi=doi, pmid=pmid, source_id=token, needs_metadata=True), None
