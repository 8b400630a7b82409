"""`cluster search pubmed` and `cluster search rerun`: database searches run from the store.

Against recorded E-utilities answers (../shared/fixtures/http/ncbi) for what PubMed says
(count, query translation, history-server keys, its error and warning lists), and against
a generated world on the loopback server for records landing and reruns finding only the
new ones.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from clikit import one_sentence
from cluster.demo.services import serve_world
from cluster.demo.world import World
from conftest import shared_path
from replay import Replay, load_index

ESEARCH = "/ncbi/entrez/eutils/esearch.fcgi"
EFETCH = "/ncbi/entrez/eutils/efetch.fcgi"


@pytest.fixture
def replay(monkeypatch):
    entries = [e for e in load_index(shared_path("fixtures", "http"))
               if not e.name.startswith("legacy2008")]
    r = Replay(entries).start()
    by_name = {e.name: e for e in entries}
    # the recorded answers, served for the terms a review would type
    r.serve_at(by_name["esearch_pubmed_author_hart-rk.xml"], "/entrez/eutils/esearch.fcgi",
               params=[("term", "hart rk[author]")])
    r.serve_at(by_name["esearch_no-results_errorlist_warninglist.xml"],
               "/entrez/eutils/esearch.fcgi", params=[("term", "abcXYZ")])
    r.serve_at(by_name["esearch_pubmed_cancer_usehistory_retmax100.xml"],
               "/entrez/eutils/esearch.fcgi", params=[("term", "cancer")])
    for service, url in r.base_urls().items():
        monkeypatch.setenv(f"CLUSTER_{service.upper()}_URL", url)
    monkeypatch.setenv("CLUSTER_RATE_LIMITS", "pubmed=1000")
    monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "0")
    yield r
    r.stop()


def _searches(db_path):
    db = sqlite3.connect(db_path)
    db.row_factory = sqlite3.Row
    return [dict(r) for r in db.execute("SELECT * FROM searches ORDER BY id")]


def test_count_only_reports_count_and_translation_and_logs_nothing(run, replay, db_path):
    result = run("search", "pubmed", "hart rk[author]", "--count-only")
    assert result.stdout == ("PubMed: 34 records (searched as: hart, rk[Author] OR hart "
                             "rk[Author]); nothing fetched or logged.\n")
    sent = replay.requests_to(ESEARCH)
    assert [dict(r.params).get("retmax") for r in sent] == ["0"]
    assert "usehistory" not in dict(sent[0].params)
    assert not db_path.exists() or _searches(db_path) == []


def test_search_uses_the_history_server_and_logs_what_pubmed_said(run, replay, db_path):
    result = run("search", "pubmed", "hart rk[author]", "--from", "2000", "--to", "2024/06", "-q")
    (search,) = _searches(db_path)
    params = json.loads(search["params"])
    assert (search["kind"], search["service"], search["role"], search["query"]) == (
        "search", "PubMed", "database", "hart rk[author]")
    assert (params["translation"], params["count"], params["from"], params["to"],
            params["filters"]) == ("hart, rk[Author] OR hart rk[Author]", 34, "2000",
                                   "2024/06", [])
    assert json.loads(search["limits"]) == {"publication_date": "2000 to 2024/06"}
    assert search["n_found"] == 34 and search["started_at"].startswith("20")
    esearch = dict(replay.requests_to(ESEARCH)[0].params)
    assert (esearch["term"], esearch["usehistory"], esearch["datetype"], esearch["mindate"],
            esearch["maxdate"]) == ("hart rk[author]", "y", "pdat", "2000", "2024/06")
    efetch = [dict(r.params) for r in replay.requests_to(EFETCH)]
    assert [(f["WebEnv"], f["query_key"], f["retstart"], f["retmax"]) for f in efetch] == [
        ("MCID_6934533c4c5abba8c303da1d", "1", "0", "34")]
    # no efetch of these 34 ids was recorded: the history server's answer is an empty set
    assert result.stderr == ("Warning: PubMed listed 34 record(s) it did not return; they are "
                             "not in the store (rerun the search later to fetch them).\n")
    assert "Search 1 (PubMed): 34 records found, 34 new to this search, 0 fetched" in result.stdout


def test_pubmed_errors_and_warnings_are_reported_and_zero_results_logged(run, replay, db_path):
    result = run("search", "pubmed", "abcXYZ", "-q")
    assert result.stderr == ("Warning: PubMed: phrase not found: abcXYZ\n"
                             "Warning: PubMed: output message: No items found.\n")
    (search,) = _searches(db_path)
    assert (search["n_found"], search["n_kept"], search["notes"]) == (
        0, 0, "PubMed: phrase not found: abcXYZ\nPubMed: output message: No items found.")
    assert json.loads(search["params"])["translation"] == "(abcXYZ[All Fields])"
    assert replay.requests_to(EFETCH) == []


def test_more_than_esearch_reaches_is_refused_and_nothing_logged(run, replay, db_path):
    result = run("search", "pubmed", "cancer", expect=1)
    assert one_sentence(result) == (
        "Error: PubMed found 42,249 records for this query, more than the 10,000 one search "
        "can fetch: narrow it or split it by publication date (--from, --to); nothing was "
        "logged.")
    assert _searches(db_path) == []


@pytest.mark.parametrize("args,message", [
    (("",), "The PubMed query is empty: give the search strategy in quotes, e.g. cluster "
            "search pubmed '\"compassion\"[tiab]'."),
    (("   ",), "The PubMed query is empty: give the search strategy in quotes, e.g. cluster "
               "search pubmed '\"compassion\"[tiab]'."),
    (("x" * 10_000,), "The PubMed query is 10,000 characters long, over the 8,000 cluster "
                      "sends: split the strategy into several searches."),
    (("compassion", "--from", "2020", "--to", "2010"),
     "The dates are the wrong way round: --from 2020 is after --to 2010."),
    (("compassion", "--from", "2020/05", "--to", "2020/04/30"),
     "The dates are the wrong way round: --from 2020/05 is after --to 2020/04/30."),
    (("compassion", "--from", "May 2020"),
     "The --from date 'May 2020' is not a date PubMed reads: give YYYY, YYYY/MM or "
     "YYYY/MM/DD, e.g. 2015/01/31."),
    (("compassion", "--to", "2020/13"),
     "The --to date '2020/13' is not a date PubMed reads: give YYYY, YYYY/MM or YYYY/MM/DD, "
     "e.g. 2015/01/31."),
])
def test_bad_input_is_one_sentence_nothing_sent_nothing_logged(run, replay, db_path, args,
                                                               message):
    for extra in ((), ("--count-only",)):
        result = run("search", "pubmed", *args, *extra, expect=1)
        assert one_sentence(result) == "Error: " + message
    assert replay.requests_to("/ncbi") == []
    assert not db_path.exists() or _searches(db_path) == []


def test_a_month_and_a_day_in_it_are_in_order(run, replay, db_path):
    run("search", "pubmed", "hart rk[author]", "--from", "2020/04", "--to", "2020/04/30",
        "--count-only")


def test_rerun_of_what_is_not_a_pubmed_search_is_refused(run, replay, db_path, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("23121403\n")
    run("import", str(ids), "--as", "index")
    assert one_sentence(run("search", "rerun", "1", expect=1)) == (
        "Error: Search 1 is not a PubMed search run by cluster, so it cannot be rerun: run the "
        "search again where it was run and import the new records.")
    assert one_sentence(run("search", "rerun", "7", expect=1)) == (
        "Error: There is no search 7 in this store: `cluster searches` lists them.")


# --- records landing, and reruns, on a generated world ---------------------------------


@pytest.fixture(scope="module")
def world():
    return World.generate(seed=3, n_works=60, n_index=4)


@pytest.fixture
def world_env(world, monkeypatch):
    server = serve_world(world)
    for service, url in server.base_urls.items():
        monkeypatch.setenv(f"CLUSTER_{service.upper()}_URL", url)
    monkeypatch.setenv("CLUSTER_RATE_LIMITS", "pubmed=1000")
    yield server
    server.stop()


def _matching(world, word):
    hits = [w for w in world.works if w.pmid and (word in w.title.lower()
                                                  or word in w.abstract.lower())]
    return sorted(hits, key=lambda w: (-w.year, w.pmid))


def test_records_land_with_provenance_and_a_rerun_fetches_only_new_ones(run, db_path, world,
                                                                        world_env):
    hits = [w for w in _matching(world, "rainfall") if w.language == "en"]
    assert len(hits) == 7
    run("search", "pubmed", "rainfall", "--filter", "eng[la]")
    sent = [dict(r.params) for r in world_env.log if r.path.endswith("esearch.fcgi")]
    assert sent[0]["term"] == "(rainfall) AND (eng[la])"
    assert json.loads(_searches(db_path)[0]["limits"]) == {"filters": "eng[la]"}
    db = sqlite3.connect(db_path)
    assert sorted(r[0] for r in db.execute("SELECT pmid FROM records")) == sorted(
        w.pmid for w in hits)
    assert db.execute("SELECT COUNT(*), MIN(role), MIN(service) FROM sources "
                      "WHERE search_id = 1").fetchone() == (7, "database", "PubMed")
    fetches = [dict(r.params) for r in world_env.log if r.path.endswith("efetch.fcgi")]
    assert [(f.get("WebEnv"), f.get("retstart"), f.get("retmax")) for f in fetches] == [
        ("MCID_world000001", "0", "7")]
    # two of the records were not there at the first run: the world drops them from its
    # history, and the rerun must fetch those two only
    late = {hits[0].pmid, hits[3].pmid}
    db.execute("DELETE FROM sources WHERE source_record_id IN (?, ?)", sorted(late))
    db.commit()
    result = run("search", "rerun", "1")
    assert result.stdout.startswith("Search 2 (rerun of search 1: PubMed): 7 records found, "
                                    "2 new to this search, 2 fetched, 0 new to the store.")
    fetches = [dict(r.params) for r in world_env.log if r.path.endswith("efetch.fcgi")]
    assert set(fetches[-1]["id"].split(",")) == late
    rerun = _searches(db_path)[1]
    assert (rerun["kind"], rerun["n_found"], rerun["n_kept"]) == ("search", 7, 2)
    assert json.loads(rerun["params"])["rerun_of"] == 1
    # a rerun of the rerun still compares with every earlier run of the search
    third = run("search", "rerun", "2")
    assert "0 new to this search, 0 fetched" in third.stdout
    assert len([r for r in world_env.log if r.path.endswith("esearch.fcgi")]) == 3
