"""Text from outside never drives the terminal: escape sequences in imported
records, file names, reviewer names and notes are shown, not obeyed."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from base.terminal import visible, visible_json
from clikit import invoke

ROOT = Path(__file__).resolve().parents[1]
OSC52 = "\x1b]52;c;ZWNobyBvd25lZA==\x07"  # writes the clipboard
CLEAR = "\x1b[2J"  # clears the screen
RETITLE = "\x1b]0;title\x07"  # sets the window title
C1_CSI = "\x9b31m"  # CSI as one C1 character
RLO = "\u202e"  # right-to-left override

RIS = f"""TY  - JOUR
TI  - Compassion training {OSC52}for nurses{CLEAR}
AU  - Smith{CLEAR}, Anna
AU  - Jones{RLO}, Kim
JO  - Journal of {CLEAR}Care {C1_CSI}
PY  - 2019
AB  - A realist review of compassion training{OSC52} in wards.
DO  - 10.1000/comp.1
ER  - 
"""
ALICE = f"alice{CLEAR}"
BOB = f"bob{RETITLE}"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    db = folder / "review.db"
    ris = folder / f"embase{CLEAR}.ris"
    ris.write_text(RIS, encoding="utf-8")
    for args in (("reviewers", "add", ALICE, BOB),
                 ("import", str(ris), "--as", "index", "--source", f"Embase{RETITLE}"),
                 ("protocol", "set", "--question", f"compassion{OSC52}?", "--include-terms",
                  f"compassion,{CLEAR}"),
                 ("decide", "1", "--reviewer", ALICE, "--include", "--note", f"fine{OSC52}"),
                 ("decide", "1", "--reviewer", BOB, "--exclude", "--note", f"no{CLEAR}")):
        result = invoke(*args, "--db", str(db))
        assert result.exit_code == 0, result.output
    return db


#: every command that shows stored text, as a person reads it
SHOWN = [
    ("conflicts",), ("conflicts", "--json"), ("find", "compassion"), ("find", "compassion", "--json"),
    ("agreement",), ("agreement", "--json"), ("reviewers", "list"), ("reviewers", "list", "--json"),
    ("contacts",), ("contacts", "--json"), ("searches",), ("searches", "--json"), ("status",),
    ("protocol", "show"), ("flow",), ("flow", "--json"),
]


@pytest.mark.parametrize("cmd", SHOWN, ids=" ".join)
def test_no_escape_reaches_the_output(hostile: Path, cmd) -> None:
    result = invoke(*cmd, "--db", str(hostile))
    assert result.exit_code == 0, result.output
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x9b" not in stream and RLO not in stream
        assert "\x07" not in stream


def test_the_text_is_shown_not_dropped(hostile: Path) -> None:
    out = invoke("conflicts", "--db", str(hostile)).stdout
    assert "Record 1: Compassion training ^[]52;c;ZWNobyBvd25lZA==^Gfor nurses^[[2J" in out
    assert "  alice^[[2J: include — note: fine^[]52;c;ZWNobyBvd25lZA==^G" in out
    listed = invoke("reviewers", "list", "--db", str(hostile)).stdout
    assert listed == "alice^[[2J\nbob^[]0;title^G\n"


def test_json_keeps_the_values_and_escapes_the_characters(hostile: Path) -> None:
    out = invoke("contacts", "--json", "--db", str(hostile)).stdout
    names = [c["name"] for c in json.loads(out)]
    assert names == [f"Smith{CLEAR}, Anna", f"Jones{RLO}, Kim"]
    assert "\\u202e" in out and "\\u001b" in out


def test_a_failing_command_names_the_reviewer_visibly(hostile: Path) -> None:
    result = invoke("undo", "--reviewer", f"eve{CLEAR}", "--db", str(hostile))
    assert result.exit_code == 1 and "\x1b" not in result.stderr
    assert "eve^[[2J" in result.stderr


def _through_a_terminal(*args: str) -> bytes:
    """stdout of `cluster ARGS` when it is a terminal (a pseudo-terminal here)."""
    master, slave = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)
    proc = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env,
                            stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    out = b""
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                break
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the other end is closed: the command has finished
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
        proc.wait(timeout=60)
    assert proc.returncode == 0, proc.stderr.read()
    return out


@pytest.mark.parametrize("cmd", [("export", "--format", "ris"), ("export", "--format", "bibtex"),
                                 ("export", "--format", "jsonl"), ("report",), ("searches", "--markdown"), ("flow", "--csv")],
                         ids=" ".join)
def test_documents_on_a_terminal_are_made_visible(hostile: Path, cmd) -> None:
    out = _through_a_terminal(*cmd, "--db", str(hostile))
    assert out, "nothing was printed"
    assert b"\x1b" not in out and b"\x07" not in out and b"\xc2\x9b" not in out
    assert b"^M" not in out  # CSV line ends are not shown as carriage returns


def test_documents_to_a_file_or_pipe_keep_the_data(hostile: Path) -> None:
    out = invoke("export", "--format", "ris", "--db", str(hostile)).stdout
    assert f"TI  - Compassion training {OSC52}for nurses{CLEAR}" in out


def test_the_screen_and_the_dedup_review_show_the_same_notation() -> None:
    from cluster.dedup.review import side_by_side
    from screeners.screen import wrap

    shown = "".join(ch for line in wrap([("", f"a{CLEAR}b{RLO}c")], 80) for _, ch in line)
    assert shown == "a^[[2Jb<U+202E>c"
    table = side_by_side({"title": f"x{OSC52}"}, {"title": "x"}, width=100)
    assert "x^[]52;c;ZWNobyBvd25lZA==^G" in table and "\x1b" not in table


def test_visible_notation() -> None:
    assert visible("a\x1b[2Jb") == "a^[[2Jb"
    assert visible("\x00\x07\x7f\x9b\u202e\u2066\ud800") == "^@^G^?<9b><U+202E><U+2066><U+D800>"
    assert visible("line\n\tnext\r") == "line\n\tnext^M"
    assert visible("a\nb", keep="") == "a^Jb"
    assert visible("Ærø café — ok “quotes” 東京") == "Ærø café — ok “quotes” 東京"


@given(st.text())
def test_nothing_a_terminal_obeys_is_left(text: str) -> None:
    shown = visible(text)
    assert not any(ord(c) < 0x20 and c not in "\n\t" for c in shown)
    assert not any(0x7F <= ord(c) < 0xA0 or 0xD800 <= ord(c) < 0xE000 for c in shown)
    assert not any(c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069" for c in shown)


@given(st.recursive(st.none() | st.text() | st.integers(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner,
                                                                                  max_size=3)))
def test_visible_json_is_the_same_value(value) -> None:
    text = visible_json(json.dumps(value, ensure_ascii=False))
    assert json.loads(text) == value
    assert visible(text) == text
