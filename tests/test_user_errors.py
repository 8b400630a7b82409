"""Mistakes a user can make, each ending in one sentence on stderr and a non-zero exit.

Each test reproduces a failure a user can meet: a store that cannot be
written, a store another command is writing, Ctrl-C, files that cannot be read
or written, two runs of one command at the same time, credentials that must not
be written anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cli as cli_module
from cli import cli
import db.store as store_module
from db.store import open_store
from clikit import invoke, one_sentence

REPO = Path(__file__).resolve().parents[1]
RIS = """TY  - JOUR
TI  - Blue light and sleep in shift workers
AU  - Smith, Anna
PY  - 2019
DO  - 10.1000/blue.1
ER  - 
"""


def as_root_without_override() -> bool:
    # root reads and writes whatever the permission bits say
    return hasattr(os, "geteuid") and os.geteuid() == 0


@pytest.fixture
def made(tmp_path: Path) -> Path:
    db = tmp_path / "review.db"
    assert invoke("init", "--db", str(db)).exit_code == 0
    assert invoke("reviewers", "add", "alice", "--db", str(db)).exit_code == 0
    ris = tmp_path / "a.ris"
    ris.write_text(RIS, encoding="utf-8")
    assert invoke("import", str(ris), "--db", str(db)).exit_code == 0
    return db


def open_with_pragma(monkeypatch, pragma: str) -> None:
    """The CLI's stores run `pragma` once opened (a stand-in for a file's permissions, a wait)."""
    real = store_module.open_store

    def opened(path, **kw):
        store = real(path, **kw)
        store.db.execute(pragma)
        return store

    # the CLI imports open_store from db.store when a command opens a store
    monkeypatch.setattr(store_module, "open_store", opened)


def test_read_only_store_is_one_sentence(made: Path, monkeypatch) -> None:
    # a read-only connection is what SQLite gives for a file the user may not write
    open_with_pragma(monkeypatch, "PRAGMA query_only = ON")
    result = invoke("decide", "1", "--reviewer", "alice", "--include", "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == (
        f"Error: The review store {made} is read-only: check the permissions of the file and "
        f"of its folder, or work on a copy.")
    store = open_store(made)
    assert store.events("kind = 'decision'") == []
    store.close()


@pytest.mark.skipif(as_root_without_override(), reason="root ignores file permissions")
def test_read_only_store_file(made: Path) -> None:
    made.chmod(0o444)
    try:
        result = invoke("reviewers", "add", "bob", "--db", str(made))
    finally:
        made.chmod(0o644)
    assert result.exit_code == 1
    assert "is read-only" in one_sentence(result)


def test_busy_store_is_one_sentence(made: Path, monkeypatch) -> None:
    open_with_pragma(monkeypatch, "PRAGMA busy_timeout = 50")  # the real wait is 30 s
    other = sqlite3.connect(str(made), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another command in the middle of a write
    try:
        result = invoke("decide", "1", "--reviewer", "alice", "--include", "--db", str(made))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.exit_code == 1
    assert one_sentence(result) == (
        f"Error: The review store {made} is busy: another cluster command is writing to it; "
        f"run this one again when it has finished.")


def test_store_in_a_folder_that_cannot_be_written(tmp_path: Path, monkeypatch) -> None:
    # SQLite answers "unable to open database file" when it cannot create the file
    def refuse(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr("db.store.sqlite3.connect", refuse)
    db = tmp_path / "new.db"
    result = invoke("init", "--db", str(db))
    assert result.exit_code == 1
    assert one_sentence(result) == (
        f"Error: Cannot open the review store {db} (unable to open database file): check that "
        f"you may write to it and to its folder.")


def test_oserror_naming_a_file_becomes_one_sentence(made: Path, monkeypatch) -> None:
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device", "out.svg")

    monkeypatch.setattr("db.diagram.write_svg", full)
    result = invoke("flow", "--svg", str(made.parent / "out.svg"), "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == ("Error: The disk is full; out.svg was not written: free some "
                                    "space and run the command again.")


@pytest.mark.parametrize("args", [
    ("export", "--format", "ris", "-o", "{out}"),
    ("contacts", "-o", "{out}"),
    ("flow", "--svg", "{out}"),
])
@pytest.mark.skipif(as_root_without_override(), reason="root ignores file permissions")
def test_output_that_cannot_be_written_says_so(made: Path, args) -> None:
    out = made.parent / "locked.out"
    out.write_text("", encoding="utf-8")
    out.chmod(0o000)
    try:
        result = invoke(*[a.format(out=out) for a in args], "--db", str(made))
    finally:
        out.chmod(0o644)
    assert result.exit_code == 2
    assert "is not writable" in result.stderr


def test_output_options_check_writing_not_reading() -> None:
    for name in ("export", "contacts", "flow", "report", "dedup"):
        for p in cli.commands[name].params:
            if isinstance(p.type, type(cli_module.OUTPUT_FILE)) and p.name != "db_path" \
                    and p.name != "import_csv":
                assert p.type.writable and not p.type.readable, (name, p.name)


def test_store_is_closed_after_each_command(tmp_path: Path, monkeypatch) -> None:
    closed: list[str] = []
    real = store_module.open_store

    def tracked(path, **kw):
        store = real(path, **kw)
        original = store.close

        def close() -> None:
            closed.append(str(path))
            original()

        store.close = close
        return store

    monkeypatch.setattr(store_module, "open_store", tracked)
    db = str(tmp_path / "review.db")
    assert invoke("init", "--db", db).exit_code == 0
    assert closed == [db]
    assert invoke("reviewers", "add", "alice", "--db", db).exit_code == 0
    assert invoke("reviewers", "list", "--db", db).output == "alice\n"
    assert closed == [db, db, db]
    # a failing command closes its store too
    assert invoke("decide", "9", "--reviewer", "alice", "--include", "--db", db).exit_code == 1
    assert len(closed) == 4


def test_init_leaves_no_write_ahead_log(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    assert invoke("init", "--db", str(db)).exit_code == 0
    # a closed store has folded its log back into the file
    assert not (tmp_path / "review.db-wal").exists()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.pop("CLUSTER_DB", None)
    return env


def test_ctrl_c_is_one_sentence_and_exit_130(made: Path) -> None:
    # a service that takes the connection and never answers: the user gives up with Ctrl-C
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        env = _env()
        env["CLUSTER_PUBMED_URL"] = f"http://127.0.0.1:{server.getsockname()[1]}"
        env["PYTHONFAULTHANDLER"] = "1"
        # as from a terminal: Ctrl-C neither blocked nor ignored, whatever the test
        # process inherited or set (the command keeps the shim's process id)
        shim = ("import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, "
                "[signal.SIGINT]); signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.executable, [sys.executable] + sys.argv[1:])")
        proc = subprocess.Popen(
            [sys.executable, "-c", shim, "-m", "cli", "add", "--pmid", "23121403",
             "--db", str(made)],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            server.settimeout(30)
            conn, _ = server.accept()
            conn.settimeout(30)
            conn.recv(1024)  # the request has arrived: the command is waiting for the answer
            time.sleep(0.3)
            proc.send_signal(signal.SIGINT)
            try:
                out, err = proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            conn.close()
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: where it was stuck
                out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.strip() == ("Error: Interrupted: the steps already finished are saved and nothing "
                           "half-done was kept; run the command again to go on.")
    store = open_store(made)
    assert [r.title for _, r in store.records()] == ["Blue light and sleep in shift workers"]
    store.close()


def test_usage_names_the_program_cluster(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "cli", "decide", "abc", "--db",
                           str(tmp_path / "r.db")], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: cluster decide [OPTIONS] RECORD")


def test_two_expands_at_once_on_one_store(tmp_path: Path) -> None:
    """The second run to finish a search finds it saved by the first, and saves nothing twice."""
    from cluster.expand import ExpandOptions, add_index_articles, expand
    from cluster.demo.services import serve_world
    from cluster.demo.world import World
    from connectors.http import Settings
    from connectors.services import connect

    world = World.generate(seed=5, n_works=40, n_index=2)
    server = serve_world(world)
    try:
        settings = Settings(base_urls=server.base_urls, max_retries=0,
                            rate_limits={s: 1000.0 for s in server.base_urls})
        db = tmp_path / "review.db"
        first, second = open_store(db), open_store(db)
        options = ExpandOptions(strategies=("related",), top=5)
        with connect(settings) as services:
            add_index_articles(first, services, pmids=[w.pmid for w in world.index_articles])
            before = first.db.execute("SELECT count(*) FROM searches").fetchone()[0]
            solo: list = []

            def other_run_meanwhile(done: int, total: int, label: str) -> None:
                # the first run has listed what is left to do; the other run now does it all
                if not solo:
                    with connect(settings) as other_services:
                        solo.append(expand(second, other_services, options))

            report = expand(first, services, options, progress=other_run_meanwhile)
        done_by_other = [r for r in solo[0].results if r.status in ("done", "skipped")]
        n_units = len(done_by_other)
        assert n_units > 0
        assert [r.status for r in report.results] == ["already-done"] * n_units
        uuids = [row[0] for row in first.db.execute("SELECT uuid FROM searches WHERE id > ?",
                                                     [before])]
        assert len(uuids) == len(set(uuids)) == n_units
        first.close()
        second.close()
    finally:
        server.stop()


@pytest.mark.parametrize("args, message", [
    (("--target-recall", "7"),
     "Error: The target recall is a share above 0 and at most 1 (e.g. 0.95), not 7.0."),
    (("--target-recall", "0"),
     "Error: The target recall is a share above 0 and at most 1 (e.g. 0.95), not 0.0."),
    (("--consecutive-excludes", "-3"),
     "Error: The number of consecutive excludes must be at least 1, not -3."),
])
def test_protocol_refuses_impossible_stopping_settings(made: Path, args, message) -> None:
    result = invoke("protocol", "set", *args, "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == message
    shown = invoke("protocol", "show", "--db", str(made))
    assert '"target_recall": 0.95' in shown.output
    assert '"consecutive_excludes": 100' in shown.output


def test_dedup_import_of_a_file_that_is_not_a_pairs_csv(made: Path) -> None:
    # a one-line file has a header and no rows: it used to pass as "0 pairs merged"
    junk = made.parent / "junk.csv"
    junk.write_text("garbage garbage\n", encoding="utf-8")
    result = invoke("dedup", "--import-pairs", str(junk), "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == (f"Error: {junk} has no a, b and decision columns: give the "
                                    f"CSV written by --export-pairs.")


SECRETS = {"NCBI_API_KEY": "ncbi-key-7f3a9c", "CLUSTER_EMAIL": "someone.4471@mail.example",
           "OPENALEX_API_KEY": "openalex-key-d41e2b"}


def test_credentials_reach_no_file_and_no_output(tmp_path: Path, monkeypatch) -> None:
    from cluster.demo.services import serve_world
    from cluster.demo.world import World

    world = World.generate(seed=9, n_works=40, n_index=2)
    server = serve_world(world)
    try:
        for name, value in SECRETS.items():
            monkeypatch.setenv(name, value)
        for service, url in server.base_urls.items():
            monkeypatch.setenv(f"CLUSTER_{service.upper()}_URL", url)
        monkeypatch.setenv("CLUSTER_RATE_LIMITS", ",".join(f"{s}=1000" for s in server.base_urls))
        monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "0")
        db = str(tmp_path / "review.db")
        seeds = world.index_articles
        outputs = [invoke("add", "--pmid", seeds[0].pmid, "--doi", seeds[1].doi, "--db", db),
                   invoke("expand", "-q", "--strategies", "lead-author,cited-by", "--top", "5",
                          "--db", db)]
        assert [r.exit_code for r in outputs] == [0, 0], [r.output for r in outputs]
        # the services did get the credentials (so their absence below means something)
        sent = json.dumps([r.params for r in server.log])
        assert all(value in sent for value in SECRETS.values()), sent[:300]
        for fmt in ("ris", "bibtex", "csv", "jsonl", "asreview"):
            outputs.append(invoke("export", "--format", fmt, "--db", db))
        outputs += [invoke("searches", "--json", "--db", db),
                    invoke("searches", "--markdown", "--db", db),
                    invoke("report", "-o", str(tmp_path / "methods.md"), "--db", db)]
        assert all(r.exit_code == 0 for r in outputs)
    finally:
        server.stop()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert "review.http-cache.sqlite" in files and "methods.md" in files
    seen = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    seen += "".join(r.output + r.stderr for r in outputs).encode()
    for value in SECRETS.values():
        for form in (value, value.replace("@", "%40")):
            assert form.encode() not in seen, form


@pytest.mark.parametrize("name, value, message", [
    ("CLUSTER_RATE_LIMITS", "pubmed", "Error: CLUSTER_RATE_LIMITS must read like "
                                      "pubmed=3,crossref=10, not 'pubmed': fix or unset it."),
    ("CLUSTER_RATE_LIMITS", "pubmed=0", "Error: CLUSTER_RATE_LIMITS must read like "
                                        "pubmed=3,crossref=10, not 'pubmed=0': fix or unset it."),
    ("CLUSTER_HTTP_BACKOFF", "soon", "Error: CLUSTER_HTTP_BACKOFF must be a number, not 'soon': "
                                     "fix or unset it."),
])
@pytest.mark.parametrize("command", [("add", "--pmid", "1"), ("expand",), ("fetch", "--pmid", "1")])
def test_malformed_http_settings_are_one_sentence(made: Path, monkeypatch, name, value, message,
                                                  command) -> None:
    monkeypatch.setenv(name, value)
    result = invoke(*command, "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == message


def test_http_settings_from_the_environment() -> None:
    from connectors.http import Settings

    s = Settings.from_env({"CLUSTER_HTTP_RETRIES": "1", "CLUSTER_HTTP_BACKOFF": "0.5",
                           "CLUSTER_RATE_LIMITS": "pubmed=3, crossref=10"})
    assert (s.max_retries, s.backoff_base, s.backoff_max) == (1, 0.5, 2.0)
    assert dict(s.rate_limits) == {"pubmed": 3.0, "crossref": 10.0}


def test_find_refuses_an_unknown_tagger_and_a_limit_below_one(made: Path) -> None:
    result = invoke("find", "light", "--tag", "theory", "--reviewer", "zed", "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == ("Error: Unknown reviewer 'zed': add them with "
                                    "`cluster reviewers add zed`.")
    result = invoke("find", "light", "--limit", "0", "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == "Error: The limit must be at least 1, not 0."
    store = open_store(made)
    assert store.events("kind = 'tag'") == []
    store.close()
    tagged = invoke("find", "light", "--tag", "theory", "--reviewer", "alice", "--db", str(made))
    assert tagged.output.endswith("1 record(s); 1 newly tagged 'theory'.\n")


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_reviewer_name_is_refused(made: Path, name: str) -> None:
    result = invoke("reviewers", "add", "carol", name, "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == "Error: A reviewer name cannot be blank: give a name such as alice."
    assert invoke("reviewers", "list", "--db", str(made)).output == "alice\n"


def test_empty_list_of_exclusion_reasons_is_refused(made: Path) -> None:
    result = invoke("protocol", "set", "--reasons", " ; ;", "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == ("Error: The list of exclusion reasons is empty: give at least "
                                    "one reason (several separated by semicolons).")
    shown = invoke("protocol", "show", "--db", str(made)).output
    assert '"wrong population",' in shown


def test_two_dedup_runs_at_once_merge_each_cluster_once(made: Path) -> None:
    from cluster.dedup.apply import run_dedup

    copy = made.parent / "b.ris"
    copy.write_text(RIS.replace("Blue light and sleep", "Blue Light and Sleep") + RIS.replace(
        "10.1000/blue.1", "10.1000/other.2").replace("Blue light and sleep in shift workers",
                                                      "Coffee and alertness at night"),
        encoding="utf-8")
    assert invoke("import", str(copy), "--db", str(made)).exit_code == 0
    first, second = open_store(made), open_store(made)
    other: list = []

    def other_run_meanwhile(stage: str, done: int, total: int) -> None:
        # the first run has read the records; the other run now deduplicates them all
        if not other:
            other.append(run_dedup(second))

    summary = run_dedup(first, progress=other_run_meanwhile)
    assert (other[0].clusters, other[0].duplicates_marked) == (1, 1)
    assert (summary.clusters, summary.duplicates_marked, summary.new_records) == (0, 0, 0)
    assert len(first.events("kind = 'merge'")) == 1
    first.close()
    second.close()


def test_dedup_undo_with_an_empty_id_undoes_nothing_and_runs_nothing(made: Path) -> None:
    result = invoke("dedup", "--undo", "", "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == ("Error: No merge with id '' in this store: `cluster dedup --list` "
                                    "lists the merges that stand.")
    store = open_store(made)
    assert store.get_meta("dedup_last_record_id") is None  # no deduplication ran
    store.close()


def test_contact_details_without_log_are_refused(made: Path) -> None:
    result = invoke("contacts", "--status", "sent", "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == ("Error: --status, --email and --note go with --log NAME (the "
                                    "author contacted).")


def test_a_damaged_http_cache_is_named_not_the_store(made: Path) -> None:
    cache = made.parent / "review.http-cache.sqlite"
    cache.write_text("not a database\\n", encoding="utf-8")
    result = invoke("add", "--pmid", "23121403", "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == (
        f"Error: The HTTP cache {cache} cannot be used (file is not a database): delete it (it "
        f"only holds copies of answers) and run the command again.")


def test_a_store_being_created_is_not_taken_for_a_foreign_database(tmp_path: Path) -> None:
    import threading

    db = tmp_path / "review.db"
    # another command has just created the file and is inside its first transaction
    creator = sqlite3.connect(str(db), isolation_level=None, check_same_thread=False)
    creator.execute("PRAGMA journal_mode=WAL")
    creator.execute("BEGIN IMMEDIATE")
    creator.execute("CREATE TABLE half_done (x)")
    assert db.read_bytes()[:16] == b"SQLite format 3\x00"
    threading.Timer(0.5, lambda: (creator.execute("ROLLBACK"), creator.close())).start()
    store = open_store(db)  # waits for the creator instead of refusing the file
    assert store.reviewer_names() == []
    store.close()


def test_commands_started_together_on_a_new_store_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    procs = [subprocess.Popen([sys.executable, "-m", "cli", "reviewers", "add", f"r{i}", "--db",
                               str(db)], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert errors == [""] * 4
    assert [p.returncode for p in procs] == [0] * 4
    store = open_store(db)
    assert store.reviewer_names() == ["r0", "r1", "r2", "r3"]
    store.close()


@pytest.mark.parametrize("field, value", [("id", None), ("id", ""), ("ts", None)])
def test_decisions_file_event_without_id_or_time_is_refused(made: Path, field, value) -> None:
    assert invoke("decide", "1", "--reviewer", "alice", "--include", "--db", str(made)).exit_code == 0
    exported = made.parent / "alice.jsonl"
    assert invoke("decisions", "export", str(exported), "--db", str(made)).exit_code == 0
    event = json.loads(exported.read_text(encoding="utf-8").splitlines()[0])
    event.update({"id": "another-copy-1", field: value})
    edited = made.parent / "edited.jsonl"
    edited.write_text(json.dumps(event) + "\n", encoding="utf-8")
    result = invoke("decisions", "import", str(edited), "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == ("Error: Line 1 of edited.jsonl is not a decision event: is it a "
                                    "file written by `cluster decisions export`?")
    store = open_store(made)
    assert len(store.events("kind = 'decision'")) == 1
    store.close()


@pytest.mark.parametrize("body, content_type", [
    (b'{"error": "API key invalid: ncbi-key-7f3a9c"}', "application/json"),
    (b"Invalid api_key ncbi-key-7f3a9c for this tool", "text/plain"),
])
def test_a_service_quoting_the_key_in_its_refusal_does_not_leak_it(body, content_type) -> None:
    from base.errors import ClusterError
    from connectors.http import Settings
    from cluster.demo.loopback import LoopbackServer, Response
    from connectors.services import connect

    server = LoopbackServer()
    server.route("/pubmed", lambda req: Response(400, body, content_type=content_type))
    server.start()
    try:
        settings = Settings(base_urls={"pubmed": server.url + "/pubmed"}, max_retries=0,
                            ncbi_api_key=SECRETS["NCBI_API_KEY"])
        with connect(settings) as services, pytest.raises(ClusterError) as caught:
            services.pubmed.fetch(["23121403"])
    finally:
        server.stop()
    assert SECRETS["NCBI_API_KEY"] in body.decode()
    assert SECRETS["NCBI_API_KEY"] not in str(caught.value)
    assert "[redacted]" in str(caught.value)


def test_flow_refuses_one_file_for_both_diagrams(made: Path) -> None:
    out = made.parent / "prisma.svg"
    result = invoke("flow", "--svg", str(out), "--png", str(out), "--db", str(made))
    assert result.exit_code == 1
    assert one_sentence(result) == "Error: --svg and --png name the same file: give each its own name."
    assert not out.exists()
