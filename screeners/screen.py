"""The interactive screening screen behind `cluster screen`.

Built on prompt_toolkit rather than raw escape codes or Textual: it is a light,
pure-Python library already in the stack (it needs only wcwidth), it draws
with plain VT100 sequences and redraws on resize, so it works over SSH in an
80x24 terminal as well as in a large one, and it can be driven in tests by
writing keys into a pseudo-terminal (or a pipe input) and reading back what
is drawn. Textual would do too, but brings a much larger dependency tree and
an async framework this one screen does not need.

The screen only draws and maps keys to `ScreeningSession` actions; every
action is committed to the log before the next record is drawn.
"""

from __future__ import annotations

import re
from typing import Callable, Sequence

from prompt_toolkit.application import Application
from prompt_toolkit.application.current import get_app
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.layout import ConditionalContainer, HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.styles import Style
from prompt_toolkit.widgets import TextArea

from base.errors import ClusterError
from base.terminal import visible
from db.events import NOT_RETRIEVED_REASONS
from screeners.decisions import FULL_TEXT
from screeners.session import Card, ScreeningSession
from screeners.viewer import open_in_viewer

STYLE = Style.from_dict({
    "header": "reverse bold",
    "title": "bold",
    "label": "bold",
    "inc": "bold fg:ansigreen underline",
    "exc": "bold fg:ansired underline",
    "dim": "fg:ansibrightblack",
    "message": "fg:ansicyan",
    "error": "fg:ansired bold",
    "selected": "reverse",
    "progress": "bold",
    "hints": "reverse",
})

HELP = (
    ("i", "include the record"),
    ("e", "exclude it (at full text: pick a reason from the protocol's list)"),
    ("m", "maybe: advance it, flagged as uncertain"),
    ("s", "skip it for now (it comes back later)"),
    ("u", "undo your last decision at this stage"),
    ("n", "add a note to the record (Enter saves, Esc cancels)"),
    ("r / g", "full text: score relevance / rigour 1-5"),
    ("o", "full text: open the file (or its link) in the system viewer"),
    ("x", "full text: the report could not be retrieved (pick why from a list)"),
    ("c", "show or hide the protocol's criteria"),
    ("space, arrows", "scroll a long record"),
    ("?", "show or hide this help"),
    ("q", "quit (every decision is already saved)"),
)


# --- text: term highlighting and word wrapping ------------------------------------------


def _term_pattern(term: str) -> str:
    # a trailing * matches any word ending, as in database search syntax
    body = re.escape(term.strip().rstrip("*")).replace(r"\ ", r"\s+")
    tail = r"\w*" if term.strip().endswith("*") else ""
    return rf"(?<!\w){body}{tail}(?!\w)"


def highlight(text: str, include_terms: Sequence[str], exclude_terms: Sequence[str],
              base: str = "") -> StyleAndTextTuples:
    """`text` as fragments, the include terms styled `class:inc`, exclude terms `class:exc`."""
    terms = [(t, "class:inc") for t in include_terms if t.strip()]
    terms += [(t, "class:exc") for t in exclude_terms if t.strip()]
    if not terms or not text:
        return [(base, text)]
    terms.sort(key=lambda t: -len(t[0]))
    singles = [(re.compile(_term_pattern(t), re.IGNORECASE), style) for t, style in terms]
    combined = re.compile("|".join(f"(?:{p.pattern})" for p, _ in singles), re.IGNORECASE)
    out: StyleAndTextTuples = []
    pos = 0
    for m in combined.finditer(text):
        if m.start() > pos:
            out.append((base, text[pos:m.start()]))
        style = next(s for p, s in singles if p.fullmatch(m.group()))
        out.append((f"{base} {style}".strip(), m.group()))
        pos = m.end()
    if pos < len(text):
        out.append((base, text[pos:]))
    return out


def wrap(fragments: StyleAndTextTuples, width: int, indent: int = 0) -> list[StyleAndTextTuples]:
    """Word-wrap styled text to `width` columns, keeping each character's style; control
    characters and bidirectional overrides are shown, and counted, as printable ones."""
    width = max(width, 10)
    chars = [(f[0], ch) for f in fragments for ch in visible(f[1], keep="\n")]
    lines: list[StyleAndTextTuples] = []
    start = 0
    for i in range(len(chars) + 1):
        if i == len(chars) or chars[i][1] == "\n":
            lines.extend(_wrap_paragraph(chars[start:i], width, indent))
            start = i + 1
    return lines


def _wrap_paragraph(chars: list[tuple[str, str]], width: int, indent: int
                    ) -> list[StyleAndTextTuples]:
    text = "".join(c for _, c in chars)
    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    if not spans:
        return [[]]
    lines: list[tuple[int, int]] = []
    line_start: int | None = None
    line_end = 0  # meaningful only while line_start is set
    avail = width
    for s, e in spans:
        while e - s > avail and line_start is None:  # a word longer than the line
            lines.append((s, s + avail))
            s += avail
            avail = width - indent
        if line_start is None:
            line_start, line_end = s, e
        elif e - line_start <= avail:
            line_end = e
        else:
            lines.append((line_start, line_end))
            avail = width - indent
            line_start = None
            while e - s > avail:
                lines.append((s, s + avail))
                s += avail
            line_start, line_end = s, e
    if line_start is not None:
        lines.append((line_start, line_end))
    out = []
    for n, (s, e) in enumerate(lines):
        frags: StyleAndTextTuples = [("", " " * indent)] if n and indent else []
        for style, ch in chars[s:e]:
            if frags and frags[-1][0] == style:
                frags[-1] = (style, frags[-1][1] + ch)
            else:
                frags.append((style, ch))
        out.append(frags)
    return out


#: a card field: its label, its text, and whether the protocol's terms are highlighted in it
CardField = tuple[str, str, bool]


def card_fields(card: Card, stage: str) -> list[CardField]:
    """The labelled lines of a card between its title and its abstract, in order.

    A new field is one more entry here; `card_lines` lays every field out the
    same way (label in bold, text wrapped under it).
    """
    out: list[CardField] = []
    if card.authors:
        shown = ", ".join(card.authors[:6]) + (" et al." if len(card.authors) > 6 else "")
        out.append(("Authors", shown, False))
    where = " · ".join(str(x) for x in (card.journal, card.year) if x)
    if where:
        out.append(("Published", where, False))
    if card.identifiers:
        out.append(("Ids", " · ".join(f"{k} {v}" for k, v in card.identifiers.items()), False))
    if card.links:
        # the first address is where the record opens best: PubMed, else doi.org
        out.append(("Link", next(iter(card.links.values())), False))
    if card.keywords:
        out.append(("Keywords", "; ".join(card.keywords), True))
    if card.tags:
        out.append(("Tags", ", ".join(card.tags), False))
    if card.sources:
        out.append(("Sources", ", ".join(card.sources), False))
    for line in card.provenance or ("no provenance recorded",):
        out.append(("Found", line, False))
    if stage == FULL_TEXT:
        out.append(("Full text", card.fulltext or "not marked (cluster fulltext)", False))
        scores = " · ".join(f"{k} {card.my_scores.get(k, '-')}" for k in ("relevance", "rigour"))
        out.append(("My scores", scores, False))
    for note in card.my_notes:
        out.append(("My note", note, False))
    return out


def card_lines(card: Card, width: int, include_terms: Sequence[str],
               exclude_terms: Sequence[str], stage: str) -> list[StyleAndTextTuples]:
    """The record card as wrapped, highlighted lines."""
    lines: list[StyleAndTextTuples] = []
    lines.extend(wrap(highlight(card.title, include_terms, exclude_terms, "class:title"), width))
    for label, value, highlight_terms in card_fields(card, stage):
        body = (highlight(value, include_terms, exclude_terms) if highlight_terms
                else [("", value)])
        lines.extend(wrap([("class:label", f"{label}: "), *body], width, indent=2))
    lines.append([])
    lines.extend(wrap(highlight(card.abstract, include_terms, exclude_terms), width))
    return lines


# --- the application ---------------------------------------------------------------------


class ScreenApp:
    """The full-screen application for one `ScreeningSession`."""

    def __init__(self, session: ScreeningSession, *, input=None, output=None):
        self.session = session
        #: starts the system viewer without waiting for it (a test puts a recorder here)
        self.open_viewer: Callable[[str], object] = open_in_viewer
        self.mode = "card"  # card | reasons | unretrieved | score | note | help
        self.show_criteria = False
        self.message: tuple[str, str] = ("", "")
        self.scroll = 0
        self.reason_index = 0
        self.score_kind = "relevance"
        self.decided = 0
        self.interrupted = False
        self._shown: int | None = session.current
        if session.ranking_problem:
            self._say(session.ranking_problem, "class:error")
        self.note_area = TextArea(height=1, multiline=False,
                                  prompt="Note (Enter saves, Esc cancels): ",
                                  accept_handler=self._save_note)

        def in_mode(mode: str) -> Condition:
            return Condition(lambda: self.mode == mode)

        self.body = Window(FormattedTextControl(self._body, focusable=True), wrap_lines=False)
        layout = HSplit([
            Window(FormattedTextControl(self._header), height=1, style="class:header"),
            self.body,
            ConditionalContainer(self.note_area, filter=in_mode("note")),
            ConditionalContainer(Window(FormattedTextControl(lambda: [self.message]), height=1),
                                 filter=~in_mode("note")),
            Window(FormattedTextControl(self._progress), height=1),
            Window(FormattedTextControl(self._hints), height=1, style="class:hints"),
        ])
        self.app: Application = Application(
            layout=Layout(layout), key_bindings=self._bindings(in_mode), style=STYLE,
            full_screen=True, input=input, output=output, mouse_support=False)
        self.app.layout.focus(self.body)
        self.app.ttimeoutlen = 0.05  # a lone Esc should not wait half a second

    # -- drawing
    def _size(self) -> tuple[int, int]:
        size = get_app().output.get_size()
        return size.columns, size.rows

    def _header(self) -> StyleAndTextTuples:
        s = self.session
        rec = f" · record {s.current}" if s.current is not None else ""
        return [("", f" cluster screen · {s.reviewer} · {s.stage}{rec}")]

    def _progress(self) -> StyleAndTextTuples:
        return [("class:progress", " " + self.session.progress().text)]

    def _hints(self) -> StyleAndTextTuples:
        if self.mode in ("reasons", "unretrieved"):
            text = " 1-9 or ↑↓ Enter: pick the reason · Esc: cancel"
        elif self.mode == "score":
            text = f" 1-5: {self.score_kind} score · Esc: cancel"
        elif self.mode == "help":
            text = " ? or Esc: back to the record"
        elif self.mode == "note":
            text = " Enter: save the note · Esc: cancel"
        else:
            text = " i incl e excl m maybe s skip u undo n note c criteria ? help q quit"
            if self.session.stage == FULL_TEXT:
                text = " i incl e excl m maybe s skip u undo n note r/g score o open x unretr ? q"
        return [("", text)]

    def _body(self) -> StyleAndTextTuples:
        width, rows = self._size()
        height = max(rows - 4, 1)
        lines = self._body_lines(width - 1)
        if self.session.current != self._shown:
            self._shown, self.scroll = self.session.current, 0
        self.scroll = max(0, min(self.scroll, max(len(lines) - height, 0)))
        visible = lines[self.scroll:self.scroll + height]
        if self.scroll + height < len(lines):
            visible = visible[:-1] + [[("class:dim", "-- more: space or ↓ to scroll --")]]
        out: StyleAndTextTuples = []
        for n, line in enumerate(visible):
            if n:
                out.append(("", "\n"))
            out.extend(line)
        return out

    def _body_lines(self, width: int) -> list[StyleAndTextTuples]:
        s = self.session
        inc, exc = s.protocol.include_terms, s.protocol.exclude_terms
        lines: list[StyleAndTextTuples] = []
        if self.mode == "help":
            lines.append([("class:label", "Keys")])
            for key, what in HELP:
                lines.extend(wrap([("class:label", f"{key:>14}  "), ("", what)], width, indent=16))
            return lines
        if self.show_criteria and self.mode not in ("reasons", "unretrieved"):
            p = s.protocol
            lines.append([("class:label", "Protocol criteria")])
            if p.question:
                lines.extend(wrap([("class:label", "Question: "), ("", p.question)], width, 2))
            lines.extend(wrap([("class:label", "Include terms: "),
                               ("class:inc", ", ".join(inc) or "(none)")], width, 2))
            lines.extend(wrap([("class:label", "Exclude terms: "),
                               ("class:exc", ", ".join(exc) or "(none)")], width, 2))
            lines.extend(wrap([("class:label", "Exclusion reasons: "),
                               ("", "; ".join(p.exclusion_reasons))], width, 2))
            lines.append([("class:dim", "─" * min(width, 80))])
        if self.mode in ("reasons", "unretrieved"):
            question = (f"Why exclude record {s.current}?" if self.mode == "reasons" else
                        f"Why could the report of record {s.current} not be retrieved?")
            lines.append([("class:label", question)])
            for n, reason in enumerate(self._reasons()):
                key = str(n + 1) if n < 9 else " "
                style = "class:selected" if n == self.reason_index else ""
                lines.append([(style, f" {key}  {reason}")])
            return lines
        c = s.card()
        if c is None:
            pr = s.progress()
            waiting = (f" {pr.awaiting_retrieval} more wait for their full text to be marked "
                       "retrieved (cluster fulltext RECORD --retrieved)."
                       if pr.awaiting_retrieval else "")
            lines.extend(wrap([("class:label", f"Nothing left to screen at {s.stage} for "
                                f"{s.reviewer}: {pr.screened} of {pr.total} screened."
                                f"{waiting} Press q to quit.")], width))
            return lines
        lines.extend(card_lines(c, width, inc, exc, s.stage))
        return lines

    def _reasons(self) -> Sequence[str]:
        """The list the reasons mode picks from: the protocol's exclusion reasons, or why a
        report was not retrieved."""
        if self.mode == "unretrieved":
            return NOT_RETRIEVED_REASONS
        return self.session.protocol.exclusion_reasons

    # -- actions
    def _say(self, text: str, style: str = "class:message") -> None:
        self.message = (style, " " + text)

    def _act(self, fn: Callable[[], str | None]) -> None:
        try:
            text = fn()
        except ClusterError as exc:
            self._say(str(exc), "class:error")
            return
        if text:
            self._say(text)

    def _not_retrieved(self, reason: str) -> None:
        def go() -> str:
            rid = self.session.current
            self.session.not_retrieved(reason)
            return f"Record {rid}: full text not retrieved ({reason}), saved."
        self._act(go)

    def _decide(self, value: str, reason: str | None = None) -> None:
        def go() -> str:
            rid = self.session.current
            result = self.session.decide(value, reason)
            self.decided += 1
            why = f" ({result.reason})" if result.reason else ""
            return f"Record {rid}: {value}{why}, saved."
        self._act(go)

    def _save_note(self, buffer) -> bool:
        text = buffer.text
        self.mode = "card"

        def go() -> str:
            self.session.note(text)
            return f"Note saved on record {self.session.current}."

        self._act(go)
        get_app().layout.focus(self.body)
        return False  # the buffer is cleared for the next note

    def _bindings(self, in_mode: Callable[[str], Condition]) -> KeyBindings:
        kb = KeyBindings()
        card = in_mode("card")
        has_record = Condition(lambda: self.session.current is not None)
        full_text = Condition(lambda: self.session.stage == FULL_TEXT)

        @kb.add("q", filter=card | in_mode("help"))
        def _quit(event) -> None:
            event.app.exit()

        @kb.add("c-c")
        def _interrupt(event) -> None:
            # Ctrl-C still ends with the sitting's summary, but the exit status says so
            self.interrupted = True
            event.app.exit()

        @kb.add("i", filter=card & has_record)
        def _include(event) -> None:
            self._decide("include")

        @kb.add("m", filter=card & has_record)
        def _maybe(event) -> None:
            self._decide("maybe")

        @kb.add("e", filter=card & has_record)
        def _exclude(event) -> None:
            if self.session.stage == FULL_TEXT:
                self.mode, self.reason_index, self.scroll = "reasons", 0, 0
                self._say("Pick the reason for the exclusion.")
            else:
                self._decide("exclude")

        @kb.add("s", filter=card & has_record)
        def _skip(event) -> None:
            rid = self.session.current
            self.session.skip()
            self._say(f"Skipped record {rid}; it comes back later.")

        @kb.add("u", filter=card)
        def _undo(event) -> None:
            def go() -> str:
                result = self.session.undo()
                return f"Undid {result.value} on record {result.record_id}."
            self._act(go)

        @kb.add("n", filter=card & has_record)
        def _note(event) -> None:
            self.mode = "note"
            event.app.layout.focus(self.note_area)

        @kb.add("c", filter=card)
        def _criteria(event) -> None:
            self.show_criteria = not self.show_criteria

        @kb.add("?", filter=card | in_mode("help"))
        def _help(event) -> None:
            self.mode = "card" if self.mode == "help" else "help"

        @kb.add("r", filter=card & has_record & full_text)
        @kb.add("g", filter=card & has_record & full_text)
        def _score(event) -> None:
            self.mode = "score"
            self.score_kind = "relevance" if event.data == "r" else "rigour"
            self._say(f"Score {self.score_kind} from 1 to 5.")

        for digit in "12345":
            @kb.add(digit, filter=in_mode("score"))
            def _score_digit(event) -> None:
                self.mode = "card"
                value, kind = int(event.data), self.score_kind

                def go() -> str:
                    self.session.score(**{kind: value})
                    return f"{kind.capitalize()} {value} saved."

                self._act(go)

        picking = in_mode("reasons") | in_mode("unretrieved")

        def pick(n: int) -> None:
            options = self._reasons()
            if not 0 <= n < len(options):
                return
            mode, self.mode = self.mode, "card"
            if mode == "reasons":
                self._decide("exclude", options[n])
            else:
                self._not_retrieved(options[n])

        for n in range(9):
            @kb.add(str(n + 1), filter=picking)
            def _reason_digit(event) -> None:
                pick(int(event.data) - 1)

        @kb.add("up", filter=picking)
        def _reason_up(event) -> None:
            self.reason_index = (self.reason_index - 1) % len(self._reasons())

        @kb.add("down", filter=picking)
        def _reason_down(event) -> None:
            self.reason_index = (self.reason_index + 1) % len(self._reasons())

        @kb.add("enter", filter=picking)
        def _reason_enter(event) -> None:
            pick(self.reason_index)

        @kb.add("o", filter=card & has_record & full_text)
        def _open(event) -> None:
            def go() -> str:
                target = self.session.full_text_target()
                self.open_viewer(target)
                return f"Opening {target} in the system viewer."
            self._act(go)

        @kb.add("x", filter=card & has_record & full_text)
        def _unretrieved(event) -> None:
            self.mode, self.reason_index, self.scroll = "unretrieved", 0, 0
            self._say("Pick why the report could not be retrieved.")

        @kb.add("escape", filter=~card)
        def _cancel(event) -> None:
            if self.mode == "note":
                self.note_area.buffer.reset()
                event.app.layout.focus(self.body)
            self.mode = "card"
            self._say("Cancelled.")

        @kb.add("down", filter=card)
        @kb.add("j", filter=card)
        def _down(event) -> None:
            self.scroll += 1

        @kb.add("up", filter=card)
        @kb.add("k", filter=card)
        def _up(event) -> None:
            self.scroll = max(0, self.scroll - 1)

        @kb.add("space", filter=card)
        @kb.add("pagedown", filter=card)
        def _page(event) -> None:
            self.scroll += max(self._size()[1] - 6, 1)

        @kb.add("pageup", filter=card)
        def _page_up(event) -> None:
            self.scroll = max(0, self.scroll - max(self._size()[1] - 6, 1))

        return kb

    def run(self) -> str:
        """Run until the reviewer quits; returns a one-line summary of the sitting.
        `interrupted` then says whether the sitting ended with Ctrl-C rather than q."""
        try:
            self.app.run()
        finally:
            self.session.close()
        p = self.session.progress()
        return (f"{self.session.reviewer} made {self.decided} decision(s) this sitting; "
                f"{p.screened} of {p.total} screened at {self.session.stage}.")


def run_screen(session: ScreeningSession, *, input=None, output=None) -> tuple[str, bool]:
    """The sitting's one-line summary, and whether it ended with Ctrl-C."""
    app = ScreenApp(session, input=input, output=output)
    summary = app.run()
    return summary, app.interrupted
