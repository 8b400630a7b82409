"""Screening metrics against values worked out by hand on tiny orders."""

import math

import pytest

from screeners.prioritiser import metrics

# 10 records after the priors, relevant at positions 1 and 3.
# Random screening finds round(linspace(0, 2, 10)) = 0 0 0 1 1 1 1 2 2 2 relevant:
# the 1st at index 3, the 2nd at index 7; the order finds them at indexes 0 and 2.
ORDER = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]


def test_wss_by_hand():
    assert metrics.wss(ORDER, 0.95) == pytest.approx((7 - 2) / 10)
    assert metrics.wss(ORDER, 1.0) == pytest.approx((7 - 2) / 10)
    assert metrics.wss(ORDER, 0.5) == pytest.approx((3 - 0) / 10)


def test_wss95_differs_from_wss100_when_last_include_is_late():
    # 20 relevant: WSS@95 looks at the 19th, WSS@100 at the 20th (found last)
    order = [1] * 19 + [0] * 80 + [1]
    # random has found round(20 * i / 99) at index i: the 19th when 20 i / 99 >= 18.5,
    # i = 92; the 20th when 20 i / 99 >= 19.5, i = 97. The order finds them at 18 and 99.
    assert metrics.wss(order, 0.95) == pytest.approx((92 - 18) / 100)
    assert metrics.wss(order, 1.0) == pytest.approx((97 - 99) / 100)


def test_recall_rrf_and_time_to_discovery_by_hand():
    assert metrics.recall_at(ORDER, 0.10) == 0.5  # 1 record screened
    assert metrics.recall_at(ORDER, 0.20) == 0.5  # 2 records
    assert metrics.recall_at(ORDER, 0.50) == 1.0  # 5 records
    assert metrics.rrf(ORDER, 10) == 0.5
    assert metrics.time_to_discovery(ORDER) == [1, 3]
    s = metrics.summary(ORDER)
    assert (s["td_mean"], s["td_median"]) == (2.0, 2.0)


def test_last_place_is_negative_and_no_relevant_is_nan():
    # one relevant: random reaches round(i / 9) = 1 at i = 5; the order finds it at 9
    assert metrics.wss([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 1.0) == pytest.approx((5 - 9) / 10)
    assert math.isnan(metrics.wss([0, 0, 0], 0.95))
    with pytest.raises(ValueError):
        metrics.wss([0, 2, 1])
