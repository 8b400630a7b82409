"""The linear SVM and complement naive Bayes fits of the prioritiser, with the
numbers scikit-learn's `LinearSVC` and `ComplementNB` would give, bit for bit,
at a fraction of their cost per fit.

A simulation refits the classifier hundreds of times on a few hundred rows, and
most of each fit went on input validation, label encoding and converting the
training rows to float64 with sorted indices, not on the solver. Here only the
training rows are converted (a store's whole matrix in float64 would be twice
its size again; complement naive Bayes alone, outside the default model, keeps a
float64 copy, `prepared`) and
each fit calls the same liblinear routine and the same numpy/scipy operations,
in the same order and dtypes, as scikit-learn does, so scores are identical and
a simulation's screening order does not change. The default model's pair of
fits (`svm_nb_scores`) scores naive Bayes with one float32 product instead of
two float64 ones: the same model, rounded differently in the last bits.

The liblinear entry point is private to scikit-learn, so on first use a small
fixed problem is fitted the direct way and checked against figures known from
scikit-learn's classes; if the numbers differ or the call fails (a
scikit-learn release changed it), every fit goes through the public classes.
It is kept because it pays: a simulation's fits cost about a third of what the
public classes cost (bench/bench_fastfit.py, figures in bench/RESULTS.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, TypeAlias

import numpy as np
from scipy import sparse

from screeners.prioritiser.cache import Memo
from screeners.prioritiser.views import CountedViews, Views, as_views

Matrix: TypeAlias = "sparse.csr_matrix | Views | CountedViews"  # or the views of one (first used)

# LinearSVC's defaults, which the prioritiser's SVM uses
_TOL = 1e-4
_MAX_ITER = 1000
_EPSILON = 0.1  # unused by the classification solvers, passed as scikit-learn does
_SOLVER_DUAL, _SOLVER_PRIMAL = 1, 2  # L2-regularised squared hinge loss


@dataclass(frozen=True)
class LinearFit:
    """A fitted linear model: the attributes `_linear_scores` reads."""

    coef_: np.ndarray  # shape (1, n_features)
    intercept_: np.ndarray  # shape (1,)


@dataclass(frozen=True)
class Prepared:
    """One-off conversions of a float feature matrix that every fit reuses."""

    sorted64: sparse.csr_matrix  # float64, indices sorted: what LinearSVC trains on
    same64: sparse.csr_matrix  # float64, X's own index order: what ComplementNB scores
    non_negative: bool  # ComplementNB refuses negative features


# per feature matrix (both views of a simulation and a store's, with room to spare)
_PREPARED: Memo[Prepared] = Memo(size=4)
_SIMILAR: Memo[dict[int, Any]] = Memo(size=4)
SIMILAR_BUDGET = 256 * 2**20  # bytes of include similarity columns kept per matrix
SIMILAR_GROUP = 8  # includes whose similarity columns one pass over the rows computes
_NON_NEGATIVE: Memo[bool] = Memo(size=4)
# per fit ("svc", "cnb"): whether the direct fit gives scikit-learn's numbers
_CHECKED: Memo[bool] = Memo(size=2)


def prepared(X: sparse.csr_matrix) -> Prepared:
    """The float64 copies of `X`, made on first use and kept while `X` lives.

    Keyed by the matrix object: callers never modify a feature matrix in place.
    """
    def make() -> Prepared:
        same64 = sparse.csr_matrix((X.data.astype(np.float64), X.indices, X.indptr),
                                   shape=X.shape)
        # astype sorts the indices, as LinearSVC's own conversion of its input does
        return Prepared(sorted64=sparse.csr_matrix(X).astype(np.float64), same64=same64,
                        non_negative=bool(X.nnz == 0 or X.data.min() >= 0))

    return _PREPARED.for_object(X, make)


def non_negative(X: sparse.csr_matrix) -> bool:
    """Whether X has no negative entry (ComplementNB refuses them), kept while X lives."""
    return _NON_NEGATIVE.for_object(X, lambda: bool(X.nnz == 0 or X.data.min() >= 0))


# --- the linear SVM ---------------------------------------------------------------


def _liblinear_seed(seed: int) -> int:
    # what LinearSVC hands liblinear for random_state=seed
    return int(np.random.RandomState(seed).randint(np.iinfo("i").max))


def _train_rows(X: Matrix, train: np.ndarray) -> sparse.csr_matrix:
    """The training rows of X's (first) matrix: only these rows are weighed or
    copied, never the whole matrix."""
    if isinstance(X, (Views, CountedViews)):
        return X.rows(train).first
    return X[train]


def _train_rows64(Xt: sparse.csr_matrix) -> sparse.csr_matrix:
    """The training rows in float64 with sorted indices, as LinearSVC converts its
    input (a copy: sorting in place must not touch the rows given)."""
    Xt = sparse.csr_matrix(Xt, dtype=np.float64, copy=True)
    Xt.sort_indices()
    return Xt


def _fit_svc_direct(X: Matrix, train: np.ndarray, y: np.ndarray, w: np.ndarray,
                    C: float, seed: int) -> LinearFit:
    return _fit_svc_rows(_train_rows(X, train), y, w, C, seed)


def _fit_svc_rows(rows: sparse.csr_matrix, y: np.ndarray, w: np.ndarray, C: float,
                  seed: int) -> LinearFit:
    """The direct fit on the training rows themselves."""
    from sklearn.svm import _liblinear

    Xt = _train_rows64(rows)
    # LinearSVC's dual="auto": the dual solver when there are fewer rows than features
    solver = _SOLVER_DUAL if Xt.shape[0] < Xt.shape[1] else _SOLVER_PRIMAL
    _liblinear.set_verbosity_wrap(0)
    # the class index of each label, as LinearSVC's label encoding gives it
    classes, y_ind = np.unique(np.asarray(y), return_inverse=True)
    raw, n_iter = _liblinear.train_wrap(
        Xt, np.require(y_ind.astype(np.float64).ravel(), requirements="W"), True, solver,
        _TOL, 1.0, C, np.ones(len(classes), dtype=np.float64), _MAX_ITER, _liblinear_seed(seed),
        _EPSILON, np.ascontiguousarray(w, dtype=np.float64))
    if max(n_iter) >= _MAX_ITER:
        from sklearn.exceptions import ConvergenceWarning

        warnings.warn("Liblinear failed to converge, increase the number of iterations.",
                      ConvergenceWarning)
    return LinearFit(raw[:, :-1], 1 * raw[:, -1])


def _fit_svc_public(X: Matrix, train: np.ndarray, y: np.ndarray, w: np.ndarray,
                    C: float, seed: int) -> LinearFit:
    from sklearn.svm import LinearSVC

    m = LinearSVC(C=C, random_state=seed)
    m.fit(_train_rows(X, train), y, sample_weight=w)
    return LinearFit(m.coef_, m.intercept_)


def fit_linear_svc(X: Matrix, train: np.ndarray, y: np.ndarray, w: np.ndarray,
                   C: float, seed: int) -> LinearFit:
    """`LinearSVC(C=C, random_state=seed).fit(X[train], y, sample_weight=w)`'s
    coefficients; y holds 0/1 with both present."""
    if _direct_ok("svc"):
        return _fit_svc_direct(X, train, y, w, C, seed)
    return _fit_svc_public(X, train, y, w, C, seed)


# --- complement naive Bayes --------------------------------------------------------


def _cnb_log_prob(Xt: sparse.csr_matrix, y: np.ndarray, w: np.ndarray,
                  alpha: float) -> np.ndarray:
    # the steps of ComplementNB.fit on the training rows Xt with sample weights:
    # its feature_log_prob_, row 0 for class 0 (exclude) and row 1 for class 1
    # (include)
    yb = (np.asarray(y) == 1).astype(np.int64).reshape(-1, 1)
    Y = np.concatenate((1 - yb, yb), axis=1).astype(np.float64)
    Y *= np.atleast_2d(np.asarray(w, dtype=np.float64)).T
    count = np.zeros((2, Xt.shape[1]), dtype=np.float64)
    count += Y.T @ Xt
    # comp = count.sum(axis=0) + alpha - count; -log(comp / comp.sum(axis=1)):
    # the same operations, in place (two rows as wide as the matrix, a store's
    # millions of columns)
    total = count.sum(axis=0)
    total += alpha
    comp = np.subtract(total, count, out=count)
    del total
    np.divide(comp, comp.sum(axis=1, keepdims=True), out=comp)
    np.log(comp, out=comp)
    return np.negative(comp, out=comp)


def _cnb_direct(X: Matrix, train: np.ndarray, y: np.ndarray, w: np.ndarray,
                alpha: float) -> np.ndarray:
    # ComplementNB's joint log likelihood for every row, include minus exclude
    views = as_views(X)
    log_prob = _cnb_log_prob(_train_rows(views, train), y, w, alpha)

    def scores(M: sparse.csr_matrix) -> np.ndarray:
        # one product per class: each row's sum runs over its entries in the same
        # order as scikit-learn's two-column product, at half the cost; a whole
        # matrix's float64 copy is kept, a block's is made as it is weighed
        X64 = prepared(M).same64 if M is views.owner else sparse.csr_matrix(
            (M.data.astype(np.float64), M.indices, M.indptr), shape=M.shape)
        return np.asarray(X64 @ log_prob[1] - X64 @ log_prob[0])

    return views.map_rows([scores])[0]


def _cnb_public(X: Matrix, train: np.ndarray, y: np.ndarray, w: np.ndarray,
                alpha: float) -> np.ndarray:
    from sklearn.naive_bayes import ComplementNB

    views = as_views(X)
    m = ComplementNB(alpha=alpha)
    m.fit(_train_rows(views, train), y, sample_weight=w)
    pos = list(m.classes_).index(1)

    def scores(M: sparse.csr_matrix) -> np.ndarray:
        jll = m.predict_joint_log_proba(M)
        return np.asarray(jll[:, pos] - jll[:, 1 - pos])

    return views.map_rows([scores])[0]


def complement_nb_scores(X: Matrix, train: np.ndarray, y: np.ndarray,
                         w: np.ndarray, alpha: float) -> np.ndarray:
    """The include-minus-exclude joint log likelihood of every row of X under
    `ComplementNB(alpha=alpha)` fitted on X[train], y (0/1, both present), w;
    packed views are scored a block at a time, never weighed whole."""
    if _direct_ok("cnb") and _non_negative(as_views(X)):
        return _cnb_direct(X, train, y, w, alpha)
    return _cnb_public(X, train, y, w, alpha)


# --- both at once -------------------------------------------------------------------


def svm_nb_scores(X: Matrix, train: np.ndarray, y: np.ndarray, w: np.ndarray,
                  C: float, alpha: float, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The linear SVM's and complement naive Bayes' scores of every row of X, up
    to a constant (the SVM's intercept), from two passes over X in float32
    instead of three; None when either direct fit is unavailable.

    The same models as `fit_linear_svc` and `complement_nb_scores`; the naive
    Bayes products are summed in float32 and as one difference, so its scores
    may differ from `complement_nb_scores` in the last bits, which can only swap
    records whose scores are that close.
    """
    views = as_views(X)
    if not (_direct_ok("svc") and _direct_ok("cnb") and _non_negative(views)):
        return None
    rows = _train_rows(views, train)
    svm = _fit_svc_rows(rows, y, w, C, seed)
    log_prob = _cnb_log_prob(rows, y, w, alpha)
    coef = svm.coef_.ravel().astype(np.float32)
    nb = (log_prob[1] - log_prob[0]).astype(np.float32)
    # X's own float32 copy: one pass costs a fifth less than over the float64 one;
    # both products from one pass over the rows
    a, b = views.map_rows([lambda M: _float32(M) @ coef, lambda M: _float32(M) @ nb])
    return a, b


def _float32(M: sparse.csr_matrix) -> sparse.csr_matrix:
    return M if M.dtype == np.float32 else M.astype(np.float32)


def _non_negative(X: Views | CountedViews) -> bool:
    # term counts weighed by a positive idf are never negative
    return True if isinstance(X, CountedViews) else non_negative(X.first)


def nearest_include_similarity(X: Matrix, includes: np.ndarray) -> np.ndarray:
    """For every row of X, its cosine similarity to the most similar of the rows
    `includes` (TF-IDF rows have unit length, so a dot product is the cosine).

    Each include's column of similarities is computed once per matrix and kept
    while X lives, with the last answer: a retrain that only adds includes pays
    for the new ones alone.
    """
    # each include row's similarity column, and under key -1 the last include
    # set asked for with its answer
    views = as_views(X)
    columns = _SIMILAR.for_object(views.owner, dict)
    wanted = set(np.asarray(includes).tolist())
    last_set, last_best = columns.get(-1, (frozenset(), None))
    if last_best is not None and last_set <= wanted:
        best, todo = last_best.copy(), wanted - last_set
    else:
        best, todo = np.zeros(views.n_rows, dtype=np.float32), wanted
    # a column per include grows with includes times records (4 MB an include at a
    # million records): past the budget, new columns are used and not kept
    room = SIMILAR_BUDGET // max(4 * views.n_rows, 1) - sum(1 for k in columns if k >= 0)
    new = []
    for i in sorted(todo):
        if i in columns:
            np.maximum(best, columns[i], out=best)
        else:
            new.append(i)
    for at in range(0, len(new), SIMILAR_GROUP):
        # a group of includes' columns from one pass over the rows
        group = new[at:at + SIMILAR_GROUP]
        dense = views.rows(np.asarray(group, dtype=np.int64)).first.T.toarray()
        made = views.map_rows([_times_column(dense, j) for j in range(len(group))])
        for i, col in zip(group, made):
            col = col.astype(np.float32)
            if room > 0:
                columns[i] = col
                room -= 1
            np.maximum(best, col, out=best)
    columns[-1] = (frozenset(wanted), best.copy())
    return best


def _times_column(dense: np.ndarray, j: int) -> Callable[[sparse.csr_matrix], Any]:
    return lambda M: M @ dense[:, j:j + 1]


def average_ranks(a: np.ndarray) -> np.ndarray:
    """1-based ranks of `a`, ties sharing their average rank: scipy's
    `rankdata(a)` without its per-call overhead, which a retrain on a few
    hundred records notices."""
    n = len(a)
    order = np.argsort(a, kind="mergesort")
    s = a[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], n]  # one past each tie group
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = np.repeat(0.5 * (starts + 1 + ends), ends - starts)
    return ranks


# --- the one-off check against scikit-learn -----------------------------------------


def _check_problem() -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    dense = (rng.random((40, 60)) * (rng.random((40, 60)) < 0.3)).astype(np.float32)
    X = sparse.csr_matrix(dense)
    # indices unsorted within rows, as in TfidfVectorizer's output
    for i in range(X.shape[0]):
        a, b = X.indptr[i], X.indptr[i + 1]
        X.indices[a:b], X.data[a:b] = X.indices[a:b][::-1].copy(), X.data[a:b][::-1].copy()
    X.has_sorted_indices = False
    train = rng.permutation(40)[:25]
    y = (rng.random(25) < 0.3).astype(np.int64)
    y[:2] = (0, 1)
    w = np.where(y == 1, 3.0, 1.0)
    return X, train, y, w


# What scikit-learn's public classes give on the check problem, summarised:
# LinearSVC(C=0.5, random_state=3): the coefficients' sum and their sum
# weighted by position (1, 2, ...), and the intercept; ComplementNB(alpha=1.0):
# the include-minus-exclude scores' sum and position-weighted sum.
# tests/test_fitting.py recomputes them with those classes.
KNOWN_ANSWERS = {
    "svc": (-0.33919113446325744, 61.63539947165985, -0.26375213985007007),
    "cnb": (-27.978154178369, -483.59193522732954),
}


def check_summary(which: str, X: sparse.csr_matrix, train: np.ndarray, y: np.ndarray,
                  w: np.ndarray, public: bool = False) -> tuple[float, ...]:
    """The figures `KNOWN_ANSWERS` holds, from the direct fit or (`public`) from
    scikit-learn's class."""
    if which == "svc":
        fit = (_fit_svc_public if public else _fit_svc_direct)(X, train, y, w, 0.5, 3)
        coef = fit.coef_.ravel()
        return (float(coef.sum()), float(coef @ np.arange(1, len(coef) + 1)),
                float(fit.intercept_[0]))
    scores = (_cnb_public if public else _cnb_direct)(X, train, y, w, 1.0)
    return float(scores.sum()), float(scores @ np.arange(1, len(scores) + 1))


def _direct_ok(which: str) -> bool:
    # checked against figures known from scikit-learn's classes rather than by
    # running them: fitting those classes on the check problem costs more than
    # the check needs
    def check() -> bool:
        X, train, y, w = _check_problem()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                got = check_summary(which, X, train, y, w)
            return bool(np.allclose(got, KNOWN_ANSWERS[which], rtol=1e-9, atol=1e-12))
        except Exception:  # any change in scikit-learn's internals: use its public API
            return False

    return _CHECKED.get_or_make(which, None, check)


def uses_direct_path() -> dict[str, bool]:
    """Whether each fit takes the direct path (False: scikit-learn's classes)."""
    return {k: _direct_ok(k) for k in ("svc", "cnb")}
