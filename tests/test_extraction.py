"""Data extraction: forms checked line by line, answers as events, congruence by hand,
consensus, the evidence table, imports, and the terminal walk driven for real."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pexpect
import pytest
from clikit import invoke, one_sentence
from screenkit import FT, TA, both_decide, make_review, snapshot

from db.store import open_store
from screeners.extraction.answers import save_answer, standing_answers
from screeners.extraction.congruence import congruence
from screeners.extraction.consensus import conflicts, final_answers, settle
from screeners.extraction.form import FormError, parse_form, read_form, set_form

ROOT = Path(__file__).resolve().parents[1]

TINY = """title = "Tiny"

[[field]]
key = "level"
type = "choice"
choices = ["1 Reaction", "2 Learning", "3 Behavior", "4 Results"]

[[field]]
key = "rigour"
type = "scale"
min = 1
max = 5
anchors = { 1 = "no rigour", 5 = "exceptionally rigorous" }

[[field]]
key = "design"
type = "text"

[[field]]
key = "cmo"
type = "group"

[[field.fields]]
key = "context"
type = "text"

[[field.fields]]
key = "outcome"
type = "text"
"""


def _included(store, n: int = 3, included: int = 2) -> list[int]:
    ids = make_review(store, n, reviewers=("alice", "bob", "carol", "dan"))
    for rid in ids[:included]:
        both_decide(store, rid, "include", "include", TA)
        both_decide(store, rid, "include", "include", FT)
    return ids


def _fill(store, rid: int, reviewer: str, answers: dict) -> None:
    for key, value in answers.items():
        if key == "cmo":
            for i, item in enumerate(value, 1):
                for part, v in item.items():
                    save_answer(store, rid, reviewer, f"cmo[{i}].{part}", v)
            save_answer(store, rid, reviewer, "cmo", len(value))
        else:
            save_answer(store, rid, reviewer, key, value)


@pytest.fixture
def tiny(tmp_path):
    store = open_store(tmp_path / "review.db")
    _included(store)
    set_form(store, parse_form(TINY, "tiny.toml"))
    yield store
    store.close()


def _hand_fixture(store) -> None:
    _fill(store, 1, "alice", {"level": "2", "rigour": 4, "design": "RCT, n=40",
                              "cmo": [{"context": "ward nurses", "outcome": "empathy up"},
                                      {"context": "students", "outcome": "burnout down"}]})
    _fill(store, 1, "bob", {"level": "2 Learning", "rigour": "3", "design": "rct n 40",
                            "cmo": [{"context": "Students", "outcome": "burnout down"}]})
    _fill(store, 2, "alice", {"level": 3, "rigour": 5, "design": "", "cmo": []})
    _fill(store, 2, "bob", {"level": 4, "rigour": 5, "design": "cohort", "cmo": []})


def test_congruence_by_hand_with_groups_and_a_blank(tiny):
    _hand_fixture(tiny)
    c = congruence(tiny)
    # record 1: level A, rigour D, design A (normalised), bob's item matches alice's second
    # (context A, outcome A), alice's first has no partner (context D, outcome D) -> 4 A, 3 D
    # record 2: level D, rigour A, design D (blank vs cohort), no items on either side
    # (context A, outcome A) -> 3 A, 2 D
    assert (c.agreements, c.disagreements, c.records) == (7, 5, 2)
    assert round(c.congruence, 4) == 58.3333
    by_field = {f.key: (f.agreements, f.disagreements) for f in c.fields}
    assert by_field == {"level": (1, 1), "rigour": (1, 1), "design": (1, 1),
                        "cmo.context": (2, 1), "cmo.outcome": (2, 1)}
    (pair,) = c.pairs
    kappas = {f.key: f.kappa for f in pair.fields}
    # level: observed 1/2, expected 1/4 -> 1/3; rigour (linear weights): 0.875 vs 0.75 -> 0.5
    assert kappas["level"] == pytest.approx(1 / 3)
    assert kappas["rigour"] == pytest.approx(0.5)
    assert kappas["design"] is None


def test_conflicts_consensus_and_final_answers(tiny):
    _hand_fixture(tiny)
    assert [(c.record_id, c.key) for c in conflicts(tiny)] == [
        (1, "rigour"), (1, "cmo"), (2, "level"), (2, "design")]
    with pytest.raises(FormError, match="^alice extracted record 1, so cannot settle it as the "):
        settle(tiny, 1, "rigour", "alice", "arbiter", value="4")
    r = settle(tiny, 1, "rigour", "carol", "arbiter", value="4")
    assert (r.value, r.decided_by, r.method) == (4, ("carol",), "arbiter")
    settle(tiny, 2, "level", "alice", "consensus", take="bob")
    with pytest.raises(FormError, match="do not disagree on level"):
        settle(tiny, 1, "level", "carol", value="2")
    assert [(c.record_id, c.key) for c in conflicts(tiny)] == [(1, "cmo"), (2, "design")]
    final = final_answers(tiny)
    assert final[1].answers["rigour"] == 4 and final[1].status["rigour"] == "consensus"
    assert final[1].answers["design"] == "RCT, n=40" and final[1].status["design"] == "agreed"
    assert final[2].answers["level"] == "4 Results"
    assert final[2].status["design"] == "conflict" and final[2].answers["design"] is None
    event = tiny.events("kind = 'consensus'")[-1]
    assert event["data"]["decided_by"] == ["alice", "bob"]
    assert event["data"]["method"] == "consensus"


def test_answer_outside_the_scale_is_refused(tiny):
    before = snapshot(tiny)
    with pytest.raises(FormError) as err:
        save_answer(tiny, 1, "alice", "rigour", "7")
    assert str(err.value) == "The answer '7' to rigour is outside its scale 1-5."
    with pytest.raises(FormError, match="is not one of its choices: 1 1 Reaction; 2 2 Learning"):
        save_answer(tiny, 1, "alice", "level", "5 Impact")
    with pytest.raises(FormError, match="^Record 3 is not an included record"):
        save_answer(tiny, 3, "alice", "design", "RCT")
    assert snapshot(tiny) == before


@pytest.mark.parametrize("text, message", [
    (TINY.replace('type = "scale"', 'type = "slider"'),
     "tiny.toml, line 10: field 'rigour' has the unknown type 'slider': use one of text, "
     "long_text, number, choice, multi_choice, scale, group."),
    (TINY.replace('key = "design"', 'key = "level"'),
     "tiny.toml, line 16: the field key 'level' is used twice; each field needs its own key."),
    (TINY.replace('choices = ["1 Reaction", "2 Learning", "3 Behavior", "4 Results"]',
                  "choices = []"),
     "tiny.toml, line 6: field 'level' is a choice with an empty list of choices: give at least "
     "one."),
    (TINY.replace('key = "outcome"', 'key = "context"'),
     "tiny.toml, line 28: the field key 'context' is used twice in group 'cmo'; each field needs "
     "its own key."),
    ("title = 'x'\n[[field]]\nkey = \"a\"\ntype = \"text\"\ntype = \"number\"\n",
     "tiny.toml is not valid TOML: Cannot overwrite a value (at line 5, column 16)."),
])
def test_form_errors_name_the_line(text, message):
    with pytest.raises(FormError) as err:
        parse_form(text, "tiny.toml")
    assert str(err.value) == message


def test_form_errors_through_the_cli(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(TINY.replace('type = "scale"', 'type = "slider"'), encoding="utf-8")
    db = str(tmp_path / "review.db")
    r = invoke("form", "set", str(bad), "--db", db)
    assert r.exit_code == 1
    assert one_sentence(r).startswith("Error: bad.toml, line 10: field 'rigour' has the unknown")
    r = invoke("form", "show", "--db", db)
    assert one_sentence(r).startswith("Error: No extraction form is set")


def test_built_in_forms_are_installed_and_versioned(tmp_path):
    realist = read_form("realist")
    assert [f.key for f in realist.fields] == [
        "design", "participants", "intervention_type", "duration", "content", "cmo",
        "kirkpatrick", "relevance", "rigour"]
    assert [p.key for p in realist.field("cmo").fields] == [
        "context", "mechanism", "outcome", "explanation"]
    assert realist.field("relevance").anchors[5] == "extremely relevant"
    assert realist.field("rigour").anchors[1] == "no rigour"
    assert [f.key for f in read_form("general").fields][:6] == [
        "design", "population", "intervention", "comparator", "outcomes", "results"]
    db = str(tmp_path / "review.db")
    assert invoke("form", "set", "realist", "--db", db).output == (
        "Extraction form 'Realist synthesis' set (version 1, 9 fields).\n")
    assert "version 2" in invoke("form", "set", "general", "--db", db).output
    shown = json.loads(invoke("form", "show", "--json", "--db", db).output)
    assert (shown["title"], shown["version"]) == ("Study characteristics and results", 2)


def test_a_changed_form_keeps_every_answer(tiny):
    _hand_fixture(tiny)
    n = len(tiny.events("kind = 'answer'"))
    set_form(tiny, parse_form(TINY.replace('key = "design"', 'key = "setting"'), "t2.toml"))
    assert len(tiny.events("kind = 'answer'")) == n
    # design is no longer asked; the extraction is incomplete until setting is answered
    assert congruence(tiny).records == 0
    set_form(tiny, parse_form(TINY, "tiny.toml"))
    assert congruence(tiny).agreements == 7


def test_cli_agreement_conflicts_settle_export_report(tiny, tmp_path):
    _hand_fixture(tiny)
    db = str(tiny.path)
    out = json.loads(invoke("agreement", "--stage", "extraction", "--json", "--db", db).output)
    assert (out["agreements"], out["disagreements"], out["congruence"]) == (7, 5, 58.3333)
    text = invoke("agreement", "--stage", "extraction", "--db", db).output
    assert text.startswith("Congruence in data extraction (Tiny, version 1): 58.3 % = 7 "
                           "agreements / (7 + 5 disagreements), 2 records")
    listed = invoke("conflicts", "--stage", "extraction", "--db", db).output
    assert "Record 1 · rigour (rigour): Study 1: compassion training for nurses" in listed
    assert listed.rstrip().endswith("4 field(s) in conflict at extraction; settle each with "
                                    "`cluster extraction settle`.")
    r = invoke("extraction", "settle", "1", "--field", "rigour", "--resolver", "carol",
               "--method", "arbiter", "--value", "4", "--db", db)
    assert r.output == "Record 1 · rigour: 4 by carol (arbiter).\n"
    r = invoke("extraction", "settle", "1", "--field", "rigour", "--resolver", "carol",
               "--value", "9", "--db", db)
    assert one_sentence(r) == "Error: The answer '9' to rigour is outside its scale 1-5."
    csv_text = invoke("extraction", "export", "--format", "csv", "--db", db).output
    lines = csv_text.splitlines()
    assert lines[0] == "record_id,study,title,doi,level,rigour,design,cmo,conflicts"
    assert lines[1].startswith("1,Author1 2000,Study 1: compassion training for nurses,,"
                               "2 Learning,4,\"RCT, n=40\",")
    assert lines[1].endswith(",cmo")
    items = [json.loads(x) for x in invoke("extraction", "export", "--format", "jsonl", "--all",
                                           "--by", "item", "--db", db).output.splitlines()]
    assert [(x["record_id"], x["reviewer"], x["item"], x["cmo.context"]) for x in items] == [
        (1, "alice", 1, "ward nurses"), (1, "alice", 2, "students"), (1, "bob", 1, "Students"),
        (2, "alice", None, None), (2, "bob", None, None)]
    r = invoke("extraction", "export", "--format", "xlsx", "--db", db)
    assert one_sentence(r) == ("Error: An xlsx workbook is a binary file: give -o FILE.xlsx to "
                               "write it.")
    book = tiny.path.parent / "evidence.xlsx"
    r = invoke("extraction", "export", "--format", "xlsx", "-o", str(book), "--db", db)
    assert r.stderr == f"Exported 2 row(s) to {book} (xlsx).\n"
    from openpyxl import load_workbook
    sheet = load_workbook(book).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    assert cells[0] == lines[0].split(",")
    assert cells[1][:7] == [1, "Author1 2000", "Study 1: compassion training for nurses", None,
                            "2 Learning", 4, "RCT, n=40"]
    assert [c.data_type for c in next(sheet.iter_rows(min_row=2))][:3] == ["n", "s", "s"]
    report = invoke("report", "--db", db).output
    assert ("Congruence in data extraction was 58.3 % (agreements / (agreements + "
            "disagreements) = 7 / 12, over 2 records extracted by two or more reviewers).") in report
    assert "| Author1 2000 (#1) | 2 Learning | 4 | RCT, n=40 |" in report
    assert "- rigour: 1: 0, 2: 0, 3: 0, 4: 1, 5: 1." in report


def test_sample_at_extraction_draws_from_included_index_articles(tmp_path):
    store = open_store(tmp_path / "review.db")
    ids = _included(store, n=6, included=5)
    sid = store.start_search(kind="file", service="index", strategy=None)
    with store.transaction():
        for rid in ids[:4]:
            store.add_source(rid, sid, role="index", service="index")
    db = str(store.path)
    store.close()
    out = json.loads(invoke("sample", "--stage", "extraction", "--role", "index", "--fraction",
                            "0.5", "--reviewer", "dan", "--seed", "3", "--json", "--db", db).output)
    assert out["population"] == 4 and len(out["records"]) == 2
    assert set(out["records"]) <= set(ids[:4])


def test_import_answers_validated_against_the_form(tiny, tmp_path):
    good = tmp_path / "bob.csv"
    good.write_text("record_id,level,rigour,design,cmo.context,cmo.outcome\n"
                    "1,2,3,rct n 40,Students,burnout down\n"
                    "1,,,,ward nurses,empathy up\n"
                    "2,4,5,cohort,,\n", encoding="utf-8")
    db = str(tiny.path)
    r = invoke("extract", "--reviewer", "bob", "--import", str(good), "--db", db)
    assert r.output == f"Imported 12 answer(s) on 2 record(s) for bob from {good}.\n"
    got = standing_answers(tiny, "bob")
    assert got[(1, "bob")]["cmo"].value == 2 and got[(2, "bob")]["cmo"].value == 0
    assert got[(1, "bob")]["cmo[2].context"].value == "ward nurses"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"record_id": 1, "rigour": 6}\n', encoding="utf-8")
    before = snapshot(tiny)
    r = invoke("extract", "--reviewer", "alice", "--import", str(bad), "--db", db)
    assert one_sentence(r) == ("Error: Line 1 of bad.jsonl: the answer '6' to rigour is outside "
                               "its scale 1-5.")
    bad.write_text('{"record_id": 1, "colour": "red"}\n', encoding="utf-8")
    r = invoke("extract", "--reviewer", "alice", "--import", str(bad), "--db", db)
    assert one_sentence(r).startswith("Error: Line 1 of bad.jsonl: the column 'colour' is not")
    assert snapshot(tiny) == before


def test_walk_answers_groups_undo_blank_and_resume(tiny):
    db = str(tiny.path)
    keys = "\n".join(["7", "4", ":u", "2", "5", "", "y", "wards", "calm", "n", ":q"]) + "\n"
    r = CliRunnerInput(db, keys)
    assert "The answer '7' to level is not one of its choices" in r
    assert "Undid your answer to level on record 1." in r
    mine = {k: a.value for k, a in standing_answers(tiny, "alice")[(1, "alice")].items()}
    assert mine == {"level": "2 Learning", "rigour": 5, "design": None,
                    "cmo[1].context": "wards", "cmo[1].outcome": "calm", "cmo": 1}
    assert r.rstrip().endswith("alice: 7 answer(s) saved this sitting, 1 record(s) finished; "
                               "1 of 2 included records extracted.")
    # the next sitting starts at record 2, blind to bob's answers
    _fill(tiny, 2, "bob", {"level": 4, "rigour": 5, "design": "cohort", "cmo": []})
    r = CliRunnerInput(db, ":q\n")
    assert "Record 2: Study 2: empathy in medical students" in r
    assert "cohort" not in r


def CliRunnerInput(db: str, keys: str) -> str:
    from click.testing import CliRunner

    from cli import cli
    result = CliRunner().invoke(cli, ["extract", "--reviewer", "alice", "--db", db], input=keys,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_kill_during_extraction_loses_at_most_the_field_being_typed(tiny):
    db = str(tiny.path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "dumb"}
    env.pop("CLUSTER_DB", None)
    child = pexpect.spawn(sys.executable, ["-m", "cli", "extract", "--reviewer", "alice",
                                           "--db", db], cwd=str(ROOT), env=env,
                          encoding="utf-8", timeout=30)
    child.expect_exact("level (choice)")
    child.sendline("3")
    child.expect_exact("rigour (scale 1-5)")
    child.sendline("2")
    child.expect_exact("design (text)")
    child.send("randomised contr")  # typed, never entered
    time.sleep(0.3)
    os.kill(child.pid, signal.SIGKILL)
    child.expect(pexpect.EOF)
    child.close()
    got = {k: a.value for k, a in standing_answers(tiny, "alice")[(1, "alice")].items()}
    assert got == {"level": "3 Behavior", "rigour": 2}
    child = pexpect.spawn(sys.executable, ["-m", "cli", "extract", "--reviewer", "alice",
                                           "--db", db], cwd=str(ROOT), env=env,
                          encoding="utf-8", timeout=30)
    child.expect_exact("design (text)")
    child.sendline(":q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_who_extracts_what_follows_the_protocol_and_the_check_sample(tiny):
    from screeners.decisions import sample
    from screeners.extraction.form import set_extractors
    from screeners.extraction.session import ExtractionSession

    _hand_fixture(tiny)  # alice and bob finished records 1 and 2
    # two extractors per record: carol has nothing left
    assert ExtractionSession(tiny, "carol").next_step() is None
    # three per index article: record 1 is one, so carol extracts it
    sid = tiny.start_search(kind="file", service="index")
    with tiny.transaction():
        tiny.add_source(1, sid, role="index", service="index")
    set_extractors(tiny, per_index=3)
    step = ExtractionSession(tiny, "carol").next_step()
    assert step is not None and (step.record_id, step.key) == (1, "level")
    # a check sample of the included records goes to dan, whoever extracted them before
    result = sample(tiny, 0.5, "dan", 1, "extraction")
    assert result.population == 2 and len(result.chosen) == 1
    session = ExtractionSession(tiny, "dan")
    assert session.queue() == list(result.chosen)
    assert session.progress() == (0, 1)


def test_answers_travel_between_copies_of_a_review(tiny, tmp_path):
    import shutil

    from screeners.decisions import export_decisions, import_decisions

    tiny.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(tiny.path, tmp_path / "copy.db")
    _hand_fixture(tiny)
    n = export_decisions(tiny, tmp_path / "answers.jsonl")
    assert n == len(tiny.events("kind IN ('answer', 'consensus', 'undo')")) + len(
        tiny.events("kind IN ('decision')"))
    copy = open_store(tmp_path / "copy.db")
    try:
        result = import_decisions(copy, tmp_path / "answers.jsonl")
        assert result.added == len(tiny.events("kind = 'answer'"))
        assert (congruence(copy).agreements, congruence(copy).disagreements) == (7, 5)
    finally:
        copy.close()


def test_the_log_names_extraction_answers_and_settlements(tiny):
    from db.eventlog import read_log

    _hand_fixture(tiny)
    settle(tiny, 1, "cmo", "carol", "arbiter", take="alice")
    entries = read_log(tiny)
    assert entries[0].summary == "extraction settled: cmo = 2 item(s) (arbiter; carol)"
    assert [e.summary for e in entries[1:4]] == [
        "extraction: cmo = 0", "extraction: design = cohort", "extraction: rigour = 5"]
    blank = [e.summary for e in entries if e.kind == "answer" and e.value == "design"]
    assert "extraction: design = (blank)" in blank


@pytest.mark.parametrize("ftype, a, b, agreed", [
    ("text", "RCT, n = 40", "rct n 40", True),
    ("text", "RCT", "cohort", False),
    ("long_text", "Staff feel safe to show vulnerability", "staff feel safe to show it", True),
    ("long_text", "Staff feel safe", "Managers protect training time", False),
    ("number", 40, 40.0, True),
    ("number", 40, 41, False),
    ("multi_choice", ["a", "b"], ["b", "a"], True),
    ("multi_choice", ["a"], ["a", "b"], False),
    ("scale", 4, 4, True),
    ("scale", 4, 5, False),
    ("choice", "a", None, False),
    ("choice", None, None, True),
])
def test_each_field_type_is_compared_by_its_stated_rule(ftype, a, b, agreed):
    from screeners.extraction.congruence import same
    from screeners.extraction.form import Field

    assert same(Field("f", ftype, choices=("a", "b")), a, b) is agreed


@pytest.mark.parametrize("ftype, raw, stored", [
    ("number", "1,200", 1200), ("number", "2.5", 2.5), ("multi_choice", "b; A", ["a", "b"]),
    ("choice", "2", "b"), ("text", "  two   words ", "two words"), ("scale", "3", 3),
    ("long_text", "  kept\nas typed ", "kept\nas typed"), ("text", "   ", None),
])
def test_answers_are_stored_in_one_form(ftype, raw, stored):
    from screeners.extraction.form import Field, check_answer

    f = Field("f", ftype, choices=("a", "b"), min=1 if ftype == "scale" else None,
              max=5 if ftype == "scale" else None)
    assert check_answer(f, raw) == stored
