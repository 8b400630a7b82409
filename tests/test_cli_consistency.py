"""The command line reads the same everywhere: every option explained, records named
the same way, `--json` where a script would want it, Ctrl-C always 130."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from cli import cli
from clikit import invoke, one_sentence

# commands whose output is a document or a terminal session, not a report
NO_JSON = {"export", "report", "screen", "demo", "protocol set", "protocol show",
           "extraction export"}


def _commands() -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []

    def walk(cmd: click.Command, path: list[str]) -> None:
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, path + [name])
        else:
            found.append((" ".join(path), cmd))

    walk(cli, [])
    return found


def test_every_option_of_every_command_says_what_it_does() -> None:
    silent = [(name, p.opts[0]) for name, cmd in _commands() for p in cmd.params
              if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert silent == []


def test_every_command_has_an_example() -> None:
    assert [name for name, cmd in _commands() if "Example: cluster " not in (cmd.help or "")] == []


def test_every_command_turns_ctrl_c_into_exit_130() -> None:
    # handle_errors is what maps KeyboardInterrupt to exit 130; every command must pass through it
    unguarded = [name for name, cmd in _commands()
                 if not getattr(cmd.callback, "handles_errors", False)]
    assert unguarded == []


def test_ctrl_c_in_a_reporting_command_exits_130(tmp_path: Path, monkeypatch) -> None:
    db = str(tmp_path / "r.db")
    invoke("init", "--db", db)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("screeners.stopping.status", interrupted)
    result = invoke("status", "--db", db)
    assert result.exit_code == 130
    assert one_sentence(result) == ("Error: Interrupted: the steps already finished are saved "
                                    "and nothing half-done was kept; run the command again to go on.")


def test_reporting_commands_offer_json() -> None:
    missing = [name for name, cmd in _commands()
               if name not in NO_JSON and "as_json" not in {p.name for p in cmd.params}]
    # undo and fulltext are reworked with their own features; every other report has --json
    assert [m for m in missing if m not in {"undo", "fulltext", "study link"}] == []


def test_init_reports_as_json(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    js = json.loads(invoke("init", "--db", db, "--json").output)
    assert set(js) == {"db", "review_id"} and js["db"] == db
    assert json.loads(invoke("init", "--db", db, "--json").output) == js


def test_reviewer_roles_are_listed(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    invoke("reviewers", "add", "alice", "bob", "--db", db)
    js = json.loads(invoke("reviewers", "add", "carol", "--role", "arbiter", "--db", db,
                           "--json").output)
    assert js == [{"name": "alice", "role": "reviewer"}, {"name": "bob", "role": "reviewer"},
                  {"name": "carol", "role": "arbiter"}]
    assert invoke("reviewers", "list", "--db", db).output == "alice\nbob\ncarol (arbiter)\n"
    assert json.loads(invoke("reviewers", "list", "--db", db, "--json").output) == js


@pytest.fixture
def conflict(tmp_path: Path) -> tuple[str, int]:
    """A store where alice includes and bob excludes record 1."""
    db = str(tmp_path / "r.db")
    ris = tmp_path / "one.ris"
    ris.write_text("TY  - JOUR\nTI  - Compassion training for nurses\nPY  - 2020\nER  - \n",
                   encoding="utf-8")
    invoke("import", str(ris), "--db", db)
    invoke("reviewers", "add", "alice", "bob", "carol", "--db", db)
    invoke("decide", "1", "--reviewer", "alice", "--include", "--db", db)
    invoke("decide", "1", "--reviewer", "bob", "--exclude", "--db", db)
    return db, 1


def test_conflicts_names_the_record_as_decide_does(conflict: tuple[str, int]) -> None:
    db, rid = conflict
    out = invoke("conflicts", str(rid), "--resolver", "carol", "--include", "--db", db).output
    assert out == f"Record {rid} resolved at title-abstract: include by carol (arbiter).\n"


def test_conflicts_still_takes_the_record_as_an_option(conflict: tuple[str, int]) -> None:
    db, rid = conflict
    out = invoke("conflicts", "--record", str(rid), "--resolver", "carol", "--exclude",
                 "--db", db).output
    assert out == f"Record {rid} resolved at title-abstract: exclude by carol (arbiter).\n"


def test_conflicts_refuses_two_different_records(conflict: tuple[str, int]) -> None:
    db, rid = conflict
    result = invoke("conflicts", str(rid), "--record", "2", "--resolver", "carol", "--include",
                    "--db", db)
    assert result.exit_code == 1
    assert one_sentence(result) == f"Error: Two records given ({rid} and --record 2): give one."
    result = invoke("conflicts", str(rid), "--include", "--db", db)
    assert one_sentence(result) == ("Error: To resolve a conflict give the record and --resolver "
                                    "NAME, e.g. cluster conflicts 12 --resolver carol --include.")


def test_sample_draws_and_reports_a_seed_when_none_is_given(conflict: tuple[str, int],
                                                            monkeypatch) -> None:
    db, _rid = conflict
    invoke("reviewers", "add", "dan", "--db", db)
    monkeypatch.setattr("secrets.randbelow", lambda _n: 4242)
    js = json.loads(invoke("sample", "--fraction", "1", "--reviewer", "dan", "--db", db,
                           "--json").output)
    assert (js["seed"], js["records"], js["newly_assigned"]) == (4242, [1], [1])
    out = invoke("sample", "--fraction", "1", "--reviewer", "dan", "--seed", "9",
                 "--db", db).output
    assert out == "dan checks 1 of 1 records at title-abstract (seed 9; 0 newly assigned): 1\n"


def test_decisions_files_report_as_json(conflict: tuple[str, int], tmp_path: Path) -> None:
    db, _rid = conflict
    out = tmp_path / "log.jsonl"
    js = json.loads(invoke("decisions", "export", str(out), "--db", db, "--json").output)
    assert js == {"file": str(out), "events": 2}
    js = json.loads(invoke("decisions", "import", str(out), "--db", db, "--json").output)
    assert js == {"file": str(out), "added": 0, "already_present": 2, "reviewers_added": []}
