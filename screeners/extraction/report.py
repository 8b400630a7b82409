"""The data extraction part of the methods report: how data were extracted, the congruence,
and a table of the included studies' characteristics.

The characteristics are the answers that stand (`consensus.final_answers`) to
the form's design field (a field keyed `design`), its choice fields (e.g. the
Kirkpatrick level) and its scales (e.g. relevance and rigour), with each
scale's distribution over the included studies.
"""

from __future__ import annotations

from collections import Counter

from db.events import EXTRACTION
from db.protocol import get_protocol
from db.state import resolution_method, standing_events
from db.store import Store
from screeners.extraction.answers import completed_extractions, included_records
from screeners.extraction.congruence import congruence
from screeners.extraction.consensus import final_answers
from screeners.extraction.export import study_label
from screeners.extraction.form import current_form


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(map(str, value))
    return " ".join(str(value).replace("|", "\\|").split())


def extraction_section(store: Store) -> list[str]:
    """Markdown lines for the report; none when no form is set."""
    form = current_form(store, required=False)
    if form is None:
        return []
    out = ["## Data extraction", ""]
    done = completed_extractions(store, form)
    if not done:
        return out + [f"The extraction form \"{form.title}\" (version {form.version}, "
                      f"{len(form.fields)} fields) is set; no extraction is finished yet.", ""]
    protocol = get_protocol(store)
    reviewers = sorted({r for per in done.values() for r in per})
    per_record = Counter(len(per) for per in done.values())
    index_rule = (f" ({protocol.extraction_reviewers_index} for index articles)"
                  if protocol.extraction_reviewers_index else "")
    c = congruence(store, form)
    methods: Counter[str] = Counter()
    for e in standing_events(store, "kind = 'consensus' AND stage = ?", [EXTRACTION]):
        methods[resolution_method(e["data"])] += 1
    sentence = (f"Data were extracted with the form \"{form.title}\" (version {form.version}, "
                f"{len(form.fields)} fields) by {len(reviewers)} reviewers "
                f"({', '.join(reviewers)}) working independently, blind to each other's answers; "
                f"the protocol asked for {protocol.extraction_reviewers} extractors per "
                f"record{index_rule}. Extractions finished per record: "
                + "; ".join(f"{k} ({v} records)" for k, v in sorted(per_record.items())) + ".")
    if c.congruence is not None:
        sentence += (f" Congruence in data extraction was {c.congruence:.1f} % "
                     f"(agreements / (agreements + disagreements) = {c.agreements:,} / "
                     f"{c.agreements + c.disagreements:,}, over {c.records} records extracted by "
                     f"two or more reviewers).")
    if methods:
        sentence += (" Disagreements were settled field by field: "
                     + ", ".join(f"{n} by {m}" for m, n in sorted(methods.items())) + ".")
    out += [sentence, ""]
    if c.pairs:
        out += ["| reviewers | records | agreements | disagreements | congruence |",
                "|---|---|---|---|---|"]
        out += [f"| {p.reviewer_a} / {p.reviewer_b} | {p.records} | {p.agreements} | "
                f"{p.disagreements} | "
                + ("n/a" if p.congruence is None else f"{p.congruence:.1f} %") + " |"
                for p in c.pairs]
        out.append("")
    shown = [f for f in form.fields
             if f.key == "design" or f.type in ("choice", "multi_choice", "scale")]
    finals = final_answers(store, form)
    included = included_records(store)
    if shown and included:
        out += ["### Characteristics of the included studies", ""]
        out += ["| study | " + " | ".join(f.title for f in shown) + " |",
                "|---|" + "---|" * len(shown)]
        for rid in included:
            d = study_label(store, rid)
            answers = finals[rid].answers
            out.append(f"| {_cell(d['study'])} (#{rid}) | "
                       + " | ".join(_cell(answers.get(f.key)) for f in shown) + " |")
        out.append("")
        for f in shown:
            if f.type not in ("scale", "choice"):
                continue
            counts = Counter(finals[r].answers.get(f.key) for r in included)
            points = (list(range(int(f.min), int(f.max) + 1))
                      if f.type == "scale" and f.min is not None and f.max is not None
                      else list(f.choices))
            blank = counts.get(None, 0)
            out.append(f"- {f.title}: " + ", ".join(f"{p}: {counts.get(p, 0)}" for p in points)
                       + (f"; not settled or blank: {blank}" if blank else "") + ".")
        out.append("")
    return out
