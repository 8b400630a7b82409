"""The screen's text handling: term highlighting, word wrapping, scrolling a long card
(in-process, through prompt_toolkit's pipe input and a VT100 output read back)."""

from __future__ import annotations

import io
import threading

from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output.vt100 import Vt100_Output
from screenkit import TA, make_review
from vt import Screen

from base.record import Record
from screeners.screen import ScreenApp, highlight, wrap
from screeners.session import ScreeningSession


def _plain(lines):
    return ["".join(t for _, t in line) for line in lines]


def test_highlight_marks_whole_words_phrases_and_wildcards():
    text = "Compassionate care: compassion training in mice and micelike rats, not mouse."
    frags = highlight(text, ["compassion", "compassion training"], ["mice*", "rats"])
    marked = [(s, t) for s, t in frags if s]
    assert marked == [("class:inc", "compassion training"), ("class:exc", "mice"),
                      ("class:exc", "micelike"), ("class:exc", "rats")]
    assert "".join(t for _, t in frags) == text


def test_wrap_keeps_styles_widths_and_indents():
    frags = [("class:label", "Keywords: "), ("", "alpha beta "), ("class:inc", "gamma"),
             ("", " " + "x" * 25)]
    lines = wrap(frags, 12, indent=2)
    assert _plain(lines) == ["Keywords:", "  alpha beta", "  gamma", "  xxxxxxxxxx",
                             "  xxxxxxxxxx", "  xxxxx"]
    assert all(len(t) <= 12 for t in _plain(lines))
    assert ("class:inc", "gamma") in lines[2]
    assert _plain(wrap([("", "one\n\ntwo")], 20)) == ["one", "", "two"]


def _run_app(store, keys: str, rows: int = 24, cols: int = 80):
    out = io.StringIO()
    output = Vt100_Output(out, lambda: Size(rows=rows, columns=cols), term="xterm")
    session = ScreeningSession(store, "alice", TA, background=False)
    with create_pipe_input() as pipe:
        app = ScreenApp(session, input=pipe, output=output)
        done = threading.Event()
        result = {}

        def run():
            result["summary"] = app.run()
            done.set()

        thread = threading.Thread(target=run)
        thread.start()
        for key in keys:
            pipe.send_text(key)
        thread.join(20)
    screen = Screen(rows, cols)
    screen.feed(out.getvalue())
    return screen, app, result.get("summary")


def test_a_long_card_scrolls_in_80x24(store):
    make_review(store, 1)
    long = " ".join(f"sentence{i} about compassion." for i in range(120))
    store.add_record(Record(title="A long one", abstract=long))
    from screeners.decisions import decide
    decide(store, 1, "alice", TA, "include")
    screen, app, summary = _run_app(store, "q")
    lines = screen.lines()
    assert lines[0] == " cluster screen · alice · title-abstract · record 2"
    assert lines[20] == "-- more: space or ↓ to scroll --"
    assert all(len(line) <= 80 for line in lines)
    assert summary == "alice made 0 decision(s) this sitting; 1 of 2 screened at title-abstract."
    first_shown = next(line for line in lines if line.startswith("sentence0 "))
    screen, app, _ = _run_app(store, " q")
    assert first_shown not in screen.lines()
    assert app.scroll == 18  # a page: the 20 rows of the card less two lines kept for context
