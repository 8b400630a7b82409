"""The prioritiser: components contract, class balance, ranking after decisions, cold start."""

import json

import numpy as np
import pytest
from scipy import sparse

from base.record import Record
from db.protocol import set_protocol
from screeners.prioritiser import components
from screeners.prioritiser.components import REGISTRY, make
from screeners.prioritiser.presets import resolve_model
from screeners.prioritise import estimate_relevant_left, rank, rank_details

TA = "title-abstract"

TOPICS = {
    "compassion": [
        ("Compassion training for hospital nurses", "A compassion training course for nurses reduced burnout."),
        ("Self-compassion training for junior doctors", "Junior doctors took a compassion training programme."),
        ("Compassionate care training for midwives", "Midwives completed compassionate care training and empathy rose."),
    ],
    "soil": [
        ("Soil erosion on terraced hillsides", "Rainfall simulation measured soil loss on terraces."),
        ("Soil carbon under no-till farming", "No-till fields stored more soil carbon than ploughed fields."),
        ("Soil compaction by farm machinery", "Heavy machinery compacts soil and lowers infiltration."),
    ],
    "quantum": [
        ("Quantum error correction with surface codes", "Surface code decoders for superconducting qubits."),
        ("Quantum annealing for scheduling", "A quantum annealer solves job shop scheduling problems."),
    ],
}


def _fill(store):
    ids = {}
    for topic, recs in TOPICS.items():
        ids[topic] = [store.add_record(Record(title=t, abstract=a)) for t, a in recs]
    set_protocol(store, reviewers_per_record=1)
    return ids


def _decide(store, rid, value, reviewer="ann"):
    store.log_event("decision", record_id=rid, reviewer=reviewer, stage=TA, value=value)


# --- every registered component honours the same contract ----------------------

ALL = [(kind, name) for kind, names in REGISTRY.items() for name in names]


@pytest.mark.parametrize("kind,name", ALL, ids=[f"{k}:{n}" for k, n in ALL])
def test_component_contract(kind, name):
    comp = make(kind, name)
    assert comp.name == name and comp.kind == kind
    desc = comp.describe()
    assert desc["name"] == name
    json.dumps(desc)  # settings are plain data, so a run can be reproduced from them
    texts = ["compassion training nurses"] * 3 + ["soil erosion terraces"] * 3
    y = np.array([1, 1, 1, 0, 0, 0])
    X = make("feature", "tfidf").fit_transform(texts)
    rng = np.random.default_rng(0)
    if kind == "feature":
        out = comp.fit_transform(texts)
        assert isinstance(out, components.Views) and sparse.issparse(out.first)
        assert out.n_rows == out.first.shape[0] == 6
    elif kind == "balance":
        w = comp.weights(y[:4])
        assert w.shape == (4,) and (w > 0).all()
    elif kind == "classifier":
        train = np.array([0, 1, 3, 4])
        s = comp.fit_scores(X, train, y[train], np.ones(4), 0)
        assert s.shape == (6,) and np.isfinite(s).all()
        assert s[2] > s[5]  # the unlabelled relevant text outscores the unlabelled other one
        with pytest.raises(components.ComponentError, match="one include and one exclude"):
            comp.fit_scores(X, train[:2], y[:2], np.ones(2), 0)
    else:
        pool = np.array([1, 2, 4, 5])
        scores = np.array([0.0, 0.9, 0.8, 0.0, -0.5, -0.9])
        pick = comp.select(scores, pool, 2, rng)
        assert len(pick) == 2 and len(set(pick.tolist())) == 2 and set(pick.tolist()) <= set(pool.tolist())


def test_unknown_component_and_model_are_one_sentence():
    with pytest.raises(components.ComponentError, match="Unknown classifier 'forest': choose one of logistic, nb, sgd, svm, svm-nb."):
        make("classifier", "forest")
    with pytest.raises(components.ComponentError, match="Unknown model 'tree'"):
        resolve_model("tree")
    assert resolve_model("tfidf+nb+none+max").label == "tfidf+nb+none+max"


def test_dynamic_balance_ties_the_include_weight_to_the_counts_labelled():
    y = np.array([1, 0, 0, 0, 0])
    # n0/n1 = 4: includes weigh 2 * 4 ** 0.5 = 4 times the excludes as a class,
    # i.e. include 4/1, excludes 1/4 each; sum 5, rescaled to 5: 4 and 0.25
    w = make("balance", "dynamic").weights(y)
    assert w.tolist() == pytest.approx([4.0, 0.25, 0.25, 0.25, 0.25])
    assert make("balance", "dynamic", alpha=0.0, a=9.8).weights(y).tolist() == pytest.approx(
        make("balance", "balanced", ratio=9.8).weights(y).tolist())


def test_svm_nb_ensemble_averages_the_two_rankings():
    texts = ["compassion training nurses", "compassion nurses ward", "soil erosion terraces",
             "soil terraces rain", "compassion soil", "nurses training ward"]
    X = make("feature", "tfidf").fit_transform(texts)
    train, y, w = np.array([0, 2]), np.array([1, 0]), np.ones(2)
    svm = make("classifier", "svm").fit_scores(X, train, y, w, 0)
    ens = make("classifier", "svm-nb", nb_share=0.0).fit_scores(X, train, y, w, 0)
    # naive Bayes weighted 0: the SVM's ranking, as ranks scaled around 0
    assert np.argsort(ens, kind="stable").tolist() == np.argsort(svm, kind="stable").tolist()
    assert ens.sum() == pytest.approx(0.0, abs=1e-9)
    assert ens.max() - ens.min() == pytest.approx(5 / 6)
    mixed = make("classifier", "svm-nb").fit_scores(X, train, y, w, 0)
    assert mixed[5] > mixed[3]  # nurses/training outranks soil/terraces


def test_max_uncertainty_query_takes_the_boundary_batch_only_by_chance():
    scores = np.array([0.9, 0.05, -0.8, 0.6])
    pool = np.arange(4)
    always = make("query", "max-uncertainty", uncertainty_share=1.0)
    never = make("query", "max-uncertainty", uncertainty_share=0.0)
    rng = np.random.default_rng(0)
    assert always.select(scores, pool, 2, rng).tolist() == [1, 3]
    assert never.select(scores, pool, 2, rng).tolist() == [0, 3]


def test_balanced_weights_give_each_class_equal_total_weight():
    y = np.array([1, 0, 0, 0, 0, 0])
    # include 1/1, excludes 1/5 each, rescaled to sum to 6: 3 and 0.6
    w = make("balance", "balanced").weights(y)
    assert w.tolist() == pytest.approx([3.0, 0.6, 0.6, 0.6, 0.6, 0.6])
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
    # ratio 2: include 2/1, excludes 1/5, sum 3, times 2: 4 and 0.4
    w2 = make("balance", "balanced", ratio=2.0).weights(y)
    assert w2.tolist() == pytest.approx([4.0, 0.4, 0.4, 0.4, 0.4, 0.4])
    assert make("balance", "none").weights(y).tolist() == [1.0] * 6


# --- ranking a store -----------------------------------------------------------


def test_relevant_records_rise_to_the_top_after_one_include(store):
    ids = _fill(store)
    _decide(store, ids["compassion"][0], "include")
    _decide(store, ids["soil"][0], "exclude")
    cands = ids["soil"][1:] + ids["quantum"] + ids["compassion"][1:]
    details = rank_details(store, TA, "ann", cands)
    assert details.mode == "model"
    top2 = {rid for rid, _ in details.scores[:2]}
    assert top2 == set(ids["compassion"][1:])
    scores = [s for _, s in details.scores]
    assert scores == sorted(scores, reverse=True)
    assert rank(store, TA, "ann", cands) == details.scores


def test_cold_start_uses_protocol_text_and_index_articles(store):
    ids = _fill(store)
    set_protocol(store, question="Does compassion training help nurses?")
    cands = ids["soil"] + ids["quantum"] + ids["compassion"]
    r = rank_details(store, TA, None, cands)
    assert r.mode == "cold-start" and r.warnings == ()
    assert {rid for rid, _ in r.scores[:3]} == set(ids["compassion"])


def test_cold_start_from_index_article_and_warning_for_empty_seed(store):
    ids = _fill(store)
    empty = store.add_record(Record(doi="10.1000/no-text"))
    sid = store.start_search(kind="import", service="file", role="index")
    store.add_source(ids["quantum"][0], sid, role="index", service="file")
    store.add_source(empty, sid, role="index", service="file")
    cands = ids["soil"] + ids["compassion"] + ids["quantum"][1:]
    r = rank_details(store, TA, None, cands)
    assert r.scores[0][0] == ids["quantum"][1]
    assert r.warnings == (f"Seed record {empty} has no title or abstract, so it cannot guide the ranking.",)


def test_features_refresh_when_records_are_added(store):
    ids = _fill(store)
    _decide(store, ids["compassion"][0], "include")
    _decide(store, ids["soil"][0], "exclude")
    new = store.add_record(Record(title="Compassion training for paramedics",
                                  abstract="Paramedics took compassion training."))
    ranked = rank(store, TA, "ann", ids["soil"][1:] + [new])
    assert ranked[0][0] == new


def test_estimate_relevant_left(store):
    ids = _fill(store)
    assert estimate_relevant_left(store, TA) is None  # nothing known before an include
    _decide(store, ids["soil"][1], "exclude")
    assert estimate_relevant_left(store, TA) is None  # excludes alone tell nothing either
    soil_decision = store.events("kind = 'decision'")[-1]["id"]
    store.log_event("undo", reviewer="ann", undoes=soil_decision)
    _decide(store, ids["compassion"][0], "include")
    # one include, nothing else: the share of includes (1) times the 7 left
    assert estimate_relevant_left(store, TA) == 7.0
    _decide(store, ids["soil"][0], "exclude")
    est = estimate_relevant_left(store, TA)
    assert 0.0 < est < 6.0


# --- records without text ------------------------------------------------------


def test_textless_records_wait_for_a_run_of_excludes_then_come_first(store, monkeypatch):
    ids = _fill(store)
    blank = store.add_record(Record(title=None, doi="10.1000/no-text"))
    _decide(store, ids["compassion"][0], "include")
    _decide(store, ids["soil"][0], "exclude")
    cands = [blank] + ids["soil"][1:] + ids["quantum"] + ids["compassion"][1:]
    monkeypatch.setattr(components, "TEXTLESS_AFTER_EXCLUDES", 4)
    assert [rid for rid, _ in rank(store, TA, "ann", cands)][-1] == blank
    _decide(store, ids["soil"][1], "exclude")
    _decide(store, ids["soil"][2], "exclude")
    cands.remove(ids["soil"][1])
    cands.remove(ids["soil"][2])
    assert [rid for rid, _ in rank(store, TA, "ann", cands)][-1] == blank  # a run of 3
    _decide(store, ids["quantum"][0], "exclude")
    cands.remove(ids["quantum"][0])
    assert [rid for rid, _ in rank(store, TA, "ann", cands)][0] == blank  # a run of 4


def test_simulation_shows_textless_records_after_50_excludes_in_a_row():
    from screeners.prioritiser.simulation import Dataset, run_simulation

    words = ["erosion", "carbon", "tillage", "compaction", "drainage", "irrigation", "nitrogen",
             "manure", "grazing", "terrace"]
    texts = [f"Compassion training for nurses, study {k}" for k in range(5)]
    texts += [f"Soil {words[k % 10]} on farm {k} with {words[(k * 3) % 10]}" for k in range(90)]
    texts += ["", ""]  # an include and an exclude with no text
    labels = [1] * 5 + [0] * 90 + [1, 0]
    ds = Dataset("textless", tuple(str(i) for i in range(len(texts))), tuple(texts), tuple(labels))
    r = run_simulation(ds, "default", seed=1)
    pos = [r.order.index("95"), r.order.index("96")]
    assert pos[1] == pos[0] + 1  # shown together
    assert r.labels[pos[0] - 50:pos[0]] == (0,) * 50  # after exactly 50 excludes in a row
    assert sum(r.labels[:pos[0] - 50]) == 4  # the includes with text came first


def test_svm_nb_ensemble_with_a_share_for_the_nearest_include():
    texts = ["wilson disease penicillamine trial", "soil erosion terraces", "soil terraces rain",
             "zinc therapy wilson disease", "penicillamine zinc copper chelation", "rain gauge"]
    X = make("feature", "tfidf").fit_transform(texts)
    train, y, w = np.array([0, 1]), np.array([1, 0]), np.ones(2)
    near = make("classifier", "svm-nb", nb_share=0.0, knn_share=1.0).fit_scores(X, train, y, w, 0)
    M = X.first
    sim = (M @ M[0].T).toarray().ravel()
    # all weight on the nearest include: the ranking of cosine similarity to record 0
    assert np.argsort(-near, kind="stable")[:3].tolist() == np.argsort(-sim, kind="stable")[:3].tolist()
    assert near[3] > near[2] and near[4] > near[5]


NUMBERED = ["insulin 12 weeks trial", "insulin 52 weeks trial", "soil erosion 12 plots",
            "soil erosion 52 plots", "metformin 12 weeks", "metformin 52 weeks"]


def test_the_numbers_view_keeps_what_the_first_view_drops():
    X = make("feature", "tfidf", numbers=False, number_view=True).fit_transform(NUMBERED)
    first, numbers = X.first, X.second
    assert X.all == (first, numbers)
    # 7 words and 5 pairs without numbers; 9 words and 12 pairs with them
    assert first.shape == (6, 12) and numbers.shape == (6, 21)
    # without numbers the two insulin trials are one text; with them they differ
    assert (first[0] != first[1]).nnz == 0 and (numbers[0] != numbers[1]).nnz == 6
    # selecting rows keeps both matrices, row for row
    two = X.rows([0, 1])
    assert two.n_rows == 2 and two.second is not None
    assert (two.first != first[[0, 1]]).nnz == 0 and (two.second != numbers[[0, 1]]).nnz == 0
    # numbers kept already: no second matrix
    assert make("feature", "tfidf", number_view=True).fit_transform(NUMBERED).second is None
    with pytest.raises(components.ComponentError, match="the views differ in rows"):
        components.Views(first, numbers[:5])


def test_a_second_svm_on_the_numbers_view_tells_apart_what_numbers_alone_separate():
    X = make("feature", "tfidf", numbers=False, number_view=True).fit_transform(NUMBERED)
    train, y, w = np.array([0, 1]), np.array([1, 0]), np.ones(2)  # the 12-week trial is relevant

    def scores(**kw):
        return make("classifier", "svm-nb", nb_share=0.0, knn_share=0.0, **kw).fit_scores(
            X, train, y, w, 0)

    # the first view cannot tell the 12-week records from the 52-week ones
    first = scores(view_share=0.0)
    assert first[4] == first[5] and first[2] == first[3]
    mixed = scores(view_share=0.35)
    assert mixed[4] > mixed[5] and mixed[2] > mixed[3]
    # all the weight on the second SVM: the ranking of an SVM fitted on the numbers view
    alone = scores(view_share=1.0)
    svm = make("classifier", "svm").fit_scores(components.Views(X.second), train, y, w, 0)
    assert np.argsort(-alone, kind="stable").tolist() == np.argsort(-svm, kind="stable").tolist()
    # on a matrix with one view the second SVM would repeat the first: its share joins it
    plain = make("feature", "tfidf", numbers=False).fit_transform(NUMBERED)
    with_share = make("classifier", "svm-nb", view_share=0.35).fit_scores(plain, train, y, w, 0)
    assert np.array_equal(with_share, make("classifier", "svm-nb").fit_scores(plain, train, y, w, 0))


def test_records_with_no_countable_word_rank_alike_instead_of_failing(store):
    # numbers alone and single letters are no terms: the store has text but no words
    ids = [store.add_record(Record(title=t, abstract=a))
           for t, a in [("2010", "95 300"), ("1999", "x y"), ("12", ""), ("7 8", "2001")]]
    set_protocol(store, reviewers_per_record=1, question="Does compassion training help?")
    cold = rank_details(store, TA, None, ids)
    assert sorted(rid for rid, _ in cold.scores) == sorted(ids)
    _decide(store, ids[0], "include")
    _decide(store, ids[1], "exclude")
    ranked = rank(store, TA, "ann", ids[2:])
    assert sorted(rid for rid, _ in ranked) == sorted(ids[2:])
    assert len({s for _, s in ranked}) == 1  # nothing tells them apart
    # a simulation on such texts says why it cannot run
    with pytest.raises(components.NoWordsError, match="No record has a word to rank by"):
        resolve_model("default").feature.fit_transform(["2010", "95 300", "x"])


def test_a_slow_fit_is_reused_until_a_batch_of_labels_has_arrived(store, monkeypatch):
    import screeners.prioritise as prioritise
    from screeners.prioritiser.simulation import Schedule

    ids = _fill(store)  # 8 records
    fits = []
    real_fit = components.SvmNbEnsemble.fit_scores

    def counted(self, X, train, y, w, seed):
        fits.append(len(train))
        return real_fit(self, X, train, y, w, seed)

    monkeypatch.setattr(components.SvmNbEnsemble, "fit_scores", counted)
    monkeypatch.setattr(prioritise, "FIT_BUDGET", -1.0)  # every fit counts as slow
    # batch = floor(1.0 * labelled * records / 8), the records being the 8 of the
    # store: after a fit on 2 labels the next comes 2 labels later
    monkeypatch.setattr(prioritise, "Schedule", lambda: Schedule(growth=1.0, per_records=8))
    cands = ids["quantum"]
    _decide(store, ids["compassion"][0], "include")
    _decide(store, ids["soil"][0], "exclude")
    first = rank(store, TA, "ann", cands)
    _decide(store, ids["soil"][1], "exclude")
    assert rank(store, TA, "ann", cands) == first
    assert fits == [2]
    _decide(store, ids["compassion"][1], "include")
    rank(store, TA, "ann", cands)
    assert fits == [2, 4]


def test_a_slow_ranking_stands_until_a_batch_of_decisions_has_arrived(store, monkeypatch):
    import screeners.prioritise as prioritise
    from screeners.prioritiser.simulation import Schedule

    ids = _fill(store)  # 8 records
    monkeypatch.setattr(prioritise, "FIT_BUDGET", -1.0)  # every fit counts as slow
    monkeypatch.setattr(prioritise, "Schedule", lambda: Schedule(growth=1.0, per_records=8))
    cands = ids["quantum"]
    assert not prioritise.ranking_stands(store, TA, "ann", 0)  # nothing ranked yet
    rank(store, TA, "ann", cands)
    assert not prioritise.ranking_stands(store, TA, "ann", 0)  # a cold start is recomputed
    _decide(store, ids["compassion"][0], "include")
    _decide(store, ids["soil"][0], "exclude")
    rank(store, TA, "ann", cands)  # fitted on 2 labels: the next fit 2 labels later
    assert [prioritise.ranking_stands(store, TA, "ann", k) for k in range(4)] == \
        [True, True, False, False]
    assert not prioritise.ranking_stands(store, TA, "bob", 0)  # each reviewer's own
