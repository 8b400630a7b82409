"""Screening metrics against values worked out by hand on tiny orders."""

import math

import pytest

from screeners.prioritiser import metrics

# 10 records after the priors, relevant at positions 1 and 3.
# Random screening finds round(linspace(0, 2, 10)) = 0 0 0 1 1 1 1 2 2 2 relevant:
# the 1st at index 3, the 2nd at index 7; the order finds them at indexes 0 and 2.
ORDER = [1, 0, 1, 0, 0, 0, 0, 0, 0, 0]


def test_wss_by_hand():
    # 1 / 2 <= 0.95 < 2 / 2: WSS@95 is taken at the 1st relevant record
    assert metrics.wss(ORDER, 0.95) == pytest.approx((3 - 0) / 10)
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


def test_wss95_takes_the_last_include_at_or_below_95_percent():
    # 22 relevant among 100: 20 / 22 = 0.909 <= 0.95 < 21 / 22 = 0.955, so WSS@95 is
    # taken at the 20th relevant record (found at index 19), not the 21st (index 30).
    # Random has found round(22 i / 99) at index i: 20 first at i = 88 (19.56 rounds up;
    # i = 87 gives 19.33).
    order = [1] * 20 + [0] * 10 + [1] + [0] * 68 + [1]
    assert metrics.wss(order, 0.95) == pytest.approx((88 - 19) / 100)
    # the 21st would have given (93 - 30) / 100 = 0.63
    assert metrics.wss(order, 21 / 22) == pytest.approx((93 - 30) / 100)
    # 22nd found last, at index 99; random reaches 22 at i = 97 (21.56; i = 96 gives 21.33)
    assert metrics.wss(order, 1.0) == pytest.approx((97 - 99) / 100)


def test_wss_with_one_relevant_record_is_wss100_as_published():
    # x = [1.0]: no relevant record lies at or below 0.95 and asreview-insights'
    # slice wraps round to the last one
    order = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert metrics.wss(order, 0.95) == metrics.wss(order, 1.0) == pytest.approx((5 - 1) / 10)


def test_recall_counts_the_records_at_or_below_the_share():
    # 15 records: 10 % is 1.5 records, so recall counts the first record only
    order = [0, 1] + [0] * 12 + [1]
    assert metrics.recall_at(order, 0.10) == 0.0
    assert metrics.rrf(order, 10) == 0.0
    assert metrics.recall_at(order, 2 / 15) == 0.5
    # below one record: nothing screened yet
    assert metrics.recall_at(order, 0.05) == 0.0
    assert metrics.recall_at(order, 1.0) == 1.0
