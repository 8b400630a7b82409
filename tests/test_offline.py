"""A machine without network, and services that refuse connections: each command that asks a
service ends in seconds with one sentence naming it, and `cluster expand` never asks a service
with an identifier it does not have (bare PMIDs/DOIs are completed first)."""

from __future__ import annotations

import sqlite3
import time

import pytest

from cluster.demo.services import serve_world
from cluster.demo.world import World
from clikit import one_sentence
from faults import closed_port_url, offline_env

NO_PUBMED = ("Error: No network: cannot reach PubMed (the name eutils.ncbi.nlm.nih.gov could not "
             "be looked up): check the connection, or the service's base URL, and run the "
             "command again.")

INDEX_RIS = """TY  - JOUR
TI  - Relational aspects of compassion training
AU  - Smith, Jane
PY  - 2012
DO  - 10.1037/a0030292
ER  - 
"""


def _timed(run, *args, expect):
    start = time.monotonic()
    result = run(*args, expect=expect)
    return result, time.monotonic() - start


def test_add_without_network_fails_in_seconds_naming_pubmed(run, db_path, monkeypatch):
    offline_env(monkeypatch)
    result, took = _timed(run, "add", "--pmid", "23121403", expect=1)
    assert took < 5
    assert one_sentence(result) == NO_PUBMED
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM records").fetchone() == (0,)


def test_fetch_fill_without_network_fails_in_seconds(run, db_path, tmp_path, monkeypatch):
    ids = tmp_path / "ids.txt"
    ids.write_text("23121403\n10.1037/a0030292\n")
    run("import", str(ids), "--as", "index")
    offline_env(monkeypatch)
    result, took = _timed(run, "fetch", "--fill", expect=1)
    assert took < 5
    assert one_sentence(result) == NO_PUBMED
    assert sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM records WHERE needs_metadata = 1").fetchone() == (2,)


def test_expand_of_bare_identifiers_without_network_is_one_sentence(run, tmp_path, monkeypatch):
    ids = tmp_path / "ids.txt"
    ids.write_text("23121403\n10.1037/a0030292\n")
    run("import", str(ids), "--as", "index")
    offline_env(monkeypatch)
    result, took = _timed(run, "expand", "--quiet", expect=1)
    assert took < 5
    assert one_sentence(result) == NO_PUBMED


def test_expand_without_network_is_one_sentence_not_one_per_search(run, db_path, tmp_path,
                                                                   monkeypatch):
    ris = tmp_path / "index.ris"
    ris.write_text(INDEX_RIS)
    run("import", str(ris), "--as", "index")
    offline_env(monkeypatch)
    result, took = _timed(run, "expand", "--quiet", expect=3)
    assert took < 5
    assert one_sentence(result) == (
        "Error: No network: cannot reach Crossref, OpenAlex, OpenCitations and PubMed: check "
        "the connection and run `cluster expand` again.")
    # the searches are logged as failed, so a run with network retries them
    statuses = dict(sqlite3.connect(db_path).execute(
        "SELECT status, COUNT(*) FROM searches WHERE kind = 'api' GROUP BY status").fetchall())
    assert statuses == {"failed": 10, "skipped": 1}


def test_refused_connections_end_expand_in_seconds(run, tmp_path, monkeypatch):
    ris = tmp_path / "index.ris"
    ris.write_text(INDEX_RIS)
    run("import", str(ris), "--as", "index")
    url = closed_port_url()
    for var in ("CLUSTER_PUBMED_URL", "CLUSTER_CROSSREF_URL", "CLUSTER_OPENALEX_URL",
                "CLUSTER_OPENCITATIONS_URL"):
        monkeypatch.setenv(var, url)
    monkeypatch.delenv("CLUSTER_HTTP_RETRIES", raising=False)
    monkeypatch.delenv("CLUSTER_HTTP_BACKOFF", raising=False)
    result, took = _timed(run, "expand", "--quiet", expect=3)
    assert took < 5
    assert one_sentence(result) == (
        "Error: No network: cannot reach Crossref, OpenAlex, OpenCitations and PubMed: check "
        "the connection and run `cluster expand` again.")


# --- identifiers expand does not have ---------------------------------------------------


@pytest.fixture(scope="module")
def world():
    return World.generate(seed=3, n_works=60, n_index=4)


@pytest.fixture
def server(world):
    s = serve_world(world)
    yield s
    s.stop()


@pytest.fixture
def world_env(server, monkeypatch):
    for service, var in (("pubmed", "CLUSTER_PUBMED_URL"), ("crossref", "CLUSTER_CROSSREF_URL"),
                         ("openalex", "CLUSTER_OPENALEX_URL"),
                         ("opencitations", "CLUSTER_OPENCITATIONS_URL")):
        monkeypatch.setenv(var, server.base_urls[service])
    monkeypatch.setenv("CLUSTER_RATE_LIMITS",
                       "pubmed=1000,crossref=1000,openalex=1000,opencitations=1000")
    monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "0")
    return server


def test_expand_completes_bare_index_articles_first(run, db_path, tmp_path, world, world_env):
    ids = tmp_path / "ids.txt"
    ids.write_text(f"{world.index_articles[0].pmid}\n{world.index_articles[2].doi}\n")
    run("import", str(ids), "--as", "index")
    run("expand", "--strategies", "cited-by,related")
    sent = [(r.path, v) for r in world_env.log for _, v in ((None, r.path), *r.params)]
    assert not [s for s in sent if "None" in s[1]]
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT COUNT(*) FROM records r JOIN sources s ON s.record_id = r.id "
                      "WHERE s.role = 'index' AND r.needs_metadata = 1").fetchone() == (0,)
    assert db.execute("SELECT COUNT(*) FROM searches WHERE strategy = 'metadata'").fetchone()[0] >= 1
    assert db.execute("SELECT query FROM searches WHERE query LIKE '%None%'").fetchall() == []
    failed = db.execute("SELECT COUNT(*) FROM searches WHERE status = 'failed'").fetchone()
    assert failed == (0,)


def test_bare_index_article_nobody_knows_is_refused_with_a_sentence(run, tmp_path, world_env):
    ids = tmp_path / "ids.txt"
    ids.write_text("99999999\n")
    run("import", str(ids), "--as", "index")
    result = run("expand", "--quiet", expect=1)
    assert one_sentence(result) == (
        "Error: Index article(s) #1 were imported as bare identifiers and could not be "
        "completed (PubMed and Crossref do not know them): run `cluster fetch --fill` and then "
        "`cluster expand` again.")
    assert not world_env.requests_to("/openalex") and not world_env.requests_to("/opencitations")


def test_a_failed_lookup_is_named_after_the_service_that_failed(run, db_path, tmp_path, world,
                                                                 world_env, monkeypatch):
    seed = world.index_articles[0]
    ris = tmp_path / "index.ris"
    # a PubMed record without its DOI: OpenCitations needs the DOI OpenAlex would give
    ris.write_text(f"TY  - JOUR\nTI  - {world.work(seed.pmid).title}\nPM  - {seed.pmid}\n"
                   f"PY  - {world.work(seed.pmid).year}\nER  - \n")
    run("import", str(ris), "--as", "index")
    monkeypatch.setenv("CLUSTER_OPENALEX_URL", closed_port_url())
    result = run("expand", "--strategies", "cited-by", expect=3)
    assert ("Failed: cited-by via OpenCitations for index article #1 ") in result.stderr
    line = next(l for l in result.stderr.splitlines() if "via OpenCitations" in l)
    assert line.split(": ", 2)[2].startswith(
        "this index article has no DOI and looking it up failed: No network: cannot reach "
        "OpenAlex (no connection to 127.0.0.1:")
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT query FROM searches WHERE service = 'opencitations'").fetchall() == [
        ("citations/doi:(none)",)]
    assert db.execute("SELECT status FROM searches WHERE service = 'pubmed' "
                      "AND strategy = 'cited-by'").fetchall() == [("done",)]


def test_a_database_search_without_network_is_one_sentence_and_not_logged(run, db_path,
                                                                         monkeypatch):
    offline_env(monkeypatch)
    result, took = _timed(run, "search", "pubmed", "compassion[tiab]", "-q", expect=1)
    assert took < 5
    assert one_sentence(result) == NO_PUBMED
    assert sqlite3.connect(db_path).execute("SELECT COUNT(*) FROM searches").fetchone() == (0,)
