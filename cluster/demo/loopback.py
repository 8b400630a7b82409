"""A small HTTP server on 127.0.0.1 that answers like the outside services.

Used by the tests (replaying recorded responses) and by `cluster demo` (a
generated review world). Routes map a path prefix to a handler; faults can be
injected per route: 429 with or without Retry-After, 5xx, a connection reset,
a slow answer, a truncated body, or HTML where XML/JSON was expected. Every
request is logged with its arrival time, so tests can measure rate limits at
the server side.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, TypeVar
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: tuple[tuple[str, str], ...]  # query string and form body, in order
    headers: dict
    body: bytes

    def get(self, name: str, default: str | None = None) -> str | None:
        for k, v in self.params:
            if k == name:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        return [v for k, v in self.params if k == name]


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class Fault:
    """One injected failure. kind: 429, 500, 502, 503, 504, reset, slow, truncate, html."""

    kind: str
    retry_after: str | None = None
    seconds: float = 0.0


Handler = Callable[[Request], Response]


@dataclass
class LoggedRequest:
    t: float
    method: str
    path: str
    params: tuple[tuple[str, str], ...]
    status: int


_Server = TypeVar("_Server", bound="LoopbackServer")


class LoopbackServer:
    """Serve `routes` ({path prefix: handler}) on 127.0.0.1 at a free port."""

    def __init__(self, routes: dict[str, Handler] | None = None, *, fault_rate: float = 0.0,
                 fault_kinds: tuple[str, ...] = ("429", "500", "slow", "truncate"),
                 seed: int = 0, slow_seconds: float = 0.0):
        self.routes: dict[str, Handler] = dict(routes or {})
        self.queued: dict[str, list[Fault]] = {}
        self.always: dict[str, Fault] = {}
        self.fault_rate = fault_rate
        self.fault_kinds = fault_kinds
        self.slow_seconds = slow_seconds
        self._rng = random.Random(seed)
        self.log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration
    def route(self, prefix: str, handler: Handler) -> None:
        self.routes[prefix] = handler

    def inject(self, prefix: str, *faults: Fault) -> None:
        """Answer the next requests under `prefix` with these faults, in order."""
        with self._lock:
            self.queued.setdefault(prefix, []).extend(faults)

    def fail_always(self, prefix: str, fault: Fault) -> None:
        with self._lock:
            self.always[prefix] = fault

    def heal(self, prefix: str | None = None) -> None:
        with self._lock:
            if prefix is None:
                self.always.clear()
                self.queued.clear()
            else:
                self.always.pop(prefix, None)
                self.queued.pop(prefix, None)

    def requests_to(self, prefix: str) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.log if r.path.startswith(prefix)]

    # -- lifecycle
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        if isinstance(host, bytes):  # only for a Unix socket, which this server never binds
            host = host.decode()
        return f"http://{host}:{port}"

    def start(self: _Server) -> _Server:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _serve(self, method: str) -> None:
                server._handle(self, method)

            def do_GET(self):
                self._serve("GET")

            def do_POST(self):
                self._serve("POST")

        class _Server(ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                # a client that gave up (timeout, injected reset) is normal here
                pass

        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "LoopbackServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- request handling
    def _match(self, path: str) -> tuple[str | None, Handler | None]:
        best = None
        for prefix in self.routes:
            if path.startswith(prefix) and (best is None or len(prefix) > len(best)):
                best = prefix
        return best, (self.routes[best] if best else None)

    def _next_fault(self, prefix: str | None) -> Fault | None:
        if prefix is None:
            return None
        with self._lock:
            if self.always.get(prefix):
                return self.always[prefix]
            queue = self.queued.get(prefix)
            if queue:
                return queue.pop(0)
            if self.fault_rate and self._rng.random() < self.fault_rate:
                kind = self._rng.choice(self.fault_kinds)
                return Fault(kind, retry_after="0" if kind == "429" else None, seconds=0.3)
        return None

    def _handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        t = time.monotonic()
        split = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        params = parse_qsl(split.query, keep_blank_values=True)
        if body and "x-www-form-urlencoded" in (h.headers.get("Content-Type") or ""):
            params += parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        req = Request(method, split.path, tuple(params), dict(h.headers.items()), body)
        prefix, handler = self._match(split.path)
        fault = self._next_fault(prefix)
        if handler is None:
            resp = Response(404, b"<html><body>Not found</body></html>", content_type="text/html")
        else:
            try:
                resp = handler(req)
            except Exception as exc:  # a handler bug shows as a 500, like a real server
                resp = Response(500, f"handler error: {exc}".encode(), content_type="text/plain")
        if self.slow_seconds:
            time.sleep(self.slow_seconds)
        status = resp.status
        try:
            if fault is not None:
                status = self._send_fault(h, fault, resp)
            else:
                self._send(h, resp)
        except (BrokenPipeError, ConnectionResetError):
            # the client hung up first (its read timeout): nothing was served
            h.close_connection = True
            return
        with self._lock:
            self.log.append(LoggedRequest(t, method, split.path, req.params, status))

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, resp: Response, body: bytes | None = None,
              declared: int | None = None) -> None:
        data = resp.body if body is None else body
        h.send_response(resp.status)
        h.send_header("Content-Type", resp.content_type)
        for k, v in resp.headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(declared if declared is not None else len(data)))
        h.end_headers()
        h.wfile.write(data)
        h.wfile.flush()

    def _send_fault(self, h: BaseHTTPRequestHandler, fault: Fault, resp: Response) -> int:
        kind = fault.kind
        if kind in {"429", "500", "502", "503", "504"}:
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            body = (b'{"error":"API rate limit exceeded","count":"5","limit":"3"}'
                    if kind == "429" else b"<html><body><h1>Server error</h1></body></html>")
            ctype = "application/json" if kind == "429" else "text/html"
            self._send(h, Response(int(kind), body, headers, ctype))
            return int(kind)
        if kind == "reset":
            try:
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                        b"\x01\x00\x00\x00\x00\x00\x00\x00")
            finally:
                h.close_connection = True
                h.connection.close()
            return 0
        if kind == "slow":
            time.sleep(fault.seconds)
            self._send(h, resp)
            return resp.status
        if kind == "truncate":
            cut = resp.body[: max(1, len(resp.body) // 2)]
            self._send(h, resp, body=cut)
            return resp.status
        if kind == "html":
            self._send(h, Response(200, b"<!DOCTYPE html><html><body>Service temporarily "
                                        b"unavailable</body></html>", {}, "text/html"))
            return 200
        raise ValueError(f"unknown fault kind {kind!r}")
