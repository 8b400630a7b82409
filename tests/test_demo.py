"""`cluster demo` end to end on a small world: its summary is the store's PRISMA
flow, the store works with the other commands, credentials never land on disk
or in the output, and an earlier demo is never overwritten by accident.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import sqlite3
import struct
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import pexpect
import pytest
from click.testing import CliRunner

import cluster.demo.services as services_module
from cli import cli
from cluster.demo.run import DemoOptions
from cluster.demo.world import World
from tests.prisma_csv import assert_csv_adds_up

ROOT = Path(__file__).resolve().parents[1]
WORKS, SEED = 300, 4
SECRETS = {"NCBI_API_KEY": "ncbi-Zq81xvK3-fake", "CLUSTER_EMAIL": "pq93-reviewer@fake-secret.example",
           "OPENALEX_API_KEY": "oa-Mw27ytR5-fake"}
FAST = {"CLUSTER_RATE_LIMITS": "pubmed=1000,crossref=1000,openalex=1000,opencitations=1000,"
                              "unpaywall=1000,pmc=1000",
        "CLUSTER_HTTP_BACKOFF": "0.01"}


def cluster(*args: str, env: dict[str, str] | None = None, expect: int | None = 0):
    scrub = {k: None for k in os.environ if k.startswith(("CLUSTER_", "NCBI_", "OPENALEX_"))}
    result = CliRunner().invoke(cli, list(args), env={**scrub, **(env or {})},
                                catch_exceptions=False)
    if expect is not None:
        assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def run_demo(directory: Path, *extra: str) -> tuple[object, list]:
    """`cluster demo` with fake credentials set; returns the result and the world servers."""
    servers = []
    serve = services_module.serve_world

    def recording(*args, **kwargs):
        servers.append(serve(*args, **kwargs))
        return servers[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(services_module, "serve_world", recording)
        result = cluster("demo", "--works", str(WORKS), "--seed", str(SEED), "--dir",
                         str(directory), *extra, env={**SECRETS, **FAST})
    return result, servers


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    directory = tmp_path_factory.mktemp("demo") / "review"
    t = time.perf_counter()
    result, servers = run_demo(directory)
    return {"dir": directory, "db": directory / "review.db", "result": result,
            "servers": servers, "seconds": time.perf_counter() - t}


def table_checksum(db: Path) -> str:
    con = sqlite3.connect(db)
    try:
        h = hashlib.sha256()
        for (t,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            h.update(t.encode())
            for row in con.execute(f"SELECT * FROM [{t}] ORDER BY rowid"):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        con.close()


# --- the summary is the store's flow ----------------------------------------------------------


def test_summary_equals_cluster_flow_on_the_store_it_leaves(demo):
    out = demo["result"].stdout
    flow = json.loads(cluster("flow", "--db", str(demo["db"]), "--layout", "screen-other",
                              "--json").stdout)
    assert json.loads((demo["dir"] / "flow.json").read_text()) == flow
    s = flow["screening"]
    routes = re.findall(r"^ +(\S.*?)\s+(\d+)   \((\d+)\)$", out, re.M)
    # grouped as the diagram's columns: databases, then other methods
    ident = sorted(flow["identification"], key=lambda r: r["role"] != "database")
    expected = [(r["label"], r["identified"], r["duplicates"]) for r in ident]
    expected.append(("Total", sum(r["identified"] for r in flow["identification"]),
                     sum(r["duplicates"] for r in flow["identification"])))
    assert [(label, int(a), int(b)) for label, a, b in routes] == expected
    assert [e[0] for e in expected[:3]] == [
        "PubMed", "Index articles (included studies identified another way)",
        "Citation searching, forward (cited by)"]
    # the database search is counted with the databases, the CLUSTER routes as other methods
    assert re.search(r"^  Databases:\n    PubMed +\d+   \(\d+\)\n  Other methods:\n    Index", out,
                     re.M)
    assert [(r["role"], r["template_row"]) for r in ident][:2] == [
        ("database", "database_results"), ("index", "citations_results")]
    assert f"Records screened (title/abstract): {s['screened']}; excluded {s['screen_excluded']}\n" in out
    assert (f"Reports sought {s['sought']}, not retrieved {s['not_retrieved']}, assessed "
            f"{s['assessed']}, excluded {s['excluded']}\n") in out
    assert f"Included: {flow['total_studies']} studies ({flow['total_reports']} reports)\n" in out
    assert s["screened"] > 50 and 0 < flow["total_studies"] < s["screened"] and s["excluded"] > 0
    assert flow["complete"] is True
    # a review with a database search is drawn in the standard layout by default; both
    # PRISMA2020 CSVs add up, and screen-other draws duplicates removed and screening for all
    standard = cluster("flow", "--db", str(demo["db"]), "--csv").stdout
    std = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(standard))}
    assert_csv_adds_up(std)
    assert std["database_results"] == str(ident[0]["identified"])
    # (the PRISMA2020 template has no row for other-methods records screened together with
    # database records, so the app cannot add this layout up once a database is searched)
    csv_out = cluster("flow", "--db", str(demo["db"]), "--layout", "screen-other", "--csv").stdout
    n = {r["data"]: r["n"] for r in csv.DictReader(io.StringIO(csv_out))}
    assert (n["duplicates"], n["records_screened"], n["previous_studies"]) == \
        (str(s["duplicates"]), str(s["screened"]), "0")
    assert int(n["duplicates"]) > 0
    assert n["total_studies"] == n["new_studies"] == str(flow["total_studies"])
    dups = expected[-1][2]
    merged = sqlite3.connect(demo["db"]).execute(
        "SELECT count(*) FROM records WHERE duplicate_of IS NOT NULL").fetchone()[0]
    assert f"Duplicates removed: {dups} ({merged} records merged by deduplication," in out


def test_agreement_conflicts_and_recall_in_the_summary_come_from_the_store(demo):
    out = demo["result"].stdout
    db = str(demo["db"])
    for stage in ("title-abstract", "full-text"):
        (pair,) = json.loads(cluster("agreement", "--db", db, "--stage", stage, "--json").stdout)
        assert (pair["reviewer_a"], pair["reviewer_b"]) == ("alice", "bob")
        assert (f"Agreement alice/bob at {stage}: {pair['percent_agreement']:.1f} % of "
                f"{pair['records']} records, Cohen's kappa {pair['kappa']:.3f}\n") in out
        # the simulated reviewers disagree now and then, as people do
        assert 85.0 <= pair["percent_agreement"] <= 100.0
        if stage == "title-abstract":
            assert pair["percent_agreement"] < 100.0
        assert json.loads(cluster("conflicts", "--db", db, "--stage", stage, "--json").stdout) == []
    con = sqlite3.connect(db)
    resolved = dict(con.execute("SELECT stage, count(*) FROM events WHERE kind = 'resolution' "
                                "GROUP BY stage").fetchall())
    ids = con.execute("SELECT id, duplicate_of, pmid, doi, openalex FROM records").fetchall()
    con.close()
    assert (f"Conflicts resolved by carol: {resolved['title-abstract']} at title/abstract, "
            f"{resolved.get('full-text', 0)} at full text\n") in out

    # recall, recomputed from the world and the records included at full text
    from db.state import INCLUDED, stage_states
    from db.store import open_store

    world = World.generate(SEED, WORKS, DemoOptions(works=WORKS).index_count)
    works_of: dict[int, set[int]] = {}
    for rid, dup, *idents in ids:
        keys = {w.key for w in map(world.work, filter(None, idents)) if w is not None}
        works_of.setdefault(dup or rid, set()).update(keys)
    relevant = {w.key for w in world.works if w.relevant}
    found = relevant & set().union(*works_of.values())
    store = open_store(db, create=False)
    included = {k for rid, st in stage_states(store, "full-text").items() if st.status == INCLUDED
                for k in works_of[rid] if k in relevant}
    store.close()
    assert 0 < len(included) <= len(found) < len(relevant)
    assert (f"Recall of the hidden relevant set: {len(included)} of {len(relevant)} relevant "
            f"works included ({len(included) / len(relevant):.0%}); the search found {len(found)} "
            f"({len(found) / len(relevant):.0%})") in out


def test_extraction_congruence_in_the_summary_comes_from_the_store(demo):
    out = demo["result"].stdout
    db = str(demo["db"])
    c = json.loads(cluster("agreement", "--db", db, "--stage", "extraction", "--json").stdout)
    settled = sqlite3.connect(db).execute(
        "SELECT count(*) FROM events WHERE kind = 'consensus'").fetchone()[0]
    # read after carol settled: the extractors' own answers still give the same figure
    assert (f"Congruence in data extraction (Realist synthesis form, alice/bob): "
            f"{c['congruence']:.1f} % ({c['agreements']} agreements / "
            f"{c['agreements'] + c['disagreements']} comparisons over {c['records']} records); "
            f"{settled} fields settled by carol\n") in out
    # two extractors who slip now and then: high, not perfect, and every conflict settled
    assert 80.0 <= c["congruence"] < 100.0 and settled > 0
    assert c["records"] == json.loads(cluster("flow", "--db", db, "--json").stdout)[
        "total_reports"]
    assert json.loads(cluster("conflicts", "--db", db, "--stage", "extraction",
                              "--json").stdout) == []
    evidence = list(csv.DictReader(io.StringIO((demo["dir"] / "evidence.csv").read_text())))
    assert len(evidence) == c["records"] and all(r["conflicts"] == "" for r in evidence)
    md = (demo["dir"] / "methods.md").read_text()
    assert f"Congruence in data extraction was {c['congruence']:.1f} %" in md


def test_progress_goes_to_stderr_stage_by_stage_and_files_are_written(demo):
    err = demo["result"].stderr
    stages = [line.split()[0] for line in err.splitlines() if line.strip()]
    assert list(dict.fromkeys(stages)) == ["world", "import", "expand", "search", "dedup",
                                           "protocol", "title-abstract", "full-text",
                                           "extraction", "report"]
    assert "Error" not in err and "Traceback" not in err
    d = demo["dir"]
    # (an open connection of an earlier test may keep the store's -wal and -shm files)
    assert sorted(p.name for p in d.iterdir() if not p.name.endswith(("-wal", "-shm"))) == sorted([
        "agreement.json", "evidence.csv", "flow.json", "included.ris", "index-articles.txt",
        "library", "methods.md", "prisma.png", "prisma.svg", "records.csv", "review.db",
        "review.db.features.sqlite", "review.db.fulltext", "review.http-cache.sqlite"])
    flow = json.loads((d / "flow.json").read_text())
    svg = (d / "prisma.svg").read_text()
    assert f"Records screened (n = {flow['screening']['screened']})" in svg
    png = (d / "prisma.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 2000 and 0.6 < height / width < 1.0
    assert (d / "methods.md").read_text().startswith("# Methods: searching, selection and flow")
    assert (d / "included.ris").read_text().count("\nER  -") == flow["total_reports"]
    pmids = [ln for ln in (d / "index-articles.txt").read_text().splitlines() if not ln.startswith("#")]
    assert len(pmids) == DemoOptions(works=WORKS).index_count


def test_full_texts_every_open_copy_the_world_holds_is_fetched_and_a_rerun_fetches_nothing(demo):
    from cluster.demo.fulltext import fate, has_repository_copy
    from db.state import retrievals
    from db.store import open_store

    world = World.generate(SEED, WORKS, DemoOptions(works=WORKS).index_count)
    store = open_store(demo["db"], create=False)
    try:
        got = retrievals(store)
        open_in_world, fetched, by_source = set(), set(), Counter()
        for rid, r in got.items():
            rec = store.get_record(rid)
            work = world.work(rec.doi or "") or world.work(rec.pmid or "")
            assert work is not None
            f = fate(world, work)
            # the open web finds a copy by the record's DOI, or OpenAlex by its PMID
            findable = bool(rec.doi) or not work.openalex_no_pmid
            if f == "pmc" or (findable and (f == "pdf" or (
                    f in ("html", "broken") and has_repository_copy(work)))):
                open_in_world.add(rid)
            if r.state == "retrieved" and r.source != "hand":
                fetched.add(rid)
            by_source[r.source or r.state] += 1
        assert fetched == open_in_world and len(fetched) > 5
        files = sorted(p.name for p in (demo["dir"] / "review.db.fulltext").iterdir())
        assert len(files) == sum(1 for r in got.values() if r.state == "retrieved")
        assert {f.split("-")[0] for f in files} == {str(rid) for rid, r in got.items()
                                                     if r.state == "retrieved"}
    finally:
        store.close()
    hand, left = by_source["hand"], sum(1 for r in got.values() if r.state == "not-retrieved")
    assert hand > 0
    assert f"Full texts found open: {len(fetched)} of {len(got)} sought (" in demo["result"].stdout
    assert f"; obtained by hand {hand}; not retrieved {left}; not fetched: " in demo["result"].stdout
    again = cluster("fulltext", "fetch", "--db", str(demo["db"]), "-q")
    assert again.stdout == f"Retrieved 0, not retrieved 0, to try again 0; {len(got)} done before.\n"
    assert sorted(p.name for p in (demo["dir"] / "review.db.fulltext").iterdir()) == files


# --- the store works with the other commands ------------------------------------------------


def test_methods_report_fits_a_paper_and_the_detail_is_an_appendix(demo):
    # one limits line per strategy and service (14 on the demo, 52 near-identical bullets
    # and 163 KB before); the per-search table only with --detail; the database search's
    # PRISMA-S items take some twenty lines
    full = (demo["dir"] / "methods.md").read_text()
    # the data extraction section holds the included studies' table, a row per study
    md, extraction, flow_part = re.split(r"(?=^## Data extraction$|^## PRISMA 2020 flow$)", full,
                                         flags=re.M)
    md += flow_part
    n_included = json.loads((demo["dir"] / "flow.json").read_text())["total_reports"]
    assert len(extraction.splitlines()) < n_included + 25
    assert len(md.encode()) < 20_000 and len(md.splitlines()) < 185
    section = md.split("### Limits and why\n\n")[1].split("\n\n")[0].splitlines()
    pairs = [ln[2:].split(" (")[0] for ln in section]
    table = md.split("### By strategy and service\n\n")[1].split("\n\n")[0].splitlines()[2:]
    # 13 for the CLUSTER strategies, the index import and the metadata look-up, one for
    # the PubMed database search
    assert len(pairs) == len(set(pairs)) == len(table) == 14
    assert "- database, PubMed (1 search): filters: eng[la]." in section
    related = next(ln for ln in section if ln.startswith("- related, pubmed ("))
    assert re.match(r"- related, pubmed \(\d+ searches\): top 20 per index article and "
                    r"strategy, by service rank \(PubMed neighbour score\);", related)
    assert "; totals: dropped beyond cap " in related
    assert "### Every search" not in md
    detail = cluster("report", "--db", str(demo["db"]), "--detail").stdout
    assert "### Every search" in detail and len(detail) > 5 * len(md)


def test_cluster_screen_for_carol_opens_on_the_demo_store(demo):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTER_")}
    env.update(PYTHONPATH=str(ROOT), TERM="xterm")
    child = pexpect.spawn(sys.executable, ["-m", "cli", "screen", "--db", str(demo["db"]),
                                           "--reviewer", "carol"], cwd=str(ROOT), env=env,
                          dimensions=(30, 100), encoding="utf-8", timeout=30)
    screened = json.loads((demo["dir"] / "flow.json").read_text())["screening"]["screened"]
    child.expect(r"cluster screen . carol . title-abstract")
    child.expect(rf"screened 0/{screened}")
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert f"carol made 0 decision(s) this sitting; 0 of {screened} screened" in child.before


# --- credentials -----------------------------------------------------------------------------


def test_credentials_are_sent_but_written_nowhere(demo, tmp_path):
    (server,) = demo["servers"]
    sent = {k: v for r in server.log for k, v in r.params}
    assert sent["api_key"] in (SECRETS["NCBI_API_KEY"], SECRETS["OPENALEX_API_KEY"])
    assert {v for r in server.log for k, v in r.params if k == "api_key"} == {
        SECRETS["NCBI_API_KEY"], SECRETS["OPENALEX_API_KEY"]}
    assert {v for r in server.log for k, v in r.params if k in ("email", "mailto")} == {
        SECRETS["CLUSTER_EMAIL"]}
    db = str(demo["db"])
    exports = {}
    for fmt in ("ris", "bibtex", "csv", "jsonl", "asreview"):
        exports[fmt] = cluster("export", "--db", db, "--format", fmt, "--all").stdout
    cluster("decisions", "export", str(tmp_path / "decisions.jsonl"), "--db", db)
    outputs = [demo["result"].stdout, demo["result"].stderr, *exports.values(),
               cluster("searches", "--db", db, "--json").stdout,
               cluster("report", "--db", db, "--detail").stdout]
    files = [p for p in demo["dir"].rglob("*") if p.is_file()] + [tmp_path / "decisions.jsonl"]
    assert {p.name for p in files} >= {"review.db", "review.http-cache.sqlite", "included.ris",
                                       "records.csv"}
    for secret in SECRETS.values():
        forms = {secret, quote(secret), quote(secret, safe="")}
        for f in files:
            data = f.read_bytes()
            assert not any(x.encode() in data for x in forms), (f.name, secret)
        for text in outputs:
            assert not any(x in text for x in forms), secret


# --- an earlier demo is not overwritten by accident --------------------------------------------


def test_a_second_demo_in_the_same_folder_is_refused_then_fresh_repeats_it(demo):
    d, db = demo["dir"], demo["db"]
    before = table_checksum(db)
    again = cluster("demo", "--works", str(WORKS), "--dir", str(d), expect=1)
    assert again.stderr.strip() == (
        f"Error: {d} already holds a demo review: explore it with `cluster screen --db {db} "
        "--reviewer carol`, or run the demo again with --fresh to start over.")
    assert table_checksum(db) == before
    flow_before = (d / "flow.json").read_text()
    fresh, _ = run_demo(d, "--fresh", "--json")
    data = json.loads(fresh.stdout)
    # the same seed gives the same review
    assert (d / "flow.json").read_text() == flow_before
    assert data["flow"] == json.loads(flow_before)
    assert data["world"] == {"works": WORKS, "index_articles": 5, "seed": SEED}


def test_a_store_the_demo_did_not_make_is_left_alone(tmp_path):
    d = tmp_path / "mine"
    d.mkdir()
    cluster("init", "--db", str(d / "review.db"))
    before = table_checksum(d / "review.db")
    for extra in ((), ("--fresh",)):
        out = cluster("demo", "--dir", str(d), *extra, expect=1)
        assert out.stderr.strip() == (f"Error: {d / 'review.db'} is a review store that cluster "
                                      "demo did not make: choose another --dir so it is left alone.")
    assert table_checksum(d / "review.db") == before
    assert cluster("demo", "--works", "50", "--dir", str(tmp_path / "x"), expect=1).stderr.strip() == (
        "Error: --works must be at least 100: a smaller world has too little to review.")
    assert not (tmp_path / "x").exists()
