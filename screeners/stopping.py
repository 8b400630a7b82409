"""When to stop screening: the statistical rule of Callaghan & Müller-Hansen
(2020) and the N-consecutive-excludes heuristic; the review's status; and
marking the unscreened rest as excluded by automation.

Hypergeometric rule (Callaghan MW, Müller-Hansen F. Statistical stopping
criteria for automated screening in systematic reviews. Systematic Reviews
2020;9:273, doi:10.1186/s13643-020-01521-4). With N records in all, of which
the screening so far found r relevant, treat the last n records screened as a
sample drawn at random from an urn of those n plus the U unscreened records
(N_urn = n + U), with k relevant in the sample. The relevant records found
before the sample are r_AL = r - k. If recall were below the target tau, the
urn would hold at least

    K_tar = floor(r / tau - r_AL + 1)

relevant records. The null hypothesis "recall < tau" is tested by the
hypergeometric probability of seeing k or fewer relevant records in the sample:

    p_n = P(X <= k),  X ~ Hypergeometric(N_urn, K_tar, n)

(p_n = 0 when K_tar > N_urn: the urn cannot hold that many). Every n from 1 to
the number screened is tried and the smallest p is the p-value; the rule is met
when p < alpha (0.05: 95 % confidence that recall >= tau). Treating prioritised
records as a random sample is conservative: the model puts likely relevant
records first, so a random sample would contain fewer of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from base.errors import ClusterError
from db.events import FULL_TEXT, TITLE_ABSTRACT
from db.protocol import get_protocol
from db.state import (CONFLICT, EXCLUDED, INCLUDED, PENDING, RecordState, effective_decisions,
                      fulltext_states, screening_sequence, stage_states, stage_view)
from db.store import Store


class StopError(ClusterError):
    pass


RULES = ("hypergeometric", "consecutive")


@dataclass(frozen=True)
class RuleResult:
    rule: str
    met: bool
    figures: dict[str, Any] = field(default_factory=dict)
    explanation: str = ""


def hypergeometric_cdf(k: int, n_urn: int, k_urn: int, n: int, above: float = math.inf
                       ) -> float:
    """P(X <= k) for X ~ Hypergeometric(population n_urn, k_urn successes, n draws), as
    `scipy.stats.hypergeom.cdf(k, n_urn, k_urn, n)` gives it (tests compare the two).
    Once P is known to exceed `above` (by more than rounding) it stops there and returns
    a figure between `above` and P: a search for the smallest p needs no more.

    Written here, in plain Python, because importing scipy.stats (about a second) or
    even numpy takes longer than a whole `cluster status` may. The smaller tail is
    summed from its term next to the mode outwards, each term from its neighbour by
    the ratio of whole numbers, until the terms no longer count (e^-40 of the sum): a
    few standard deviations of terms.
    """
    N, K = n_urn, k_urn
    top = min(n, K)
    lo = max(0, n - (N - K))
    if k >= top:
        return 1.0
    if k < lo:
        return 0.0
    lower = k <= (n + 1) * (K + 1) // (N + 2)  # at or below the mode: sum X <= k downwards
    j, end = (k, lo) if lower else (k + 1, top)
    log_first = _log_pmf(j, N, K, n)
    term = total = 1.0  # relative to the first term
    # the lower tail only grows as terms are added; the upper tail's rest is at most
    # term * ratio / (1 - ratio), the ratios falling away from the mode (log-concave)
    if above < 1:
        first, margin = math.exp(log_first), above * (1 + 1e-9)
    while j != end and term > total * _NEGLIGIBLE:
        if lower:
            ratio = j * (N - K - n + j) / ((K - j + 1) * (n - j + 1))
            j -= 1
        else:
            ratio = (K - j) * (n - j) / ((j + 1) * (N - K - n + j + 1))
            j += 1
        if above < 1:
            if lower and first * total > margin:
                return first * total
            if not lower and ratio < 1:
                least = 1.0 - first * (total + term * ratio / (1 - ratio))
                if least > margin:
                    return least
        term *= ratio
        total += term
    tail = math.exp(log_first + math.log(total))
    return min(max(tail if lower else 1.0 - tail, 0.0), 1.0)


#: a term this small a part of the sum so far ends the sum
_NEGLIGIBLE = math.exp(-40.0)


def _log_pmf(j: int, N: int, K: int, n: int) -> float:
    """log P(X = j) for X ~ Hypergeometric(N, K, n): log C(K, j) + log C(N-K, n-j) - log C(N, n)."""
    lg = math.lgamma
    # summed a binomial coefficient at a time: regrouped, the nine terms round otherwise
    return ((lg(K + 1) - lg(j + 1) - lg(K - j + 1))
            + (lg(N - K + 1) - lg(n - j + 1) - lg(N - K - n + j + 1))
            - (lg(N + 1) - lg(n + 1) - lg(N - n + 1)))


def hypergeometric_p(labels: Sequence[int], n_total: int, target_recall: float = 0.95
                     ) -> tuple[float, int, int, int]:
    """(p-value, sample size n, relevant in sample k, K_tar) of the rule above.

    `labels` are the 0/1 labels of the screened records in screening order.
    """
    if len(labels) == 0:
        return 1.0, 0, 0, 0
    if not 0 < target_recall <= 1:
        raise StopError("Target recall must be between 0 and 1, such as 0.95.")
    r = sum(labels)
    unseen = n_total - len(labels)
    best = (math.inf, 0, 0, 0)
    k = 0
    for n, y in enumerate(reversed(labels), start=1):  # the last n screened as the sample
        k += y
        k_tar = math.floor(r / target_recall - (r - k) + 1)
        n_urn = n + unseen
        p = 0.0 if k_tar > n_urn else hypergeometric_cdf(k, n_urn, min(k_tar, n_urn), n,
                                                          above=best[0])
        if p < best[0]:  # the first n of the smallest p
            best = (p, n, k, k_tar)
    return best


def hypergeometric_rule(labels: Sequence[int], n_total: int, target_recall: float = 0.95,
                        alpha: float = 0.05) -> RuleResult:
    p, n, k, k_tar = hypergeometric_p(labels, n_total, target_recall)
    met = len(labels) > 0 and p < alpha
    figures = {"p_value": round(p, 6), "target_recall": target_recall, "alpha": alpha,
               "sample_size": n, "relevant_in_sample": k, "k_tar": k_tar,
               "screened": len(labels), "relevant_found": int(sum(labels)),
               "total": n_total,
               "citation": "Callaghan & Müller-Hansen 2020, doi:10.1186/s13643-020-01521-4"}
    text = (f"p = {p:.3g} that recall is below {target_recall:.0%} "
            f"(last {n} screened, {k} relevant); the rule needs p < {alpha:g}")
    return RuleResult("hypergeometric", met, figures, text)


def excludes_in_a_row(labels: Sequence[int]) -> int:
    """How many of the last labels, counted back from the end, are excludes."""
    run = 0
    for v in reversed(list(labels)):
        if v:
            break
        run += 1
    return run


def consecutive_rule(labels: Sequence[int], n_required: int) -> RuleResult:
    run = excludes_in_a_row(labels)
    met = len(labels) > 0 and run >= n_required
    return RuleResult("consecutive", met, {"consecutive_excludes": run, "required": n_required},
                      f"{run} consecutive excludes; the rule needs {n_required}")


# --- the store's view ---------------------------------------------------------


@dataclass(frozen=True)
class Status:
    stage: str
    total: int
    screened: int
    final: int
    pending: int
    includes_found: int
    estimated_relevant_left: float | None
    rule_in_force: str
    rules: dict[str, RuleResult]
    estimated: bool = True  # False: no estimate was asked for (the prioritiser was not loaded)

    def to_dict(self) -> dict[str, Any]:
        left = {"estimated_relevant_left": (None if self.estimated_relevant_left is None
                                            else round(self.estimated_relevant_left, 2))}
        return {
            "stage": self.stage, "total": self.total, "screened": self.screened,
            "final": self.final, "unscreened": self.pending,
            "includes_found": self.includes_found,
            **(left if self.estimated else {}),
            "stopping_rule": self.rule_in_force,
            "rules": {k: {"met": v.met, **v.figures, "explanation": v.explanation}
                      for k, v in self.rules.items()},
        }


def _unscreened(store: Store, stage: str, states: Mapping[int, RecordState] | None = None,
                decisions: Mapping[tuple[int, str], Any] | None = None) -> list[int]:
    """Records with no standing decision at `stage` and no final state."""
    decided = {rid for rid, _ in (decisions if decisions is not None
                                  else effective_decisions(store, stage))}
    return [rid for rid, st in (states if states is not None else stage_states(store, stage)).items()
            if st.status == PENDING and rid not in decided]


def _title_abstract_only(stage: str) -> None:
    # at full text the records not yet assessed are reports waiting to be retrieved
    # or read, not a ranked remainder a rule could vouch for
    if stage != TITLE_ABSTRACT:
        raise StopError(f"Stopping rules apply at title-abstract screening only, not at {stage}: "
                        "every report sought at full text is retrieved and assessed, or "
                        "recorded as not retrieved.")


def evaluate_rules(store: Store, stage: str, sequence: Sequence[tuple[int, int]] | None = None,
                   total: int | None = None) -> dict[str, RuleResult]:
    """Each stopping rule on the screening so far (`sequence`, `total`: the stage's
    `screening_sequence` and record count, when already derived)."""
    _title_abstract_only(stage)
    proto = get_protocol(store)
    seq = [y for _, y in (sequence if sequence is not None else screening_sequence(store, stage))]
    if total is None:
        total = len(stage_states(store, stage))
    return {
        "hypergeometric": hypergeometric_rule(seq, total, proto.target_recall),
        "consecutive": consecutive_rule(seq, proto.consecutive_excludes),
    }


def status(store: Store, stage: str = TITLE_ABSTRACT,
           estimate: Callable[[Store, str], float | None] | None = None) -> Status:
    """Title-abstract screening: screened / total, includes, the stopping rules and,
    given a way to `estimate` them (the prioritiser's `estimate_relevant_left`), the
    relevant records left (None while that is unknown). Without `estimate` every
    figure comes from the log alone, so no model is loaded or fitted."""
    _title_abstract_only(stage)
    with store.read_snapshot():
        return _status(store, stage, estimate)


def _status(store: Store, stage: str,
            estimate: Callable[[Store, str], float | None] | None) -> Status:
    # the log is read once and each figure derived from that one reading; the records
    # no decision, resolution or stopping rule touched are counted, not visited
    view = stage_view(store, stage)
    decisions = view.decisions
    seq = screening_sequence(store, stage, states=view.touched, decisions=decisions)
    includes = sum(y for _, y in seq)
    total = len(view.ids)
    left = None if estimate is None else estimate(store, stage) if total else 0.0
    decided = {rid for rid, _ in decisions}
    settled = sum(1 for rid, st in view.touched.items() if st.status != PENDING or rid in decided)
    return Status(
        stage=stage, total=total, screened=len(seq),
        final=sum(1 for s in view.touched.values() if s.final),
        pending=total - settled, includes_found=includes,
        estimated_relevant_left=left, rule_in_force=get_protocol(store).stopping_rule,
        rules=evaluate_rules(store, stage, seq, total), estimated=estimate is not None,
    )


@dataclass(frozen=True)
class FullTextProgress:
    """Where the reports that passed title-abstract screening stand: sought =
    retrieved + not retrieved + awaiting retrieval, and retrieved = included +
    excluded + conflicts + partly assessed + awaiting assessment."""

    sought: int
    retrieved: int
    not_retrieved: int
    awaiting_retrieval: int
    included: int
    excluded: int
    conflicts: int
    partly_assessed: int
    awaiting_assessment: int

    def to_dict(self) -> dict[str, Any]:
        return {"stage": FULL_TEXT, **{f: getattr(self, f) for f in self.__dataclass_fields__}}


def fulltext_progress(store: Store) -> FullTextProgress:
    """Retrieval and assessment progress at full text, counted as the PRISMA flow
    counts them: a report not retrieved is not assessed, whatever was decided on it."""
    with store.read_snapshot():
        states = stage_states(store, FULL_TEXT)
        retrieval = fulltext_states(store)
    n = {k: 0 for k in ("retrieved", "not-retrieved", "awaiting", INCLUDED, EXCLUDED, CONFLICT,
                        "partly", "unassessed")}
    for rid, st in states.items():
        got = retrieval.get(rid)
        if got == "not-retrieved" and st.status != INCLUDED:
            n["not-retrieved"] += 1
            continue
        # a decision on a report means someone read it, retrieval logged or not
        if got != "retrieved" and not st.decisions:
            n["awaiting"] += 1
            continue
        n["retrieved"] += 1
        if st.status == PENDING:
            n["partly" if st.decisions else "unassessed"] += 1
        else:
            n[st.status] += 1
    return FullTextProgress(
        sought=len(states), retrieved=n["retrieved"], not_retrieved=n["not-retrieved"],
        awaiting_retrieval=n["awaiting"], included=n[INCLUDED], excluded=n[EXCLUDED],
        conflicts=n[CONFLICT], partly_assessed=n["partly"], awaiting_assessment=n["unassessed"])


@dataclass(frozen=True)
class StopOutcome:
    rule: str
    marked: int
    forced: bool
    result: RuleResult
    batch: str | None = None  # the first exclusion's event id: `cluster undo` it to take all back

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "marked": self.marked, "forced": self.forced,
                "met": self.result.met, **self.result.figures, "batch": self.batch}


def apply_stop(store: Store, stage: str, rule: str, force: bool = False,
               reviewer: str | None = None) -> StopOutcome:
    """Log every unscreened record as excluded by automation under `rule`, in one
    transaction; refused when the rule is not met unless `force`."""
    if rule not in RULES:
        raise StopError(f"Unknown stopping rule {rule!r}: use hypergeometric or consecutive.")
    result = evaluate_rules(store, stage)[rule]
    if not result.met and not force:
        raise StopError(
            f"The {rule} rule is not met ({result.explanation}): keep screening, or add --force.")
    rest = _unscreened(store, stage)
    figures = {"rule": rule, **result.figures, "met": result.met, "forced": force and not result.met}
    with store.transaction():
        ids = store.log_batch("automation", ({"record_id": rid, "stage": stage, "value": "exclude",
                                              "reviewer": reviewer, "data": figures}
                                             for rid in rest))
    return StopOutcome(rule, len(rest), force and not result.met, result, ids[0] if ids else None)
