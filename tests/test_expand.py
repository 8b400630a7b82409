"""`cluster add`, `cluster expand` and the search log, through the CLI, against a
small generated world on the loopback server.

Expected sets are computed from the world itself (its citation graph, author
lists and types), with the filter rules a reviewer would apply to what each
service says about a work:

- PubMed: "Journal Article" (reviews too, editorials not), language English;
- Crossref: type journal-article (Crossref cannot tell an editorial), English
  or no language given (kept, flagged);
- OpenAlex: type article/review from a journal (not editorials, not
  proceedings), English or none; no type at all is kept and flagged.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cluster.demo.services import serve_world
from cluster.demo.world import World
from db.store import open_store

ROOT = Path(__file__).absolute().parents[1]


@pytest.fixture(scope="module")
def world():
    return World.generate(seed=3, n_works=60, n_index=4)


@pytest.fixture(scope="module")
def server(world):
    s = serve_world(world)
    yield s
    s.stop()


def _env(server) -> dict[str, str]:
    return {
        "CLUSTER_PUBMED_URL": server.base_urls["pubmed"],
        "CLUSTER_CROSSREF_URL": server.base_urls["crossref"],
        "CLUSTER_OPENALEX_URL": server.base_urls["openalex"],
        "CLUSTER_OPENCITATIONS_URL": server.base_urls["opencitations"],
        "CLUSTER_RATE_LIMITS": "pubmed=1000,crossref=1000,openalex=1000,opencitations=1000",
        "CLUSTER_HTTP_RETRIES": "1",
        "CLUSTER_HTTP_BACKOFF": "0.01",
        "NCBI_API_KEY": "sekrit-ncbi-key-42",
        "CLUSTER_EMAIL": "reviewer@sekrit.example",
    }


@pytest.fixture
def env(server, monkeypatch):
    for k, v in _env(server).items():
        monkeypatch.setenv(k, v)
    return _env(server)


@pytest.fixture
def indexed(run, world, env, db_path):
    """A store whose index articles were added by PMID (two) and DOI (two)."""
    seeds = world.index_articles
    run("add", "--pmid", seeds[0].pmid, "--pmid", seeds[1].pmid,
        "--doi", seeds[2].doi.upper(), "--doi", f"https://doi.org/{seeds[3].doi}")
    return db_path


# --- what each service is expected to give -------------------------------------------

def pubmed_ok(w):
    return w.kind in ("journal-article", "review") and w.language == "en"


def crossref_ok(w):
    return w.kind in ("journal-article", "review", "editorial") and w.language in ("en", None)


def openalex_ok(w):
    return w.kind in ("journal-article", "review", "other") and w.language in ("en", None)


def expected(world, key, strategy, service):
    seed = world.works[key]
    W = world.works
    if (strategy, service) == ("cited-by", "pubmed"):
        return {c for c in world.cited_by(key) if W[c].pmid and W[c].in_pmc and pubmed_ok(W[c])}
    if (strategy, service) == ("cited-by", "opencitations"):
        return {c for c in world.cited_by(key) if W[c].doi and W[c].oc_covered and crossref_ok(W[c])}
    if (strategy, service) == ("cited-by", "openalex"):
        return {c for c in world.cited_by(key) if openalex_ok(W[c])}
    if (strategy, service) == ("references", "pubmed"):
        return {r for r in seed.references if W[r].pmid and pubmed_ok(W[r])}
    if (strategy, service) == ("references", "openalex"):
        return {r for r in seed.references if openalex_ok(W[r])}
    if (strategy, service) == ("related", "openalex"):
        return {r for r in world.related_works(key) if openalex_ok(W[r])}
    if (strategy, service) == ("lead-author", "openalex"):
        return {k for k in world.works_of(seed.author_keys[0]) if k != key and openalex_ok(W[k])}
    if (strategy, service) == ("lead-author", "crossref"):
        orcid = world.authors[seed.author_keys[0]].orcid
        return {w.key for w in W if orcid and w.doi and w.key != key and crossref_ok(w)
                and any(world.authors[k].orcid == orcid for k in w.author_keys)}
    if (strategy, service) == ("lead-author", "pubmed"):
        lead = world.authors[seed.author_keys[0]]
        out = set()
        for w in W:
            if not w.pmid or w.key == key or not pubmed_ok(w):
                continue
            for a in (world.authors[k] for k in w.author_keys):
                if a.family != lead.family or not a.initials.startswith(lead.initials):
                    continue
                same = a.orcid == lead.orcid if (a.orcid and lead.orcid) else a.affiliation == lead.affiliation
                if same:
                    out.add(w.key)
        return out
    raise AssertionError((strategy, service))


def kept(db_path, world, seed_pmid_or_doi, strategy, service):
    """World keys of the records kept for one index article, strategy and service, by rank."""
    store = open_store(db_path)
    try:
        seed_id = store.find_by_ids(_ids_record(world, seed_pmid_or_doi))
        rows = store.db.execute(
            "SELECT r.pmid, r.doi, r.openalex, so.rank FROM sources so JOIN records r ON r.id = so.record_id "
            "WHERE so.seed_record_id = ? AND so.strategy = ? AND so.service = ? ORDER BY so.rank",
            [seed_id, strategy, service]).fetchall()
    finally:
        store.close()
    keys = []
    for pmid, doi, wid, _rank in rows:
        w = world.work(wid or pmid or doi)
        keys.append(w.key)
    return keys


def _ids_record(world, ident):
    from base.record import Record

    w = world.work(ident)
    return Record(pmid=w.pmid, doi=w.doi)


# --- tests -----------------------------------------------------------------------------

def test_add_fetches_index_articles_by_pmid_and_doi(indexed, world, run):
    store = open_store(indexed)
    rows = store.db.execute("SELECT r.pmid, r.doi, so.service, so.strategy FROM sources so JOIN records r "
                            "ON r.id = so.record_id WHERE so.role = 'index' ORDER BY r.id").fetchall()
    assert [r[0] for r in rows] == [s.pmid for s in world.index_articles]
    assert {r[2] for r in rows} == {"pubmed"} and {r[3] for r in rows} == {"index"}
    assert store.get_record(1).title == world.works[world.index_keys[0]].title + "."
    # adding the same article again makes no second record or index row
    run("add", "--pmid", world.index_articles[0].pmid)
    assert store.db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 4
    assert store.db.execute("SELECT COUNT(*) FROM sources WHERE role='index'").fetchone()[0] == 4
    bad = run("add", "--pmid", "99999999", expect=1)
    assert "Error: PMID 99999999 was not found in PubMed: check the identifier." in bad.output
    bad = run("add", "--doi", "not-a-doi", expect=1)
    assert "is not a DOI" in bad.output
    assert store.db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == 4


def test_expand_keeps_the_exact_sets_with_provenance_and_log(indexed, world, run, server):
    before = len(server.log)
    result = run("expand", "--top", "1000", "--json")
    report = json.loads(result.stdout)
    assert report["failures"] == [] and report["seeds"] == 4
    table = {(r["strategy"], r["service"]): r for r in report["table"]}
    assert set(table) == {("lead-author", "PubMed"), ("lead-author", "OpenAlex"), ("lead-author", "Crossref"),
                          ("cited-by", "PubMed"), ("cited-by", "OpenCitations"), ("cited-by", "OpenAlex"),
                          ("references", "PubMed"), ("references", "Crossref"), ("references", "OpenAlex"),
                          ("related", "PubMed"), ("related", "OpenAlex")}
    for (strategy, service) in [("cited-by", "pubmed"), ("cited-by", "opencitations"), ("cited-by", "openalex"),
                                ("references", "pubmed"), ("references", "openalex"), ("related", "openalex"),
                                ("lead-author", "openalex"), ("lead-author", "pubmed"),
                                ("lead-author", "crossref")]:
        for key, ids in zip(world.index_keys, world.index_articles):
            got = kept(indexed, world, ids.pmid, strategy, service)
            assert len(got) == len(set(got)), (strategy, service)
            assert set(got) == expected(world, key, strategy, service), (strategy, service, key)
    # Crossref reference lists: DOIs fetched; references without DOI matched by title and
    # year against the store (the records earlier searches added), the rest counted
    n_matched = 0
    for key, ids in zip(world.index_keys, world.index_articles):
        seed = world.works[key]
        by_doi = {r for r in seed.references if world.works[r].doi and r not in seed.unstructured_refs
                  and crossref_ok(world.works[r])}
        got = set(kept(indexed, world, ids.pmid, "references", "crossref"))
        assert by_doi <= got
        assert got - by_doi <= {r for r in seed.unstructured_refs if r % 3 != 0}
        n_matched += len(got - by_doi)
    store = open_store(indexed)
    notes = [json.loads(r[0]) for r in store.db.execute(
        "SELECT limits FROM searches WHERE strategy='references' AND service='crossref'")]
    store.close()
    assert sum(n["matched_by_title_year"] for n in notes) == n_matched > 0
    assert sum(n["unmatched_references"] + n["matched_by_title_year"] for n in notes) == \
        sum(len(world.works[k].unstructured_refs) for k in world.index_keys)
    # related via PubMed keeps the service's order (neighbour score)
    for key, ids in zip(world.index_keys, world.index_articles):
        want = [k for k, _ in world.neighbours(key) if pubmed_ok(world.works[k])]
        assert kept(indexed, world, ids.pmid, "related", "pubmed") == want
    store = open_store(indexed)
    # every kept record has a sources row pointing at its search; a record found by
    # several routes is one record with several rows
    n_api = store.db.execute("SELECT COUNT(*) FROM searches WHERE kind='api' AND strategy != 'index'").fetchone()[0]
    assert n_api == 4 * 11
    no_orcid = {i + 1 for i, k in enumerate(world.index_keys)
                if not world.authors[world.works[k].author_keys[0]].orcid}
    skipped = {r[0] for r in store.db.execute(
        "SELECT seed_record_id FROM searches WHERE status = 'skipped' AND strategy = 'lead-author' "
        "AND service = 'crossref' AND notes = 'Not searched: no ORCID for the lead author.'")}
    assert skipped == no_orcid
    for sid, n_kept, n_found, status, params, limits in store.db.execute(
            "SELECT id, n_kept, n_found, status, params, limits FROM searches WHERE strategy != 'index'"):
        assert status in ("done", "skipped") and n_kept <= n_found
        assert store.db.execute("SELECT COUNT(*) FROM sources WHERE search_id = ?", [sid]).fetchone()[0] == n_kept
        lim = json.loads(limits)
        assert lim["top"] == 1000 and lim["type"] == "journal articles only" and lim["language"] == "English only"
        assert "TF-IDF" in lim["relevance"] and lim["ranking"]
        assert json.loads(params)["depth"] == 1
    n_added = store.db.execute("SELECT SUM(n_added) FROM searches WHERE strategy != 'index'").fetchone()[0]
    assert n_added == store.db.execute("SELECT COUNT(*) FROM records").fetchone()[0] - 4
    dup = store.db.execute("SELECT doi, COUNT(*) FROM records WHERE doi IS NOT NULL GROUP BY doi HAVING COUNT(*) > 1").fetchall()
    assert dup == []
    multi = store.db.execute("SELECT record_id, COUNT(DISTINCT service) FROM sources GROUP BY record_id "
                             "HAVING COUNT(DISTINCT service) >= 3").fetchall()
    assert multi, "some records should be found through three services"
    src = store.db.execute("SELECT role, seed_record_id, rank, search_id, strategy FROM sources WHERE role='other' "
                           "ORDER BY id LIMIT 1").fetchone()
    assert src[0] == "other" and src[1] in (1, 2, 3, 4) and src[2] == 1 and src[3] is not None
    # a record whose type no service gives is kept and flagged
    flagged = [json.loads(r[0]) for r in store.db.execute("SELECT extra FROM records WHERE extra LIKE '%flags%'")]
    assert flagged and all(f["flags"] for f in flagged)
    # secrets never reach the store
    store.close()
    raw = Path(indexed).read_bytes() + Path(str(indexed) + "-wal").read_bytes() if Path(str(indexed) + "-wal").exists() else Path(indexed).read_bytes()
    assert b"sekrit" not in raw
    # a second run: nothing new, no request at all
    n_records = open_store(indexed).db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    n_requests = len(server.log)
    assert n_requests > before
    again = json.loads(run("expand", "--top", "1000", "--json").stdout)
    assert len(server.log) == n_requests
    assert sum(r["new"] for r in again["table"]) == 0
    assert sum(r["already_done"] for r in again["table"]) == 44
    assert open_store(indexed).db.execute("SELECT COUNT(*) FROM records").fetchone()[0] == n_records


def test_cap_and_filters(indexed, world, run):
    out = run("expand", "--strategies", "related,cited-by", "--top", "2")
    assert "related" in out.output and "OpenCitations" in out.output
    store = open_store(indexed)
    for key, ids in zip(world.index_keys, world.index_articles):
        want = [k for k, _ in world.neighbours(key) if pubmed_ok(world.works[k])][:2]
        assert kept(indexed, world, ids.pmid, "related", "pubmed") == want
        for service in ("openalex", "opencitations", "pubmed"):
            got = kept(indexed, world, ids.pmid, "cited-by", service)
            assert len(got) == min(2, len(expected(world, key, "cited-by", service)))
            assert set(got) <= expected(world, key, "cited-by", service)
    # TF-IDF ranks: scores fall with rank
    for (sid,) in store.db.execute("SELECT id FROM searches WHERE strategy='cited-by'").fetchall():
        scores = [r[0] for r in store.db.execute("SELECT score FROM sources WHERE search_id=? ORDER BY rank", [sid])]
        assert scores == sorted(scores, reverse=True)
    lim = json.loads(store.db.execute("SELECT limits FROM searches WHERE strategy='cited-by' AND service='openalex' "
                                      "ORDER BY id LIMIT 1").fetchone()[0])
    assert lim["cap"] == "top 2 per index article and strategy, after the filters"
    assert set(lim["dropped"]) == {"type", "language", "beyond_cap", "same_as_index_article"}
    # lifting the filters keeps editorials, proceedings and other languages
    run("expand", "--strategies", "cited-by", "--top", "1000", "--any-type", "--any-language")
    for key, ids in zip(world.index_keys, world.index_articles):
        got = set(kept(indexed, world, ids.pmid, "cited-by", "openalex"))
        assert set(world.cited_by(key)) <= got


def test_per_seed_failure_is_reported_and_retried(indexed, world, run):
    broken_doi = world.index_articles[1].doi
    world.broken.add(("opencitations", broken_doi))
    try:
        out = run("expand", "--strategies", "cited-by", "--top", "1000", expect=3)
    finally:
        world.broken.clear()
    assert "Failed: cited-by via OpenCitations for index article #2 " in out.output
    assert "Error: 1 search(es) failed; the others are saved" in out.output
    assert "OpenCitations is not answering properly (HTTP 500 after 2 attempts)" in out.output
    store = open_store(indexed)
    failed = store.db.execute("SELECT seed_record_id, status, error FROM searches WHERE status = 'failed'").fetchall()
    assert [(f[0], f[1]) for f in failed] == [(2, "failed")]
    for key, ids in zip(world.index_keys, world.index_articles):
        for service in ("pubmed", "openalex", "opencitations"):
            got = set(kept(indexed, world, ids.pmid, "cited-by", service))
            if ids.doi == broken_doi and service == "opencitations":
                assert got == set()
            else:
                assert got == expected(world, key, "cited-by", service)
    md = run("searches", "--markdown").output
    assert "### Searches that could not be completed" in md
    again = json.loads(run("expand", "--strategies", "cited-by", "--top", "1000", "--json").stdout)
    assert again["failures"] == []
    assert [(r["service"], r["searches"]) for r in again["table"] if r["searches"]] == [("OpenCitations", 1)]
    assert set(kept(indexed, world, world.index_articles[1].pmid, "cited-by", "opencitations")) == \
        expected(world, world.index_keys[1], "cited-by", "opencitations")
    md = run("searches", "--markdown").output
    assert "could not be completed" not in md


def _snapshot(db_path) -> dict:
    store = open_store(db_path)
    try:
        def rows(sql):
            cur = store.db.execute(sql)
            return [tuple(r) for r in cur.fetchall()]
        return {
            "records": rows("SELECT id, title, abstract, authors, year, doi, pmid, openalex, language, pub_types, "
                            "extra FROM records ORDER BY id"),
            "sources": rows("SELECT so.record_id, s.service, s.strategy, s.seed_record_id, so.role, so.service, "
                            "so.strategy, so.seed_record_id, so.rank, so.score FROM sources so JOIN searches s "
                            "ON s.id = so.search_id WHERE so.role = 'other' ORDER BY s.strategy, s.service, "
                            "s.seed_record_id, so.rank"),
            "searches": rows("SELECT service, strategy, seed_record_id, query, status, n_found, n_kept, "
                             "n_added, limits FROM searches WHERE strategy != 'index' "
                             "ORDER BY strategy, service, seed_record_id"),
        }
    finally:
        store.close()


def test_resume_after_kill_equals_an_uninterrupted_run(world, server, env, run, tmp_path, db_path):
    seeds = world.index_articles
    full = tmp_path / "full.db"
    for target in (db_path, full):
        run("add", "--db", str(target), *[x for s in seeds for x in ("--pmid", s.pmid)])
    # the index rows carry random search uuids: compare everything else
    run("expand", "--db", str(full), "--quiet")
    proc_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    server.slow_seconds = 0.01
    try:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "expand", "--db", str(db_path), "--quiet"],
                                cwd=ROOT, env=proc_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        watch = sqlite3.connect(str(db_path), timeout=5)
        # kill it once some searches are written and many are not
        while time.monotonic() < deadline and proc.poll() is None:
            n = watch.execute("SELECT COUNT(*) FROM searches WHERE strategy != 'index' "
                              "AND status = 'done'").fetchone()[0]
            if n >= 10:
                break
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        watch.close()
        proc.wait()
    finally:
        server.slow_seconds = 0.0
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    store = open_store(db_path)
    done = store.db.execute("SELECT COUNT(*) FROM searches WHERE strategy != 'index' AND status='done'").fetchone()[0]
    store.close()
    assert 0 < done < 44, done  # killed part way
    run("expand", "--quiet")
    assert _snapshot(db_path) == _snapshot(full)


def test_searches_contacts_and_find(indexed, world, run, tmp_path):
    run("expand", "--strategies", "related,cited-by", "--top", "5", "--quiet")
    log = json.loads(run("searches", "--json").stdout)
    assert len(log) == 1 + 4 * 5  # the `add` and 4 seeds x 5 (strategy, service) units
    assert {r["strategy"] for r in log} == {"index", "related", "cited-by"}
    assert all("api_key" not in json.dumps(r["params"]) and "sekrit" not in json.dumps(r) for r in log)
    table = run("searches").stdout
    assert "elink pubmed_pubmed cmd=neighbor_score" in table
    md = run("searches", "--markdown").stdout
    assert md.startswith("## Supplementary searching (CLUSTER citation searching)")
    assert "Starting from 4 index articles" in md
    assert "- Cap: top 5 per index article and strategy, after the filters" in md
    assert "| related | PubMed | 4 |" in md and "| cited-by | OpenCitations | 4 |" in md
    assert "### Date of last search" in md

    # contacts: lead (first) and corresponding (last) authors, e-mails from PubMed affiliations
    rows = json.loads(run("contacts", "--json").stdout)
    expected_rows = []
    for k in world.index_keys:
        w = world.works[k]
        lead, last = world.authors[w.author_keys[0]], world.authors[w.author_keys[-1]]
        if len(w.author_keys) == 1:
            expected_rows.append(("lead and corresponding", lead.family, lead.email, lead.affiliation, lead.orcid))
        else:
            expected_rows.append(("lead", lead.family, lead.email, lead.affiliation, lead.orcid))
            expected_rows.append(("corresponding (last)", last.family, None, last.affiliation, last.orcid))
    assert [(r["role"], r["name"].split(",")[0], r["email"], r["affiliation"], r["orcid"]) for r in rows] == expected_rows
    out = tmp_path / "contacts.csv"
    run("contacts", "-o", str(out))
    import csv
    with open(out, newline="", encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)
    name = rows[0]["name"]
    assert run("contacts", "--log", name, "--status", "sent").stdout.strip() == f"Logged: {name} sent."
    assert json.loads(run("contacts", "--json").stdout)[0]["status"] == "sent"
    bad = run("contacts", "--log", "Nobody, N", "--status", "sent", expect=1)
    assert bad.output.startswith("Error: 'Nobody, N' is not a lead or corresponding author of an index article")
    store = open_store(indexed)
    ev = store.events("kind = 'contact'")
    assert len(ev) == 1 and ev[0]["data"]["author"] == name and ev[0]["data"]["status"] == "sent"
    store.close()

    # find: FTS over titles and abstracts, kept in step with later inserts, with tags
    import re as _re
    store = open_store(indexed)
    want = {rid for rid, rec in store.records()
            if _re.search(r"(?<![a-z0-9])compassion(?![a-z0-9])", f"{rec.title} {rec.abstract}".lower())}
    store.close()
    assert want
    got = json.loads(run("find", "compassion", "--tag", "theory", "--json").stdout)
    assert {h["record_id"] for h in got["hits"]} == want and got["tagged"] == len(want)
    assert json.loads(run("find", "compassion", "--tag", "theory", "--json").stdout)["tagged"] == 0
    from base.record import Record
    store = open_store(indexed)
    with store.transaction():
        new_id = store.add_record(Record(title="A compassion framework for realist synthesis"))
    store.close()
    again = json.loads(run("find", "compassion", "--json").stdout)
    assert new_id in {h["record_id"] for h in again["hits"]}
    assert run("find", '"unbalanced', expect=1).output.startswith("Error: Cannot search for")


def test_depth_two_expands_from_the_records_found(indexed, world, run):
    run("expand", "--strategies", "related", "--top", "2", "--depth", "2", "--quiet")
    store = open_store(indexed)
    level1 = {r[0] for r in store.db.execute(
        "SELECT DISTINCT so.record_id FROM sources so JOIN searches s ON s.id = so.search_id "
        "WHERE json_extract(s.params, '$.depth') = 1 AND so.role = 'other'")}
    seeds2 = {r[0] for r in store.db.execute(
        "SELECT DISTINCT seed_record_id FROM searches WHERE json_extract(params, '$.depth') = 2")}
    store.close()
    assert seeds2 == level1 - {1, 2, 3, 4} and seeds2


def test_bad_options_and_help(run, indexed):
    assert run("expand", "--strategies", "cited-by,bogus", expect=1).output.strip() == \
        "Error: Unknown strategy 'bogus': choose from lead-author, cited-by, references, related."
    assert run("expand", "--top", "0", expect=1).output.strip() == "Error: --top must be at least 1."
    for cmd in ("add", "expand", "searches", "contacts", "find"):
        text = " ".join(run(cmd, "--help").output.split())
        assert "Example: cluster " + cmd in text
    text = " ".join(run("expand", "--help").output.split())
    assert "IDF cosine similarity of title and abstract to the index article's" in text


def test_expand_without_index_articles_says_what_to_do(run, env):
    out = run("expand", expect=1)
    assert out.output.strip() == ("Error: There are no index articles in this store: add them with "
                                  "`cluster add --pmid ...` or `cluster import FILE --as index`.")


def test_faults_at_a_set_rate_change_nothing_in_the_result(world, server, env, run, tmp_path, db_path,
                                                           monkeypatch):
    seeds = [x for s in world.index_articles for x in ("--pmid", s.pmid)]
    clean = tmp_path / "clean.db"
    run("add", "--db", str(clean), *seeds)
    run("expand", "--db", str(clean), "--quiet", "--strategies", "cited-by,references,related")
    faulty = serve_world(world, fault_rate=0.25, seed=5, fault_kinds=("429", "500", "truncate", "html"))
    try:
        for name in ("pubmed", "crossref", "openalex", "opencitations"):
            monkeypatch.setenv(f"CLUSTER_{name.upper()}_URL", faulty.base_urls[name])
        monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "10")
        run("add", *seeds)
        run("expand", "--quiet", "--strategies", "cited-by,references,related")
        statuses = [r.status for r in faulty.log]
    finally:
        faulty.stop()
    assert {429, 500} <= set(statuses)
    assert _snapshot(db_path) == _snapshot(clean)


def test_a_service_down_throughout_is_reported_per_seed(indexed, world, run, server):
    from cluster.demo.loopback import Fault

    server.fail_always("/opencitations/", Fault("503"))
    start = len(server.requests_to("/opencitations/"))
    try:
        out = run("expand", "--strategies", "cited-by", "--top", "3", expect=3)
        asked = len(server.requests_to("/opencitations/")) - start
    finally:
        server.heal()
    lines = [l for l in out.output.splitlines() if l.startswith("Failed: ")]
    assert [l.split(":")[1].strip() for l in lines] == [
        f"cited-by via OpenCitations for index article #{i} {world.authors[world.works[k].author_keys[0]].family} "
        f"{world.works[k].year}" for i, k in enumerate(world.index_keys, 1)]
    assert "not asked again after failing for 2 index articles in a row" in lines[-1]
    assert asked == 4  # two index articles, each tried twice, then no more
    assert "Error: 4 search(es) failed; the others are saved" in out.output
    store = open_store(indexed)
    done = store.db.execute("SELECT service, COUNT(*) FROM searches WHERE strategy='cited-by' AND status='done' "
                            "GROUP BY service ORDER BY service").fetchall()
    store.close()
    assert done == [("openalex", 4), ("pubmed", 4)]


def test_a_service_returning_fewer_than_before_is_flagged(indexed, world, run):
    import dataclasses

    run("expand", "--strategies", "cited-by", "--top", "1000", "--quiet")
    key = world.index_keys[0]
    citing = next(c for c in world.cited_by(key) if world.works[c].doi and world.works[c].oc_covered)
    # a later day: the cached answers have expired
    for cache in Path(indexed).parent.glob("*http-cache*"):
        cache.unlink()
    original = world.works
    world.works = tuple(dataclasses.replace(w, oc_covered=False) if w.key == citing else w for w in original)
    try:
        out = run("expand", "--strategies", "cited-by", "--top", "999", "--json")
    finally:
        world.works = original
    warnings = json.loads(out.stdout)["warnings"]
    n_before = sum(1 for c in world.cited_by(key) if world.works[c].doi and world.works[c].oc_covered)
    assert [(w["seed_record_id"], w["service"]) for w in warnings] == [(1, "OpenCitations")]
    assert warnings[0]["warning"].startswith(
        f"OpenCitations found {n_before - 1} for this index article, 1 fewer than on ")
    assert "Note: cited-by for index article #1 " in out.output
