"""Credentials never leave in any encoding: a hostile service echoes the request URL.

Every service answers 400 and quotes the credential parameters of the request
back, in the spellings URLs and error pages use (form-encoded as sent, lower-
case hex, `quote` with and without `/` kept, decoded, JSON-escaped slashes,
the User-Agent). The commands that talk to services run against it, and then
the store, the HTTP cache, the log, every stdout and stderr, the reports and
the exports are searched for every secret in every encoding.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import sqlite3
from urllib.parse import quote, quote_plus, urlencode

import pytest

from cluster.demo.loopback import LoopbackServer, Request, Response
from cluster.demo.services import serve_world
from cluster.demo.world import World
from connectors.http import redact
from db.store import open_store

SECRETS = {
    "CLUSTER_EMAIL": "name@example.org",
    "NCBI_API_KEY": "a1b2c3+d4e5/f6g7h8==",
    "OPENALEX_API_KEY": "oaKey9+zz/Q1w2=",
}
CREDENTIAL_PARAMS = {"email", "mailto", "api_key", "tool"}


def _lower_hex(text: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), text)


#: how a secret may be spelled where it leaks
ENCODINGS = {
    "raw": lambda s: s,
    "quote": lambda s: quote(s, safe=""),
    "quote-lower": lambda s: _lower_hex(quote(s, safe="")),
    "quote-slash": lambda s: quote(s),
    "quote_plus": lambda s: quote_plus(s),
    "quote_plus-lower": lambda s: _lower_hex(quote_plus(s)),
}

#: how the hostile server quotes the request back, one after the other
ECHOES = [
    lambda p: urlencode(p),
    lambda p: _lower_hex(urlencode(p)),
    lambda p: urlencode(p, quote_via=quote, safe=""),
    lambda p: urlencode(p, quote_via=quote, safe="/"),
    lambda p: "&".join(f"{k}={v}" for k, v in p),
    lambda p: urlencode(p).replace("%2F", "/").replace("/", "\\/"),
]


class EchoServer:
    """Answers every request with a 400 quoting its credentials back."""

    def __init__(self) -> None:
        self.server = LoopbackServer()
        self.turn = itertools.count()
        self.seen: list[tuple[tuple[str, str], ...]] = []
        for prefix in ("/ncbi", "/crossref", "/openalex", "/opencitations"):
            self.server.route(prefix, self.answer)

    def answer(self, req: Request) -> Response:
        self.seen.append(req.params)
        creds = [(k, v) for k, v in req.params if k in CREDENTIAL_PARAMS]
        n = next(self.turn)
        echo = ECHOES[n % len(ECHOES)](creds) or "no credentials"
        if n % 7 == 6:
            echo = "agent " + req.headers.get("User-Agent", "")
        if n % 2:
            return Response(400, json.dumps({"status": "failed", "message":
                                             f"Invalid request {echo}"}).encode())
        return Response(400, f"Bad request: {echo}".encode(), content_type="text/plain")

    def base_urls(self) -> dict[str, str]:
        url = self.server.url
        return {"PUBMED": url + "/ncbi", "CROSSREF": url + "/crossref",
                "OPENALEX": url + "/openalex", "OPENCITATIONS": url + "/opencitations"}


def leaks(places: dict[str, bytes]) -> tuple[int, list[tuple[str, str, str]]]:
    """(combinations searched, the (secret, encoding, place) found)."""
    found, n = [], 0
    for (secret, value), (encoding, encode), (place, data) in itertools.product(
            SECRETS.items(), ENCODINGS.items(), places.items()):
        n += 1
        if encode(value).encode() in data:
            found.append((secret, encoding, place))
    return n, found


@pytest.fixture
def world_store(run, monkeypatch, db_path):
    """A store with two index articles added from a well-behaved service (answers cached)."""
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    world = World.generate(seed=3, n_works=40, n_index=2)
    server = serve_world(world)
    for name, url in server.base_urls.items():
        monkeypatch.setenv(f"CLUSTER_{name.upper()}_URL", url)
    monkeypatch.setenv("CLUSTER_RATE_LIMITS",
                       "pubmed=1000,crossref=1000,openalex=1000,opencitations=1000")
    monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "0")
    try:
        seeds = world.index_articles
        run("add", "--pmid", seeds[0].pmid, "--doi", seeds[1].doi)
    finally:
        server.stop()
    return db_path


def test_no_secret_leaks_in_any_encoding(run, world_store, monkeypatch, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    echo = EchoServer()
    echo.server.start()
    outputs: dict[str, bytes] = {}
    try:
        for name, url in echo.base_urls().items():
            monkeypatch.setenv(f"CLUSTER_{name}_URL", url)
        for args in (("fetch", "--pmid", "31452104", "--doi", "10.1000/xyz1"),
                     ("add", "--pmid", "31452105"),
                     ("expand",)):
            result = run(*args, expect=None)
            assert result.exit_code in (0, 1, 3) and "Traceback" not in result.output, result.output
            outputs[f"{args[0]} stdout"] = result.stdout_bytes
            outputs[f"{args[0]} stderr"] = result.stderr_bytes
    finally:
        echo.server.stop()
    # the services were sent every credential (so they could echo them back)...
    sent = {v for params in echo.seen for k, v in params if k in CREDENTIAL_PARAMS}
    assert set(SECRETS.values()) <= sent
    assert "email=[redacted]&api_key=[redacted]" in outputs["fetch stderr"].decode()

    for args in (("searches", "--markdown"), ("searches",), ("report",),
                 ("report", "-o", str(tmp_path / "methods.md")),
                 ("export", "--format", "csv"),
                 ("export", "--format", "ris", "-o", str(tmp_path / "out.ris")),
                 ("contacts", "-o", str(tmp_path / "contacts.csv"))):
        result = run(*args)
        outputs[" ".join(args[:2]) + " stdout"] = result.stdout_bytes
        outputs[" ".join(args[:2]) + " stderr"] = result.stderr_bytes
    store = open_store(world_store)
    errors = [e for (e,) in store.db.execute("SELECT error FROM searches WHERE error IS NOT NULL")]
    store.close()
    assert len(errors) >= 5 and all("[redacted]" in e or "no credentials" in e for e in errors)
    assert "[redacted]" in outputs["searches --markdown stdout"].decode()

    files = {p.name: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert {"review.db", "review.http-cache.sqlite", "methods.md", "out.ris",
            "contacts.csv"} <= set(files)
    with sqlite3.connect(tmp_path / "review.http-cache.sqlite") as cache:
        # answers to requests that carried every credential are in the cache
        assert cache.execute("SELECT COUNT(*) FROM responses").fetchone()[0] >= 2
    places = {**outputs, **{f"file {k}": v for k, v in files.items()},
              "log": caplog.text.encode()}
    n, found = leaks(places)
    assert n == len(SECRETS) * len(ENCODINGS) * len(places) and len(places) >= 26
    assert found == []


@pytest.mark.parametrize("spelling", [
    "name@example.org", "name%40example.org", "name%40EXAMPLE.org", "NAME@example.ORG",
    "name%2540example.org", "name\\u0040example.org"])
def test_redact_blanks_every_spelling_of_the_email(spelling):
    text = f"GET /works?mailto={spelling}&rows=2 failed"
    assert redact(text, [SECRETS["CLUSTER_EMAIL"]]) == "GET /works?mailto=[redacted]&rows=2 failed"
    assert redact(text.encode(), [SECRETS["CLUSTER_EMAIL"]]) == (
        b"GET /works?mailto=[redacted]&rows=2 failed")


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_redact_blanks_every_encoding_of_a_key_with_plus_slash_equals(encoding):
    key = SECRETS["NCBI_API_KEY"]
    text = f"api_key={ENCODINGS[encoding](key)}&db=pubmed"
    assert redact(text, [key]) == "api_key=[redacted]&db=pubmed"


def test_redact_leaves_other_text_alone():
    text = "name@example.com and a1b2c3 d4e5 are not secrets"
    assert redact(text, list(SECRETS.values())) == text
    assert redact(text, []) == text
