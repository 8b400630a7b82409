"""The interactive screen, driven for real: `python -m cli screen` in a
pseudo-terminal, keys pressed, the terminal's picture read back, the log checked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from screenkit import FT, TA, both_decide, make_review
from vt import Screen

from db.protocol import set_protocol
from db.store import open_store
from screeners.decisions import add_note, decide, mark_fulltext

ROOT = Path(__file__).resolve().parents[1]
DOWN = "\x1b[B"


class Term:
    """`cluster screen` running in a pseudo-terminal of `rows` x `cols`."""

    def __init__(self, db: Path, *args: str, rows: int = 24, cols: int = 80, ranked: bool = False):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"}
        for name in ("CLUSTER_DB", "NO_COLOR", "PROMPT_TOOLKIT_COLOR_DEPTH"):
            env.pop(name, None)
        # these tests follow records in the store's order; ranking has its own tests
        self.child = pexpect.spawn(sys.executable, ["-m", "cli", "screen", *args, "--db", str(db),
                                                    *(["--order", "id"] if ranked is False else [])],
                                   cwd=str(ROOT), env=env, dimensions=(rows, cols),
                                   encoding="utf-8", timeout=20)
        self.screen = Screen(rows, cols)
        self.raw = ""

    def _pump(self, wait: float) -> bool:
        try:
            data = self.child.read_nonblocking(65536, timeout=wait)
        except pexpect.TIMEOUT:
            return True
        except pexpect.EOF:
            return False
        self.raw += data
        self.screen.feed(data)
        return True

    def wait_for(self, *texts: str, timeout: float = 20) -> str:
        end = time.monotonic() + timeout
        while True:
            shown = self.screen.text()
            if all(t in shown for t in texts):
                return shown
            if time.monotonic() > end or not self._pump(0.1):
                shown = self.screen.text()
                if all(t in shown for t in texts):
                    return shown
                raise AssertionError(f"never saw {texts!r}; the screen shows:\n{shown}")

    def press(self, keys: str, *expect: str) -> str:
        self.child.send(keys)
        return self.wait_for(*expect) if expect else self.screen.text()

    def finish(self, status: int = 0) -> str:
        """Everything printed after the screen closed; the process must exit with `status`."""
        rest = ""
        while True:
            try:
                rest += self.child.read_nonblocking(65536, timeout=20)
            except pexpect.EOF:
                break
        self.child.close()
        assert self.child.exitstatus == status, (self.raw + rest)
        return rest


@pytest.fixture
def review(tmp_path):
    path = tmp_path / "review.db"
    store = open_store(path)
    make_review(store, 4)
    # record 1's title carries an include term and an exclude term
    set_protocol(store, include_terms=["compassion"], exclude_terms=["nurses", "rats"])
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    yield path, store
    store.close()


def _decisions(store, stage=TA):
    return [(e["reviewer"], e["record_id"], e["value"], e["reason"])
            for e in store.events("kind = 'decision' AND stage = ?", [stage])]


def test_include_exclude_undo_note_quit_and_resume(review):
    path, store = review
    t = Term(path, "--reviewer", "alice")
    shown = t.wait_for("cluster screen · alice · title-abstract · record 1",
                       "Study 1: compassion training for nurses", "screened 0/4 · includes 0")
    assert "Found: cites index article 1 (cited-by, rank 1, OpenAlex)" in shown
    assert "Authors: Author1, A, Second, B" in shown
    assert "Published: Journal of Care · 2000" in shown
    assert "Record marker R1." in shown
    assert max(len(line) for line in t.screen.lines()) <= 80
    # include and exclude terms in two different colours, both unlike plain text
    inc, exc, plain = (t.screen.style_of(w) for w in ("compassion", "nurses", "training"))
    assert inc and exc and inc != exc and plain != inc and plain != exc
    t.press("i", "Record 1: include, saved.", "record 2", "screened 1/4 · includes 1")
    assert _decisions(store) == [("alice", 1, "include", None)]
    t.press("e", "Record 2: exclude, saved.", "record 3", "screened 2/4 · includes 1")
    assert _decisions(store)[-1] == ("alice", 2, "exclude", None)
    t.press("u", "Undid exclude on record 2.", "record 2", "screened 1/4")
    assert [e["undoes"] for e in store.events("kind = 'undo'")] == [
        store.events("kind = 'decision'")[-1]["id"]]
    t.press("n", "Note (Enter saves, Esc cancels):")
    t.press("needs a second look\r", "Note saved on record 2.", "My note: needs a second look")
    assert [(e["reviewer"], e["record_id"], e["note"]) for e in store.events("kind = 'note'")] == [
        ("alice", 2, "needs a second look")]
    t.press("c", "Include terms: compassion", "Exclude terms: nurses, rats")
    t.press("c")
    t.press("q")
    assert "alice made 2 decision(s) this sitting; 1 of 4 screened at title-abstract." in t.finish()

    # a new sitting resumes exactly where the last one stopped
    t = Term(path, "--reviewer", "alice")
    t.wait_for("· record 2", "Study 2: empathy in medical students", "screened 1/4 · includes 1")
    t.press("s", "Skipped record 2; it comes back later.", "· record 3")
    t.press("m", "Record 3: maybe, saved.", "· record 4")
    t.child.kill(signal.SIGKILL)  # killed, not quit: the decision is already in the log
    t.child.close()
    assert _decisions(store)[-1] == ("alice", 3, "maybe", None)

    t = Term(path, "--reviewer", "alice")
    t.wait_for("· record 2", "screened 2/4 · includes 1")
    t.press("?", "undo your last decision at this stage", "? or Esc: back to the record")
    t.press("?", "Study 2: empathy in medical students")
    t.press("s", "· record 4")
    t.press("i", "Record 4: include, saved.", "· record 2")  # the skipped record comes back
    t.press("i", "Nothing left to screen at title-abstract for alice: 4 of 4 screened.")
    t.press("q")
    assert "alice made 2 decision(s) this sitting; 4 of 4 screened" in t.finish()
    assert [(r, v) for _, r, v, _ in _decisions(store)] == [
        (1, "include"), (2, "exclude"), (3, "maybe"), (4, "include"), (2, "include")]


def test_ctrl_c_prints_the_summary_and_exits_130(review):
    path, store = review
    t = Term(path, "--reviewer", "alice", "--stage", TA)
    t.wait_for("record 1")
    t.press("i", "Record 1: include, saved.", "record 2")
    t.press("\x03")
    assert "alice made 1 decision(s) this sitting; 1 of 4 screened at title-abstract." \
        in t.finish(130)
    assert _decisions(store) == [("alice", 1, "include", None)]


def test_full_text_exclusion_picks_a_reason_and_scores(review):
    path, store = review
    for rid in (1, 2, 3, 4):
        both_decide(store, rid, "include", "maybe")
    for rid in (1, 2, 3):
        mark_fulltext(store, rid, "retrieved")
    t = Term(path, "--reviewer", "alice", "--stage", "full-text")
    # record 4's report is not in hand: it waits, counted, and never comes up
    t.wait_for("alice · full-text · record 1", "Full text: retrieved", "screened 0/3",
               "· 1 wait for retrieval")
    t.press("r", "Score relevance from 1 to 5.")
    t.press("4", "Relevance 4 saved.", "My scores: relevance 4 · rigour -")
    t.press("g")
    t.press("2", "Rigour 2 saved.", "My scores: relevance 4 · rigour 2")
    assert store.events("kind = 'appraisal'")[-1]["data"] == {"relevance": 4, "rigour": 2}
    shown = t.press("e", "Why exclude record 1?", " 1  wrong population", " 9  full text not available")
    assert _decisions(store, FT) == []  # nothing is written before a reason is picked
    t.press("4", "Record 1: exclude (wrong outcome), saved.", "· record 2")
    t.press("e", "Why exclude record 2?")
    t.press("\x1b", "Cancelled.")
    assert len(_decisions(store, FT)) == 1
    t.press("e", "Why exclude record 2?")
    t.press(DOWN + DOWN + "\r", "Record 2: exclude (wrong comparator), saved.", "· record 3")
    t.press("i", "Record 3: include, saved.", "Nothing left to screen at full-text",
            "1 more wait for")
    t.press("q")
    t.finish()
    assert _decisions(store, FT) == [("alice", 1, "exclude", "wrong outcome"),
                                     ("alice", 2, "exclude", "wrong comparator"),
                                     ("alice", 3, "include", None)]
    assert "Why exclude" in shown


def test_blindness_bob_never_sees_alices_decisions(review):
    path, store = review
    for rid, value in ((1, "include"), (2, "exclude"), (3, "maybe")):
        decide(store, rid, "alice", TA, value, note=f"ALICE-SECRET-{rid}")
    add_note(store, 1, "alice", "ALICE-NOTE")
    t = Term(path, "--reviewer", "bob")
    seen = []
    seen.append(t.wait_for("bob · title-abstract · record 1", "screened 0/4 · includes 0"))
    for rid in (2, 3, 4):
        seen.append(t.press("s", f"· record {rid}"))
    seen.append(t.press("c", "Protocol criteria"))
    t.press("q")
    t.finish()
    for shown in seen:
        lines = shown.splitlines()
        assert "alice" not in shown.lower() and "SECRET" not in shown and "NOTE" not in shown
        card = "\n".join(lines[1:21])  # between the header and the message line
        assert not any(w in card for w in ("include", "exclude", "maybe", "conflict"))
        assert lines[22].startswith(" screened 0/4 · includes 0")
    # bob saw every record, including those alice already decided
    assert [s.splitlines()[0] for s in seen[:4]] == [
        f" cluster screen · bob · title-abstract · record {i}" for i in (1, 2, 3, 4)]


def test_a_large_terminal_gets_wider_lines(review):
    path, _ = review
    t = Term(path, "--reviewer", "carol", rows=40, cols=160)
    t.wait_for("carol · title-abstract · record 1", "We studied")  # the card is drawn in parts
    abstract = next(line for line in t.screen.lines() if line.startswith("We studied"))
    assert 80 < len(abstract) <= 160
    t.press("q")
    t.finish()


def test_unknown_reviewer_in_a_terminal(review):
    path, store = review
    t = Term(path, "--reviewer", "zed")
    t.child.expect(pexpect.EOF)
    t.child.close()
    assert t.child.exitstatus == 1
    assert t.child.before.strip() == (
        "Error: Unknown reviewer 'zed': add them with `cluster reviewers add zed`.")


def test_piped_stdin_is_refused_with_one_sentence(review):
    path, store = review
    before = len(store.events())
    proc = subprocess.run([sys.executable, "-m", "cli", "screen", "--reviewer", "alice",
                           "--db", str(path)], input="i\n", capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.strip() == (
        "Error: cluster screen needs an interactive terminal; in scripts use "
        "`cluster decide RECORD --reviewer NAME --include|--exclude|--maybe`.")
    assert len(store.events()) == before
