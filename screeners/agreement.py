"""Inter-reviewer agreement, per reviewer pair, from the standing decisions in the log.

For every pair of reviewers who both decided some records at a stage:
agreements, disagreements, percent agreement = agreements / (agreements +
disagreements) (the "congruence" reviews report, e.g. 91 of 100 -> 91.0 %),
Cohen's kappa, and the contingency table (2x2 include/exclude, 3x3 when
anyone answered maybe). Undone decisions do not count; the latest standing
decision of each reviewer does, as `db.state` defines it.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Any, Mapping, Sequence

from db.events import STAGES, TITLE_ABSTRACT
from db.state import effective_decisions
from db.store import Store
from screeners.decisions import check_stage

TWO = ("include", "exclude")
THREE = ("include", "maybe", "exclude")


@dataclass(frozen=True)
class PairAgreement:
    stage: str
    reviewer_a: str
    reviewer_b: str
    labels: tuple[str, ...]
    table: tuple[tuple[int, ...], ...]  # rows: reviewer_a's answer, columns: reviewer_b's

    @property
    def n(self) -> int:
        return sum(sum(row) for row in self.table)

    @property
    def agreements(self) -> int:
        return sum(self.table[i][i] for i in range(len(self.labels)))

    @property
    def disagreements(self) -> int:
        return self.n - self.agreements

    @property
    def percent(self) -> float | None:
        return percent_agreement(self.agreements, self.disagreements)

    @property
    def kappa(self) -> float | None:
        return cohen_kappa(self.table)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "reviewer_a": self.reviewer_a, "reviewer_b": self.reviewer_b,
            "records": self.n, "agreements": self.agreements,
            "disagreements": self.disagreements,
            "percent_agreement": None if self.percent is None else round(self.percent, 4),
            "kappa": None if self.kappa is None else round(self.kappa, 6),
            "labels": list(self.labels), "table": [list(r) for r in self.table],
        }


def percent_agreement(agreements: int, disagreements: int) -> float | None:
    """Percent agreement, or congruence: 100 * agreements / (agreements + disagreements),
    as reviews report it (e.g. 91 of 100 -> 91.0 %); None when nothing was compared."""
    n = agreements + disagreements
    return None if n == 0 else 100.0 * agreements / n


def cohen_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Cohen's kappa of a square contingency table; None where it is undefined
    (no records, or both reviewers gave one and the same answer throughout)."""
    n = sum(sum(row) for row in table)
    if n == 0:
        return None
    k = len(table)
    observed = sum(table[i][i] for i in range(k)) / n
    rows = [sum(table[i]) / n for i in range(k)]
    cols = [sum(table[i][j] for i in range(k)) / n for j in range(k)]
    expected = sum(r * c for r, c in zip(rows, cols))
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def weighted_kappa(table: Sequence[Sequence[int]]) -> float | None:
    """Cohen's weighted kappa with linear weights (1 - |i - j| / (k - 1)) of a square table
    whose labels are ordered (a 1-5 scale): answers one point apart half agree on a 3-point
    scale, a quarter less on a 5-point one. None where it is undefined, as `cohen_kappa`."""
    n = sum(sum(row) for row in table)
    k = len(table)
    if n == 0 or k < 2:
        return None
    w = [[1.0 - abs(i - j) / (k - 1) for j in range(k)] for i in range(k)]
    rows = [sum(table[i]) / n for i in range(k)]
    cols = [sum(table[i][j] for i in range(k)) / n for j in range(k)]
    observed = sum(w[i][j] * table[i][j] for i in range(k) for j in range(k)) / n
    expected = sum(w[i][j] * rows[i] * cols[j] for i in range(k) for j in range(k))
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def pair_table(a: Mapping[int, str], b: Mapping[int, str], labels: Sequence[str]
               ) -> tuple[tuple[int, ...], ...]:
    """Contingency table over the records both `a` and `b` decided."""
    index = {v: i for i, v in enumerate(labels)}
    counts = [[0] * len(labels) for _ in labels]
    for rid in sorted(set(a) & set(b)):
        counts[index[a[rid]]][index[b[rid]]] += 1
    return tuple(tuple(r) for r in counts)


def agreement(store: Store, stage: str = TITLE_ABSTRACT, maybe_as_include: bool = False
              ) -> list[PairAgreement]:
    """Agreement for every reviewer pair with at least one record decided by both.

    `maybe_as_include` counts "maybe" as "include" (both advance a record), which
    gives the 2x2 table even where maybes were used.
    """
    check_stage(stage)
    by_reviewer: dict[str, dict[int, str]] = {}
    for (rid, reviewer), d in effective_decisions(store, stage).items():
        value = "include" if maybe_as_include and d.value == "maybe" else d.value
        by_reviewer.setdefault(reviewer, {})[rid] = value
    out = []
    for ra, rb in combinations(sorted(by_reviewer), 2):
        a, b = by_reviewer[ra], by_reviewer[rb]
        common = set(a) & set(b)
        if not common:
            continue
        used = {a[r] for r in common} | {b[r] for r in common}
        labels = THREE if "maybe" in used else TWO
        out.append(PairAgreement(stage, ra, rb, labels, pair_table(a, b, labels)))
    return out


def agreement_by_stage(store: Store) -> dict[str, list[PairAgreement]]:
    """Each screening stage's reviewer pairs, as the methods report shows them."""
    return {stage: agreement(store, stage) for stage in STAGES}
