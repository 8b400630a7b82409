"""How well a screening order finds the relevant records: WSS, RRF, recall, time
to discovery.

Every function takes `labels`: the 0/1 labels in the order the records were
(or would be) screened, with the prior-knowledge records left out, as
ASReview-insights does. WSS follows ASReview-insights exactly: with n records
and p relevant, random screening has found round(p * i / n) relevant records
after i records (i = 0..n-1 spread over n points); WSS@r is the number of
records fewer than random needed to find the first ceil-style r share of the
relevant records, divided by n.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

#: 0/1 labels in screening order, as a list or an array
Labels = Sequence[int] | np.ndarray


def _arr(labels: Labels) -> np.ndarray:
    a = np.asarray(labels, dtype=np.int64)
    if a.ndim != 1 or len(a) == 0 or not set(np.unique(a).tolist()) <= {0, 1}:
        raise ValueError("labels must be a non-empty sequence of 0/1")
    return a


def wss(labels: Labels, recall: float = 0.95) -> float:
    """Work saved over sampling at `recall` (0-1), as a share of all records."""
    a = _arr(labels)
    n, p = len(a), int(a.sum())
    if p == 0:
        return float("nan")
    found = np.cumsum(a)
    found_random = np.round(np.linspace(0, p, n))
    targets = np.arange(1, p + 1)
    when = np.searchsorted(found, targets)
    when_random = np.searchsorted(found_random, targets)
    x = targets / p
    k = int(np.argmax(x >= recall - 1e-12))
    return float((when_random[k] - when[k]) / n)


def recall_at(labels: Labels, screened_share: float) -> float:
    """Share of relevant records found once `screened_share` of the records are screened."""
    a = _arr(labels)
    n, p = len(a), int(a.sum())
    if p == 0:
        return float("nan")
    # the first position i (1-based) with i / n >= share, as ASReview-insights slices it
    i = int(np.ceil(screened_share * n - 1e-9))
    i = min(max(i, 1), n)
    return float(a[:i].sum() / p)


def rrf(labels: Labels, percent: float = 10) -> float:
    """Relevant records found (share) after screening `percent` % of the records."""
    return recall_at(labels, percent / 100.0)


def time_to_discovery(labels: Labels) -> list[int]:
    """For each relevant record, how many records had been screened when it was found
    (1-based, the prior-knowledge records not counted)."""
    a = _arr(labels)
    return (np.flatnonzero(a) + 1).tolist()


def recall_curve(labels: Labels) -> tuple[np.ndarray, np.ndarray]:
    """(records screened 0..n, relevant found) for plotting."""
    a = _arr(labels)
    return np.arange(len(a) + 1), np.concatenate([[0], np.cumsum(a)])


def summary(labels: Labels) -> dict[str, float]:
    """All reported figures for one screening order."""
    td = time_to_discovery(labels)
    return {
        "wss95": wss(labels, 0.95),
        "wss100": wss(labels, 1.0),
        "rrf10": rrf(labels, 10),
        "recall10": recall_at(labels, 0.10),
        "recall20": recall_at(labels, 0.20),
        "recall50": recall_at(labels, 0.50),
        "td_mean": float(np.mean(td)) if td else float("nan"),
        "td_median": float(np.median(td)) if td else float("nan"),
    }
