"""Replay the recorded responses of ../shared/fixtures/http on the loopback server.

`index.json` lists, per recorded file, the request (method, URL, form body)
and the response (status, content type, headers). `Replay` registers a route
per service under its own path prefix ("/ncbi", "/crossref", "/openalex",
"/opencitations") and answers each request with the recorded response whose
path and parameters match. Matching ignores the parameters that identify a
user (`api_key`, `email`, `mailto`, `tool`) and the ones that do not change
the answer's content (`retmode`, `usehistory`); an `id` list matches whether
it was sent comma-joined or as repeated parameters; E-utilities answer GET
and POST alike, so for NCBI the method is not compared. Recordings with the
same request are served in turn (Crossref's cursor pages repeat the cursor).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qsl, unquote, urlsplit

from cluster.demo.loopback import LoopbackServer, Request, Response

PREFIX = {"ncbi": "/ncbi", "crossref": "/crossref", "openalex": "/openalex",
          "opencitations": "/opencitations"}
#: where each service's base URL points on the replay server
BASE_PATH = {"pubmed": "/ncbi/entrez/eutils", "crossref": "/crossref",
             "openalex": "/openalex", "opencitations": "/opencitations/index/v2"}
IGNORED = {"api_key", "email", "mailto", "tool", "retmode", "usehistory"}
_DROP_HEADERS = {"content-encoding", "content-length", "transfer-encoding", "content-type"}


@dataclass(frozen=True)
class Entry:
    file: str
    service: str
    method: str
    path: str
    params: tuple[tuple[str, str], ...]
    status: int
    content_type: str
    headers: dict
    body: bytes

    @property
    def name(self) -> str:
        return self.file.split("/", 1)[1]


def load_index(root: Path) -> list[Entry]:
    """Every recording in `root/index.json`, bodies loaded (root = fixtures/http)."""
    entries = []
    for item in json.loads((root / "index.json").read_text()):
        req = item["request"]
        url = req["url"]
        split = urlsplit(url) if url.startswith("http") else None
        params = parse_qsl(split.query, keep_blank_values=True) if split else []
        if req.get("body"):
            params += parse_qsl(req["body"], keep_blank_values=True)
        entries.append(Entry(
            file=item["file"], service=item["service"], method=req["method"],
            path=unquote(split.path) if split else "",
            params=tuple(params), status=item["status"],
            content_type=item["content_type"].split(" (")[0],
            headers={k: v for k, v in item["response_headers"].items()
                     if k.lower() not in _DROP_HEADERS},
            body=(root / item["file"]).read_bytes(),
        ))
    return entries


def wait_for_log(server: LoopbackServer, prefix: str, n: int, timeout: float = 2.0) -> list:
    """The server's log for `prefix` once it holds `n` entries (it is written after sending)."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        got = server.requests_to(prefix)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.01)


def _norm(params: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for k, v in params:
        if k in IGNORED:
            continue
        values = v.split(",") if k == "id" else [v]
        out.setdefault(k, []).extend(x.strip() for x in values)
    return {k: tuple(sorted(v)) if k == "id" else tuple(v) for k, v in out.items()}


@dataclass
class Replay:
    """A loopback server answering with recorded responses; see the module docstring."""

    entries: list[Entry]
    server: LoopbackServer = field(default_factory=LoopbackServer)
    served: list[str] = field(default_factory=list)
    #: requests as they arrived at the replay routes (the server's own log is written
    #: after the answer is sent, so a client can read it before the last entry lands)
    arrived: list[Request] = field(default_factory=list)
    _turns: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for service, prefix in PREFIX.items():
            self.server.route(prefix, self._handler(service, prefix))

    def reset(self, entries: list[Entry]) -> "Replay":
        """Serve `entries` from now on, forgetting routes, faults and the request log."""
        self.entries[:] = list(entries)
        with self._lock:
            self._turns.clear()
            self.served.clear()
            self.arrived.clear()
        self.server.heal()
        self.server.routes.clear()
        for service, prefix in PREFIX.items():
            self.server.route(prefix, self._handler(service, prefix))
        with self.server._lock:
            self.server.log.clear()
        return self

    def start(self) -> "Replay":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def requests_to(self, prefix: str) -> list[Request]:
        with self._lock:
            return [r for r in self.arrived if r.path.startswith(prefix)]

    def base_urls(self) -> dict[str, str]:
        return {svc: self.server.url + path for svc, path in BASE_PATH.items()}

    def serve_at(self, entry: Entry, path: str, method: str | None = None,
                 params: Iterable[tuple[str, str]] = ()) -> None:
        """Also answer `path` (as the client sends it) with this recording."""
        self.entries.append(Entry(entry.file, entry.service, method or entry.method, path,
                                  tuple(params), entry.status, entry.content_type,
                                  entry.headers, entry.body))

    def _handler(self, service: str, prefix: str):
        def handle(req: Request) -> Response:
            with self._lock:
                self.arrived.append(req)
            path = unquote(req.path[len(prefix):])
            sent = _norm(req.params)
            best: list[Entry] = []
            best_score = -1
            for e in self.entries:
                if e.service != service or e.path != path:
                    continue
                if service != "ncbi" and e.method != req.method:
                    continue
                want = _norm(e.params)
                if any(sent.get(k) != v for k, v in want.items()):
                    continue
                score = len(want)
                if score > best_score:
                    best, best_score = [e], score
                elif score == best_score:
                    best.append(e)
            if not best:
                composed = self._compose(service, path, req)
                if composed is not None:
                    return composed
                return Response(404, b"<html><body>no recorded response</body></html>",
                                content_type="text/html")
            key = (service, path, tuple(sorted(sent.items())))
            with self._lock:
                turn = self._turns.get(key, 0)
                self._turns[key] = turn + 1
                entry = best[min(turn, len(best) - 1)]
                self.served.append(entry.file)
            return Response(entry.status, entry.body, dict(entry.headers), entry.content_type)

        return handle

    # -- answers for batched requests, built from the single-id recordings
    def _single(self, service: str, path: str, key: str, value: str) -> Entry | None:
        for e in self.entries:
            if e.service == service and e.path == path and e.status == 200:
                want = _norm(e.params)
                if want.get(key) == (value,):
                    return e
        return None

    def _compose(self, service: str, path: str, req: Request) -> Response | None:
        """A batched request answered from the single-id recordings, as the service would.

        efetch with several ids: one PubmedArticleSet; efetch of a search kept on the
        history server (`WebEnv`, `query_key`, `retstart`, `retmax`): the slice of the
        recorded esearch answer that gave that WebEnv, as one PubmedArticleSet (empty
        where no efetch of those ids was recorded); elink with repeated `id=`:
        one LinkSet per id; Crossref `filter=doi:a,doi:b`: a work-list; OpenAlex
        `filter=openalex:W1|W2` or `doi:...|...`: a result list. Ids without a
        recording are left out, as the services leave out unknown ids.
        """
        if service == "ncbi" and path.endswith(("/efetch.fcgi", "/elink.fcgi")):
            return self._compose_ncbi(path, req)
        filters = req.get("filter") or ""
        if service == "crossref" and path == "/works" and filters.startswith("doi:"):
            dois = [f[4:].lower() for f in req.get("filter").split(",")]
            items = [self._message(d) for d in dois]
            items = [m for m in items if m is not None]
            body = json.dumps({"status": "ok", "message-type": "work-list", "message-version":
                               "1.0.0", "message": {"total-results": len(items),
                                                    "items-per-page": len(items),
                                                    "items": items}}).encode()
            return self._composed("crossref:works", body, "application/json")
        if service == "openalex" and path == "/works" and ":" in (req.get("filter") or ""):
            kind, _, values = req.get("filter").partition(":")
            results = []
            for value in values.split("|"):
                work = self._work(kind, value)
                if work is not None:
                    results.append(work)
            body = json.dumps({"meta": {"count": len(results), "page": 1,
                                        "per_page": len(results)},
                               "results": results, "group_by": []}).encode()
            return self._composed("openalex:works", body, "application/json")
        return None

    def _composed(self, what: str, body: bytes, content_type: str) -> Response:
        with self._lock:
            self.served.append("composed:" + what)
        return Response(200, body, {}, content_type)

    def _message(self, doi: str) -> dict | None:
        for e in self.entries:
            if e.service == "crossref" and e.status == 200 and e.path.startswith("/works/"):
                message = json.loads(e.body).get("message", {})
                if str(message.get("DOI", "")).lower() == doi:
                    return message
        return None

    def _work(self, kind: str, value: str) -> dict | None:
        for e in self.entries:
            if e.service == "openalex" and e.status == 200 and e.path.startswith("/works/"):
                work = json.loads(e.body)
                got = {"openalex": str(work.get("id", "")).rsplit("/", 1)[-1],
                       "doi": str(work.get("doi", "")).lower()}.get(kind)
                want = value.lower() if kind == "doi" else value
                if got and got == want:
                    return work
        return None

    def _compose_history(self, path: str, req: Request) -> Response | None:
        import re

        webenv = (req.get("WebEnv") or "").encode()
        search = next((e for e in self.entries if e.service == "ncbi" and e.status == 200
                       and b"<WebEnv>" + webenv + b"</WebEnv>" in e.body), None)
        empty = next((e for e in self.entries if e.name.endswith("_empty-articleset.xml")), None)
        if search is None or empty is None:
            return None
        listed = [m.decode() for m in re.findall(rb"<Id>(\d+)</Id>", search.body)]
        start = int(req.get("retstart") or 0)
        wanted = listed[start:start + int(req.get("retmax") or 20)]
        head = empty.body[:empty.body.find(b"<PubmedArticleSet")]
        parts = []
        for uid in wanted:
            e = self._single("ncbi", path, "id", uid)
            if e is not None:
                body = e.body
                start_tag = body.find(b"<PubmedArticleSet")
                parts.append(body[body.find(b">", start_tag) + 1:body.rfind(b"</PubmedArticleSet")])
        body = head + b"<PubmedArticleSet>" + b"".join(parts) + b"</PubmedArticleSet>\n"
        return self._composed("ncbi:history", body, "text/xml; charset=UTF-8")

    def _compose_ncbi(self, path: str, req: Request) -> Response | None:
        efetch = path.endswith("/efetch.fcgi")
        ids = [i for v in req.get_all("id") for i in v.split(",") if i]
        if efetch and not ids and req.get("WebEnv"):
            return self._compose_history(path, req)
        if len(ids) < 2 or (not efetch and len(req.get_all("id")) < 2):
            return None
        outer, open_tag, close_tag = ((b"PubmedArticleSet", b"<PubmedArticle", b"</PubmedArticle>")
                                      if efetch else (b"eLinkResult", b"<LinkSet>", b"</LinkSet>"))
        head = None
        parts: list[bytes] = []
        for uid in ids:
            e = self._single("ncbi", path, "id", uid)
            if e is None:
                continue
            body = e.body
            start = body.find(b"<" + outer)
            if head is None:
                head = body[:start]
            inner = body[body.find(b">", start) + 1:body.rfind(b"</" + outer)]
            if not efetch:  # one LinkSet per recording
                inner = inner[inner.find(open_tag):inner.rfind(close_tag) + len(close_tag)]
            parts.append(inner)
        if head is None:
            return None
        body = (head + b"<" + outer + b">" + b"".join(parts) + b"</" + outer + b">\n")
        return self._composed("ncbi", body, "text/xml; charset=UTF-8")
