"""Agreement statistics: against scikit-learn, a hand-worked example, and the
congruence figure reviews report (agreements / (agreements + disagreements))."""

from __future__ import annotations

import json
import random

import pytest
from screenkit import TA, make_review
from sklearn.metrics import cohen_kappa_score

from db.store import Store
from screeners.agreement import agreement, cohen_kappa
from screeners.decisions import decide, undo_last


def _log(store: Store, pairs: list[tuple[str, str]], reviewers=("alice", "bob")) -> None:
    """Log decisions fast (one transaction): pairs[i] are the two reviewers' answers on record i+1."""
    with store.transaction():
        for rid, (a, b) in enumerate(pairs, 1):
            store.log_event("decision", record_id=rid, reviewer=reviewers[0], stage=TA, value=a)
            store.log_event("decision", record_id=rid, reviewer=reviewers[1], stage=TA, value=b)


def test_hand_worked_two_by_two(store):
    # 50 records: 20 both include, 5 alice include/bob exclude, 10 alice exclude/bob include,
    # 15 both exclude. p_o = 35/50 = 0.70; alice includes 25/50, bob 30/50;
    # p_e = 0.5*0.6 + 0.5*0.4 = 0.50; kappa = (0.70 - 0.50) / (1 - 0.50) = 0.40.
    make_review(store, 50)
    pairs = ([("include", "include")] * 20 + [("include", "exclude")] * 5
             + [("exclude", "include")] * 10 + [("exclude", "exclude")] * 15)
    _log(store, pairs)
    (p,) = agreement(store, TA)
    assert (p.reviewer_a, p.reviewer_b, p.labels) == ("alice", "bob", ("include", "exclude"))
    assert p.table == ((20, 5), (10, 15))
    assert (p.n, p.agreements, p.disagreements) == (50, 35, 15)
    assert p.percent == pytest.approx(70.0)
    assert p.kappa == pytest.approx(0.40)


def test_ninety_one_of_a_hundred_is_91_percent(store, run):
    make_review(store, 100)
    pairs = ([("include", "include")] * 11 + [("exclude", "exclude")] * 80
             + [("include", "exclude")] * 4 + [("exclude", "include")] * 5)
    _log(store, pairs)
    (p,) = agreement(store, TA)
    assert (p.agreements, p.disagreements, p.percent) == (91, 9, 91.0)
    # kappa by hand: p_o = .91, p_e = .15*.16 + .85*.84 = .738, kappa = .172/.262
    assert p.kappa == pytest.approx(0.172 / 0.262)
    js = json.loads(run("agreement", "--json").output)
    assert js == [{
        "stage": TA, "reviewer_a": "alice", "reviewer_b": "bob", "records": 100,
        "agreements": 91, "disagreements": 9, "percent_agreement": 91.0,
        "kappa": round(0.172 / 0.262, 6), "labels": ["include", "exclude"],
        "table": [[11, 4], [5, 80]],
    }]
    text = run("agreement").output.splitlines()
    assert text[0] == ("alice / bob at title-abstract: 100 records, 91 agreements, "
                       "9 disagreements, 91.0 % agreement, Cohen's kappa 0.656")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kappa_matches_scikit_learn_with_maybe(store, seed):
    rng = random.Random(seed)
    make_review(store, 120)
    values = ("include", "maybe", "exclude")
    weights_a, weights_b = (2, 1, 6), (3, 1, 5)
    a = rng.choices(values, weights_a, k=120)
    b = [x if rng.random() < 0.7 else rng.choices(values, weights_b)[0] for x in a]
    _log(store, list(zip(a, b)))
    (p,) = agreement(store, TA)
    assert p.labels == ("include", "maybe", "exclude")
    assert p.kappa == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    assert p.agreements == sum(x == y for x, y in zip(a, b))
    assert sum(map(sum, p.table)) == 120
    collapsed = agreement(store, TA, maybe_as_include=True)[0]
    ca = ["include" if x == "maybe" else x for x in a]
    cb = ["include" if x == "maybe" else x for x in b]
    assert collapsed.labels == ("include", "exclude")
    assert collapsed.kappa == pytest.approx(cohen_kappa_score(ca, cb), abs=1e-12)


def test_only_standing_decisions_count_and_every_pair_is_reported(store):
    make_review(store, 4, reviewers=("alice", "bob", "dan"))
    for rid in (1, 2, 3, 4):
        decide(store, rid, "alice", TA, "include")
        decide(store, rid, "bob", TA, "include" if rid < 4 else "exclude")
    undo_last(store, "bob", TA)  # bob's exclude on record 4 no longer stands
    decide(store, 2, "dan", TA, "exclude")
    pairs = {(p.reviewer_a, p.reviewer_b): p for p in agreement(store, TA)}
    assert set(pairs) == {("alice", "bob"), ("alice", "dan"), ("bob", "dan")}
    assert (pairs["alice", "bob"].n, pairs["alice", "bob"].agreements) == (3, 3)
    # all agree on one answer: kappa is undefined, not a division error
    assert pairs["alice", "bob"].kappa is None
    for pair in (("alice", "dan"), ("bob", "dan")):
        assert (pairs[pair].table, pairs[pair].percent) == (((0, 1), (0, 0)), 0.0)


def test_cohen_kappa_edge_cases():
    assert cohen_kappa([[0, 0], [0, 0]]) is None
    assert cohen_kappa([[5, 0], [0, 5]]) == 1.0
    assert cohen_kappa([[0, 5], [5, 0]]) == -1.0
