"""The one HTTP layer every connector uses: polite, cached and fault-tolerant.

What lives here:

- the messages of the user-facing service errors (the classes are in
  `base.errors`), each one sentence naming the service and what to do;
- the frozen result types every connector method returns (`Fetched`, `Found`,
  `Links`, `ReferenceLists`), each carrying the `CallLog`s the `searches`
  table needs;
- `Settings` (contact address, keys, cache file, base URLs, timeouts, retry
  and rate-limit knobs) and the `HttpLayer` the four connectors share
  (`connectors.services.connect` assembles them).

It imports no service: the services import it.

The layer retries only what can succeed on a second try: 429/500/502/503/504,
timeouts, connections reset or cut short, and bad bodies (truncated, HTML where
XML/JSON was expected), with exponential backoff and jitter, honouring
`Retry-After`; a wait longer than a few seconds is announced to the caller's
`on_wait` once a second, so a person sees a countdown. A host name that cannot
be looked up or a refused connection is not retried: it ends the call at once
with `Unreachable` ("No network: cannot reach PubMed ..."), and every later
call to that service in the same run fails the same way without trying. A rate limiter per service, shared by all
threads, sits in the transport adapter, so answers served from the cache never
wait. The cache (requests-cache, SQLite, beside the store) keys requests
without `api_key`, `email`, `mailto` and `tool`, and those values (and the
User-Agent, which carries the contact address) are redacted from what it
stores; a body the connector could not parse is deleted from the cache before
the retry, so a bad answer is never replayed. `redact` blanks the credentials
in every spelling (raw, percent- and form-encoded, either hex case) in each
answer before it is parsed, in every error leaving the layer and in the log
records of the libraries that print URLs.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar, overload
from urllib.parse import urlencode, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter

from base.errors import (ClusterError, NotFound, RateLimited, RequestRejected, ServiceDown,
                         ServiceError, Unreachable, UnreadableAnswer)
from base.record import Record, valid_text
from base.services import SERVICE_NAMES
from base.version import version as tool_version

log = logging.getLogger("cluster.http")

T = TypeVar("T")

#: parameters and headers that identify the user: never in a cache key, a log or the store
SECRET_PARAMS = ("api_key", "email", "mailto", "tool")
_REDACTED_HEADERS = ("User-Agent", "Authorization", "Crossref-Plus-API-Token")


DEFAULT_BASE_URLS = {
    "pubmed": "https://eutils.ncbi.nlm.nih.gov/entrez/eutils",
    "crossref": "https://api.crossref.org",
    "openalex": "https://api.openalex.org",
    "opencitations": "https://api.opencitations.net/index/v2",
    "unpaywall": "https://api.unpaywall.org/v2",
    "pmc": "https://www.ncbi.nlm.nih.gov/pmc/utils",
}

_ENV_URLS = {"pubmed": "CLUSTER_PUBMED_URL", "crossref": "CLUSTER_CROSSREF_URL",
             "openalex": "CLUSTER_OPENALEX_URL", "opencitations": "CLUSTER_OPENCITATIONS_URL",
             "unpaywall": "CLUSTER_UNPAYWALL_URL", "pmc": "CLUSTER_PMC_URL"}

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

#: waits longer than this many seconds are announced (a countdown), shorter ones are not
WAIT_NOTICE = 3.0

#: what the layer tells its caller while it waits to retry: (sentence, seconds left)
OnWait = Callable[[str, float], None]


# --- errors ------------------------------------------------------------------


class BadBody(Exception):
    """A body that cannot be what the service meant to send (retried, never cached)."""


_RATE_HINTS = {
    "pubmed": "set NCBI_API_KEY or try later",
    "crossref": "set CLUSTER_EMAIL to use Crossref's polite pool or try later",
    "openalex": "set OPENALEX_API_KEY or try later (the daily allowance may be used up)",
    "opencitations": "wait a minute and try again",
    "unpaywall": "try later (the daily allowance may be used up)",
    "pmc": "set NCBI_API_KEY or try later",
}


def rate_limited(service: str) -> RateLimited:
    name = SERVICE_NAMES[service]
    return RateLimited(name, f"{name} is rate-limiting: {_RATE_HINTS[service]}.")


def service_down(service: str, what: str, attempts: int) -> ServiceDown:
    name = SERVICE_NAMES[service]
    return ServiceDown(name, f"{name} is not answering properly ({what} after {attempts} "
                             f"attempt{'s' if attempts != 1 else ''}): check your connection "
                             f"or try again later.")


def unreachable(service: str, url: str, exc: Exception) -> Unreachable | None:
    """The one-sentence error for a connection that could not be made at all, else None.

    A name lookup that fails or a refused connection will fail the same way a
    second later: the machine is offline or the address is wrong. Timeouts and
    resets are not this: they are worth a retry.
    """
    reason = exc.args[0] if exc.args else None
    reason = getattr(reason, "reason", reason)
    if not isinstance(reason, urllib3.exceptions.NewConnectionError):
        return None
    name = SERVICE_NAMES[service]
    parts = urlsplit(url)
    host = parts.hostname or url
    if isinstance(reason, urllib3.exceptions.NameResolutionError):
        why = f"the name {host} could not be looked up"
    else:
        where = f"{host}:{parts.port}" if parts.port else host
        why = f"no connection to {where}: {_socket_reason(reason)}"
    return Unreachable(name, f"No network: cannot reach {name} ({why}): check the connection, "
                             f"or the service's base URL, and run the command again.")


def _socket_reason(exc: Exception) -> str:
    text = str(exc)
    m = re.search(r"\[Errno -?\d+\] ([^)\]\"']+)", text)
    return m.group(1).strip().rstrip(".").lower() if m else "refused"


# --- results -----------------------------------------------------------------


@dataclass(frozen=True)
class CallLog:
    """One HTTP-level call as the `searches` table records it (no secrets)."""

    service: str
    endpoint: str
    params: Mapping[str, str]
    at: str
    n_results: int
    from_cache: bool


@dataclass(frozen=True)
class Fetched:
    records: tuple[Record, ...]
    missing: tuple[str, ...]
    calls: tuple[CallLog, ...]
    failed: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"records": [r.to_dict() for r in self.records], "missing": list(self.missing),
                "failed": dict(self.failed)}


@dataclass(frozen=True)
class Found:
    ids: tuple[str, ...]
    count: int
    calls: tuple[CallLog, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Link:
    id: str
    score: float | None = None


@dataclass(frozen=True)
class Links:
    """Links per seed, ranked as the service ranks them, the seed itself removed."""

    by_seed: Mapping[str, tuple[Link, ...]]
    calls: tuple[CallLog, ...]
    failed: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reference:
    doi: str | None
    unstructured: str | None
    title: str | None
    year: int | None
    first_author: str | None


@dataclass(frozen=True)
class ReferenceLists:
    by_doi: Mapping[str, tuple[Reference, ...]]
    missing: tuple[str, ...]
    calls: tuple[CallLog, ...]
    failed: Mapping[str, str] = field(default_factory=dict)


# --- settings ----------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Everything the connectors need to know; built by the CLI, passed explicitly."""

    email: str | None = None
    ncbi_api_key: str | None = None
    openalex_api_key: str | None = None
    cache_path: Path | None = None
    base_urls: Mapping[str, str] = field(default_factory=dict)
    timeout: tuple[float, float] = (5, 30)
    max_retries: int = 5
    rate_limits: Mapping[str, float] | None = None
    #: first backoff delay in seconds (doubles per attempt, with jitter), and its ceiling
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    #: longest Retry-After honoured; a longer one is treated as "rate limit exhausted"
    retry_after_max: float = 120.0
    #: cached answers older than this are fetched again (None = keep forever)
    cache_days: float | None = 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> "Settings":
        """Settings from environment variables (for the CLI; the library never reads env).

        NCBI_API_KEY, CLUSTER_EMAIL, OPENALEX_API_KEY; CLUSTER_PUBMED_URL,
        CLUSTER_CROSSREF_URL, CLUSTER_OPENALEX_URL, CLUSTER_OPENCITATIONS_URL,
        CLUSTER_UNPAYWALL_URL, CLUSTER_PMC_URL;
        CLUSTER_HTTP_RETRIES (attempts after the first), CLUSTER_HTTP_BACKOFF
        (first backoff delay in seconds; the longest is four times it) and
        CLUSTER_RATE_LIMITS ("pubmed=3,crossref=10" requests per second), for
        local review worlds where the real limits are not the point.
        """
        urls = {svc: environ[var] for svc, var in _ENV_URLS.items() if environ.get(var)}
        values: dict[str, Any] = {
            "email": environ.get("CLUSTER_EMAIL") or None,
            "ncbi_api_key": environ.get("NCBI_API_KEY") or None,
            "openalex_api_key": environ.get("OPENALEX_API_KEY") or None,
            "base_urls": urls,
        }
        for var, key, kind in (("CLUSTER_HTTP_RETRIES", "max_retries", int),
                               ("CLUSTER_HTTP_BACKOFF", "backoff_base", float)):
            if environ.get(var):
                try:
                    values[key] = kind(environ[var])
                except ValueError:
                    raise ClusterError(f"{var} must be a number, not {environ[var]!r}: fix "
                                       f"or unset it.") from None
        if "backoff_base" in values:
            values["backoff_max"] = values["backoff_base"] * 4
        if environ.get("CLUSTER_RATE_LIMITS"):
            values["rate_limits"] = _parse_rate_limits(environ["CLUSTER_RATE_LIMITS"])
        values.update(overrides)
        return cls(**values)

    def base_url(self, service: str) -> str:
        return (self.base_urls.get(service) or DEFAULT_BASE_URLS[service]).rstrip("/")

    def secrets(self) -> tuple[str, ...]:
        """The values that must never be written anywhere."""
        return tuple(v for v in (self.email, self.ncbi_api_key, self.openalex_api_key) if v)


def _parse_rate_limits(text: str) -> dict[str, float]:
    limits: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        service, _, rate = part.partition("=")
        try:
            limits[service.strip()] = float(rate)
            if not limits[service.strip()] > 0:
                raise ValueError(rate)
        except ValueError:
            raise ClusterError(f"CLUSTER_RATE_LIMITS must read like pubmed=3,crossref=10, not "
                               f"{text!r}: fix or unset it.") from None
    return limits


# --- rate limiting -----------------------------------------------------------


class RateLimiter:
    """At most `calls` requests in any sliding window of `period` seconds, across threads.

    A sliding log (not a fixed spacing) because the services count requests
    per window: N requests spaced exactly 1/N s apart can still put N + 1 in a
    closed one-second window as a server measures it. A safety margin of a
    tenth of a second absorbs scheduling and network jitter between our clock
    and the server's: a 429 costs far more than the margin.
    """

    MARGIN = 0.1

    def __init__(self, calls: int, period: float = 1.0):
        self._lock = threading.Lock()
        self.calls = max(1, int(calls))
        self.period = float(period)
        self._sent: deque[float] = deque()

    def update(self, calls: int, period: float) -> None:
        with self._lock:
            self.calls, self.period = max(1, int(calls)), float(period)

    def acquire(self) -> float:
        """Block until a request may go; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = time.monotonic()
                window = self.period + self.MARGIN
                while self._sent and now - self._sent[0] >= window:
                    self._sent.popleft()
                if len(self._sent) < self.calls:
                    self._sent.append(now)
                    return waited
                pause = window - (now - self._sent[0])
                time.sleep(pause)
                waited += pause


def default_rate(service: str, settings: Settings) -> tuple[int, float]:
    """(calls, period) for a service: documented limits, or the overrides in settings."""
    if settings.rate_limits and service in settings.rate_limits:
        per_second = float(settings.rate_limits[service])
        if per_second >= 1:
            return int(per_second), 1.0
        return 1, 1.0 / per_second
    if service == "pubmed":
        return (10 if settings.ncbi_api_key else 3), 1.0
    if service == "crossref":
        # public pool 5/s, polite pool 10/s (observed 2026); adapted from headers at run time
        return (10 if settings.email else 5), 1.0
    if service == "openalex":
        return 10, 1.0
    if service == "unpaywall":
        return 10, 1.0  # 100,000 a day, asked to stay near 10 a second
    if service == "pmc":
        return (10 if settings.ncbi_api_key else 3), 1.0  # NCBI's limits
    return 3, 1.0  # OpenCitations: 180 per minute, spread evenly


class _LimitedAdapter(HTTPAdapter):
    """Transport that waits for the service's limiter; the cache sits above it."""

    def __init__(self, limiter: RateLimiter, counter: Callable[[], None]):
        super().__init__(pool_connections=4, pool_maxsize=8, max_retries=0)
        self.limiter = limiter
        self._count = counter

    def send(self, request: requests.PreparedRequest, *args: Any,
             **kwargs: Any) -> requests.Response:
        self.limiter.acquire()
        self._count()
        return super().send(request, *args, **kwargs)


# --- the layer ---------------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def public_params(params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None) -> dict[str, str]:
    """Parameters as logged and stored: secrets dropped, repeated names comma-joined."""
    items = params.items() if isinstance(params, Mapping) else (params or ())
    out: dict[str, str] = {}
    for k, v in items:
        if k in SECRET_PARAMS or v is None:
            continue
        out[k] = f"{out[k]},{v}" if k in out else str(v)
    return out


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


def _looks_like_html(body: bytes, content_type: str) -> bool:
    head = body[:512].lstrip().lower()
    return "text/html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))


REDACTED = "[redacted]"


def _char_forms(ch: str) -> str:
    """A pattern for one character of a secret in every spelling a URL or answer may give it.

    Raw; percent-encoded (either hex case, also encoded twice: `%2540`); `+`
    for a space (form encoding); and the JSON escapes a service may use when it
    echoes the URL in a JSON body (`\\u0040`, `\\/`).
    """
    utf8 = ch.encode("utf-8")
    forms = [re.escape(ch), "".join(f"%(?:25)?{b:02x}" for b in utf8)]
    if len(utf8) == 1:
        forms.append(f"\\\\u00{utf8[0]:02x}")
    if ch == " ":
        forms.append(r"\+")
    if ch == "/":
        forms.append(r"\\/")
    return "(?:" + "|".join(forms) + ")"


@dataclass(frozen=True)
class _SecretPatterns:
    text: re.Pattern[str]
    bytes: re.Pattern[bytes]
    #: the longest run of letters and digits of each secret, lower-cased: every spelling a
    #: URL encoder produces keeps it, so text without any of them needs no regex pass
    cores: tuple[str, ...] | None


@lru_cache(maxsize=16)
def _secret_patterns(secrets: tuple[str, ...]) -> _SecretPatterns | None:
    # longest first, so a key that contains the e-mail address is blanked whole
    values = sorted({s for s in secrets if s}, key=len, reverse=True)
    if not values:
        return None
    text = "|".join("".join(_char_forms(ch) for ch in s) for s in values)
    cores = [max(re.findall(r"[A-Za-z0-9]+", s) or [""], key=len).lower() for s in values]
    return _SecretPatterns(re.compile(text, re.IGNORECASE),
                           re.compile(text.encode("utf-8"), re.IGNORECASE),
                           tuple(cores) if all(len(c) >= 4 for c in cores) else None)


@overload
def redact(value: str, secrets: Sequence[str]) -> str: ...


@overload
def redact(value: bytes, secrets: Sequence[str]) -> bytes: ...


def redact(value: str | bytes, secrets: Sequence[str]) -> str | bytes:
    """`value` with every secret blanked out, however it was encoded.

    The one redaction of the project: answers are passed through it as they
    arrive, error messages as they leave the HTTP layer, and log records of the
    libraries that print URLs through `_Redact`. Letters match in either case
    too (a service may echo an address lower-cased).
    """
    patterns = _secret_patterns(tuple(secrets))
    if patterns is None:
        return value
    if isinstance(value, bytes):
        if patterns.cores is not None:
            lowered = value.lower()
            if not any(c.encode() in lowered for c in patterns.cores):
                return value
        return patterns.bytes.sub(REDACTED.encode(), value)
    if patterns.cores is not None:
        lowered_text = value.lower()
        if not any(c in lowered_text for c in patterns.cores):
            return value
    return patterns.text.sub(REDACTED, value)


class _Redact(logging.Filter):
    """Blank out secrets in records of libraries that log full URLs (urllib3, requests-cache)."""

    def __init__(self, secrets: Sequence[str]):
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            clean = redact(message, self.secrets)
            if clean != message:
                record.msg, record.args = clean, ()
        return True


#: loggers below which libraries log request URLs (that carry api_key/email/mailto)
_URL_LOGGERS = ("urllib3", "requests_cache", "requests")


def _install_redaction(secrets: Sequence[str]) -> None:
    """Attach the redacting filter to every logger that may print a request URL.

    Logger filters only see records created on that very logger, so the filter
    goes on each existing module logger of those libraries.
    """
    if not secrets:
        return
    names = [n for n in list(logging.Logger.manager.loggerDict)
             if n.split(".")[0] in _URL_LOGGERS] + ["cluster.http"]
    for name in names:
        logger = logging.getLogger(name)
        for f in logger.filters:
            if isinstance(f, _Redact):
                f.secrets = tuple(dict.fromkeys(f.secrets + tuple(secrets)))
                break
        else:
            logger.addFilter(_Redact(secrets))


class HttpLayer:
    """One session, one cache, one limiter per service; shared by all connectors."""

    def __init__(self, settings: Settings, *, version: str | None = None,
                 on_wait: OnWait | None = None):
        version = version if version is not None else tool_version()
        self.settings = settings
        self.on_wait = on_wait
        #: services found unreachable in this run: later calls fail at once with the same error
        self.unreachable: dict[str, Unreachable] = {}
        contact = f"; mailto:{settings.email}" if settings.email else ""
        self.user_agent = f"cluster/{version} (literature review assistant{contact})"
        self.session = self._make_session()
        _install_redaction(settings.secrets())
        self.limiters = {svc: RateLimiter(*default_rate(svc, settings)) for svc in SERVICE_NAMES}
        self._count_lock = threading.Lock()
        #: HTTP requests that reached the network (cache hits excluded), per service
        self.network_requests: dict[str, int] = {svc: 0 for svc in SERVICE_NAMES}
        for svc in SERVICE_NAMES:
            self.session.mount(self.settings.base_url(svc) + "/",
                               _LimitedAdapter(self.limiters[svc], self._counter(svc)))

    def _counter(self, service: str) -> Callable[[], None]:
        def count() -> None:
            with self._count_lock:
                self.network_requests[service] += 1
        return count

    def _make_session(self) -> requests.Session:
        if self.settings.cache_path is None:
            session = requests.Session()
        else:
            import requests_cache

            days = self.settings.cache_days
            try:
                session = requests_cache.CachedSession(
                    str(self.settings.cache_path),
                    backend="sqlite",
                    expire_after=-1 if days is None else days * 86400,
                    allowable_codes=(200,),
                    allowable_methods=("GET", "POST"),
                    ignored_parameters=[*SECRET_PARAMS, *_REDACTED_HEADERS],
                    match_headers=False,
                    stale_if_error=False,
                    filter_fn=_cacheable,
                )
            except sqlite3.Error as exc:
                raise ClusterError(
                    f"The HTTP cache {self.settings.cache_path} cannot be used ({exc}): delete "
                    f"it (it only holds copies of answers) and run the command again.") from None
        session.headers["User-Agent"] = self.user_agent
        return session

    def close(self) -> None:
        self.session.close()

    # -- credentials each service wants on every call
    def credentials(self, service: str) -> dict[str, str]:
        s = self.settings
        creds: dict[str, str] = {}
        if service in ("pubmed", "pmc"):
            creds["tool"] = "cluster"
            if s.email:
                creds["email"] = s.email
            if s.ncbi_api_key:
                creds["api_key"] = s.ncbi_api_key
        elif service in ("crossref", "openalex"):
            if s.email:
                creds["mailto"] = s.email
            if service == "openalex" and s.openalex_api_key:
                creds["api_key"] = s.openalex_api_key
        elif service == "unpaywall" and s.email:
            creds["email"] = s.email  # Unpaywall refuses a call without it (HTTP 422)
        return creds

    def request(self, service: str, endpoint: str, path: str,
                params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None, *,
                parse: Callable[[bytes], T], count: Callable[[T], int] = lambda _: 0,
                method: str = "GET", not_found: Callable[[], NotFound] | None = None,
                expect: str = "json", cache: bool = True,
                log_params: Mapping[str, str] | None = None) -> tuple[T, CallLog]:
        """Call `path` under the service's base URL, retrying until `parse` accepts the body.

        `parse` raises `BadBody` for a body worth retrying (truncated, not
        XML/JSON) and a `ServiceError` for an answer that will not change
        (an NCBI <ERROR>). `not_found` builds the error for a 404. `cache=False`
        bypasses the cache (Crossref cursors are server-side state: the same URL
        gives the next page). `log_params` adds what the path carries (a DOI) to
        the call's log entry. Returns the parsed value and the log entry.

        Secrets leave here in no form: each answer is redacted before it is
        parsed (a service may echo the request URL, e-mail and key included,
        in an error or a warning), and so is every error raised on the way out.
        """
        try:
            return self._request(service, endpoint, path, params, parse=parse, count=count,
                                 method=method, not_found=not_found, expect=expect,
                                 cache=cache, log_params=log_params)
        except ServiceError as exc:
            exc.args = tuple(redact(a, self.settings.secrets()) if isinstance(a, str) else a
                             for a in exc.args)
            raise

    def _request(self, service: str, endpoint: str, path: str,
                 params: Mapping[str, Any] | Sequence[tuple[str, Any]] | None, *,
                 parse: Callable[[bytes], T], count: Callable[[T], int], method: str,
                 not_found: Callable[[], NotFound] | None, expect: str, cache: bool,
                 log_params: Mapping[str, str] | None) -> tuple[T, CallLog]:
        url = self.settings.base_url(service) + path
        if service in self.unreachable:
            raise Unreachable(SERVICE_NAMES[service], str(self.unreachable[service]))
        items = list(params.items()) if isinstance(params, Mapping) else list(params or ())
        items = [(k, v) for k, v in items if v is not None]
        items += list(self.credentials(service).items())
        name = SERVICE_NAMES[service]
        attempts = self.settings.max_retries + 1
        extra: dict[str, Any] = {}
        if not cache and hasattr(self.session, "cache"):
            from requests_cache import DO_NOT_CACHE

            extra["expire_after"] = DO_NOT_CACHE
        last = "no answer"
        rate_limited_last = False
        for attempt in range(attempts):
            delay: float | None = None
            rate_limited_last = False
            try:
                if method == "POST":
                    resp = self.session.post(url, data=items, timeout=self.settings.timeout,
                                             **extra)
                else:
                    resp = self.session.get(url, params=items, timeout=self.settings.timeout,
                                            **extra)
                # reading .content here turns a short body into ChunkedEncodingError
                body = redact(resp.content, self.settings.secrets())
            except (requests.ConnectionError, requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                    requests.exceptions.ContentDecodingError) as exc:
                offline = unreachable(service, url, exc)
                if offline is not None:
                    self.unreachable[service] = offline
                    raise offline from None
                last = _describe_exception(exc)
                log.info("%s %s: %s (attempt %d)", name, endpoint, last, attempt + 1)
            except requests.RequestException as exc:
                # a URL requests cannot send (a base URL without http://, a redirect loop):
                # retrying will not help, and its message quotes the URL, credentials included
                raise ServiceDown(name, f"{name} could not be asked ({exc}): check the "
                                        f"service's base URL and try again.") from None
            else:
                self._adapt(service, resp)
                status = resp.status_code
                if status in RETRY_STATUSES:
                    last = f"HTTP {status}"
                    rate_limited_last = status == 429
                    delay = parse_retry_after(resp.headers.get("Retry-After"))
                    if delay is None and status == 429:
                        # no Retry-After: wait at least one full backoff unit (1 s by default)
                        delay = self.settings.backoff_base + self._backoff(attempt)
                    if delay is not None and delay > self.settings.retry_after_max:
                        if status == 429:
                            raise rate_limited(service)
                        raise service_down(service, last, attempt + 1)
                    log.info("%s %s: %s (attempt %d)", name, endpoint, last, attempt + 1)
                elif status == 404 and not_found is not None:
                    error = not_found()
                    # the lookup still happened: callers log it as a search with no result
                    error.call = CallLog(service, endpoint, {**(log_params or {}),
                                                              **public_params(items)},
                                         _now(), 0, bool(getattr(resp, "from_cache", False)))
                    raise error
                elif status >= 400:
                    raise _rejected(service, status, body)
                else:
                    try:
                        if expect in ("json", "xml") and _looks_like_html(
                                body, resp.headers.get("Content-Type", "")):
                            raise BadBody("an HTML page instead of " + expect.upper())
                        value = parse(body)
                    except BadBody as exc:
                        last = f"unusable answer: {exc}"
                        self._forget(resp)
                        log.info("%s %s: %s (attempt %d)", name, endpoint, last, attempt + 1)
                    except ServiceError:
                        self._forget(resp)
                        raise
                    except Exception as exc:  # a shape no parser expected: not worth retrying
                        self._forget(resp)
                        log.warning("%s %s: unreadable answer: %r", name, endpoint, exc)
                        raise UnreadableAnswer(
                            name, f"{name} sent an answer that cluster cannot read "
                                  f"({type(exc).__name__}): try again later, and report it if "
                                  f"it keeps happening.") from None
                    else:
                        logged = {**(log_params or {}), **public_params(items)}
                        call = CallLog(service, endpoint, logged, _now(),
                                       count(value), bool(getattr(resp, "from_cache", False)))
                        return value, call
            if attempt + 1 < attempts:
                self._wait(name, last, delay if delay is not None else self._backoff(attempt))
        if rate_limited_last:
            raise rate_limited(service)
        raise service_down(service, last, attempts)

    def _wait(self, name: str, why: str, seconds: float) -> None:
        """Sleep before a retry; a long wait is counted down through `on_wait` each second."""
        if self.on_wait is None or seconds <= WAIT_NOTICE:
            time.sleep(seconds)
            return
        message = f"{name}: {why}; trying again"
        end = time.monotonic() + seconds
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            self.on_wait(message, left)
            time.sleep(min(1.0, left))
        self.on_wait(message, 0.0)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.settings.backoff_max, self.settings.backoff_base * (2 ** attempt))
        return random.uniform(ceiling / 2, ceiling)  # jitter keeps parallel clients apart

    def _forget(self, resp: requests.Response) -> None:
        """Remove a response we refused from the cache, so it is never served again."""
        cache = getattr(self.session, "cache", None)
        key = getattr(resp, "cache_key", None)
        if cache is not None and key:
            cache.delete(key)

    def _adapt(self, service: str, resp: requests.Response) -> None:
        """Follow Crossref's announced limit (X-Rate-Limit-Limit per X-Rate-Limit-Interval)."""
        if service != "crossref" or getattr(resp, "from_cache", False):
            return
        if self.settings.rate_limits and service in self.settings.rate_limits:
            return
        limit = resp.headers.get("X-Rate-Limit-Limit")
        interval = resp.headers.get("X-Rate-Limit-Interval", "1s")
        m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*", interval or "")
        if not (limit and limit.strip().isdigit() and m):
            return
        seconds = float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[m.group(2) or "s"]
        if int(limit) > 0 and seconds > 0:
            self.limiters[service].update(int(limit), seconds)


def _cacheable(resp: requests.Response) -> bool:
    """Only whole, non-HTML 200 bodies go into the cache (parse failures are deleted later)."""
    if resp.status_code != 200 or not resp.content:
        return False
    return not _looks_like_html(resp.content, resp.headers.get("Content-Type", ""))


def _describe_exception(exc: Exception) -> str:
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "answer cut short"
    return "connection reset"


def _rejected(service: str, status: int, body: bytes) -> RequestRejected:
    name = SERVICE_NAMES[service]
    detail = _error_detail(body)
    reason = f"HTTP {status}" + (f": {detail}" if detail else "")
    return RequestRejected(name, f"{name} rejected the request ({reason}): check the "
                                 f"identifiers or query and try again.", status)


#: a JSON escape of a surrogate, or a surrogate's bytes (json.loads lets both through)
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


def parse_json(body: bytes) -> Any:
    """A JSON answer decoded, its text made valid Unicode (a lone `\\ud800` becomes U+FFFD)."""
    try:
        data = json.loads(body)
    except ValueError:
        raise BadBody("not a whole JSON document") from None
    return valid_text(data) if _SURROGATE_HINT.search(body) else data


def _error_detail(body: bytes) -> str | None:
    """The service's own short explanation, from a JSON or text error body."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        if _looks_like_html(body, "") or not text:
            return None
        return text[:200].strip().rstrip(".").strip()
    if isinstance(data, dict):
        msg = data.get("message")
        if isinstance(msg, list) and msg and isinstance(msg[0], dict):
            first = str(msg[0].get("message") or msg[0].get("type") or "")
            return first[:200].strip().rstrip(".").strip() or None
        if isinstance(msg, dict) and isinstance(msg.get("message"), str):
            return msg["message"][:200].strip().rstrip(".").strip()
        if isinstance(msg, str):
            return msg[:200].strip().rstrip(".").strip()
        if isinstance(data.get("error"), str):
            return data["error"][:200].strip().rstrip(".").strip()
    return None


def query_string(params: Mapping[str, Any]) -> str:
    """A readable query string of public parameters (for messages and logs)."""
    return urlencode(public_params(params))
