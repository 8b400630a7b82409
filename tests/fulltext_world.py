"""A loopback server answering like Unpaywall, PMC, OpenAlex and Crossref for a few DOIs,
and serving their files with every way a download goes wrong; and a store whose
records have passed title-abstract screening, for the full-text tests."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

from base.record import Record
from cluster.demo.loopback import LoopbackServer, Request, Response
from cluster.demo.pdf import make_pdf
from db.store import Store
from screeners.decisions import decide

DATA = Path(__file__).parent / "data" / "fulltext"
#: the cap the tests give `fulltext fetch`: the "huge" file is over it
CAP_BYTES = 4000


def pdf_for(title: str, doi: str | None = None, *, text: bool = True) -> bytes:
    return make_pdf([f"{title}\n\nhttps://doi.org/{doi}\n\nBackground. A study." if doi
                     else f"{title}\n\nBackground."], title=title if text else None, text=text)


def unpaywall_answer(doi: str, pdf_url: str | None, landing: str | None = None) -> dict:
    loc = {"host_type": "repository", "is_best": True, "license": "cc-by",
           "url": pdf_url or landing, "url_for_pdf": pdf_url,
           "url_for_landing_page": landing or pdf_url, "version": "publishedVersion"}
    return {"doi": doi, "is_oa": True, "best_oa_location": loc, "oa_locations": [loc]}


class FullTextWorld:
    """Records (doi, title, what its Unpaywall location serves) on one loopback server."""

    CASES = {
        "10.1000/good": ("Mindful compassion training for nurses in acute care", "pdf"),
        "10.1000/login": ("Compassion fatigue among paramedics a cohort study", "html"),
        "10.1000/gone": ("Empathy workshops for junior doctors a pilot trial", "404"),
        "10.1000/loop": ("Kindness interventions in primary care a scoping review", "loop"),
        "10.1000/huge": ("Self compassion and burnout in midwives a survey", "huge"),
        "10.1000/scan": ("Compassionate leadership in hospital wards an ethnography", "scan"),
        "10.1000/nothing": ("Care quality and compassion in nursing homes a case study", None),
        "10.1000/gif": ("Compassion focused therapy for carers a randomised trial", "gif"),
        "10.1000/landing": ("Teaching compassion to medical students a mixed methods study",
                            "landing"),
    }

    def __init__(self) -> None:
        self.server = LoopbackServer()
        self.server.route("/unpaywall/", self._unpaywall)
        self.server.route("/pmc/", self._pmc)
        self.server.route("/openalex/", self._openalex)
        self.server.route("/crossref/", self._crossref)
        self.server.route("/files/", self._files)
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    @property
    def base_urls(self) -> dict[str, str]:
        u = self.server.url
        return {"unpaywall": u + "/unpaywall/v2", "pmc": u + "/pmc", "openalex": u + "/openalex",
                "crossref": u + "/crossref", "pubmed": u + "/pubmed"}

    def file_url(self, name: str) -> str:
        return f"{self.server.url}/files/{name}"

    def _unpaywall(self, req: Request) -> Response:
        doi = unquote(req.path[len("/unpaywall/v2/"):]).lower()
        if doi not in self.CASES or self.CASES[doi][1] is None:
            return Response(404, (DATA / "unpaywall-404.json").read_bytes())
        kind = self.CASES[doi][1]
        slug = doi.split("/")[1]
        if kind == "landing":
            answer = unpaywall_answer(doi, None, self.file_url("landing.html"))
        else:
            answer = unpaywall_answer(doi, self.file_url(f"{slug}.pdf"))
        return Response(200, json.dumps(answer).encode())

    def _pmc(self, req: Request) -> Response:
        if "idconv" in req.path:
            ids = (req.get("ids") or "").split(",")
            return Response(200, json.dumps({"status": "ok", "records": [
                {"doi": i, "requested-id": i, "status": "error",
                 "errmsg": "invalid article id"} for i in ids]}).encode())
        return Response(200, (DATA / "pmc-oa-unknown.xml").read_bytes(), content_type="text/xml")

    def _openalex(self, req: Request) -> Response:
        if req.path.rstrip("/").endswith("/works"):
            return Response(200, json.dumps({"meta": {"count": 0}, "results": []}).encode())
        return Response(404, b'{"error": "not found"}')

    def _crossref(self, req: Request) -> Response:
        if req.path.rstrip("/").endswith("/works"):
            return Response(200, json.dumps({"status": "ok", "message-type": "work-list",
                                             "message": {"items": [], "total-results": 0}}).encode())
        return Response(404, b"Resource not found.", content_type="text/plain")

    def _files(self, req: Request) -> Response:
        name = req.path[len("/files/"):]
        slug = name.rsplit(".", 1)[0]
        doi = f"10.1000/{slug}"
        kind = self.CASES.get(doi, ("", "404"))[1] if name != "landing.html" else "html"
        title = self.CASES.get(doi, ("",))[0]
        if kind == "pdf":
            return Response(200, pdf_for(title, doi), content_type="application/pdf")
        if kind == "scan":
            return Response(200, pdf_for(title, doi, text=False), content_type="application/pdf")
        if kind == "html":
            return Response(200, b"<!DOCTYPE html><html><body><form>Log in to read"
                                 b"</form></body></html>", content_type="application/pdf")
        if kind == "loop":
            return Response(302, b"", headers={"Location": f"/files/{name}"},
                            content_type="text/plain")
        if kind == "huge":
            return Response(200, b"%PDF-1.4\n" + b"0" * (CAP_BYTES * 3),
                            content_type="application/pdf")
        if kind == "gif":
            return Response(200, b"GIF89a" + b"\0" * 100, content_type="application/pdf")
        return Response(404, b"<html><body>Not found</body></html>", content_type="text/html")


def full_text_store(store: Store, cases: dict[str, tuple[str, str | None]]) -> dict[str, int]:
    """One record per DOI in `cases`, each included at title-abstract by two reviewers,
    plus one excluded record; returns {doi: record id}."""
    ids: dict[str, int] = {}
    with store.transaction():
        for name in ("ann", "bob"):
            store.add_reviewer(name)
        sid = store.start_search(kind="import", service="Embase", role="database",
                                 file_name="embase.ris", format="ris")
        for doi, (title, _) in cases.items():
            ids[doi] = store.add_record(Record(title=title, doi=doi, year=2020))
        ids["excluded"] = store.add_record(Record(title="Unrelated record about soil", year=2020,
                                                  doi="10.1000/excluded"))
        for rid in ids.values():
            store.add_source(rid, sid, role="database", service="Embase")
        store.finish_search(sid, n_found=len(ids), n_kept=len(ids), n_added=len(ids))
    for doi, rid in ids.items():
        for who in ("ann", "bob"):
            decide(store, rid, who, "title-abstract",
                   "exclude" if doi == "excluded" else "include")
    return ids
