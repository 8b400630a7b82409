"""End-to-end fault drills through the CLI against a small generated world:
a killed expansion resumed, faults at a set rate, a service down throughout,
and a corpus of malformed input files.

Index articles enter as a user's would: a PMID list imported `--as index`,
then `cluster fetch --fill` fetches their records. Every drill compares the store it
ends with against an uninterrupted, fault-free run of the same commands.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import cli
from cluster.demo.loopback import Fault
from cluster.demo.services import serve_world
from cluster.demo.world import World

ROOT = Path(__file__).resolve().parents[1]
FAST = {
    "CLUSTER_RATE_LIMITS": "pubmed=1000,crossref=1000,openalex=1000,opencitations=1000",
    "CLUSTER_HTTP_RETRIES": "1",
    "CLUSTER_HTTP_BACKOFF": "0.01",
}


@pytest.fixture(scope="module")
def world() -> World:
    return World.generate(seed=11, n_works=300, n_index=5)


@pytest.fixture(scope="module")
def server(world):
    s = serve_world(world)
    yield s
    s.stop()


def _env(server, **extra: str) -> dict[str, str]:
    env = {f"CLUSTER_{name.upper()}_URL": url for name, url in server.base_urls.items()}
    return {**env, **FAST, **extra}


def cluster(*args: str, env: dict[str, str], expect: int | None = 0):
    """`cluster ARGS` in this process, with `env` as the only cluster settings."""
    scrub = {k: None for k in os.environ if k.startswith(("CLUSTER_", "NCBI_", "OPENALEX_"))}
    result = CliRunner().invoke(cli, list(args), env={**scrub, **env}, catch_exceptions=False)
    if expect is not None:
        assert result.exit_code == expect, (result.stdout, result.stderr)
    return result


def with_index_articles(db: Path, world: World, env: dict[str, str]) -> None:
    ids = db.parent / f"{db.stem}-index.txt"
    ids.write_text("\n".join(w.pmid for w in world.index_articles) + "\n")
    cluster("import", str(ids), "--as", "index", "--db", str(db), env=env)
    cluster("fetch", "--fill", "--db", str(db), "--quiet", env=env)


def _without_calls(params: str) -> str:
    # the HTTP calls behind a search depend on what the same run had fetched
    # already (records are fetched once per run), so a resumed run logs others
    data = json.loads(params or "{}")
    data.pop("calls", None)
    return json.dumps(data, sort_keys=True)


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """The store's content, without what differs between two equal runs (times, uuids,
    the HTTP call log)."""
    con = sqlite3.connect(db)
    try:
        rec_cols = [r[1] for r in con.execute("PRAGMA table_info(records)") if r[1] != "created_at"]
        records = con.execute(f"SELECT {', '.join(rec_cols)} FROM records ORDER BY id").fetchall()
        sources = con.execute(
            "SELECT so.record_id, so.role, so.service, so.strategy, so.seed_record_id, so.rank, "
            "so.score, so.source_record_id, s.kind, s.service, s.strategy, s.seed_record_id "
            "FROM sources so JOIN searches s ON s.id = so.search_id "
            "ORDER BY s.kind, s.strategy, s.service, s.seed_record_id, so.rank, so.record_id").fetchall()
        searches = [(*row[:-1], _without_calls(row[-1])) for row in con.execute(
            "SELECT kind, service, strategy, role, query, seed_record_id, file_name, sha256, format, "
            "limits, status, n_found, n_kept, n_added, error, notes, params FROM searches "
            "ORDER BY kind, strategy, service, seed_record_id")]
    finally:
        con.close()
    return {"records": records, "sources": sources, "searches": searches}


def assert_no_duplicates(db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        for col in ("doi", "pmid", "openalex"):
            twice = con.execute(f"SELECT lower({col}), count(*) FROM records WHERE {col} IS NOT NULL "
                                f"GROUP BY lower({col}) HAVING count(*) > 1").fetchall()
            assert twice == [], (col, twice)
        again = con.execute(
            "SELECT search_id, record_id, count(*) FROM sources GROUP BY search_id, record_id "
            "HAVING count(*) > 1").fetchall()
        assert again == []
        units = con.execute(
            "SELECT strategy, service, seed_record_id, count(*) FROM searches WHERE kind = 'api' "
            "AND strategy != 'index' AND status IN ('done', 'skipped') GROUP BY strategy, service, seed_record_id "
            "HAVING count(*) > 1").fetchall()
        assert units == []
    finally:
        con.close()


@pytest.fixture(scope="module")
def reference(world, server, tmp_path_factory) -> dict[str, list[tuple]]:
    """The store of an uninterrupted, fault-free expansion."""
    db = tmp_path_factory.mktemp("reference") / "review.db"
    env = _env(server)
    with_index_articles(db, world, env)
    cluster("expand", "--db", str(db), "--quiet", env=env)
    assert_no_duplicates(db)
    snap = snapshot(db)
    assert len(snap["records"]) > 60
    assert {s[10] for s in snap["searches"]} == {"done", "skipped"}
    return snap


# --- crash -------------------------------------------------------------------------------


def test_expand_killed_part_way_then_rerun_equals_an_uninterrupted_run(world, server, reference,
                                                                     tmp_path):
    db = tmp_path / "review.db"
    env = _env(server)
    with_index_articles(db, world, env)
    n_units = 5 * 11
    server.slow_seconds = 0.02  # room to land the kill between two commits
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cli", "expand", "--db", str(db), "--quiet"], cwd=ROOT,
            env={**{k: v for k, v in os.environ.items() if not k.startswith("CLUSTER_")}, **env,
                 "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        done = 0
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            con = sqlite3.connect(db, timeout=5)
            try:
                done = con.execute("SELECT count(*) FROM searches WHERE kind = 'api' AND "
                                   "strategy != 'index' AND status IN ('done', 'skipped')"
                                   ).fetchone()[0]
            finally:
                con.close()
            if done >= 12:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        server.slow_seconds = 0.0
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    after_kill = snapshot(db)
    n_done = sum(1 for s in after_kill["searches"]
                 if s[0] == "api" and s[2] != "index" and s[10] in ("done", "skipped"))
    assert 12 <= n_done < n_units, n_done

    rerun = cluster("expand", "--db", str(db), "--json", "--quiet", env=env)
    table = json.loads(rerun.stdout)["table"]
    assert sum(r["already_done"] for r in table) == n_done
    assert_no_duplicates(db)
    assert snapshot(db) == reference


# --- faults at a set rate -------------------------------------------------------------------


def test_expand_through_faults_at_a_set_rate_equals_the_fault_free_run(world, reference, tmp_path):
    faulty = serve_world(world, fault_rate=0.2, seed=3,
                         fault_kinds=("429", "500", "502", "503", "slow", "truncate"))
    kinds: Counter[str] = Counter()
    send_fault = faulty._send_fault

    def counted(handler, fault, response):
        kinds[fault.kind] += 1
        return send_fault(handler, fault, response)

    faulty._send_fault = counted
    # a burst of 5xx and a 429 that asks to wait a second, on top of the random faults
    faulty.inject("/pubmed/", Fault("503"), Fault("502"), Fault("500"))
    faulty.inject("/openalex/", Fault("429", retry_after="1"))
    db = tmp_path / "review.db"
    env = _env(faulty, CLUSTER_HTTP_RETRIES="8")
    try:
        with_index_articles(db, world, env)
        cluster("expand", "--db", str(db), "--quiet", env=env)
    finally:
        faulty.stop()
    assert {"429", "500", "502", "503", "slow", "truncate"} <= set(kinds), kinds
    assert kinds["429"] + kinds["500"] + kinds["502"] + kinds["503"] >= 10, kinds
    assert_no_duplicates(db)
    got = snapshot(db)
    assert got["records"] == reference["records"]
    assert got["sources"] == reference["sources"]
    assert got["searches"] == reference["searches"]


# --- one service down throughout ----------------------------------------------------------------


def test_openalex_down_throughout_the_others_finish_and_the_gaps_are_named(world, server,
                                                                        reference, tmp_path):
    db = tmp_path / "review.db"
    env = _env(server)
    with_index_articles(db, world, env)
    server.fail_always("/openalex/", Fault("503"))
    try:
        out = cluster("expand", "--db", str(db), "--json", "--quiet", env=env, expect=3)
    finally:
        server.heal()
    con = sqlite3.connect(db)
    seeds = [r[0] for r in con.execute("SELECT record_id FROM sources WHERE role = 'index'")]
    units = sorted(con.execute("SELECT strategy, service, seed_record_id, status FROM searches "
                               "WHERE kind = 'api' AND strategy != 'index'").fetchall())
    con.close()
    failures = json.loads(out.stdout)["failures"]
    strategies = ("lead-author", "cited-by", "references", "related")
    # exactly the OpenAlex search of every strategy, for every index article
    assert sorted((f["strategy"], f["service"], f["seed_record_id"]) for f in failures) == sorted(
        (s, "OpenAlex", rid) for s in strategies for rid in seeds)
    # and every other search ended as in the run without the outage
    assert [u for u in units if u[1] != "openalex"] == sorted(
        (s[2], s[1], s[5], s[10]) for s in reference["searches"]
        if s[0] == "api" and s[2] != "index" and s[1] != "openalex")
    assert [u for u in units if u[1] == "openalex"] == sorted(
        (s, "openalex", rid, "failed") for s in strategies for rid in seeds)
    lines = [l for l in out.stderr.splitlines() if l.startswith("Failed: ")]
    assert len(lines) == 4 * len(seeds)
    assert all(" via OpenAlex for index article #" in l for l in lines)
    assert out.stderr.rstrip().endswith(f"Error: {4 * len(seeds)} search(es) failed; the others are "
                                        "saved: run `cluster expand` again to retry them.")
    # with the service back, a rerun fills the gaps: every search keeps what it keeps in an
    # uninterrupted run (record ids and which service's copy came first differ, by design)
    cluster("expand", "--db", str(db), "--quiet", env=env)
    assert_no_duplicates(db)

    def kept(snap):
        return sorted((s[3], s[2], s[4], s[5], s[6], s[7]) for s in snap["sources"]
                      if s[1] == "other")

    assert kept(snapshot(db)) == kept(reference)


# --- a corpus of malformed input -------------------------------------------------------------------


def table_checksum(db: Path) -> str:
    """A digest of every row of every table (the file itself changes when merely opened)."""
    con = sqlite3.connect(db)
    try:
        h = hashlib.sha256()
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for t in tables:
            h.update(t.encode())
            for row in con.execute(f"SELECT * FROM [{t}] ORDER BY rowid"):
                h.update(repr(row).encode())
        return h.hexdigest()
    finally:
        con.close()


BAD_CORPUS = {
    "truncated.xml": (b'<?xml version="1.0" encoding="UTF-8"?><xml><records><record><rec-number>1'
                      b"</rec-number><titles><title>Compassion training for nur",
                      "Error: truncated.xml is not well-formed XML at line 1, column 129 (truncated "
                      "or damaged export): export it again."),
    "scan.ris": (bytes(range(256)) * 8,
                 "Error: scan.ris is a binary file, not a reference export: export RIS, BibTeX, "
                 "MEDLINE, EndNote XML or CSV and import that."),
    "utf16.ris": (b"\xff\xfe" + "TY  - JOUR\nTI  - Kindness\n".encode("utf-16-le")[:-1],
                  "Error: utf16.ris starts like UTF-16 text but cannot be decoded: save it as UTF-8 "
                  "and import it again."),
    "empty.nbib": (b"", "Error: empty.nbib is empty: there is nothing to import."),
    "no-titles.csv": (b"Authors,Year,Journal\nSmith J,2020,Care\nKhan A,2021,Nursing\n",
                      "Error: no-titles.csv line 1: this CSV/TSV file has no title column (header "
                      "'Authors,Year,Journal'); export it with a Title column or rename the column "
                      "holding titles to 'title'."),
}


def test_each_malformed_file_gives_one_sentence_and_leaves_the_store_unchanged(world, server,
                                                                            tmp_path):
    db = tmp_path / "review.db"
    env = _env(server)
    with_index_articles(db, world, env)
    cluster("expand", "--db", str(db), "--quiet", "--strategies", "related", "--top", "5", env=env)
    before = table_checksum(db)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, (content, _) in BAD_CORPUS.items():
        (corpus / name).write_bytes(content)
    for name, (_, message) in BAD_CORPUS.items():
        out = cluster("import", str(corpus / name), "--db", str(db), env=env, expect=1)
        assert out.stdout == ""
        assert out.stderr.strip() == message, name
        assert table_checksum(db) == before, name
    # all at once, behind a good file: still nothing written; every file is read and its
    # format told before any is parsed, so the binary file is refused before the truncated
    # one, listed first, is parsed
    good = corpus / "good.txt"
    good.write_text(world.works[0].pmid or "12345678")
    out = cluster("import", str(good), *[str(corpus / n) for n in BAD_CORPUS], "--db", str(db),
                  env=env, expect=1)
    assert out.stderr.strip() == BAD_CORPUS["scan.ris"][1]
    assert table_checksum(db) == before

    # a SQLite file that is not a review store, given as --db: refused, and left as it was
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
    con.execute("INSERT INTO notes (text) VALUES ('keep me')")
    con.commit()
    con.close()
    other_before = (table_checksum(other), other.read_bytes())
    for args in (("import", str(good)), ("expand",), ("flow", "--json"),
                 ("decide", "1", "--reviewer", "alice", "--include"),
                 ("dedup",)):
        out = cluster(*args, "--db", str(other), env=env, expect=1)
        assert out.stderr.strip() == (f"Error: {other} is an SQLite database but not a cluster "
                                      "review store."), args
    assert (table_checksum(other), other.read_bytes()) == other_before
