"""The full-text screening card: `o` opens the file (or the link) in the system viewer
without blocking the screen, `x` marks the report not retrieved with a reason from a list."""

from __future__ import annotations

import os
import time

import pytest
from screenkit import FT, TA, both_decide, make_review
from test_screen_tui import Term

from cluster.demo.pdf import make_pdf
from cluster.fulltext import attach_file
from db.events import NOT_RETRIEVED_REASONS
from db.files import fulltext_dir
from db.state import retrievals
from db.store import open_store
from screeners.decisions import mark_fulltext
from screeners.viewer import ViewerError, viewer_command


def test_the_viewer_is_open_on_macos_then_xdg_open_then_browser():
    none = lambda _: None  # noqa: E731
    assert viewer_command("a.pdf", platform="darwin") == ["open", "a.pdf"]
    assert viewer_command("a.pdf", platform="linux", which=lambda n: "/usr/bin/" + n) == [
        "xdg-open", "a.pdf"]
    assert viewer_command("https://x.org/a", platform="linux", which=none,
                          environ={"BROWSER": "firefox --new-tab:lynx"}) == [
        "firefox", "--new-tab", "https://x.org/a"]
    assert viewer_command("a.pdf", platform="linux", which=none,
                          environ={"BROWSER": "zathura %s --fork"}) == ["zathura", "a.pdf",
                                                                       "--fork"]
    with pytest.raises(ViewerError) as exc:
        viewer_command("a.pdf", platform="linux", which=none, environ={})
    assert str(exc.value) == ("No viewer to open the full text with: install xdg-utils "
                              "(xdg-open) or set BROWSER to a program that opens files and links.")


@pytest.fixture
def at_full_text(tmp_path, monkeypatch):
    path = tmp_path / "review.db"
    store = open_store(path)
    make_review(store, 3)
    for rid in (1, 2, 3):
        both_decide(store, rid, "include", "include", TA)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(make_pdf(["Study 1"]))
    kept = attach_file(store, fulltext_dir(path), 1, pdf)
    other = tmp_path / "other.pdf"
    other.write_bytes(make_pdf(["Study 2"]))
    attach_file(store, fulltext_dir(path), 2, other)
    # record 3: marked retrieved by hand, with no file kept and no link known
    mark_fulltext(store, 3, "retrieved")
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # a viewer that takes its time: the screen must not wait for it
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    opened = tmp_path / "opened.txt"
    viewer = bin_dir / "xdg-open"
    viewer.write_text(f'#!/bin/sh\necho "$1" >> {opened}\nsleep 30\n')
    viewer.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    yield path, store, fulltext_dir(path) / kept.file, opened
    store.close()


def test_open_the_file_without_waiting_and_mark_a_report_not_retrieved(at_full_text):
    path, store, kept, opened = at_full_text
    t = Term(path, "--reviewer", "alice", "--stage", "full-text")
    t.wait_for("· full-text · record 1")
    t.press("o", "Opening")
    started = time.monotonic()
    t.press("x", "Why could the report of record 1 not be retrieved?",
            f"1  {NOT_RETRIEVED_REASONS[0]}")
    assert time.monotonic() - started < 10  # the viewer still sleeps; the screen answered
    deadline = time.monotonic() + 10
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert opened.read_text() == f"{kept}\n"
    t.press("\x1b", "Cancelled.")
    t.press("s", "· record 2")
    t.press("x", "Why could the report of record 2 not be retrieved?")
    t.press("2", f"Record 2: full text not retrieved ({NOT_RETRIEVED_REASONS[1]}), saved.",
            "· record 3")
    r = retrievals(store)[2]
    assert (r.state, r.reason) == ("not-retrieved", NOT_RETRIEVED_REASONS[1])
    assert store.events("kind = 'fulltext' AND record_id = 2")[-1]["reviewer"] == "alice"
    t.press("o", "Record 3 has no full text in hand and no link: attach one")
    t.press("q")
    t.finish()
