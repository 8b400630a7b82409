"""The demo world's full texts: Unpaywall, the PMC ID converter and OA web service, and
the files themselves, answering for a generated world in the real services' formats.

Each work's open-access fate is drawn from the world's seed and the work's key
alone (never from the world's own random stream, so adding full texts changed
no other answer): a share is open as a publisher PDF; some sit in PubMed
Central (Unpaywall knows only their landing page there, the PMC OA service
gives the PDF, or only the XML through E-utilities); some have a landing page
only; some links are broken (404), some give an HTML login page instead of the
PDF (OpenAlex knows a good repository copy of half of those); the rest are
closed. The PDFs are generated on request: a page with the work's title, DOI
and abstract.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import unquote
from xml.sax.saxutils import escape

from cluster.demo.loopback import Request, Response
from cluster.demo.pdf import make_pdf
from cluster.demo.world import Work, World

#: each fate and its share of the world's works (the rest are closed)
FATES = (("pdf", 0.36), ("pmc", 0.12), ("landing", 0.08), ("broken", 0.07), ("html", 0.07))
PMCID_BASE = 9000000


def fate(world: World, w: Work) -> str:
    """pdf | pmc | landing | broken | html | closed, the same for a work in every run."""
    digest = hashlib.sha256(f"{world.seed}:full text:{w.key}".encode()).digest()
    x = int.from_bytes(digest[:8], "big") / 2 ** 64
    for name, share in FATES:
        if x < share:
            if name == "pmc":
                return "pmc" if w.pmid else "closed"
            # the open web finds copies by DOI: a work without one is found through PMC only
            return name if w.doi else "closed"
        x -= share
    return "closed"


def has_repository_copy(w: Work) -> bool:
    """Half of the works with a bad publisher link have a good copy OpenAlex knows of."""
    return w.key % 2 == 0


def pmcid(w: Work) -> str:
    """The PMCID PubMed's records give the work (`ArticleId IdType="pmc"`)."""
    return f"PMC{PMCID_BASE + w.key}"


def pdf_of(w: Work) -> bytes:
    return make_pdf([f"{w.title}\n\n{w.journal} {w.year};{w.volume}({w.issue}):{w.pages}\n"
                     f"https://doi.org/{w.doi}\n\nAbstract\n{w.abstract}"],
                    title=w.title, subject=f"doi:{w.doi}" if w.doi else None)


def _host(req: Request) -> str:
    return "http://" + str(req.headers.get("Host") or "127.0.0.1")


def _json(obj: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(obj).encode("utf-8"), content_type="application/json")


class FullTextServices:
    """Handlers for /unpaywall/, /pmc/ and /files/, and what OpenAlex and PubMed add."""

    def __init__(self, world: World):
        self.world = world
        self.by_pmcid = {pmcid(w): w for w in world.works if fate(world, w) == "pmc"}

    # -- Unpaywall
    def unpaywall(self, req: Request) -> Response:
        doi = unquote(req.path[len("/unpaywall/"):]).strip("/").lower()
        w = self.world.by_doi.get(doi)
        if w is None:
            return _json({"HTTP_status_code": 404, "error": True,
                          "message": f"'{doi}' isn't in Unpaywall. See "
                                     f"https://support.unpaywall.org/a/solutions/articles/"
                                     f"44001900286"}, 404)
        if not req.get("email"):
            return _json({"HTTP_status_code": 422, "error": True,
                          "message": "Email address required in API call, see "
                                     "http://unpaywall.org/products/api"}, 422)
        f = fate(self.world, w)
        host = _host(req)
        loc: dict[str, Any] | None = None
        if f in ("pdf", "broken", "html"):
            url = f"{host}/files/gone/{w.key}.pdf" if f == "broken" else f"{host}/files/{w.key}.pdf"
            loc = {"host_type": "publisher", "license": "cc-by", "url": url, "url_for_pdf": url,
                   "url_for_landing_page": f"https://doi.org/{w.doi}",
                   "version": "publishedVersion", "evidence": "open (via free pdf)"}
        elif f == "pmc":
            page = f"https://www.ncbi.nlm.nih.gov/pmc/articles/{pmcid(w)}"
            loc = {"host_type": "repository", "license": None, "url": page, "url_for_pdf": None,
                   "url_for_landing_page": page, "version": "acceptedVersion",
                   "evidence": "oa repository (via pmcid lookup)"}
        elif f == "landing":
            page = f"{host}/files/{w.key}/landing"
            loc = {"host_type": "publisher", "license": None, "url": page, "url_for_pdf": None,
                   "url_for_landing_page": page, "version": "publishedVersion",
                   "evidence": "open (via page says Open Access)"}
        if loc is not None:
            loc["is_best"] = True
        return _json({"doi": w.doi, "doi_url": f"https://doi.org/{w.doi}", "title": w.title,
                      "is_oa": loc is not None, "oa_status": "closed" if loc is None else "green",
                      "best_oa_location": loc, "oa_locations": [loc] if loc else [],
                      "year": w.year, "journal_name": w.journal, "genre": "journal-article"})

    # -- PMC: the ID converter and the OA web service
    def pmc(self, req: Request) -> Response:
        if "idconv" in req.path:
            records = []
            for ident in ",".join(req.get_all("ids")).split(","):
                ident = ident.strip()
                w = self.world.by_pmid.get(ident) or self.world.by_doi.get(ident.lower())
                if w is not None and fate(self.world, w) == "pmc":
                    records.append({"pmcid": pmcid(w), "pmid": w.pmid, "doi": w.doi})
                elif ident:
                    records.append({"requested-id": ident, "status": "error",
                                    "errmsg": "invalid article id"})
            return _json({"status": "ok", "responseDate": "2026-06-01 00:00:00",
                          "records": records})
        ident = (req.get("id") or "").upper()
        head = f"<OA><responseDate>2026-06-01 00:00:00</responseDate><request id=\"{ident}\"/>"
        w = self.by_pmcid.get(ident)
        if w is None:
            known = re.fullmatch(r"PMC(\d+)", ident) and (
                PMCID_BASE <= int(ident[3:]) < PMCID_BASE + len(self.world.works))
            code, text = (("idIsNotOpenAccess", "is not Open Access") if known
                          else ("idDoesNotExist", "does not exist"))
            body = f"{head}<error code=\"{code}\">identifier '{ident}' {text}</error></OA>"
        else:
            link = (f"<link format=\"pdf\" href=\"{_host(req)}/files/pmc/{w.key}.pdf\"/>"
                    if w.key % 3 else "")
            body = (f"{head}<records returned-count=\"1\" total-count=\"1\"><record id=\"{ident}\" "
                    f"citation=\"{escape(w.journal)}. {w.year}\" license=\"CC BY\" "
                    f"retracted=\"no\">{link}</record></records></OA>")
        return Response(200, body.encode("utf-8"), content_type="text/xml")

    def pmc_xml(self, ids: list[str]) -> bytes:
        """E-utilities' efetch db=pmc: the JATS XML of OA articles."""
        articles = []
        for ident in ids:
            w = self.by_pmcid.get(f"PMC{ident}".upper().replace("PMCPMC", "PMC"))
            if w is None:
                continue
            articles.append(
                f"<article><front><article-meta><article-id pub-id-type=\"doi\">{escape(w.doi or '')}"
                f"</article-id><title-group><article-title>{escape(w.title)}</article-title>"
                f"</title-group></article-meta></front><body><sec><title>Abstract</title><p>"
                f"{escape(w.abstract)}</p></sec></body></article>")
        return ("<?xml version=\"1.0\" ?>\n<pmc-articleset>" + "".join(articles)
                + "</pmc-articleset>").encode("utf-8")

    # -- what OpenAlex adds to a work
    def openalex_locations(self, w: Work, host: str) -> list[dict[str, Any]]:
        f = fate(self.world, w)
        out = []
        if f in ("pdf", "html", "broken"):
            url = f"{host}/files/gone/{w.key}.pdf" if f == "broken" else f"{host}/files/{w.key}.pdf"
            out.append({"is_oa": True, "pdf_url": url, "landing_page_url": f"https://doi.org/{w.doi}",
                        "source": {"display_name": w.journal, "type": "journal"},
                        "license": "cc-by", "version": "publishedVersion"})
        if f in ("html", "broken") and has_repository_copy(w):
            out.append({"is_oa": True, "pdf_url": f"{host}/files/repository/{w.key}.pdf",
                        "landing_page_url": f"{host}/files/{w.key}/landing",
                        "source": {"display_name": "Eastfield Research Repository",
                                   "type": "repository"},
                        "license": "cc-by", "version": "acceptedVersion"})
        return out

    # -- the files
    def files(self, req: Request) -> Response:
        rest = req.path[len("/files/"):]
        m = re.fullmatch(r"(?:(pmc|repository|gone)/)?(\d+)(\.pdf|/landing)", rest)
        w = self.world.works[int(m.group(2))] if m and int(m.group(2)) < len(self.world.works) \
            else None
        if w is None or m is None or m.group(1) == "gone":
            return Response(404, b"<html><body><h1>Not Found</h1></body></html>",
                            content_type="text/html")
        f = fate(self.world, w)
        if m.group(3) == "/landing" or (f == "html" and m.group(1) is None):
            page = (f"<!DOCTYPE html><html><head><title>{escape(w.title)}</title></head><body>"
                    f"<h1>{escape(w.title)}</h1><form action=\"/login\">Sign in through your "
                    f"institution to read the full text</form></body></html>")
            # a login page served as if it were the PDF, as publishers' servers do
            return Response(200, page.encode("utf-8"), content_type="application/pdf"
                            if m.group(3) == ".pdf" else "text/html")
        return Response(200, pdf_of(w), content_type="application/pdf")
