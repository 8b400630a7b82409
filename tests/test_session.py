"""The screening session: blind queue, card, prioritised order and background re-ranking."""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
import types

import pytest
from screenkit import FT, TA, both_decide, make_review

from base.errors import ClusterError
from db.store import open_store
from screeners.decisions import add_note, decide, mark_fulltext, sample
from db.provenance import provenance
from screeners.session import ScreeningSession, awaiting_retrieval, pending, population


@pytest.fixture
def no_prioritiser(monkeypatch):
    # as when the prioritiser is not installed: importing it fails
    monkeypatch.setitem(sys.modules, "screeners.prioritise", None)


@pytest.fixture
def fake_prioritiser(monkeypatch):
    calls = []
    module = types.ModuleType("screeners.prioritise")

    def rank(store, stage, reviewer, candidates):
        calls.append((stage, reviewer, list(candidates)))
        # highest id first, and one id that is not a candidate, which must be ignored
        return [(999, 1.0)] + [(rid, 1.0 / rid) for rid in sorted(candidates, reverse=True)]

    module.rank = rank
    module.estimate_relevant_left = lambda store, stage: 2.5
    monkeypatch.setitem(sys.modules, "screeners.prioritise", module)
    return calls


def test_plain_id_order_without_a_prioritiser(store, no_prioritiser):
    make_review(store, 4)
    s = ScreeningSession(store, "alice", TA, background=False)
    assert s.current == 1
    assert s.progress().text == "screened 0/4 · includes 0 · estimated relevant left ?"
    s.decide("include")
    assert s.current == 2


def test_prioritised_order_and_estimate(store, fake_prioritiser):
    make_review(store, 4)
    s = ScreeningSession(store, "alice", TA, background=False)
    assert s.current == 4
    assert fake_prioritiser[0] == (TA, "alice", [1, 2, 3, 4])
    s.decide("exclude")
    assert s.current == 3
    assert fake_prioritiser[-1] == (TA, "alice", [1, 2, 3])
    assert s.progress().text == "screened 1/4 · includes 0 · estimated relevant left 2.5"


def test_next_record_does_not_wait_for_re_ranking(tmp_path, no_prioritiser, monkeypatch):
    import screeners.session as session_module

    # the first ranking is quick here: however loaded the machine, the sitting waits for it
    monkeypatch.setattr(session_module, "STARTUP_WAIT", 30.0)
    store = open_store(tmp_path / "review.db")
    make_review(store, 5)
    gate, calls = threading.Event(), []

    def slow_rank(st, stage, reviewer, candidates):
        calls.append(list(candidates))
        if len(calls) == 1:
            return [3, 1, 2, 4, 5]
        gate.wait(10)  # a model that takes its time to retrain
        return sorted(candidates, reverse=True)

    s = ScreeningSession(store, "alice", TA, rank_fn=slow_rank, estimate_fn=lambda st, sg: None)
    assert s.current == 3
    started = time.monotonic()
    s.decide("include")
    s.decide("exclude")
    assert time.monotonic() - started < 2.0
    assert s.current == 2  # from the ranking at hand while the new one is computed
    gate.set()
    deadline = time.monotonic() + 10
    while s._ranker.generation < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    while s._ranker._wanted.is_set() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    s.decide("include")
    assert s.current == 5  # the new ranking is used once it is ready
    assert calls[1] in ([1, 2, 4, 5], [2, 4, 5])
    s.close()
    store.close()


def test_card_is_blind_to_other_reviewers(store, no_prioritiser):
    make_review(store, 2)
    decide(store, 1, "alice", TA, "include", note="alice thinks yes")
    add_note(store, 1, "alice", "alice's private note")
    add_note(store, 1, "bob", "bob's own note")
    s = ScreeningSession(store, "bob", TA, background=False)
    assert s.current == 1  # bob still sees the record alice decided
    card = s.card()
    assert card.my_notes == ("bob's own note",)
    text = repr(dataclasses.asdict(card))
    assert "alice" not in text and "include" not in text
    assert card.provenance == ("cites index article 1 (cited-by, rank 1, OpenAlex)",)
    assert s.progress().screened == 0


def test_provenance_lines_cover_merged_duplicates_and_strategies(store):
    a, b, c = make_review(store, 3)
    sid = store.start_search(kind="api", service="pubmed", strategy="references",
                             seed_record_id=2)
    store.add_source(c, sid, role="other", service="pubmed", strategy="references",
                     seed_record_id=2, rank=7)
    store.add_source(a, None, role="index", service="file")
    store.db["records"].update(c, {"duplicate_of": b})
    assert provenance(store, b) == (
        "cites index article 1 (cited-by, rank 2, OpenAlex)",
        "cites index article 1 (cited-by, rank 3, OpenAlex)",
        "cited by index article 2 (references, rank 7, PubMed)",
    )
    assert provenance(store, a)[-1] == "index article (file)"


def test_skip_undo_and_note_in_a_session(store, no_prioritiser):
    make_review(store, 3)
    s = ScreeningSession(store, "alice", TA, background=False)
    s.skip()
    assert s.current == 2
    s.decide("maybe")
    s.decide("include")  # record 3
    assert s.current == 1  # the skipped record comes back last
    u = s.undo()
    assert (u.record_id, s.current) == (3, 3)  # the undone record is shown again
    s.note("look at the methods")
    assert s.card().my_notes == ("look at the methods",)
    with pytest.raises(ClusterError, match=r"^Relevance and rigour are scored at full text\.$"):
        s.score(relevance=3)


def test_full_text_population_and_check_subsample(store, no_prioritiser):
    ids = make_review(store, 10, reviewers=("alice", "bob", "dan"))
    for rid in ids[:4]:
        both_decide(store, rid, "include", "include")
    mark_fulltext(store, 2, "not-retrieved", "out of print")
    # only reports in hand are screened; the others wait, counted
    assert population(store, "alice", FT) == []
    assert awaiting_retrieval(store, "alice", FT) == 3
    for rid in (1, 3):
        mark_fulltext(store, rid, "retrieved")
    mark_fulltext(store, 4, "sought")
    assert population(store, "alice", FT) == [1, 3]
    assert awaiting_retrieval(store, "alice", FT) == 1
    s = ScreeningSession(store, "alice", FT, background=False)
    assert s.progress().text == ("screened 0/2 · includes 0 · estimated relevant left ? · "
                                 "1 wait for retrieval")
    chosen = sample(store, 0.2, "dan", seed=3).chosen
    assert len(chosen) == 2
    s = ScreeningSession(store, "dan", TA, background=False)
    assert s.progress().total == 2 and s.current == chosen[0]
    assert pending(store, "alice", TA) == ids[4:]


def test_session_refuses_unknown_reviewer_and_stage(store):
    make_review(store, 1)
    with pytest.raises(ClusterError, match=r"^Unknown reviewer 'zed': add them with `cluster reviewers add zed`\.$"):
        ScreeningSession(store, "zed", TA, background=False)
    with pytest.raises(ClusterError, match=r"^Unknown stage 'eligibility': use title-abstract or full-text\.$"):
        ScreeningSession(store, "alice", "eligibility", background=False)


def test_a_failing_prioritiser_does_not_stop_screening(store):
    make_review(store, 3)

    def broken(st, stage, reviewer, candidates):
        raise RuntimeError("model file missing")

    s = ScreeningSession(store, "alice", TA, rank_fn=broken, background=False)
    assert s.ranking_problem == ("The prioritiser failed (model file missing); records come in "
                                 "id order.")
    assert s.current == 1
    s.decide("include")
    assert s.current == 2
    assert s.ranking_problem == "The prioritiser failed (model file missing); the last order is kept."


def test_every_record_is_queued_even_when_the_ranking_leaves_some_out(store, monkeypatch):
    make_review(store, 5)
    module = types.ModuleType("screeners.prioritise")
    module.rank = lambda st, stage, reviewer, candidates: [(4, 0.9), (2, 0.5)]
    monkeypatch.setitem(sys.modules, "screeners.prioritise", module)
    s = ScreeningSession(store, "bob", TA, background=False)
    seen = []
    while s.current is not None:
        seen.append(s.current)
        s.decide("exclude")
    assert seen == [4, 2, 1, 3, 5]
    assert s.progress().text.startswith("screened 5/5 · includes 0")


def _sequence(store, reviewer, n):
    s = ScreeningSession(store, reviewer, TA, background=False)
    seen = []
    for i in range(n):
        seen.append(s.current)
        s.decide("include" if i % 3 == 0 else "exclude")
    s.close()
    return seen


def test_the_card_order_is_the_same_on_two_identical_stores(tmp_path):
    orders = []
    for name in ("a", "b"):
        store = open_store(tmp_path / f"{name}.db")
        make_review(store, 12)
        orders.append(_sequence(store, "alice", 8))
        store.close()
    assert orders[0] == orders[1] and len(set(orders[0])) == 8


def test_the_first_card_does_not_wait_for_the_first_ranking(tmp_path, monkeypatch):
    import screeners.prioritise as prioritise
    import screeners.session as session_module

    store = open_store(tmp_path / "review.db")
    make_review(store, 12)
    # a first sitting ranks in place and keeps the top of alice's order beside the store
    s = ScreeningSession(store, "alice", TA, background=False)
    kept = s._ranker.snapshot()[0]
    s.close()
    assert prioritise.remembered_order(store, TA, "alice") == kept and len(kept) == 12
    assert prioritise.remembered_order(store, TA, "bob") == []  # each reviewer's own
    gate, real = threading.Event(), prioritise.rank

    def slow_rank(*args):
        gate.wait(10)  # a large store: loading and fitting take their time
        return real(*args)

    monkeypatch.setattr(prioritise, "rank", slow_rank)
    monkeypatch.setattr(session_module, "STARTUP_WAIT", 0.1)
    started = time.monotonic()
    s = ScreeningSession(store, "alice", TA)
    assert time.monotonic() - started < 2.0
    # the first card comes from the kept order while the ranking is computed
    assert (s._ranker.generation, s.current) == (0, kept[0])
    gate.set()
    deadline = time.monotonic() + 10
    while s._ranker.generation < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert s._ranker.generation == 1 and s._ranker.snapshot()[0] == kept
    s.close()
    # without a kept order (bob has never screened), the first card is in id order
    gate.clear()
    s = ScreeningSession(store, "bob", TA)
    assert (s._ranker.generation, s.current) == (0, 1)
    gate.set()
    s.close()
    store.close()
