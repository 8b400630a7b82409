"""The `cluster import` and `cluster export` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, shared_path

RIS = "TY  - JOUR\nID  - x1\nTI  - =cmd() a trial\nAU  - Doe, Jane\nPY  - 2021\nDO  - 10.1000/X1\nER  - \n"


@pytest.mark.parametrize("command", ["import", "export"])
def test_help_text_has_an_example(run, command) -> None:
    out = run(command, "--help").output
    assert "Example: cluster " + command in out


def test_import_export_commands(run, tmp_path: Path) -> None:
    f = tmp_path / "embase.ris"
    f.write_text(RIS)
    r = run("import", str(f), "--as", "database", "--source", "Embase", "-q")
    assert r.stdout == "embase.ris: 1 records read (ris), 1 added (search 1).\n"
    r = run("import", str(f), "-q")
    assert r.stdout == "embase.ris: already imported into this store; nothing added.\n"
    r = run("export", "--format", "csv")
    assert r.stdout.splitlines()[1].startswith("1,'=cmd() a trial,,\"Doe, Jane\",2021,")
    out = tmp_path / "out.ris"
    r = run("export", "--format", "ris", "--decision", "undecided", "-o", str(out))
    assert r.stderr == f"Exported 1 records to {out} (ris).\n"
    assert "TI  - =cmd() a trial\n" in out.read_text()
    assert run("export", "--format", "bibtex", "--decision", "include").stdout == ""


def test_import_json_and_warnings(run, tmp_path: Path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("title,label_included\nA,1\nB,0\n")
    r = run("import", str(f), "--json")
    assert '"n_read": 4' not in r.stdout and '"n_read": 2' in r.stdout
    assert '"warnings": [\n      "labels.csv: 2 screening labels were not kept' in r.stdout


def test_warnings_go_to_stderr(run, tmp_path: Path) -> None:
    f = tmp_path / "cut.ris"
    f.write_text("TY  - JOUR\nTI  - No end\n")
    r = run("import", str(f), "-q")
    assert r.stderr == ("Warning: cut.ris: the record starting at line 1 has no ER end tag; "
                        "it was read up to the end of the file.\n")
    assert r.stdout == "cut.ris: 1 records read (ris), 1 added (search 1).\n"


def test_errors_are_one_line(run, tmp_path: Path) -> None:
    r = run("import", str(tmp_path / "missing.ris"), expect=1)
    assert r.stderr == f"Error: {tmp_path / 'missing.ris'} does not exist: check the path and try again.\n"
    empty = tmp_path / "empty.nbib"
    empty.write_text("")
    r = run("import", str(empty), expect=1)
    assert r.stderr == "Error: empty.nbib is empty: there is nothing to import.\n"
    r = run("export", "--format", "ris", "--db", str(tmp_path / "none.db"), expect=1)
    assert r.stderr == f"Error: No review store at {tmp_path / 'none.db'}: run `cluster init` first.\n"


def test_labels_reviewer_option(run, tmp_path: Path) -> None:
    f = tmp_path / "labels.csv"
    f.write_text("title,included\nA,1\nB,0\nC,\n")
    run("reviewers", "add", "lab")
    run("protocol", "set", "--reviewers-per-record", "1")  # the labels are final decisions
    r = run("import", str(f), "--labels-reviewer", "lab", "-q")
    assert r.stdout == "labels.csv: 3 records read (csv), 3 added, 2 labels kept as decisions (search 1).\n"
    r = run("export", "--format", "asreview", "--decision", "include")
    assert r.stdout.splitlines() == ["record_id,title,abstract,authors,year,doi,pmid,journal,keywords,included",
                                     "1,A,,,,,,,,1"]


def test_cli_in_a_subprocess_has_no_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)
    binary = tmp_path / "x.ris"
    binary.write_bytes(b"\x00\x01\x02" * 50)
    p = subprocess.run([sys.executable, "-m", "cli", "import", str(binary), "--db",
                        str(tmp_path / "r.db")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert p.returncode == 1
    assert p.stderr == ("Error: x.ris is a binary file, not a reference export: export RIS, BibTeX, "
                        "MEDLINE, EndNote XML or CSV and import that.\n")


@pytest.mark.shared
def test_whole_corpus_through_the_cli(run) -> None:
    base = shared_path("fixtures", "files")
    files = sorted(str(p) for p in base.glob("*/*") if p.is_file())
    r = run("import", *files, "--as", "database", "-q")
    assert len(r.stdout.splitlines()) == 59
    assert sum(int(line.split(": ")[1].split()[0]) for line in r.stdout.splitlines()) == 1695
    assert r.stderr.count("Warning: ") == 8
