"""The demo's data extraction: alice and bob fill the realist form for every included record,
blind to each other, each straying from the record's true content now and then; carol
settles every field they disagree on as the arbiter.

Each record's true content (design, participants, CMO configurations, Kirkpatrick
level, relevance and rigour) is drawn from the demo's seed and the identity of
the work, and each reviewer's slips from their own seed, so a demo is repeatable.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Callable, Mapping

from db.state import included_records
from db.store import Store
from screeners.extraction.answers import item_key, save_answer
from screeners.extraction.congruence import Congruence, congruence, same
from screeners.extraction.consensus import conflicts, settle
from screeners.extraction.form import Form, read_form, set_extractors, set_form

EXTRACTORS = ("alice", "bob")
ARBITER = "carol"
#: the chance that a reviewer's answer to one field is not the record's true content
SLIP_RATES = {"alice": 0.05, "bob": 0.07}

DESIGNS = ("randomised controlled trial", "before-after study", "qualitative interviews",
           "mixed methods", "controlled before-after study")
PEOPLE = ("nurses", "medical students", "junior doctors", "care assistants", "midwives")
TYPES = ("compassion training", "mindfulness course", "communication skills workshop",
         "reflective practice groups", "simulation training")
CONTEXTS = ("busy acute wards", "a supportive manager", "protected time for training",
            "staff shortages", "a team that meets weekly", "students on placement")
MECHANISMS = ("staff feel safe to show vulnerability", "self-compassion reduces fear of failure",
              "peers model caring behaviour", "reflection makes patients' needs visible",
              "practice builds confidence in difficult conversations")
OUTCOMES = ("more compassionate care observed", "lower burnout scores",
            "higher patient satisfaction", "better communication ratings",
            "greater empathy on self-report")


def _rng(*parts: Any) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def truth(seed: int, identity: Any) -> dict[str, Any]:
    """What the record reports, as the realist form asks it."""
    rng = _rng(seed, "content", identity)
    items = [{"context": rng.choice(CONTEXTS), "mechanism": rng.choice(MECHANISMS),
              "outcome": rng.choice(OUTCOMES),
              "explanation": "The training works when " + rng.choice(MECHANISMS) + "."}
             for _ in range(rng.randint(1, 3))]
    return {"design": rng.choice(DESIGNS), "participants": f"{rng.randint(12, 240)} "
            + rng.choice(PEOPLE), "intervention_type": rng.choice(TYPES),
            "duration": f"{rng.randint(2, 12)} weekly sessions of {rng.randint(1, 3)} hours",
            "content": "Sessions combined teaching, practice and reflection on "
            + rng.choice(OUTCOMES) + ".",
            "cmo": items, "kirkpatrick": rng.choice(("1 Reaction", "2 Learning", "3 Behavior",
                                                     "4 Results")),
            "relevance": rng.randint(2, 5), "rigour": rng.randint(1, 5)}


def _slip(key: str, value: Any, rng: random.Random) -> Any:
    """A plausible wrong answer: another choice, a neighbouring point, a dropped item."""
    if key == "kirkpatrick":
        return rng.choice([c for c in ("1 Reaction", "2 Learning", "3 Behavior", "4 Results")
                           if c != value])
    if key in ("relevance", "rigour"):
        return value + 1 if value < 5 else value - 1
    if key == "cmo":
        if len(value) > 1:
            return value[:-1]
        return [{**value[0], "outcome": rng.choice([o for o in OUTCOMES
                                                    if o != value[0]["outcome"]])}]
    if key == "design":
        return rng.choice([d for d in DESIGNS if d != value])
    if key == "participants":
        return None  # left blank
    return value + " (unclear in the report)" if key != "content" else "Not described."


def answers_of(reviewer: str, seed: int, identity: Any, content: Mapping[str, Any]
               ) -> dict[str, Any]:
    rng = _rng(seed, "extract", reviewer, identity)
    rate = SLIP_RATES.get(reviewer, 0.05)
    return {k: (_slip(k, v, rng) if rng.random() < rate else v) for k, v in content.items()}


def _save(store: Store, form: Form, rid: int, reviewer: str, answers: Mapping[str, Any]) -> None:
    for f in form.fields:
        value = answers.get(f.key)
        if f.type == "group":
            for i, item in enumerate(value or [], 1):
                for p in f.fields:
                    save_answer(store, rid, reviewer, item_key(f.key, i, p.key), item.get(p.key),
                                form, check_record=False)
            save_answer(store, rid, reviewer, f.key, len(value or []), form, check_record=False)
        else:
            save_answer(store, rid, reviewer, f.key, value, form, check_record=False)


def extract(store: Store, seed: int, identity: Callable[[int], Any],
            say: Callable[[str, str], None]) -> tuple[Congruence, int]:
    """Set the realist form, extract every included record twice, settle the conflicts;
    (the congruence before settling, the fields settled)."""
    form = set_form(store, read_form("realist"))
    set_extractors(store, per_record=2)
    records = included_records(store)
    contents = {rid: truth(seed, identity(rid)) for rid in records}
    for reviewer in EXTRACTORS:
        for rid in records:
            _save(store, form, rid, reviewer, answers_of(reviewer, seed, identity(rid),
                                                         contents[rid]))
        say("extraction", f"{reviewer} extracted {len(records)} included records")
    result = congruence(store, form)
    found = conflicts(store, form)
    for c in found:
        right = contents[c.record_id][c.key]
        f = form.field(c.key)
        agreeing = [r for r, a in c.answers.items()
                    if (a == right if f.type == "group" else same(f, a, right))]
        settle(store, c.record_id, c.key, ARBITER, "arbiter", take=(agreeing or list(c.answers))[0])
    say("extraction", f"congruence {result.congruence or 0:.1f} %; {len(found)} fields settled "
                      f"by {ARBITER} as the arbiter")
    return result, len(found)
