"""Congruence in data extraction: agreements / (agreements + disagreements), field by field.

For every pair of reviewers who both completed the extraction of some records,
each field of each such record is one comparison (a repeatable group gives one
comparison per part of each item, below), counted as an agreement or a
disagreement by the rule for its type:

- `choice`, `scale`: the same answer, exactly.
- `multi_choice`: the same set of choices.
- `number`: the same number.
- `text` (short text): the same text once normalised: case folded, punctuation
  read as space, runs of spaces as one ("RCT, n=40" and "rct n 40" agree).
- `long_text`: the normalised texts are equal, or their sets of words overlap by
  at least half (Jaccard index |A & B| / |A | B| >= 0.5): two reviewers rarely
  word an explanation alike, but one that shares fewer than half its words with
  the other's says something else.
- blank: two blank answers agree (neither found anything to extract); a blank
  and an answer disagree.
- `group` (e.g. CMO configurations): the two reviewers' items are matched one to
  one, the pair with the most agreeing parts first (ties by item order), by the
  rules above; each part of a matched pair is one comparison; each part of an
  item left without a partner (one reviewer recorded more items) is one
  disagreement; two reviewers who both recorded no item agree once on each part.
  A group's parts are reported as `group.part`.

Congruence = agreements / (agreements + disagreements) per field, per reviewer
pair and overall (all fields of all pairs), the figure reviews report (e.g.
90.1 %). For `choice` and `scale` fields each pair also gets Cohen's kappa
(weighted with linear weights for scales) over the records both answered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import combinations
from typing import Any, Mapping, Sequence

from db.store import Store
from screeners.agreement import cohen_kappa, percent_agreement, weighted_kappa
from screeners.extraction.answers import completed_extractions
from screeners.extraction.form import Field, Form, current_form

JACCARD = 0.5
RULES = {
    "choice": "the same choice",
    "multi_choice": "the same set of choices",
    "scale": "the same point of the scale",
    "number": "the same number",
    "text": "the same text, ignoring case, punctuation and spacing",
    "long_text": "the same words, or at least half of them shared (Jaccard >= 0.5)",
    "group": "items matched one to one by their agreeing parts; an unmatched item's parts "
             "disagree",
}


# --- comparing two answers -------------------------------------------------------------------


def normalise(text: str) -> str:
    return " ".join(re.sub(r"[\W_]+", " ", text.casefold()).split())


def same(f: Field, a: Any, b: Any) -> bool:
    """Whether two answers to `f` (not a group) agree by the rule for its type."""
    if a is None or b is None:
        return a is None and b is None
    if f.type == "multi_choice":
        return set(a) == set(b)
    if f.type == "number":
        return abs(float(a) - float(b)) < 1e-9
    if f.type == "text":
        return normalise(str(a)) == normalise(str(b))
    if f.type == "long_text":
        na, nb = normalise(str(a)), normalise(str(b))
        if na == nb:
            return True
        wa, wb = set(na.split()), set(nb.split())
        return bool(wa | wb) and len(wa & wb) / len(wa | wb) >= JACCARD
    return bool(a == b)


def match_items(group: Field, a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]]
                ) -> list[tuple[int, int]]:
    """(item of a, item of b) pairs, 0-based: the pair with the most agreeing parts first."""
    scored = sorted(((-sum(same(p, x.get(p.key), y.get(p.key)) for p in group.fields), i, j)
                     for i, x in enumerate(a) for j, y in enumerate(b)))
    used_a: set[int] = set()
    used_b: set[int] = set()
    out = []
    for _, i, j in scored:
        if i not in used_a and j not in used_b:
            out.append((i, j))
            used_a.add(i)
            used_b.add(j)
    return sorted(out)


def comparisons(f: Field, a: Any, b: Any) -> list[tuple[str, bool]]:
    """(field key, agreed) for each comparison one field of one record gives."""
    if f.type != "group":
        return [(f.key, same(f, a, b))]
    a, b = list(a or []), list(b or [])
    out: list[tuple[str, bool]] = []
    if not a and not b:
        return [(f"{f.key}.{p.key}", True) for p in f.fields]
    pairs = match_items(f, a, b)
    for i, j in pairs:
        out += [(f"{f.key}.{p.key}", same(p, a[i].get(p.key), b[j].get(p.key))) for p in f.fields]
    unmatched = len(a) + len(b) - 2 * len(pairs)
    out += [(f"{f.key}.{p.key}", False) for _ in range(unmatched) for p in f.fields]
    return out


# --- figures ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldFigures:
    key: str           # a field's key, or group.part
    label: str
    type: str
    agreements: int
    disagreements: int
    kappa: float | None = None  # choice and scale fields, per pair

    @property
    def congruence(self) -> float | None:
        return percent_agreement(self.agreements, self.disagreements)

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.key, "label": self.label, "type": self.type,
                "rule": RULES.get(self.type, ""), "agreements": self.agreements,
                "disagreements": self.disagreements, "congruence": _round(self.congruence),
                "kappa": None if self.kappa is None else round(self.kappa, 6),
                "kappa_kind": {"choice": "Cohen", "scale": "weighted (linear)"}.get(self.type)}


@dataclass(frozen=True)
class PairCongruence:
    reviewer_a: str
    reviewer_b: str
    records: int
    fields: tuple[FieldFigures, ...]

    @property
    def agreements(self) -> int:
        return sum(f.agreements for f in self.fields)

    @property
    def disagreements(self) -> int:
        return sum(f.disagreements for f in self.fields)

    @property
    def congruence(self) -> float | None:
        return percent_agreement(self.agreements, self.disagreements)

    def to_dict(self) -> dict[str, Any]:
        return {"reviewer_a": self.reviewer_a, "reviewer_b": self.reviewer_b,
                "records": self.records, "agreements": self.agreements,
                "disagreements": self.disagreements, "congruence": _round(self.congruence),
                "fields": [f.to_dict() for f in self.fields]}


@dataclass(frozen=True)
class Congruence:
    form_title: str
    form_version: int
    pairs: tuple[PairCongruence, ...]
    fields: tuple[FieldFigures, ...]  # summed over the pairs
    records: int                      # records at least two reviewers extracted

    @property
    def agreements(self) -> int:
        return sum(p.agreements for p in self.pairs)

    @property
    def disagreements(self) -> int:
        return sum(p.disagreements for p in self.pairs)

    @property
    def congruence(self) -> float | None:
        return percent_agreement(self.agreements, self.disagreements)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": "extraction", "form": self.form_title, "form_version": self.form_version,
                "records": self.records, "agreements": self.agreements,
                "disagreements": self.disagreements, "congruence": _round(self.congruence),
                "fields": [f.to_dict() for f in self.fields],
                "pairs": [p.to_dict() for p in self.pairs]}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _keys(form: Form) -> list[tuple[str, Field]]:
    out: list[tuple[str, Field]] = []
    for f in form.fields:
        out += ([(f"{f.key}.{p.key}", p) for p in f.fields] if f.type == "group" else [(f.key, f)])
    return out


def _kappa(f: Field, a: Mapping[int, Any], b: Mapping[int, Any]) -> float | None:
    both = [r for r in sorted(set(a) & set(b)) if a[r] is not None and b[r] is not None]
    if not both:
        return None
    if f.type == "scale":
        assert f.min is not None and f.max is not None
        labels: list[Any] = list(range(int(f.min), int(f.max) + 1))
    else:
        labels = list(f.choices)
    index = {v: i for i, v in enumerate(labels)}
    table = [[0] * len(labels) for _ in labels]
    for r in both:
        if a[r] in index and b[r] in index:
            table[index[a[r]]][index[b[r]]] += 1
    return weighted_kappa(table) if f.type == "scale" else cohen_kappa(table)


def pair_congruence(form: Form, reviewer_a: str, reviewer_b: str,
                    a: Mapping[int, Mapping[str, Any]], b: Mapping[int, Mapping[str, Any]]
                    ) -> PairCongruence:
    """Congruence of two reviewers over the records both extracted (`a`, `b`: record id ->
    assembled answers)."""
    common = sorted(set(a) & set(b))
    counts: dict[str, list[int]] = {k: [0, 0] for k, _ in _keys(form)}
    for rid in common:
        for f in form.fields:
            for key, agreed in comparisons(f, a[rid].get(f.key), b[rid].get(f.key)):
                counts[key][0 if agreed else 1] += 1
    figures = []
    for key, f in _keys(form):
        kappa = None
        if f.type in ("choice", "scale") and "." not in key:
            kappa = _kappa(f, {r: a[r].get(key) for r in common}, {r: b[r].get(key) for r in common})
        figures.append(FieldFigures(key, f.title, f.type, counts[key][0], counts[key][1], kappa))
    return PairCongruence(reviewer_a, reviewer_b, len(common), tuple(figures))


def congruence(store: Store, form: Form | None = None) -> Congruence:
    """Congruence of every reviewer pair over the records both completed, under the form
    in force."""
    form = form or current_form(store)
    assert form is not None
    done = completed_extractions(store, form)
    by_reviewer: dict[str, dict[int, Mapping[str, Any]]] = {}
    for rid, per in done.items():
        for reviewer, answers in per.items():
            by_reviewer.setdefault(reviewer, {})[rid] = answers
    pairs = []
    for ra, rb in combinations(sorted(by_reviewer), 2):
        if set(by_reviewer[ra]) & set(by_reviewer[rb]):
            pairs.append(pair_congruence(form, ra, rb, by_reviewer[ra], by_reviewer[rb]))
    totals = []
    for i, (key, f) in enumerate(_keys(form)):
        agree = sum(p.fields[i].agreements for p in pairs)
        disagree = sum(p.fields[i].disagreements for p in pairs)
        kappa = pairs[0].fields[i].kappa if len(pairs) == 1 else None
        totals.append(FieldFigures(key, f.title, f.type, agree, disagree, kappa))
    records = sum(1 for per in done.values() if len(per) >= 2)
    return Congruence(form.title, form.version, tuple(pairs), tuple(totals), records)
