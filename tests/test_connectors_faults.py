"""Faults injected by the loopback server: every one is retried and recovered from, or
ends in one sentence naming the service; partial results survive; bad bodies are never cached."""

from __future__ import annotations

import email.utils
import time

import pytest

from base.errors import RateLimited, ServiceDown, Unreachable, UnreadableAnswer
from conftest import shared_path
from connectors.http import Settings, parse_retry_after
from cluster.demo.loopback import Fault, Response
from connectors.services import connect
from replay import Replay, load_index, wait_for_log

EFETCH = "/ncbi/entrez/eutils/efetch.fcgi"
PMID = "36987902"


@pytest.fixture(scope="module")
def recordings():
    return load_index(shared_path("fixtures", "http"))


@pytest.fixture(scope="module")
def server():
    r = Replay([]).start()
    yield r
    r.stop()


@pytest.fixture
def replay(server, recordings):
    return server.reset([e for e in recordings if not e.name.startswith("legacy2008")])


def _connect(replay, tmp_path=None, **overrides):
    values = dict(base_urls=replay.base_urls(), max_retries=3, backoff_base=0.001,
                  backoff_max=0.01, timeout=(1, 0.5), retry_after_max=5,
                  rate_limits={"pubmed": 1000, "crossref": 1000, "openalex": 1000,
                               "opencitations": 1000},
                  cache_path=tmp_path / "cache.sqlite" if tmp_path else None)
    values.update(overrides)
    return connect(Settings(**values))


def _statuses(replay, path=EFETCH, n=1):
    return [r.status for r in wait_for_log(replay.server, path, n)]


@pytest.mark.parametrize("fault,status", [
    (Fault("429"), 429), (Fault("500"), 500), (Fault("502"), 502), (Fault("503"), 503),
    (Fault("504"), 504), (Fault("reset"), 0), (Fault("truncate"), 200), (Fault("html"), 200),
])
def test_fault_then_recovery(replay, fault, status):
    replay.server.inject("/ncbi", fault, fault)
    with _connect(replay) as s:
        got = s.pubmed.fetch([PMID])
    assert [r.pmid for r in got.records] == [PMID]
    assert _statuses(replay, n=3) == [status, status, 200]


def test_answer_slower_than_read_timeout_then_recovery(replay):
    arrivals = []
    original = replay.server.routes["/ncbi"]

    def counting(req):
        arrivals.append(time.monotonic())
        return original(req)

    replay.server.route("/ncbi", counting)
    replay.server.inject("/ncbi", Fault("slow", seconds=0.8), Fault("slow", seconds=0.8))
    with _connect(replay) as s:
        got = s.pubmed.fetch([PMID])
    assert [r.pmid for r in got.records] == [PMID]
    # two read timeouts (0.5 s), then the answer; a loaded machine may time out once more
    assert len(arrivals) >= 3
    assert arrivals[2] - arrivals[0] >= 1.0


def test_retry_after_seconds_is_honoured(replay):
    replay.server.inject("/ncbi", Fault("429", retry_after="1"))
    with _connect(replay) as s:
        got = s.pubmed.fetch([PMID])
    first, second = wait_for_log(replay.server, EFETCH, 2)
    assert got.records and second.t - first.t >= 0.95


def test_retry_after_http_date():
    now = time.time()
    header = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(header, now=now) <= 30
    assert parse_retry_after("7") == 7.0 and parse_retry_after("soon") is None
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0


def test_rate_limit_exhausted_is_one_sentence(replay):
    replay.server.fail_always("/ncbi", Fault("429"))
    with _connect(replay) as s, pytest.raises(RateLimited) as info:
        s.pubmed.fetch([PMID])
    assert str(info.value) == "PubMed is rate-limiting: set NCBI_API_KEY or try later."
    assert info.value.service == "PubMed" and _statuses(replay, n=4) == [429] * 4


def test_retry_after_too_long_gives_up_at_once(replay):
    replay.server.fail_always("/crossref", Fault("429", retry_after="3600"))
    with _connect(replay) as s, pytest.raises(RateLimited) as info:
        s.crossref.works(["10.1371/journal.pone.0033693"])
    assert str(info.value) == ("Crossref is rate-limiting: set CLUSTER_EMAIL to use Crossref's "
                               "polite pool or try later.")
    assert len(wait_for_log(replay.server, "/crossref", 1)) == 1


def test_service_down_is_one_sentence(replay):
    replay.server.fail_always("/openalex", Fault("503"))
    with _connect(replay) as s, pytest.raises(ServiceDown) as info:
        s.openalex.works(["W2741809807"])
    assert str(info.value) == ("OpenAlex is not answering properly (HTTP 503 after 4 attempts): "
                               "check your connection or try again later.")


def test_connection_refused_fails_at_once_naming_the_service(replay):
    start = time.monotonic()
    with _connect(replay, base_urls={"opencitations": "http://127.0.0.1:9/index/v2"},
                  max_retries=5, backoff_base=1.0) as s, pytest.raises(Unreachable) as info:
        s.opencitations.citations(["10.1108/jd-12-2013-0166"])
    assert time.monotonic() - start < 1.0
    assert str(info.value) == ("No network: cannot reach OpenCitations (no connection to "
                               "127.0.0.1:9: connection refused): check the connection, or the "
                               "service's base URL, and run the command again.")
    assert info.value.service == "OpenCitations"


def test_name_lookup_failure_fails_at_once_and_later_calls_do_not_try(replay, monkeypatch):
    import socket

    looked_up = []

    def no_dns(host, *args, **kwargs):
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    start = time.monotonic()
    with _connect(replay, base_urls={"pubmed": "http://eutils.example.org/eutils"},
                  backoff_base=1.0) as s:
        with pytest.raises(Unreachable) as first:
            s.pubmed.fetch([PMID])
        with pytest.raises(Unreachable) as second:
            s.pubmed.links([PMID], "pubmed_pubmed")
    assert time.monotonic() - start < 1.0
    assert str(first.value) == ("No network: cannot reach PubMed (the name eutils.example.org "
                                "could not be looked up): check the connection, or the service's "
                                "base URL, and run the command again.")
    assert str(second.value) == str(first.value)
    assert looked_up == ["eutils.example.org"]


def test_reset_connections_are_retried_then_named(replay):
    replay.server.fail_always("/ncbi", Fault("reset"))
    with _connect(replay, max_retries=2) as s, pytest.raises(ServiceDown) as info:
        s.pubmed.fetch([PMID])
    assert not isinstance(info.value, Unreachable)
    assert str(info.value) == ("PubMed is not answering properly (connection reset after 3 "
                               "attempts): check your connection or try again later.")
    assert len(wait_for_log(replay.server, "/ncbi", 3)) == 3


def test_long_waits_are_counted_down_short_ones_are_not(replay):
    heard = []
    replay.server.inject("/ncbi", Fault("503", retry_after="4"), Fault("503", retry_after="1"))
    with connect(Settings(base_urls=replay.base_urls(), max_retries=3, retry_after_max=10,
                          rate_limits={"pubmed": 1000}),
                 on_wait=lambda what, left: heard.append((what, round(left)))) as s:
        got = s.pubmed.fetch([PMID])
    assert [r.pmid for r in got.records] == [PMID]
    assert [h[0] for h in heard] == ["PubMed: HTTP 503; trying again"] * len(heard)
    assert [h[1] for h in heard] == [4, 3, 2, 1, 0]


def test_timeouts_exhausted(replay):
    replay.server.fail_always("/ncbi", Fault("slow", seconds=0.8))
    with _connect(replay, max_retries=1) as s, pytest.raises(ServiceDown) as info:
        s.pubmed.fetch([PMID])
    assert "(timed out after 2 attempts)" in str(info.value)


def test_partial_results_survive_a_later_failure(replay):
    served = []
    original = replay.server.routes["/ncbi"]

    def handler(req):
        served.append(req.path)
        if req.path.endswith("efetch.fcgi") and len(served) > 1:
            return Response(503, b"<html>down</html>", content_type="text/html")
        return original(req)

    replay.server.route("/ncbi", handler)
    with _connect(replay, max_retries=1) as s:
        got = s.pubmed.fetch(["36987902", "34843274", "23121403"], batch_size=2)
    assert [r.pmid for r in got.records] == ["36987902", "34843274"]
    assert got.failed == {"23121403": "PubMed is not answering properly (HTTP 503 after 2 "
                                      "attempts): check your connection or try again later."}
    assert got.missing == ()


def test_truncated_body_is_never_cached(replay, tmp_path):
    replay.server.inject("/ncbi", Fault("truncate"))
    with _connect(replay, tmp_path) as s:
        first = s.pubmed.fetch([PMID])
        second = s.pubmed.fetch([PMID])
    assert first.records == second.records and first.records[0].pmid == PMID
    assert [c.from_cache for c in first.calls + second.calls] == [False, True]
    assert _statuses(replay, n=2) == [200, 200]  # truncated, then whole; the rerun hit the cache


def test_html_body_is_never_cached(replay, tmp_path):
    replay.server.inject("/crossref", Fault("html"))
    with _connect(replay, tmp_path, max_retries=0) as s, pytest.raises(ServiceDown) as info:
        s.crossref.works(["10.1371/journal.pone.0033693"])
    assert "an HTML page instead of JSON after 1 attempt)" in str(info.value)
    with _connect(replay, tmp_path) as s:
        got = s.crossref.works(["10.1371/journal.pone.0033693"])
    assert got.records[0].doi == "10.1371/journal.pone.0033693"
    assert got.calls[0].from_cache is False


def test_answer_of_an_unexpected_shape_is_one_sentence(replay, tmp_path):
    # valid JSON, but a work-list whose items are not works
    replay.server.route("/crossref", lambda req: Response(
        200, b'{"status":"ok","message-type":"work-list","message":{"items":[1,2]}}'))
    with _connect(replay, tmp_path) as s, pytest.raises(UnreadableAnswer) as info:
        s.crossref.works(["10.1000/a", "10.1000/b"])
    assert str(info.value) == ("Crossref sent an answer that cluster cannot read "
                               "(ValueError): try again later, and report it if it keeps "
                               "happening.")
    assert len(wait_for_log(replay.server, "/crossref", 1)) == 1
