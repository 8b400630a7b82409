"""Shared pieces of the file readers: decoding, the read result, errors, names.

Every reader is a pure function from the lines of a file to its records, one at
a time, with what it learns on the way (warnings, counts) in a `Reading`;
nothing here touches the store. Decoding lives here because exports arrive as UTF-8 with or
without a BOM, as Latin-1/cp1252, and with any mixture of line endings.
"""

from __future__ import annotations

import codecs
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Generator, Iterable, Iterator, Sequence

from base.errors import ClusterError
from base.record import (Record, as_tuple, normalize_doi, normalize_language,
                         normalize_pages, normalize_pmcid, normalize_pmid, normalize_year,
                         valid_text, without_markup)


class FileFormatError(ClusterError):
    """A file that cannot be imported; the message names the file (and line)."""


@dataclass(frozen=True)
class ReadResult:
    """What a reader got out of one file.

    `labels` is empty or has one entry per record: "include", "exclude" or
    None (unlabelled), for files that carry screening labels. `warnings` lists
    what could not be recovered, by line or record number.

    `n_in_file` is how many records the file holds by its format's own markers
    (`marker` names them: "TY lines", "PMID lines", "rows"...), counted apart
    from the parse, and `lost` names each record the reader could not recover
    ("record 45 (line 812: its TY line is damaged)"). A reader that counts
    nothing leaves `n_in_file` None: the file holds what was read.
    """

    format: str
    records: tuple[Record, ...]
    labels: tuple[str | None, ...] = ()
    warnings: tuple[str, ...] = ()
    n_in_file: int | None = None
    marker: str = ""
    lost: tuple[str, ...] = ()

    @property
    def held(self) -> int:
        """Records the file holds: its markers' count, never fewer than were read."""
        return max(self.n_in_file or 0, len(self.records))

    def shortfall(self, name: str) -> str | None:
        """One sentence when fewer records were read than the file holds, naming the lost ones."""
        return shortfall(name, self.held, len(self.records), self.marker, self.lost)


def shortfall(name: str, held: int, n_read: int, marker: str, lost: Sequence[str]) -> str | None:
    """One sentence when fewer records were read (`n_read`) than the file holds (`held`, by
    its `marker`s), naming the `lost` ones."""
    if held <= n_read:
        return None
    text = (f"{name} holds {held} records ({marker}) but {n_read} "
            f"{'was' if n_read == 1 else 'were'} read")
    if lost:
        shown = ", ".join(lost[:10]) + (f" and {len(lost) - 10} more" if len(lost) > 10 else "")
        text += f"; not recovered: {shown}"
    return text + "."


@dataclass
class Reading:
    """What a reader learns about a file while its records stream past.

    Filled in as the reader goes and complete once its records are exhausted:
    the fields mean what `ReadResult`'s do; `has_labels` says the file carries
    screening labels (a label column, even an empty one).
    """

    format: str
    warnings: list[str] = field(default_factory=list)
    n_in_file: int | None = None
    marker: str = ""
    lost: list[str] = field(default_factory=list)
    has_labels: bool = False


#: a record and its screening label ("include", "exclude", None...)
Labelled = tuple[Record, "str | None"]

#: bytes read from disk at a time: below the size malloc serves from mmap, as buffers of
#: a megabyte, allocated and freed by turns, grew the heap by the size of the file
CHUNK = 2**16
#: characters of a file's start `Text.head` holds, at least (its format is told from them)
HEAD = 2**20
#: cp1252 leaves these bytes undefined: a file holding one is read as Latin-1
_CP1252_UNDEFINED = (b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d")
_BINARY = ("{name} is a binary file, not a reference export: "
           "export RIS, BibTeX, MEDLINE, EndNote XML or CSV and import that.")


def _chunks(path: Path, name: str) -> Iterator[bytes]:
    try:
        with path.open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
    except OSError as exc:
        raise FileFormatError(f"{path} cannot be read ({exc.strerror}).") from None


@dataclass(frozen=True)
class Scan:
    """What one pass over a file's bytes tells before any record is read: its
    checksum and the codec its text is read with (see `decode`)."""

    sha256: str
    codec: str
    bom: int  # bytes of a UTF-8 byte-order mark to skip


def scan(path: Path, name: str) -> Scan:
    """The checksum and codec of a file, reading it a chunk at a time: UTF-16 with a BOM,
    else UTF-8 when every byte decodes, else cp1252, else Latin-1 (as `decode` chooses)."""
    digest = hashlib.sha256()
    codec, bom = "utf-8", 0
    check: codecs.IncrementalDecoder | None = None
    utf8 = True
    undefined = False
    for chunk in _chunks(path, name):
        digest.update(chunk)
        if check is None:
            if chunk.startswith((b"\xff\xfe", b"\xfe\xff")):
                codec = "utf-16"
            elif b"\x00" in chunk[:65536]:
                raise FileFormatError(_BINARY.format(name=name))
            elif chunk.startswith(b"\xef\xbb\xbf"):
                bom = 3
            check = codecs.getincrementaldecoder(codec)("surrogatepass")
            chunk = chunk[bom:]
        if codec == "utf-16":
            try:
                check.decode(chunk)
            except UnicodeDecodeError:
                raise FileFormatError(f"{name} starts like UTF-16 text but cannot be decoded: "
                                      "save it as UTF-8 and import it again.") from None
            continue
        if utf8:
            try:
                check.decode(chunk)
            except UnicodeDecodeError:
                utf8 = False
        undefined = undefined or any(b in chunk for b in _CP1252_UNDEFINED)
    if check is not None:
        try:
            check.decode(b"", final=True)
        except UnicodeDecodeError:
            if codec == "utf-16":
                raise FileFormatError(f"{name} starts like UTF-16 text but cannot be decoded: "
                                      "save it as UTF-8 and import it again.") from None
            utf8 = False
    if codec != "utf-16" and not utf8:
        codec = "latin-1" if undefined else "cp1252"
    return Scan(digest.hexdigest(), codec, bom)


def _high_surrogate_end(text: str) -> bool:
    """Whether `text` ends in a high surrogate, or in one and a newline (where a regular
    expression's `$` matches too): checked at the end alone, as a search would try every
    position of a chunk."""
    last = text[-1:]
    if last == "\n":
        last = text[-2:-1]
    return "\ud800" <= last <= "\udbff"


def _newlines(text: str) -> str:
    """CRLF and lone CR as LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


class Text:
    """A file's text as `decode` gives it (valid Unicode, LF newlines, no BOM), read from
    disk a chunk at a time each time it is iterated, so it is never held whole.

    `bytes_read` counts the bytes read by the iteration under way.
    """

    def __init__(self, path: Path, name: str, found: Scan):
        self.path, self.name, self.found = path, name, found
        self.bytes_read = 0

    def pieces(self) -> Generator[str, None, None]:
        """The text in pieces of about a chunk each, cut anywhere but inside a newline."""
        decoder = codecs.getincrementaldecoder(self.found.codec)(
            "surrogatepass" if self.found.codec in ("utf-8", "utf-16") else "replace")
        self.bytes_read = 0
        carry, start = "", True  # start: no text yet (a BOM or FEFFs are dropped)
        for chunk in _chunks(self.path, self.name):
            skip = max(self.found.bom - self.bytes_read, 0)
            self.bytes_read += len(chunk)
            if skip:
                chunk = chunk[skip:]
            text = carry + decoder.decode(chunk)
            if start:
                text = text.lstrip("\ufeff")
                start = not text
            # a CR may be half of a CRLF, a high surrogate half of a pair (CESU-8)
            cut = len(text) - 1 if text.endswith("\r") or _high_surrogate_end(text) else len(text)
            text, carry = text[:cut], text[cut:]
            if text:
                yield _newlines(valid_text(text))
        text = carry + decoder.decode(b"", final=True)
        if start:
            text = text.lstrip("\ufeff")
        if text:
            yield _newlines(valid_text(text))

    def split(self) -> Iterator[str]:
        """The lines without their newlines, as `text.split("\\n")` gives them (a text
        ending in a newline ends in an empty line)."""
        parts: list[str] = []
        for piece in self.pieces():
            segments = piece.split("\n")
            if len(segments) == 1:
                parts.append(piece)  # a line longer than a chunk: joined once it ends
                continue
            if parts:
                parts.append(segments[0])
                segments[0] = "".join(parts)
            parts = [segments.pop()]
            yield from segments
        yield "".join(parts)

    def lines(self) -> Iterator[str]:
        """The lines with their newlines, as a file opened in text mode gives them."""
        carry: list[str] = []  # the start of a line that runs on into the next piece
        for piece in self.pieces():
            if "\n" not in piece:
                carry.append(piece)
                continue
            lines = piece.split("\n")
            if carry:
                carry.append(lines[0])
                lines[0] = "".join(carry)
            tail = lines.pop()
            carry = [tail] if tail else []
            # each piece's lines made at once, then handed out without a step of Python each
            yield from [line + "\n" for line in lines]
        if carry:
            yield "".join(carry)

    def head(self, size: int | None = None) -> str:
        """The first whole lines of the text, some `size` characters (by default `HEAD`),
        or all of a shorter text."""
        size = HEAD if size is None else size
        parts: list[str] = []
        n = 0
        pieces = self.pieces()
        for piece in pieces:
            parts.append(piece)
            n += len(piece)
            if n >= size and "\n" in piece:
                pieces.close()
                text = "".join(parts)
                return text[:text.rfind("\n", 0, max(size, text.find("\n") + 1)) + 1]
        return "".join(parts)


#: a reader: (the file's text, its name, the `Reading` it fills in) -> its records with their
#: labels, one at a time
Reader = Callable[[Text, str, Reading], Iterator[Labelled]]


def decode(data: bytes, name: str) -> str:
    """Text of a file: BOM removed, UTF-8 else cp1252/Latin-1, newlines as LF, no lone surrogates.

    A lone CR is a line break too: some exports (Web of Science RIS, Citavi)
    put bare CRs between lines of one field.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = valid_text(data.decode("utf-16", "surrogatepass"))
        except UnicodeDecodeError:
            raise FileFormatError(f"{name} starts like UTF-16 text but cannot be decoded: "
                                  "save it as UTF-8 and import it again.") from None
    else:
        if b"\x00" in data[:65536]:
            raise FileFormatError(_BINARY.format(name=name))
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            # surrogates written as UTF-8 (CESU-8, or an unpaired one): replaced, not a reason
            # to read the whole file as cp1252
            text = valid_text(data.decode("utf-8", "surrogatepass"))
        except UnicodeDecodeError:
            # cp1252 is a superset of Latin-1's printable range; bytes it leaves
            # undefined (0x81, 0x8d...) fall back to Latin-1 one by one
            text = data.decode("cp1252", errors="replace")
            if "\ufffd" in text:
                text = data.decode("latin-1")
    text = text.lstrip("\ufeff")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    require_text(text, name)
    return text


def require_text(text: str, name: str) -> None:
    """Refuse a file whose start is mostly control characters (a binary file)."""
    if _looks_binary(text):
        raise FileFormatError(_BINARY.format(name=name))


def _looks_binary(text: str) -> bool:
    sample = text[:8192]
    if not sample:
        return False
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\n\t\f\v")
    return controls / len(sample) > 0.05


# --- names ---------------------------------------------------------------------

_INITIALS = re.compile(r"^(?:[A-Z]\.?-?){1,4}$")


def normalize_author(value: Any) -> str | None:
    """An author as "Family, Given" where the source lets us tell.

    "Liu R." and "Casbon JA" (family name then initials, as Embase, MEDLINE AU
    and EPPI write them) become "Liu, R." and "Casbon, J. A."; a name that
    already has a comma is only tidied, so the function is idempotent.
    """
    text = _clean_text(value)
    if not text:
        return None
    text = text.strip(" ;,")
    if not text:
        return None
    if "," in text:
        family, _, given = text.partition(",")
        family, given = family.strip(), given.strip()
        return f"{family}, {given}" if given else family
    parts = text.split()
    if len(parts) >= 2:
        tail: list[str] = []
        while len(parts) > 1 and _INITIALS.match(parts[-1]):
            tail.insert(0, parts.pop())
        if tail:
            letters = [c for c in "".join(tail) if c.isalpha()]
            return f"{' '.join(parts)}, {' '.join(c + '.' for c in letters)}"
    return text


@dataclass(frozen=True)
class PersonName:
    """One author as reference formats write them: family, given, suffix ("Jr.")."""

    family: str
    given: str = ""
    suffix: str = ""


_LINEAGE = re.compile(r"^(?:Jr|Sr|II|III|IV)\.?$", re.IGNORECASE)
# "CM Danu", "DA de Souza Fidelis": initials first, then a surname with lower case in it
_GIVEN_FIRST = re.compile(r"^((?:[A-Z]\.?-?){1,3})\s+(\S.*)$")
_INITIALS_GIVEN = re.compile(r"^(?:[A-Z]\.?-?\s?){1,4}$")


def _initials_first(text: str) -> PersonName | None:
    m = _GIVEN_FIRST.match(text)
    if not m or not any(c.islower() for c in m.group(2)):
        return None
    return PersonName(m.group(2), " ".join(c + "." for c in m.group(1) if c.isalpha()))


def _person(text: str, guess_order: bool) -> PersonName:
    """A name with no comma, read the way BibTeX reads "First von Last"."""
    if re.search(r"\s(?:and|&)\s", text, re.IGNORECASE):
        return PersonName(text)  # an organisation: "Johnson and Johnson"
    named = _initials_first(text)
    if named:
        return named
    words = text.split()
    if len(words) == 1 or not guess_order:
        return PersonName(text)
    von = next((i for i in range(1, len(words) - 1) if words[i][:1].islower()), len(words) - 1)
    return PersonName(" ".join(words[von:]), " ".join(words[:von]))


def person_names(authors: Iterable[str], *, guess_order: bool = True) -> list[PersonName]:
    """The people in a record's author list, each as family, given and suffix.

    Some sources put several people in one author string: Google Scholar
    ("I Surname, L Other, N Third") and Scopus CSV ("Siciliano, R., Aria, M.").
    Those are split; one "Family, Given" name is never split. A name with no
    comma ("Tom Cruise", "Dos Santos") is split the way BibTeX would read it,
    or with `guess_order=False` kept whole as the family name.
    """
    out: list[PersonName] = []
    for name in authors:
        parts = [p.strip() for p in name.split(",") if p.strip()]
        if not parts:
            continue
        given_first = [_initials_first(p) for p in parts]
        if len(parts) >= 2 and all(given_first):
            out.extend(p for p in given_first if p)
        elif len(parts) >= 4 and len(parts) % 2 == 0 and all(
                _INITIALS_GIVEN.match(g) for g in parts[1::2]):
            out.extend(PersonName(f, g) for f, g in zip(parts[::2], parts[1::2]))
        elif len(parts) == 1:
            out.append(_person(parts[0], guess_order))
        elif len(parts) == 2 and len(parts[1].split()) > 1 and _LINEAGE.match(parts[1].split()[-1]):
            given, _, suffix = parts[1].rpartition(" ")
            out.append(PersonName(parts[0], given, suffix))  # "Bitter, Patrick Jr"
        elif len(parts) == 3 and _LINEAGE.match(parts[1]):
            out.append(PersonName(parts[0], parts[2], parts[1]))  # BibTeX order
        elif len(parts) == 3 and _LINEAGE.match(parts[2]):
            out.append(PersonName(parts[0], parts[1], parts[2]))
        else:
            # a stray comma inside the given names ("van Dijk, Joris,D.")
            out.append(PersonName(parts[0], " ".join(parts[1:])))
    return out


def split_names(value: str | None, sep: str = ";") -> list[str]:
    if not value:
        return []
    return [p.strip() for p in value.split(sep) if p.strip()]


def authors_tuple(values: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        a = normalize_author(v)
        if a:
            out.append(a)
    return tuple(out)


# --- building records --------------------------------------------------------------

_NA = {"na", "nan", "none", "null", "n/a"}
_NA_LONGEST = max(map(len, _NA))


_MOJIBAKE = re.compile("[ÃÂâ][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
                       "\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039"
                       "\u203a\u20ac\u2122]")


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 that was read as cp1252 and saved again ("â‰¥18" -> "≥18").

    Applied only when the whole string converts back cleanly, so text that
    merely contains "Ã" or "â" is left alone.
    """
    if (text.isascii() or ("\u00c3" not in text and "\u00c2" not in text and "\u00e2" not in text)
            or not _MOJIBAKE.search(text)):
        return text
    raw = bytearray()
    for ch in text:
        try:
            raw += ch.encode("cp1252")
        except UnicodeEncodeError:
            if ord(ch) > 0xFF:
                return text
            raw.append(ord(ch))  # bytes cp1252 leaves undefined survive as U+0080-U+009F
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return text


#: the ASCII whitespace characters other than the space
_ASCII_BREAKS = b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"


def collapse_spaces(text: str) -> str:
    """`" ".join(text.split())`, without splitting a text it would not change: one whose
    only whitespace is single spaces inside it (every other whitespace character is
    unprintable; in ASCII text they are looked for as bytes, much faster)."""
    if "  " not in text and text[:1] != " " and text[-1:] != " ":
        if text.isascii():
            raw = text.encode("ascii")
            if len(raw.translate(None, _ASCII_BREAKS)) == len(raw):
                return text
        elif text.isprintable():
            return text
    return " ".join(text.split())


def _clean_text(value: Any) -> str | None:
    """`base.record.clean_text`, with its work skipped where it would change nothing (every
    author of an import goes through it)."""
    if value is None:
        return None
    text = value if type(value) is str else str(value)
    if "<" in text or "&" in text:
        text = without_markup(text)
    return collapse_spaces(text) or None


def clean_markup(v: Any) -> str | None:
    """Whitespace collapsed, HTML/JATS tags removed and character references
    decoded ("&amp;" -> "&"), but "p < 0.05 and n > 3" kept."""
    if v is None:
        return None
    text = v if type(v) is str else str(v)
    if not text.isascii():
        text = fix_mojibake(text)
    if "<" in text or "&" in text:
        text = without_markup(text)
    return collapse_spaces(text) or None


def value(v: Any) -> str | None:
    """A cleaned scalar, with the "NA"/"nan" placeholders of R and pandas as None."""
    text = clean_markup(v)
    if text is None or len(text) <= _NA_LONGEST and text.lower() in _NA:
        return None
    return text


def first(*values: Any) -> str | None:
    for v in values:
        if isinstance(v, (list, tuple)):
            for item in v:
                t = value(item)
                if t:
                    return t
            continue
        t = value(v)
        if t:
            return t
    return None


def join_pages(start: Any, end: Any = None) -> str | None:
    s, e = value(start), value(end)
    if s and e and "-" not in s:
        return normalize_pages(f"{s}-{e}")
    return normalize_pages(s or e) if (s or e) else None


_ISSN = re.compile(r"\b(\d{4}-?\d{3}[\dXx])\b")


def first_issn(*values: Any) -> str | None:
    for v in values:
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            m = _ISSN.search(str(item or ""))
            if m:
                s = m.group(1).upper().replace("-", "")
                return f"{s[:4]}-{s[4:]}"
    return None


def first_doi(*values: Any) -> str | None:
    for v in values:
        for item in (v if isinstance(v, (list, tuple)) else [v]):
            d = normalize_doi(item)
            if d:
                return d
    return None


def _texts(values: Iterable[Any]) -> tuple[str, ...]:
    """`as_tuple` of the values that are not empty placeholders."""
    return as_tuple(x for x in values if value(x)) if values else ()


def make_record(*, title: Any = None, abstract: Any = None, authors: Iterable[Any] = (),
                year: Any = None, journal: Any = None, volume: Any = None, issue: Any = None,
                pages: Any = None, doi: Any = None, pmid: Any = None, pmcid: Any = None,
                language: Any = None, pub_types: Iterable[Any] = (), keywords: Iterable[Any] = (),
                issn: Any = None, url: Any = None, source_id: Any = None,
                needs_metadata: bool = False, extra: dict | None = None) -> Record:
    """A `Record` with every field run through the shared normalisers."""
    # the shortcuts below (an empty field, a value already in its normal form) give what
    # the normalisers would: every record of an import comes through here
    pid = normalize_pmid(pmid) if pmid is not None else None
    page_text = value(pages)
    return Record(
        title=value(title), abstract=value(abstract),
        authors=authors_tuple(authors) if authors else (),
        year=normalize_year(value(year)), journal=value(journal), volume=value(volume),
        issue=value(issue), pages=normalize_pages(page_text) if page_text else None,
        doi=first_doi(doi) if doi is not None else None, pmid=pid,
        pmcid=normalize_pmcid(value(pmcid)) if pmcid is not None else None,
        language=() if language is None else normalize_language(
            value(language) if isinstance(language, str) else
            [x for x in (language or ()) if value(x)]),
        pub_types=_texts(pub_types), keywords=_texts(keywords),
        issn=first_issn(issn) if issn is not None else None, url=value(url),
        source_id=value(source_id), needs_metadata=needs_metadata, extra=dict(extra or {}),
    )
