"""The prioritiser's building blocks: classifiers, balancing, query
strategies, and `Model`, the four kinds together. The feature matrices they
exchange (`Views`, `CountedViews`) are in `views`: a classifier fits on the
training rows (`rows`) and scores every row through `map_rows`. The feature
extractor is in `features`, the named models (the default among them) in
`presets`.

Each component is a small frozen dataclass with a `name` and explicit
parameters, registered by kind, so a model is fully described by its settings
(`describe()`) and a simulation is reproducible from those settings and a seed.
`make(kind, name, **params)` builds one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence, TypeVar

import numpy as np

from screeners.prioritiser import fitting
# the matrices and the errors the components exchange, importable from here too
from screeners.prioritiser.views import (ComponentError, CountedViews, NoWordsError,  # noqa: F401
                                         Views)

Features = Views | CountedViews  # whole matrices, or term counts weighed a block at a time


C = TypeVar("C", bound="type[Component]")

KINDS = ("feature", "classifier", "balance", "query")
REGISTRY: dict[str, dict[str, type]] = {k: {} for k in KINDS}


def register(kind: str) -> Callable[[C], C]:
    def deco(cls: C) -> C:
        REGISTRY[kind][cls.name] = cls
        return cls
    return deco


def make(kind: str, name: str, **params: Any) -> Any:
    """Build the registered component `name` of `kind` with `params`."""
    if kind not in REGISTRY:
        raise ComponentError(f"Unknown component kind {kind!r}: choose one of {', '.join(KINDS)}.")
    cls = REGISTRY[kind].get(name)
    if cls is None:
        raise ComponentError(
            f"Unknown {kind} {name!r}: choose one of {', '.join(sorted(REGISTRY[kind]))}.")
    try:
        return cls(**params)
    except TypeError:
        fields = ", ".join(f.name for f in dataclasses.fields(cls)) or "none"
        raise ComponentError(f"Bad parameters for {kind} {name!r}: it takes {fields}.") from None


class Component:
    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **dataclasses.asdict(self)}  # type: ignore[call-overload]


# --- balancing: sample weights for the training set ---------------------------


@register("balance")
@dataclass(frozen=True)
class NoBalance(Component):
    """Every labelled record weighs the same."""

    name: ClassVar[str] = "none"
    kind: ClassVar[str] = "balance"

    def weights(self, y: np.ndarray) -> np.ndarray:
        return np.ones(len(y), dtype=np.float64)


@register("balance")
@dataclass(frozen=True)
class Balanced(Component):
    """The includes as a class weigh `ratio` times the excludes as a class (ratio 1
    is the usual "balanced" class weight), rescaled so the weights sum to the
    number of labelled records and the classifier's C keeps its meaning.
    Includes are rare; without this the model learns "exclude everything"."""

    name: ClassVar[str] = "balanced"
    kind: ClassVar[str] = "balance"
    ratio: float = 1.0

    def weights(self, y: np.ndarray) -> np.ndarray:
        n1 = int(y.sum())
        n0 = len(y) - n1
        if n0 == 0 or n1 == 0:
            return np.ones(len(y), dtype=np.float64)
        w = np.where(y == 1, self.ratio / n1, 1.0 / n0)
        return w * (len(y) / w.sum())


@register("balance")
@dataclass(frozen=True)
class Dynamic(Component):
    """Class weights tied to the counts labelled: the includes as a class weigh
    `a * (n0 / n1) ** alpha` times the excludes, so the push towards includes
    grows with the imbalance seen so far (alpha 0 is `balanced` with ratio a)."""

    name: ClassVar[str] = "dynamic"
    kind: ClassVar[str] = "balance"
    a: float = 2.0
    alpha: float = 0.5

    def weights(self, y: np.ndarray) -> np.ndarray:
        n1 = int(y.sum())
        n0 = len(y) - n1
        if n0 == 0 or n1 == 0:
            return np.ones(len(y), dtype=np.float64)
        return Balanced(ratio=self.a * (n0 / n1) ** self.alpha).weights(y)


# --- classifiers: fit on the labelled rows, score every row ---------------------


def _check_two_classes(y: np.ndarray) -> None:
    if len(set(y.tolist())) < 2:
        raise ComponentError("Training needs at least one include and one exclude.")


def _linear_scores(X: Features, model: Any) -> np.ndarray:
    """Decision values of a fitted linear model for every row of X's first matrix.

    One sparse product in float32 instead of `decision_function`, which would
    copy X to float64 on every retrain.
    """
    coef = model.coef_.ravel().astype(np.float32)
    return X.map_rows([lambda M: M @ coef])[0] + model.intercept_[0]


@register("classifier")
@dataclass(frozen=True)
class Logistic(Component):
    """L2-regularised logistic regression (lbfgs: liblinear was 40x slower than the SVM)."""

    name: ClassVar[str] = "logistic"
    kind: ClassVar[str] = "classifier"
    C: float = 1.0

    def fit_scores(self, X: Features, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        from sklearn.linear_model import LogisticRegression

        m = LogisticRegression(C=self.C, solver="lbfgs", max_iter=200, random_state=seed)
        m.fit(X.rows(train).first, y, sample_weight=w)
        return _linear_scores(X, m)


@register("classifier")
@dataclass(frozen=True)
class LinearSvm(Component):
    """Linear support vector machine (squared hinge loss)."""

    name: ClassVar[str] = "svm"
    kind: ClassVar[str] = "classifier"
    C: float = 0.11

    def fit_scores(self, X: Features, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        m = fitting.fit_linear_svc(X, train, y, w, C=self.C, seed=seed)  # = LinearSVC's fit
        return _linear_scores(X, m)


@register("classifier")
@dataclass(frozen=True)
class ComplementNb(Component):
    """Complement naive Bayes (suited to unbalanced text classes)."""

    name: ClassVar[str] = "nb"
    kind: ClassVar[str] = "classifier"
    alpha: float = 1.0

    def fit_scores(self, X: Features, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        # = ComplementNB's (outside the default model, or where its direct fit is not used)
        return fitting.complement_nb_scores(X, train, y, w, alpha=self.alpha)


@register("classifier")
@dataclass(frozen=True)
class Sgd(Component):
    """A linear model fitted by stochastic gradient descent (`loss` as scikit-learn's)."""

    name: ClassVar[str] = "sgd"
    kind: ClassVar[str] = "classifier"
    loss: str = "modified_huber"
    alpha: float = 1e-4

    def fit_scores(self, X: Features, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        from sklearn.linear_model import SGDClassifier

        m = SGDClassifier(loss=self.loss, alpha=self.alpha, max_iter=50, tol=1e-3,
                          random_state=seed)
        m.fit(X.rows(train).first, y, sample_weight=w)
        return _linear_scores(X, m)


@register("classifier")
@dataclass(frozen=True)
class SvmNbEnsemble(Component):
    """The linear SVM and complement naive Bayes, both fitted with the balance
    weights, their ranks averaged (`nb_share` the naive Bayes weight): the two
    err on different records, and the average found includes sooner than the
    SVM alone on the mean over the benchmark sets. With `knn_share` > 0 a third
    ranking joins the average: each record's cosine similarity to its nearest
    labelled include. With `view_share` > 0 a second linear SVM, fitted on the
    second matrix (`Views.second`; the default's keeps numbers), joins with
    that weight; on a matrix without one it would fit the same rows as the first
    and give the same ranks, so its share goes to the first SVM. Scores are ranks
    scaled to (-0.5, 0.5), centred on the middle one."""

    name: ClassVar[str] = "svm-nb"
    kind: ClassVar[str] = "classifier"
    C: float = 0.11
    alpha: float = 1.0
    nb_share: float = 0.3
    knn_share: float = 0.0
    view_share: float = 0.0

    def fit_scores(self, X: Features, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        both = fitting.svm_nb_scores(X, train, y, w, self.C, self.alpha, seed)
        if both is None:  # scikit-learn's own classes
            both = (LinearSvm(C=self.C).fit_scores(X, train, y, w, seed),
                    ComplementNb(alpha=self.alpha).fit_scores(X, train, y, w, seed))
        a, b = both
        second = X.n_views > 1
        svm_share = (1 - self.nb_share - self.knn_share
                     - (self.view_share if second else 0))
        r = svm_share * fitting.average_ranks(a) + self.nb_share * fitting.average_ranks(b)
        if second:
            r += self.view_share * fitting.average_ranks(
                LinearSvm(C=self.C).fit_scores(X.view(1), train, y, w, seed))
        if self.knn_share:
            near = fitting.nearest_include_similarity(X, train[np.asarray(y) == 1])
            r += self.knn_share * fitting.average_ranks(near)
        return (r - r.mean()) / len(r)


# --- query strategies: which unlabelled records come next -----------------------


@register("query")
@dataclass(frozen=True)
class MaxQuery(Component):
    """The records the model scores highest (ties: lowest position first)."""

    name: ClassVar[str] = "max"
    kind: ClassVar[str] = "query"

    def select(self, scores: np.ndarray, pool: np.ndarray, n: int,
               rng: np.random.Generator) -> np.ndarray:
        s = scores[pool]
        if n >= len(pool):
            return pool[np.lexsort((pool, -s))]
        part = np.argpartition(-s, n - 1)[:n]
        order = np.lexsort((pool[part], -s[part]))
        return pool[part[order]]


@register("query")
@dataclass(frozen=True)
class MaxRandomQuery(Component):
    """Mostly the top records, with a share `random_share` picked at random so the
    model sees some of what it ranks low (guards against a narrow early model)."""

    name: ClassVar[str] = "max-random"
    kind: ClassVar[str] = "query"
    random_share: float = 0.05

    def select(self, scores: np.ndarray, pool: np.ndarray, n: int,
               rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.random_share:
            pick = rng.choice(pool, size=min(n, len(pool)), replace=False)
            return np.asarray(pick)
        return MaxQuery().select(scores, pool, n, rng)


@register("query")
@dataclass(frozen=True)
class UncertaintyQuery(Component):
    """The records closest to the decision boundary (learns fastest, finds slower)."""

    name: ClassVar[str] = "uncertainty"
    kind: ClassVar[str] = "query"

    def select(self, scores: np.ndarray, pool: np.ndarray, n: int,
               rng: np.random.Generator) -> np.ndarray:
        # decision scores are centred on the boundary at 0
        closeness = -np.abs(scores[pool])
        return pool[np.lexsort((pool, -closeness))[:n]]


@register("query")
@dataclass(frozen=True)
class MaxUncertaintyQuery(Component):
    """Mostly the top records; with probability `uncertainty_share` a batch is the
    records nearest the decision boundary instead."""

    name: ClassVar[str] = "max-uncertainty"
    kind: ClassVar[str] = "query"
    uncertainty_share: float = 0.1

    def select(self, scores: np.ndarray, pool: np.ndarray, n: int,
               rng: np.random.Generator) -> np.ndarray:
        if rng.random() < self.uncertainty_share:
            return UncertaintyQuery().select(scores, pool, n, rng)
        return MaxQuery().select(scores, pool, n, rng)


# --- records without text ------------------------------------------------------

#: A record with no usable text (no title or abstract, or none of its words in the
#: vocabulary) gets no features, so every model gives it the same arbitrary score
#: (a linear model's intercept) and buries it wherever that falls. Such records are
#: held back while the ranking still finds includes, and shown together once this
#: many records in a row have been excluded: the point where the ranked queue has
#: stopped paying off and a look at the records the model cannot judge costs least.
#: Measured on the four benchmark sets that have such records (seeds 1-3, mean
#: WSS@95): ADHD .307 -> .513 (its only text-less include is otherwise found last),
#: ACE .743 -> .787, OralHypo unchanged, PPI .441 -> .398 (44 text-less records,
#: no include); showing them first instead gave ADHD .422 and PPI .394, and waiting
#: for 200 excludes gave ADHD .323.
TEXTLESS_AFTER_EXCLUDES = 50


def textless_rows(X: Features) -> np.ndarray:
    """Row positions of X with no feature at all."""
    return np.flatnonzero(X.row_lengths() == 0)


def textless_due(run_of_excludes: int) -> bool:
    """Whether the records without text come next rather than last."""
    return run_of_excludes >= TEXTLESS_AFTER_EXCLUDES


# --- models -------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """A feature extractor + classifier + balancing + query strategy."""

    feature: Any
    classifier: Any
    balance: Any
    query: Any

    def describe(self) -> dict[str, Any]:
        return {k: getattr(self, k).describe() for k in KINDS}

    @property
    def label(self) -> str:
        return "+".join(getattr(self, k).name for k in KINDS)


def build_model(parts: dict[str, tuple[str, dict[str, Any]]]) -> Model:
    return Model(**{k: make(k, *parts[k][:1], **parts[k][1]) for k in KINDS})
