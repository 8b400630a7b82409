"""`cluster dedup` on the command line: summary, --json, undo, review refusal, CSV round trip."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from base.record import Record
from db.store import open_store

ROOT = Path(__file__).resolve().parents[1]
TITLE = "Ischemic preconditioning in chronically hypoxic neonatal rat heart"


def _fill(db_path):
    s = open_store(db_path)
    with s.transaction():
        s.add_record(Record(title=TITLE, authors=("Ostadalova, I",), year=2002, journal="Pediatr Res",
                            volume="52", pages="561-7", pmid="12357051"))
        s.add_record(Record(title=TITLE.upper(), authors=("Ostadalova I.",), year=2002,
                            journal="Pediatric Research", volume="52", pages="561-567"))
        s.add_record(Record(title="Exercise training for depression in older adults: a randomized trial",
                            year=2012))
        s.add_record(Record(title="Exercise training for depression in older people: a randomized "
                                  "controlled trial", year=2012))
    s.close()


def test_empty_store_says_so(run):
    result = run("dedup")
    assert result.output.strip() == \
        "The store has no records to deduplicate: import or expand some first."


def test_summary_then_json(run, db_path):
    _fill(db_path)
    out = run("dedup", "--quiet").output
    assert "Records in: 4 (4 new since the last run)" in out
    assert "Clusters merged: 1" in out and "Duplicates marked: 1" in out
    assert "Pairs left for review: 1 (cluster dedup --review)" in out
    again = json.loads(run("dedup", "--json").output)
    assert (again["records_in"], again["new_records"], again["clusters"],
            again["pairs_for_review"]) == (3, 0, 0, 1)


def test_undo_via_cli(run, db_path):
    _fill(db_path)
    merge_id = json.loads(run("dedup", "--json", "--quiet").output)["merge_ids"][0]
    out = run("dedup", "--undo", merge_id).output
    assert out.strip() == f"Merge {merge_id} undone: records 2 stand apart from record 1 again."
    err = run("dedup", "--undo", merge_id, expect=1)
    assert err.output.strip() == f"Error: Merge {merge_id} was already undone."


def test_review_needs_a_terminal(run, db_path):
    _fill(db_path)
    result = run("dedup", "--review", expect=1)
    assert result.output.strip() == ("Error: --review needs an interactive terminal: use "
                                     "--export-pairs CSV, decide in the file, then --import-pairs CSV.")
    both = run("dedup", "--review", "--undo", "x", expect=1)
    assert both.output.strip() == ("Error: Use one of --review, --export-pairs, --import-pairs, "
                                   "--undo and --list at a time.")


def test_export_import_round_trip(run, db_path, tmp_path):
    _fill(db_path)
    run("dedup", "--quiet")
    path = tmp_path / "pairs.csv"
    assert run("dedup", "--export-pairs", str(path)).output.startswith(f"1 pairs written to {path}")
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    rows[0]["decision"] = "different"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    run("reviewers", "add", "alice")
    out = run("dedup", "--import-pairs", str(path), "--reviewer", "alice").output
    assert out.strip() == "0 pairs merged, 1 kept apart, 0 skipped; 0 pairs left for review."
    missing = run("dedup", "--import-pairs", str(tmp_path / "nope.csv"), expect=1)
    assert missing.output.strip() == f"Error: No file at {tmp_path / 'nope.csv'}: give the CSV " \
                                     f"written by --export-pairs."


def test_progress_goes_to_stderr_in_a_subprocess(db_path):
    _fill(db_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)
    proc = subprocess.run([sys.executable, "-m", "cli", "dedup", "--json", "--db", str(db_path)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["duplicates_marked"] == 1
    assert "match" in proc.stderr


def test_help_has_an_example(run):
    assert "Example: cluster dedup" in run("dedup", "--help").output


def test_ctrl_c_in_review_exits_130(db_path):
    import pexpect

    _fill(db_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)
    subprocess.run([sys.executable, "-m", "cli", "dedup", "--quiet", "--db", str(db_path)],
                   cwd=str(ROOT), env=env, check=True, capture_output=True)
    child = pexpect.spawn(sys.executable, ["-m", "cli", "dedup", "--review", "--db", str(db_path)],
                          cwd=str(ROOT), env=env, encoding="utf-8", timeout=20)
    child.expect_exact("[s]ame")
    child.send("\x03")
    child.expect(pexpect.EOF)
    child.close()
    assert "Error: Interrupted: the steps already finished are saved" in child.before
    assert child.exitstatus == 130


def test_dedup_reviewer_must_be_in_the_team(run, db_path, tmp_path):
    _fill(db_path)
    run("dedup", "--quiet")
    message = "Error: Unknown reviewer 'zed': add them with `cluster reviewers add zed`."
    # refused before the terminal is even asked for, as screen and decide refuse it
    assert run("dedup", "--review", "--reviewer", "zed", expect=1).output.strip() == message
    path = tmp_path / "pairs.csv"
    run("dedup", "--export-pairs", str(path))
    assert run("dedup", "--import-pairs", str(path), "--reviewer", "zed",
               expect=1).output.strip() == message
