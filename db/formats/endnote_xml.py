"""EndNote XML (also written by Zotero and Mendeley), read with xml.etree.

Values may be split into several `<style>` runs (bold, italics); the text of
an element is the concatenation of all its runs. The file is parsed as a
stream (EndNote writes it as one line), a record at a time.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from typing import Iterator

from base.record import Record
from db.formats.common import (FileFormatError, Labelled, Reading, Text, first_doi, make_record,
                               value)


_RECORD_TAG = re.compile(r"<record[\s>]")


def _text(el: ET.Element | None) -> str | None:
    if el is None:
        return None
    return value("".join(el.itertext()))


def _all(rec: ET.Element, path: str) -> list[str]:
    return [t for t in (_text(e) for e in rec.findall(path)) if t]


def _record(rec: ET.Element) -> Record:
    ref_type = rec.find("ref-type")
    pages = _text(rec.find("pages"))
    return make_record(
        title=_text(rec.find("titles/title")),
        abstract=_text(rec.find("abstract")),
        authors=_all(rec, "contributors/authors/author"),
        year=_text(rec.find("dates/year")) or _text(rec.find("dates/pub-dates/date")),
        journal=(_text(rec.find("titles/secondary-title"))
                 or _text(rec.find("periodical/full-title"))
                 or _text(rec.find("periodical/abbr-1"))),
        volume=_text(rec.find("volume")),
        issue=_text(rec.find("number")) or _text(rec.find("issue")),
        pages=pages,
        doi=first_doi(_text(rec.find("electronic-resource-num")), _all(rec, "urls/related-urls/url")),
        pmid=_pmid(rec),
        pmcid=_text(rec.find("custom2")) if "PMC" in (_text(rec.find("custom2")) or "") else None,
        language=_text(rec.find("language")),
        pub_types=[ref_type.get("name")] if ref_type is not None and ref_type.get("name") else [],
        keywords=_all(rec, "keywords/keyword"),
        issn=_text(rec.find("isbn")),
        url=next(iter(_all(rec, "urls/related-urls/url")), None),
        source_id=_text(rec.find("rec-number")),
        extra={k: v for k, v in (("notes", _text(rec.find("notes"))),
                                 ("label", _text(rec.find("label")))) if v},
    )


def read_endnote_xml(text: Text, name: str, reading: Reading) -> Iterator[Labelled]:
    # read as a stream: each <record> is handed on and dropped from the tree once it ends
    parser: ET.XMLPullParser[ET.Element] = ET.XMLPullParser(events=("start", "end"))
    reading.marker = "<record> elements"
    n_tags = 0
    tail = ""  # the end of the last piece, for a <record> tag cut between two pieces
    stack: list[ET.Element] = []
    root: ET.Element | None = None
    has_records = False
    n_read = 0
    try:
        for piece in itertools.chain(text.pieces(), [None]):
            if piece is None:
                parser.close()
            else:
                # a <record> the tree does not hold (inside a comment or CDATA of a damaged
                # export) still counts
                n_tags += len(_RECORD_TAG.findall(tail + piece))
                tail = piece[-7:]
                reading.n_in_file = n_tags
                parser.feed(piece)
            for item in parser.read_events():
                event, el = item[0], item[-1]
                if not isinstance(el, ET.Element):
                    continue  # only start and end events were asked for: never reached
                if event == "start":
                    if root is None:
                        root = el
                        if root.tag not in ("xml", "records"):
                            raise _not_endnote(name)
                    has_records = has_records or el.tag == "records"
                    stack.append(el)
                    continue
                stack.pop()
                if el.tag == "record" and el is not root:
                    n_read += 1
                    yield _record(el), None
                    if stack:
                        stack[-1].remove(el)
    except ET.ParseError as exc:
        line, col = exc.position
        raise FileFormatError(f"{name} is not well-formed XML at line {line}, column {col + 1} "
                              "(truncated or damaged export): export it again.") from None
    if not n_read and not has_records:
        raise _not_endnote(name)


def _not_endnote(name: str) -> FileFormatError:
    return FileFormatError(f"{name} is XML but not an EndNote XML export (no <records>): "
                           "export the library as EndNote XML, RIS or BibTeX.")


def _pmid(rec: ET.Element) -> str | None:
    acc = _text(rec.find("accession-num"))
    db = (_text(rec.find("remote-database-name")) or "") + (_text(rec.find("remote-database-provider")) or "")
    if acc and acc.isdigit() and (not db or "nlm" in db.lower() or "pubmed" in db.lower()
                                  or "medline" in db.lower()):
        return acc
    return None
