"""Is this file really a full text? The bytes decide, never the name or the server.

A server that sends a login page, a cookie wall or a landing page instead of
the PDF usually says 200 and often even `application/pdf`; so a file counts
as a PDF only when it starts with the PDF signature and pypdf can open it, and
as PMC XML only when it is a JATS article with a body. A PDF with no text
layer (a scan) is a full text a person can read, so it is kept, and said.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

#: how far into a file the PDF signature may sit (PDF 1.7, 7.5.2: readers look this far)
PDF_HEAD = 1024
#: pages read for text and identifiers; the first ones hold the title and the DOI
PAGES_READ = 2


class NotFullText(Exception):
    """The file is not a usable full text; the message says what it is instead."""


@dataclass(frozen=True)
class Checked:
    kind: str                    # pdf | xml
    pages: int | None = None
    text: str = ""               # the first pages' text (PDF) or the article title (XML)
    title: str | None = None     # the PDF's own metadata title
    subject: str | None = None   # the PDF's metadata subject (publishers put the DOI here)

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())


def _describe(head: bytes) -> str:
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or b"<html" in lowered[:512]:
        return "an HTML page (a login, cookie or landing page) instead of the full text"
    if not head.strip():
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive, not a PDF"
    if head.startswith(b"\x1f\x8b"):
        return "a compressed archive, not a PDF"
    return "not a PDF (it does not start with the PDF signature)"


def check_file(path: Path) -> Checked:
    """What `path` holds as a full text, or `NotFullText` saying what it is instead."""
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if b"%PDF-" in head[:PDF_HEAD]:
        return _check_pdf(path)
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<?xml") or stripped.startswith((b"<pmc-articleset", b"<article")):
        return _check_xml(path, head)
    raise NotFullText(_describe(head))


def _check_pdf(path: Path) -> Checked:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    # pypdf warns through logging about every repairable oddity; those are not the user's news
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                reader.decrypt("")
            except Exception:
                raise NotFullText("a PDF locked with a password") from None
        pages = len(reader.pages)
        text = "\n".join((reader.pages[i].extract_text() or "")
                         for i in range(min(PAGES_READ, pages)))
        meta = reader.metadata
        title = str(meta.title).strip() if meta and meta.title else None
        subject = str(meta.subject).strip() if meta and meta.subject else None
    except NotFullText:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
            RecursionError, OSError) as exc:
        raise NotFullText(f"a damaged PDF that cannot be read ({type(exc).__name__})") from None
    if pages == 0:
        raise NotFullText("a PDF with no pages")
    return Checked("pdf", pages, text, title or None, subject or None)


def _check_xml(path: Path, head: bytes) -> Checked:
    data = path.read_bytes()
    if b"<!ENTITY" in data:
        raise NotFullText("an XML file declaring entities, which no PMC article does")
    if not re.search(rb"<(pmc-articleset|article)[\s>]", data[:8192]):
        raise NotFullText("an XML file that is not a JATS article")
    if not re.search(rb"<body[\s>]", data):
        raise NotFullText("PMC XML without the article's body (the publisher does not allow "
                          "the full text in XML)")
    m = re.search(rb"<article-title[^>]*>(.*?)</article-title>", data, flags=re.S)
    raw = re.sub(r"<[^>]+>", "", m.group(1).decode("utf-8", "replace")) if m else ""
    title = re.sub(r"\s+", " ", raw).strip()
    return Checked("xml", None, title, title or None, None)
