"""Files from anywhere on the web (full texts at publishers and repositories), with a cap
on size and time per file, politely.

The service APIs go through `HttpLayer.request`, which parses small answers;
a full text is a file to keep, so it is streamed to disk here instead, with
the layer's settings (timeouts, retries with backoff, `Retry-After`) and a
rate limiter per host shared by all threads. It bypasses the response cache:
the files kept in the store's full-text folder are their own cache. The
User-Agent names the tool without the contact address (the address is for
the APIs that ask for it, not for every publisher's server), and every error
leaving here is redacted like the layer's.

A failure is a `DownloadFailed` saying why in words a reviewer can act on,
and whether trying again later could help (`transient`): a timeout or a 503
may pass, a 404, a redirect loop or a file over the size cap will not.
"""

from __future__ import annotations

import hashlib
import os
import random
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from base.errors import ClusterError
from base.version import version as tool_version
from connectors.http import RETRY_STATUSES, RateLimiter, Settings, parse_retry_after, redact

CHUNK = 64 * 1024
#: requests per second to one host unless settings.rate_limits["download"] says otherwise
DEFAULT_HOST_RATE = 2.0


class DownloadFailed(ClusterError):
    """A file could not be fetched; the message says why (no URL credentials in it)."""

    def __init__(self, message: str, *, transient: bool = False,
                 retry_after: float | None = None):
        super().__init__(message)
        self.transient = transient
        self.retry_after = retry_after


@dataclass(frozen=True)
class Downloaded:
    """A whole file on disk (a temporary name in the folder asked for: the caller keeps or
    deletes it), with what the server said it was."""

    path: Path
    url: str            # where it came from, after redirects
    content_type: str
    size: int
    sha256: str


class Downloader:
    """Stream URLs to files under caps; one per command, shared by its threads."""

    def __init__(self, settings: Settings, *, max_bytes: int, max_seconds: float,
                 version: str | None = None):
        self.settings = settings
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.session = requests.Session()
        self.session.max_redirects = 10
        self.session.headers["User-Agent"] = (
            f"cluster/{version if version is not None else tool_version()} "
            f"(literature review assistant)")
        rate = (settings.rate_limits or {}).get("download", DEFAULT_HOST_RATE)
        self._rate = (int(rate), 1.0) if rate >= 1 else (1, 1.0 / rate)
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def close(self) -> None:
        self.session.close()

    def _limiter(self, url: str) -> RateLimiter:
        host = urlsplit(url).netloc.lower()
        with self._lock:
            if host not in self._limiters:
                self._limiters[host] = RateLimiter(*self._rate)
            return self._limiters[host]

    def _clean(self, text: str) -> str:
        return redact(text, self.settings.secrets())

    def fetch(self, url: str, folder: Path) -> Downloaded:
        """Download `url` into a new temporary file in `folder`, retrying what may pass."""
        if urlsplit(url).scheme not in ("http", "https"):
            raise DownloadFailed(f"the link {self._clean(url)} is not a web address")
        attempts = self.settings.max_retries + 1
        last: DownloadFailed | None = None
        for attempt in range(attempts):
            try:
                return self._once(url, folder)
            except DownloadFailed as exc:
                if not exc.transient:
                    raise
                last = exc
                delay = exc.retry_after
                if attempt + 1 < attempts:
                    ceiling = min(self.settings.backoff_max,
                                  self.settings.backoff_base * (2 ** attempt))
                    time.sleep(delay if delay is not None else random.uniform(ceiling / 2,
                                                                              ceiling))
        assert last is not None
        raise last

    def _once(self, url: str, folder: Path) -> Downloaded:
        self._limiter(url).acquire()
        started = time.monotonic()
        try:
            resp = self.session.get(url, stream=True, timeout=self.settings.timeout)
        except requests.TooManyRedirects:
            raise DownloadFailed("the link redirects in a loop") from None
        except requests.Timeout:
            raise DownloadFailed("the server did not answer in time", transient=True) from None
        except requests.ConnectionError:
            raise DownloadFailed("the server could not be reached", transient=True) from None
        except requests.RequestException as exc:
            raise DownloadFailed(f"the link cannot be fetched ({self._clean(str(exc))})") from None
        with resp:
            status = resp.status_code
            if status in RETRY_STATUSES:
                raise DownloadFailed(f"the server answered HTTP {status}", transient=True,
                                     retry_after=parse_retry_after(resp.headers.get("Retry-After")))
            if status == 404 or status == 410:
                raise DownloadFailed(f"the link is broken (HTTP {status})")
            if status in (401, 403):
                raise DownloadFailed(f"the server refused access (HTTP {status}): the copy is "
                                     f"not open")
            if status >= 400:
                raise DownloadFailed(f"the server answered HTTP {status}")
            declared = resp.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > self.max_bytes:
                raise DownloadFailed(f"the file is {_size(int(declared))}, over the "
                                     f"{_size(self.max_bytes)} cap")
            return self._save(resp, folder, started)

    def _save(self, resp: requests.Response, folder: Path, started: float) -> Downloaded:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=folder)
        path = Path(name)
        digest = hashlib.sha256()
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    for chunk in resp.iter_content(CHUNK):
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise DownloadFailed(f"the file is over the {_size(self.max_bytes)} "
                                                 f"cap")
                        if time.monotonic() - started > self.max_seconds:
                            raise DownloadFailed(f"the download took longer than "
                                                 f"{self.max_seconds:g} s")
                        digest.update(chunk)
                        out.write(chunk)
                except (requests.exceptions.ChunkedEncodingError,
                        requests.ConnectionError, requests.Timeout):
                    raise DownloadFailed("the download was cut short", transient=True) from None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return Downloaded(path, self._clean(resp.url), resp.headers.get("Content-Type", ""),
                          size, digest.hexdigest())


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.0f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} bytes"
