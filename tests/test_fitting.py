"""The direct SVM and naive Bayes fits give scikit-learn's numbers bit for bit,
and fall back to scikit-learn's classes when they would not."""

import dataclasses

import numpy as np
import pytest
from scipy import sparse
from sklearn.naive_bayes import ComplementNB
from sklearn.svm import LinearSVC

from screeners.prioritiser import fitting
from screeners.prioritiser.cache import Memo
from screeners.prioritiser.components import make
from screeners.prioritiser.presets import resolve_model
from screeners.prioritiser.simulation import Dataset, load_dataset, run_simulation
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def real():
    ds = load_dataset(shared_path("data", "screening", "Cohen_2006_OralHypoglycemics.csv"))
    # the default's terms counted into a vocabulary (not hashed): rows out of column order
    feature = dataclasses.replace(resolve_model("default").feature, hash_bits=None)
    X = feature.fit_transform(ds.texts).first
    return ds, X, np.asarray(ds.labels)


def _checked(**direct_ok):
    """A fresh record of which direct fits passed their check."""
    memo = Memo(size=2)
    for which, ok in direct_ok.items():
        memo.put(which, None, ok)
    return memo


def _subsets(labels, n_sets=4):
    rng = np.random.default_rng(11)
    for size in (2, 7, 40, 250)[:n_sets]:
        inc = rng.choice(np.flatnonzero(labels == 1), size=max(1, size // 8), replace=False)
        exc = rng.choice(np.flatnonzero(labels == 0), size=size - len(inc), replace=False)
        yield rng.permutation(np.concatenate([inc, exc]))


def test_direct_path_is_taken_with_this_scikit_learn():
    assert fitting.uses_direct_path() == {"svc": True, "cnb": True}


def test_known_answers_are_what_scikit_learns_classes_give():
    # the figures the direct fits are checked against on first use
    X, train, y, w = fitting._check_problem()
    for which in ("svc", "cnb"):
        public = fitting.check_summary(which, X, train, y, w, public=True)
        assert np.allclose(public, fitting.KNOWN_ANSWERS[which], rtol=1e-12, atol=0)
        assert fitting.check_summary(which, X, train, y, w) == public


def test_svm_coefficients_equal_linearsvc_bit_for_bit(real):
    _, X, labels = real
    # TF-IDF rows keep their terms out of index order, which LinearSVC sorts
    assert not X.has_sorted_indices
    for train in _subsets(labels):
        y = labels[train]
        w = make("balance", "balanced", ratio=9.8).weights(y)
        ref = LinearSVC(C=0.11, random_state=3).fit(X[train], y, sample_weight=w)
        got = fitting.fit_linear_svc(X, train, y, w, C=0.11, seed=3)
        assert np.array_equal(got.coef_, ref.coef_)
        assert np.array_equal(got.intercept_, ref.intercept_)


def test_svm_primal_case_more_rows_than_features():
    # LinearSVC's dual="auto" switches to the primal solver here
    rng = np.random.default_rng(2)
    X = sparse.csr_matrix((rng.random((60, 8)) * (rng.random((60, 8)) < 0.5)).astype(np.float32))
    train = np.arange(50)
    y = (X[train].toarray()[:, 0] > 0.2).astype(np.int64)
    w = np.ones(50)
    ref = LinearSVC(C=0.5, random_state=1).fit(X[train], y, sample_weight=w)
    got = fitting.fit_linear_svc(X, train, y, w, C=0.5, seed=1)
    assert np.array_equal(got.coef_, ref.coef_) and np.array_equal(got.intercept_, ref.intercept_)


def test_naive_bayes_scores_equal_complementnb_bit_for_bit(real):
    _, X, labels = real
    for train in _subsets(labels):
        y = labels[train]
        w = make("balance", "balanced", ratio=9.8).weights(y)
        m = ComplementNB(alpha=1.0).fit(X[train], y, sample_weight=w)
        jll = m.predict_joint_log_proba(X)
        got = fitting.complement_nb_scores(X, train, y, w, alpha=1.0)
        assert np.array_equal(got, jll[:, 1] - jll[:, 0])


def test_prepared_copies_are_kept_per_matrix_and_mirror_it(real):
    _, X, _ = real
    p = fitting.prepared(X)
    assert fitting.prepared(X) is p
    assert p.sorted64.has_sorted_indices and p.sorted64.dtype == np.float64
    assert np.array_equal(p.same64.indices, X.indices)  # X's own order, for NB scoring
    assert np.array_equal(p.same64.data, X.data.astype(np.float64))
    other = X.copy()
    assert fitting.prepared(other) is not p


def test_falls_back_to_scikit_learn_when_the_direct_fit_disagrees(monkeypatch, real):
    _, X, labels = real
    train = next(_subsets(labels, 3))
    y, w = labels[train], np.ones(len(train))
    monkeypatch.setattr(fitting, "_CHECKED", _checked())
    wrong = fitting.LinearFit(np.zeros((1, X.shape[1])), np.zeros(1))
    monkeypatch.setattr(fitting, "_fit_svc_direct", lambda *a, **k: wrong)

    def broken(*a, **k):
        raise TypeError("train_wrap() takes 11 positional arguments")

    monkeypatch.setattr(fitting, "_cnb_direct", broken)
    assert fitting.uses_direct_path() == {"svc": False, "cnb": False}
    ref = LinearSVC(C=0.11, random_state=0).fit(X[train], y, sample_weight=w)
    assert np.array_equal(fitting.fit_linear_svc(X, train, y, w, 0.11, 0).coef_, ref.coef_)
    assert np.isfinite(fitting.complement_nb_scores(X, train, y, w, 1.0)).all()


def test_simulation_order_is_the_same_through_either_path(monkeypatch, real):
    ds, _, _ = real
    # the first 120 records (45 includes) keep the run short
    small = Dataset("oral-120", ds.ids[:120], ds.texts[:120], ds.labels[:120])
    assert small.n_included == 45
    fast = run_simulation(small, "default", seed=2)
    monkeypatch.setattr(fitting, "_CHECKED", _checked(svc=False, cnb=False))
    slow = run_simulation(small, "default", seed=2)
    assert fast.n_fits == slow.n_fits == 117
    assert fast.prior == slow.prior and fast.order == slow.order


def test_negative_features_reach_complementnb_and_its_refusal():
    X = sparse.csr_matrix(np.array([[1.0, -0.5], [0.2, 0.3], [0.0, 1.0]], dtype=np.float32))
    with pytest.raises(ValueError, match="Negative values in data passed to ComplementNB"):
        fitting.complement_nb_scores(X, np.array([0, 1]), np.array([1, 0]), np.ones(2), 1.0)


def test_average_ranks_are_scipys_rankdata():
    from scipy.stats import rankdata

    rng = np.random.default_rng(5)
    for n in (0, 1, 2, 7, 600):
        ties = rng.integers(0, max(1, n // 3), n).astype(np.float64)
        distinct = rng.random(n)
        assert np.array_equal(fitting.average_ranks(ties), rankdata(ties))
        assert np.array_equal(fitting.average_ranks(distinct), rankdata(distinct))
    assert fitting.average_ranks(np.array([0.5, 0.1, 0.5, 0.9])).tolist() == [2.5, 1.0, 2.5, 4.0]


def test_svm_and_naive_bayes_together_rank_as_each_alone(real):
    _, X, labels = real
    for train in _subsets(labels):
        y = labels[train]
        w = make("balance", "balanced", ratio=9.8).weights(y)
        a, b = fitting.svm_nb_scores(X, train, y, w, C=0.11, alpha=1.0, seed=3)
        svm = fitting.fit_linear_svc(X, train, y, w, C=0.11, seed=3)
        ref_a = np.asarray(X @ svm.coef_.ravel().astype(np.float32)).ravel()
        assert np.array_equal(a, ref_a)  # the SVM part: the very same product
        ref_b = fitting.complement_nb_scores(X, train, y, w, alpha=1.0)
        # naive Bayes summed in float32 as one difference: equal to rounding
        assert np.allclose(b, ref_b, rtol=1e-5, atol=1e-4)
        assert np.array_equal(np.argsort(b, kind="stable")[-50:],
                              np.argsort(ref_b, kind="stable")[-50:])


def test_together_is_none_when_a_direct_fit_is_unavailable(monkeypatch, real):
    _, X, labels = real
    train = next(_subsets(labels, 3))
    monkeypatch.setattr(fitting, "_CHECKED", _checked(svc=True, cnb=False))
    assert fitting.svm_nb_scores(X, train, labels[train], np.ones(len(train)), 0.11, 1.0, 0) is None


def test_nearest_include_similarity_is_the_best_cosine_and_kept_per_matrix():
    X = make("feature", "tfidf").fit_transform(
        ["aspirin stroke trial", "aspirin stroke", "soil erosion", "erosion terraces soil",
         "trial"]).first
    got = fitting.nearest_include_similarity(X, np.array([0, 2]))
    want = (X @ X[[0, 2]].T).toarray().max(axis=1)
    assert np.allclose(got, want, rtol=1e-6) and got[0] == pytest.approx(1.0)
    assert got[1] > got[4] > 0 and got[3] > 0
    # the include columns are remembered: a second call computes nothing new
    cached = fitting._SIMILAR.for_object(X, dict)
    assert sorted(k for k in cached if k >= 0) == [0, 2]
    grown = fitting.nearest_include_similarity(X, np.array([0, 2, 1]))
    assert sorted(k for k in cached if k >= 0) == [0, 1, 2]
    assert np.allclose(grown, (X @ X[[0, 1, 2]].T).toarray().max(axis=1), rtol=1e-6)
    # a smaller set (an include undone) is worked out afresh, not from the last answer
    assert np.allclose(fitting.nearest_include_similarity(X, np.array([2])),
                       (X @ X[2].T).toarray().ravel(), rtol=1e-6)
    assert fitting.nearest_include_similarity(X, np.array([], dtype=int)).tolist() == [0.0] * 5


def test_include_similarity_columns_kept_stay_within_their_budget(monkeypatch):
    X = make("feature", "tfidf").fit_transform(
        ["aspirin stroke trial", "aspirin stroke", "soil erosion", "erosion terraces soil",
         "trial"]).first
    # room for two columns of five float32 similarities
    monkeypatch.setattr(fitting, "SIMILAR_BUDGET", 2 * 4 * 5)
    got = fitting.nearest_include_similarity(X, np.array([0, 1, 2, 3]))
    assert np.allclose(got, (X @ X[[0, 1, 2, 3]].T).toarray().max(axis=1), rtol=1e-6)
    cached = fitting._SIMILAR.for_object(X, dict)
    assert sorted(k for k in cached if k >= 0) == [0, 1]
    # a set not grown from the last is computed again, from the columns kept and anew
    assert np.allclose(fitting.nearest_include_similarity(X, np.array([1, 3])),
                       (X @ X[[1, 3]].T).toarray().max(axis=1), rtol=1e-6)
    assert sorted(k for k in cached if k >= 0) == [0, 1]
