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

from connectors.loopback import LoopbackServer, Request, Response

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
    _turns: dict = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for service, prefix in PREFIX.items():
            self.server.route(prefix, self._handler(service, prefix))

    def start(self) -> "Replay":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

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
        """efetch for several ids: the recorded articles of each id in one set, as NCBI does."""
        if service != "ncbi" or not path.endswith("/efetch.fcgi"):
            return None
        ids = [i for v in req.get_all("id") for i in v.split(",") if i]
        if len(ids) < 2:
            return None
        head = None
        articles: list[bytes] = []
        for pmid in ids:
            e = self._single(service, path, "id", pmid)
            if e is None:
                continue  # NCBI leaves unknown ids out of the set
            body = e.body
            start = body.find(b"<PubmedArticleSet>")
            if head is None:
                head = body[:start]
            inner = body[start + len(b"<PubmedArticleSet>"):body.rfind(b"</PubmedArticleSet>")]
            articles.append(inner)
        if head is None:
            return None
        body = head + b"<PubmedArticleSet>" + b"".join(articles) + b"</PubmedArticleSet>\n"
        with self._lock:
            self.served.append("composed:efetch")
        return Response(200, body, {}, "text/xml; charset=UTF-8")
