"""One reviewer's extraction sitting: the blind queue, the record at hand, the walk through the form.

The queue holds the included records the reviewer has not finished (only their
check sample when one is assigned at extraction), records they began first,
then by id; outside a check sample, a record that already has as many finished
extractions as the protocol asks for (`extraction_reviewers`, or
`extraction_reviewers_index` for an index article) is left to those who began it. Nothing here shows another
reviewer's answers. Each answer is logged as it is given, so quitting (or a
kill) loses at most the field being typed, and the next sitting resumes at the
first field not answered; `:u` takes back the last answer.

The walk reads whole lines (`read(prompt)`), so it runs in any terminal, over
SSH, and from a pipe.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Callable

from db.events import EXTRACTION
from db.state import fulltext_states
from db.store import Store
from screeners.decisions import assigned_records
from screeners.extraction.answers import (Answer, ExtractionError, extractors_needed,
                                          included_records, is_complete, item_key, items_begun,
                                          save_answer, standing_answers, undo_last_answer)
from screeners.extraction.form import Field, FormError, current_form

HELP = (
    ("Enter", "save the answer typed (an empty line leaves the field blank)"),
    ("a number", "for a choice, the choice with that number; for a scale, that point"),
    (":u", "undo your last answer (the walk goes back to it)"),
    (":s", "skip this record for now (it comes back next sitting)"),
    (":?", "show this help"),
    (":q", "quit (every answer is already saved)"),
)


@dataclass(frozen=True)
class Step:
    """The next question of a record: a field, a part of a group's item, or whether to add
    another item to a group (`more`)."""

    record_id: int
    key: str
    field: Field
    group: Field | None = None
    item: int | None = None
    more: bool = False

    @property
    def prompt(self) -> str:
        if self.more and self.group is not None:
            return f"Add {self.group.title} item {self.item}? [y/n]"
        if self.group is not None:
            return f"{self.group.title} {self.item} · {self.field.title}"
        return self.field.title


class ExtractionSession:
    def __init__(self, store: Store, reviewer: str, width: int = 80):
        self.store = store
        self.reviewer = reviewer
        self.width = max(width, 30)
        store.require_reviewer(reviewer)
        form = current_form(store)
        assert form is not None
        self.form = form
        self.skipped: set[int] = set()
        self.adding: dict[tuple[int, str], int] = {}  # a group item the reviewer chose to add
        self.answered = 0
        self.finished: set[int] = set()

    # -- the queue
    def _mine(self) -> dict[int, dict[str, Answer]]:
        return {rid: a for (rid, _), a in standing_answers(self.store, self.reviewer).items()}

    def population(self) -> list[int]:
        ids = included_records(self.store)
        assigned = self._assigned()
        return [r for r in ids if r in assigned] if assigned else ids

    def _assigned(self) -> set[int]:
        return assigned_records(self.store, self.reviewer, EXTRACTION)

    def queue(self) -> list[int]:
        mine = self._mine()
        pop = self.population()
        checking = bool(self._assigned())  # a check sample is extracted whoever did it before
        needed = extractors_needed(self.store, pop)
        complete_by: dict[int, int] = {}
        for (rid, rev), answers in standing_answers(self.store).items():
            if rev != self.reviewer and is_complete(self.form, answers):
                complete_by[rid] = complete_by.get(rid, 0) + 1
        out = []
        for rid in pop:
            if rid in self.skipped or is_complete(self.form, mine.get(rid, {})):
                continue
            if not checking and rid not in mine and complete_by.get(rid, 0) >= needed[rid]:
                continue  # enough reviewers have extracted it
            out.append(rid)
        return sorted(out, key=lambda r: (r not in mine, r))

    def progress(self) -> tuple[int, int]:
        """(records this reviewer has finished, records in their population)."""
        mine = self._mine()
        pop = self.population()
        return sum(1 for r in pop if is_complete(self.form, mine.get(r, {}))), len(pop)

    # -- the walk
    def next_step(self) -> Step | None:
        mine = self._mine()
        for rid in self.queue():
            step = self.step_of(rid, mine.get(rid, {}))
            if step is not None:
                return step
        return None

    def step_of(self, rid: int, answers: dict[str, Answer]) -> Step | None:
        for f in self.form.fields:
            if f.key in answers:
                continue
            if f.type != "group":
                return Step(rid, f.key, f)
            n = items_begun(f, answers)
            for i in range(1, n + 1):
                for p in f.fields:
                    if item_key(f.key, i, p.key) not in answers:
                        return Step(rid, item_key(f.key, i, p.key), p, f, i)
            if self.adding.get((rid, f.key)) == n + 1:
                p = f.fields[0]
                return Step(rid, item_key(f.key, n + 1, p.key), p, f, n + 1)
            return Step(rid, f.key, f, f, n + 1, more=True)
        return None

    def answer(self, step: Step, text: str) -> Answer:
        a = save_answer(self.store, step.record_id, self.reviewer, step.key, text, self.form,
                        check_record=False)
        self._after(step.record_id)
        return a

    def more(self, step: Step, yes: bool) -> Answer | None:
        assert step.group is not None and step.item is not None
        if yes:
            self.adding[(step.record_id, step.group.key)] = step.item
            return None
        a = save_answer(self.store, step.record_id, self.reviewer, step.group.key, step.item - 1,
                        self.form, check_record=False)
        self._after(step.record_id)
        return a

    def _after(self, rid: int) -> None:
        self.answered += 1
        if is_complete(self.form, self._mine().get(rid, {})):
            self.finished.add(rid)

    def undo(self) -> Answer:
        a = undo_last_answer(self.store, self.reviewer)
        self.finished.discard(a.record_id)
        self.skipped.discard(a.record_id)
        return a

    # -- what the reviewer reads
    def card(self, rid: int) -> list[str]:
        """The record at hand: title, authors, where its full text is, the abstract; wrapped
        to `self.width` columns."""
        rec = self.store.get_record(rid)
        authors = ", ".join(rec.authors[:3]) + (" et al." if len(rec.authors) > 3 else "")
        where = [f"doi:{rec.doi}" if rec.doi else "", f"PMID {rec.pmid}" if rec.pmid else "",
                 f"PMCID {rec.pmcid}" if rec.pmcid else "", rec.url or ""]
        ft = fulltext_states(self.store).get(rid)
        found = ", ".join(w for w in where if w) or "no DOI, PMID, PMCID or link recorded"
        lines = [f"Record {rid}: {rec.title or '(no title)'}",
                 f"{authors or '(no authors)'} · {rec.journal or ''} · {rec.year or 'n.d.'}",
                 f"Full text: {found}" + (f" ({ft.replace('-', ' ')})" if ft else "")]
        out = [w for line in lines for w in textwrap.wrap(line, self.width,
                                                          subsequent_indent="  ")]
        return out + [""] + textwrap.wrap(rec.abstract or "(no abstract)", self.width,
                                          initial_indent="  ", subsequent_indent="  ") + [""]

    def field_lines(self, step: Step) -> list[str]:
        f = step.field
        if step.more:
            return [step.prompt]
        kind = {"scale": f"scale {f.min:g}-{f.max:g}" if f.min is not None and f.max is not None
                else "scale", "long_text": "long text", "multi_choice": "several choices, "
                "separated by commas"}.get(f.type, f.type)
        out = [f"{step.prompt} ({kind})"]
        if f.help:
            out += textwrap.wrap(f.help, self.width, initial_indent="  ", subsequent_indent="  ")
        out += [f"  [{i}] {c}" for i, c in enumerate(f.choices, 1)]
        out += [f"  {k} = {v}" for k, v in sorted(f.anchors.items())]
        return out

    def summary(self) -> str:
        done, total = self.progress()
        return (f"{self.reviewer}: {self.answered} answer(s) saved this sitting, "
                f"{len(self.finished)} record(s) finished; {done} of {total} included records "
                "extracted.")


def run_walk(session: ExtractionSession, read: Callable[[str], str],
             write: Callable[[str], None]) -> tuple[str, bool]:
    """Walk the reviewer through their queue; (summary, interrupted by Ctrl-C)."""
    shown: int | None = None
    try:
        while True:
            step = session.next_step()
            if step is None:
                write("Nothing left to extract.")
                break
            if step.record_id != shown:
                done, total = session.progress()
                write(f"cluster extract · {session.reviewer} · {session.form.title} · "
                      f"{done}/{total} extracted")
                for line in session.card(step.record_id):
                    write(line)
                shown = step.record_id
            for line in session.field_lines(step):
                write(line)
            try:
                text = read("> ")
            except EOFError:
                write("")  # end the prompt's line
                break
            command = text.strip().lower()
            if command == ":q":
                break
            if command == ":?":
                write("\n".join(f"  {k:<10} {v}" for k, v in HELP))
                continue
            if command == ":s":
                session.skipped.add(step.record_id)
                write(f"Record {step.record_id} skipped for this sitting.")
                continue
            try:
                if command == ":u":
                    a = session.undo()
                    write(f"Undid your answer to {a.key} on record {a.record_id}.")
                    shown = None if a.record_id != step.record_id else shown
                elif step.more:
                    if command not in ("y", "n", "yes", "no"):
                        write("Answer y or n.")
                        continue
                    session.more(step, command.startswith("y"))
                else:
                    a = session.answer(step, text)
                    write("  saved" + ("" if a.value is not None else " (blank)"))
            except (ExtractionError, FormError) as exc:
                write(f"  {exc}")
    except KeyboardInterrupt:
        return session.summary(), True
    return session.summary(), False
