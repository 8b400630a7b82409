"""Rate limits measured at the server, and credentials kept out of the cache, store and logs."""

from __future__ import annotations

import logging
import threading

import pytest

from conftest import shared_path
from connectors.http import Settings
from cluster.demo.loopback import Fault, Response
from connectors.services import connect
from replay import Replay, load_index, wait_for_log

ESEARCH = ("<eSearchResult><Count>1</Count><RetMax>1</RetMax><RetStart>0</RetStart>"
           "<IdList><Id>1</Id></IdList></eSearchResult>").encode()


@pytest.fixture
def ncbi():
    replay = Replay([]).start()
    replay.server.route("/ncbi", lambda req: Response(200, ESEARCH, content_type="text/xml"))
    yield replay
    replay.stop()


def _max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u - t < window) for i, t in enumerate(times))


def test_ncbi_three_per_second_across_threads(ncbi):
    with connect(Settings(base_urls=ncbi.base_urls())) as s:
        def work(k: int) -> None:
            for j in range(k, 10, 4):
                s.pubmed.search(f"term {j}")
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    times = [r.t for r in wait_for_log(ncbi.server, "/ncbi/entrez/eutils/esearch.fcgi", 10)]
    assert len(times) == 10
    assert _max_in_window(times) <= 3
    assert max(times) - min(times) >= 3.0


def test_ncbi_ten_per_second_with_a_key(ncbi):
    with connect(Settings(base_urls=ncbi.base_urls(), ncbi_api_key="fake-key")) as s:
        for j in range(22):
            s.pubmed.search(f"term {j}")
    times = [r.t for r in wait_for_log(ncbi.server, "/ncbi/entrez/eutils/esearch.fcgi", 22)]
    assert len(times) == 22 and _max_in_window(times) <= 10
    assert max(times) - min(times) >= 2.0


def test_crossref_follows_its_rate_limit_headers():
    replay = Replay([]).start()
    body = (b'{"status":"ok","message-type":"work-list","message":{"items":[]}}')
    replay.server.route("/crossref", lambda req: Response(
        200, body, {"X-Rate-Limit-Limit": "2", "X-Rate-Limit-Interval": "1s"}))
    try:
        with connect(Settings(base_urls=replay.base_urls())) as s:
            for j in range(6):
                s.crossref.search(bibliographic=f"query {j}")
            limiter = s.http.limiters["crossref"]
            assert (limiter.calls, limiter.period) == (2, 1.0)
        times = [r.t for r in wait_for_log(replay.server, "/crossref/works", 6)]
    finally:
        replay.stop()
    assert len(times) == 6 and _max_in_window(times) <= 2


SECRETS = {"email": "fake.reviewer@example.org", "ncbi_api_key": "NCBI-FAKE-KEY-0123456789",
           "openalex_api_key": "OPENALEX-FAKE-KEY-9876543210"}


def test_credentials_never_written(tmp_path, caplog, store):
    recordings = [e for e in load_index(shared_path("fixtures", "http"))
                  if not e.name.startswith("legacy2008")]
    replay = Replay(recordings).start()
    agents = []
    original = replay.server.routes["/crossref"]

    def crossref(req):
        agents.append(req.headers.get("User-Agent"))
        return original(req)

    replay.server.route("/crossref", crossref)
    replay.server.inject("/ncbi", Fault("429"))  # a retry, so that the layer logs too
    caplog.set_level(logging.DEBUG)
    cache = tmp_path / "cache" / "http.sqlite"
    cache.parent.mkdir()
    settings = Settings(base_urls=replay.base_urls(), cache_path=cache, backoff_base=0.001,
                        rate_limits={"pubmed": 100, "crossref": 100, "openalex": 100,
                                     "opencitations": 100}, **SECRETS)
    try:
        with connect(settings) as s:
            results = [
                s.pubmed.fetch(["36987902", "34843274"]),
                s.pubmed.search("hart rk[author]", retmax=250),
                s.crossref.works(["10.1371/journal.pone.0033693", "10.3892/ijo_00000353"]),
                s.crossref.works(["10.1371/notarealdoi"]),
                s.openalex.works(["W2741809807", "W4408732759"]),
                s.openalex.works(["W2741809807"]),
            ]
            again = s.pubmed.fetch(["36987902", "34843274"])
            posted = s.pubmed.fetch(["36987902", "34843274"] + [str(10**7 + i) for i in range(201)],
                                    batch_size=250)
            assert posted.calls[0].params["db"] == "pubmed" and len(posted.records) == 2
        sent = wait_for_log(replay.server, "/", 10)
    finally:
        replay.stop()
    # the secrets did go to the services...
    assert any(("api_key", SECRETS["ncbi_api_key"]) in r.params and r.method == "POST"
               for r in sent)
    assert any(("email", SECRETS["email"]) in r.params for r in sent)
    assert any(("mailto", SECRETS["email"]) in r.params for r in sent)
    assert any(("api_key", SECRETS["openalex_api_key"]) in r.params for r in sent)
    assert agents and all(SECRETS["email"] in a and a.startswith("cluster/0.1.0") for a in agents)
    assert again.calls[0].from_cache is True
    # ...and nowhere else
    with store.transaction():
        for result in results:
            for call in result.calls:
                sid = store.start_search(kind="api", service=call.service, params=call.params,
                                         query=call.endpoint)
                store.finish_search(sid, n_found=call.n_results)
            for record in getattr(result, "records", ()):
                store.add_record(record)
    store.close()
    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert cache.exists() and len(written) > 50_000
    texts = [caplog.text, repr(results), repr(again)]
    assert "attempt 1" in caplog.text  # the retry was logged
    for secret in SECRETS.values():
        for form in (secret, secret.replace("@", "%40")):
            assert form.encode() not in written, form
            assert all(form not in t for t in texts), form
