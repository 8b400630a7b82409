"""`cluster fetch`: records by PMID/DOI and completing records that need metadata."""

from __future__ import annotations

import json

import pytest

from base.record import Record
from conftest import shared_path
from cluster.demo.loopback import Fault
from replay import Replay, load_index


@pytest.fixture
def services_env(monkeypatch):
    replay = Replay([e for e in load_index(shared_path("fixtures", "http"))
                     if not e.name.startswith("legacy2008")]).start()
    for service, url in replay.base_urls().items():
        monkeypatch.setenv(f"CLUSTER_{service.upper()}_URL", url)
    monkeypatch.setenv("CLUSTER_EMAIL", "fake.reviewer@example.org")
    yield replay
    replay.stop()


def test_fetch_by_pmid_and_doi_then_from_cache(run, services_env, db_path):
    args = ("fetch", "--pmid", "36987902", "--doi", "10.1371/journal.pone.0033693", "--json", "-q")
    first = json.loads(run(*args).output)
    assert [(r.get("pmid"), r.get("doi")) for r in first["records"]] == [
        ("36987902", "10.4045/tidsskr.22.0358"), (None, "10.1371/journal.pone.0033693")]
    assert first["records"][0]["language"] == ["en", "no"]
    sent = len(services_env.arrived)
    assert sent == 2
    again = json.loads(run(*args).output)
    assert again == first and len(services_env.arrived) == sent  # all from the cache
    assert (db_path.parent / "review.http-cache.sqlite").exists()


def test_fetch_reports_unknown_and_malformed_ids(run, services_env):
    result = run("fetch", "--pmid", "37909814", "--pmid", "x1", "--pmid", "34843274", "-q")
    assert "PMID 34843274  Guideline Development Panel for the Treatment of Depressive " \
           "Disorders (2022) Summary of the clinical practice guideline" in result.output
    assert "Not found: 37909814" in result.stderr
    assert "Failed: x1: PubMed ids are numbers and 'x1' is not one" in result.stderr


def test_fetch_errors_are_one_sentence(run, services_env):
    result = run("fetch", "--pmid", "abc", expect=1)
    assert result.output.strip().splitlines()[-1] == (
        "Error: PubMed ids are numbers and 'abc' is not one: check the PMID (e.g. 31452104).")
    assert "Traceback" not in result.output
    assert run("fetch", expect=1).output.strip() == (
        "Error: Nothing to fetch: give --pmid, --doi or --fill.")


def test_fetch_when_service_is_down(run, services_env, monkeypatch):
    services_env.server.fail_always("/crossref", Fault("503"))
    monkeypatch.setenv("CLUSTER_CROSSREF_URL", services_env.base_urls()["crossref"])
    monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "2")
    monkeypatch.setenv("CLUSTER_HTTP_BACKOFF", "0.01")
    result = run("fetch", "--doi", "10.1371/journal.pone.0033693", "-q", expect=1)
    assert result.output.strip() == ("Error: Crossref is not answering properly (HTTP 503 "
                                     "after 3 attempts): check your connection or try again "
                                     "later.")


def test_fill_needs_metadata(run, services_env, db_path):
    from db.store import open_store

    store = open_store(db_path)
    with store.transaction():
        a = store.add_record(Record(pmid="36987902", needs_metadata=True, source_id="row-1"))
        b = store.add_record(Record(doi="10.1371/journal.pone.0033693", title="Kept title",
                                    needs_metadata=True))
        c = store.add_record(Record(pmid="37909814", needs_metadata=True))
    store.close()
    result = run("fetch", "--fill", "--json", "-q")
    store = open_store(db_path)
    summary = json.loads(result.output)
    assert summary == {"filled": 2, "still_needing_metadata": 1, "missing": ["37909814"],
                       "failed": {}, "requests": 2}
    rec_a, rec_b, rec_c = (store.get_record(i) for i in (a, b, c))
    assert rec_a.title.startswith("Patients over 75 years admitted") and not rec_a.needs_metadata
    assert rec_a.source_id == "row-1" and rec_a.doi == "10.4045/tidsskr.22.0358"
    assert rec_b.title == "Kept title" and rec_b.year == 2012 and len(rec_b.authors) == 6
    assert rec_c.needs_metadata
    searches = list(store.db["searches"].rows)
    assert {(s["service"], s["kind"]) for s in searches} == {("pubmed", "lookup"),
                                                            ("crossref", "lookup")}
    store.close()


def test_a_long_wait_before_a_retry_is_announced_on_stderr(run, services_env):
    services_env.server.inject("/ncbi", Fault("503", retry_after="4"))
    result = run("fetch", "--pmid", "36987902", "-q")
    assert result.stderr == "PubMed: HTTP 503; trying again in 4 s.\n"
    assert result.stdout.startswith("PMID 36987902  ")
