"""Small, valid PDFs for the demo world's full texts (and the tests): a page or two of
text in a standard font, with a title and subject in the document information.

Written from the PDF 1.4 structure (header, numbered objects, a cross-reference
table of byte offsets, trailer); no library is needed to make them, and any
reader, pypdf included, opens them and extracts their text.
"""

from __future__ import annotations


def _escape(text: str) -> str:
    text = text.encode("latin-1", "replace").decode("latin-1")
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _wrap(text: str, width: int = 80) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split():
            if line and len(line) + 1 + len(word) > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
    return lines


def make_pdf(pages: list[str], *, title: str | None = None, subject: str | None = None,
             text: bool = True) -> bytes:
    """A PDF of `pages` (each a text, wrapped); `text=False` draws no text at all (a page
    as a scan would look to a text extractor)."""
    objects: list[bytes] = []
    n_pages = len(pages)
    # 1 catalog, 2 page tree, 3 font, 4 info, then a page and its content per page
    kids = " ".join(f"{5 + 2 * i} 0 R" for i in range(n_pages))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {n_pages} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    info = []
    if title:
        info.append(f"/Title ({_escape(title)})")
    if subject:
        info.append(f"/Subject ({_escape(subject)})")
    objects.append(f"<< {' '.join(info)} /Producer (cluster demo) >>".encode("latin-1"))
    for i, page in enumerate(pages):
        content = 6 + 2 * i
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources "
                       f"<< /Font << /F1 3 0 R >> >> /Contents {content} 0 R >>".encode())
        if text:
            body = ["BT", "/F1 11 Tf", "14 TL", "56 780 Td"]
            body += [f"({_escape(line)}) '" for line in _wrap(page)[:50]]
            body.append("ET")
        else:
            body = ["0.9 g", "56 56 483 730 re f"]
        stream = "\n".join(body).encode("latin-1")
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream
                       + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + obj + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info 4 0 R >>\nstartxref\n"
            f"{xref}\n%%EOF\n").encode()
    return bytes(out)
