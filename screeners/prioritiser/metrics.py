"""How well a screening order finds the relevant records: WSS, RRF, recall, time
to discovery.

Every function takes `labels`: the 0/1 labels in the order the records were
(or would be) screened, with the prior-knowledge records left out, as
asreview-insights does. Recall, RRF and WSS are the published definitions of
asreview-insights (`asreviewcontrib/insights/algorithms.py`, `_recall_values`
and `_wss_values`, sliced by `metrics.py`'s `_slice_metric`), figure for figure:

- a curve is a list of points x (ascending) with values y; the figure at a
  level is y at the last point with x at or below the level
  (`searchsorted(x, level, side="right") - 1`);
- recall: x = i / n after i = 1..n records screened, y = relevant found / p;
  a level below 1 / n gives 0. RRF@k % is recall at k / 100;
- WSS: x = j / p for the j = 1..p-th relevant record, y = (when random screening
  finds its j-th relevant record - when the order finds it) / n, random screening
  having found round(p * i / (n - 1)) relevant records at index i (numpy's
  round: halves to even). WSS@95 with 22 relevant records is thus taken at the
  20th (20 / 22 = 0.909 <= 0.95 < 21 / 22), not the 21st.
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


def _last_at_or_below(x: np.ndarray, level: float) -> int:
    """Index of the last point of `x` at or below `level` (-1 when none is)."""
    return int(np.searchsorted(x, level, side="right")) - 1


def wss(labels: Labels, recall: float = 0.95) -> float:
    """Work saved over sampling at `recall` (0-1), as a share of all records.

    Taken at the last relevant record whose recall j / p is at or below `recall`.
    When even the first lies above it (one relevant record at 95 %),
    asreview-insights' slice wraps round to the last relevant record, so WSS@r
    is then WSS@100; kept so the figures stay comparable with published ones."""
    a = _arr(labels)
    n, p = len(a), int(a.sum())
    if p == 0:
        return float("nan")
    targets = np.arange(1, p + 1)
    when = np.searchsorted(np.cumsum(a), targets)
    when_random = np.searchsorted(np.round(np.linspace(0, p, n)), targets)
    k = _last_at_or_below(targets / p, recall)
    return float((when_random[k] - when[k]) / n)


def recall_at(labels: Labels, screened_share: float) -> float:
    """Share of relevant records found once `screened_share` of the records are
    screened: after the last i with i / n at or below the share (none: 0)."""
    a = _arr(labels)
    n, p = len(a), int(a.sum())
    if p == 0:
        return float("nan")
    k = _last_at_or_below(np.arange(1, n + 1) / n, screened_share)
    if k < 0:
        return 0.0
    return float(a[: k + 1].sum() / p)


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
