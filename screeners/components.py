"""The prioritiser's building blocks: feature extractors, classifiers, balancing,
query strategies, and the named models assembled from them.

Each component is a small frozen dataclass with a `name` and explicit
parameters, registered by kind, so a model is fully described by its settings
(`describe()`) and a simulation is reproducible from those settings and a seed.
`make(kind, name, **params)` builds one; `resolve_model(spec)` turns a `--model`
value (a preset name, or `feature+classifier+balance+query`) into a `Model`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
from scipy import sparse

from base.errors import ClusterError
from screeners import fastfit, termcounts


class ComponentError(ClusterError):
    pass


class NoWordsError(ComponentError):
    """Texts there are, but not one term the feature extractor counts."""


class ViewMatrix(sparse.csr_matrix):
    """A feature matrix that carries further views of the same records: another
    matrix per view, row for row, in `extra_views`. As a matrix it is the first
    view, the one every ranking uses unless it asks for another (`views`); a
    matrix made from it by slicing or conversion is an ordinary one."""

    extra_views: tuple[sparse.csr_matrix, ...] = ()

    @classmethod
    def of(cls, first: sparse.csr_matrix, *others: sparse.csr_matrix) -> ViewMatrix:
        if any(o.shape[0] != first.shape[0] for o in others):
            raise ComponentError("Every view needs a row per record: the views differ in rows.")
        m = cls(first)
        m.extra_views = tuple(sparse.csr_matrix(o) for o in others)
        return m


def views(X: sparse.csr_matrix) -> tuple[sparse.csr_matrix, ...]:
    """X's views of the records: X itself first, then any it carries."""
    return (X, *getattr(X, "extra_views", ()))


KINDS = ("feature", "classifier", "balance", "query")
REGISTRY: dict[str, dict[str, type]] = {k: {} for k in KINDS}


def register(kind: str) -> Callable[[type], type]:
    def deco(cls: type) -> type:
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


# --- feature extractors -----------------------------------------------------


@register("feature")
@dataclass(frozen=True)
class Tfidf(Component):
    """TF-IDF over title + abstract (+ keywords), fitted on every record at once
    (the texts are known before screening starts; no labels are used). With
    `title_repeats` > 1 and the titles given, each text starts with its title
    that many times in all, so the title's words weigh more than the abstract's.
    With `numbers` False, tokens of digits alone ("2010", "95") are no terms; with
    `stem_words`, one-word terms fold plurals ("studies" counts as "study",
    `termcounts.plural_stem`) while word pairs keep their words as written. With
    `number_view` (and `numbers` False), the matrix (a `ViewMatrix`) carries a
    second view of the records with the same settings but numbers kept, for a
    classifier that fits a second model on it (`svm-nb`'s `view_share`)."""

    name: ClassVar[str] = "tfidf"
    kind: ClassVar[str] = "feature"
    ngram_max: int = 2
    sublinear_tf: bool = True
    min_df: int = 1
    max_df: float = 1.0
    stop_words: str | None = None
    title_repeats: int = 1
    numbers: bool = True
    stem_words: bool = False
    number_view: bool = False

    def vectorizer(self) -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer

        # the terms count_terms counts, whichever word settings are on
        analyzer = termcounts.Analyzer(self.ngram_max, self._stop_set(), self.numbers,
                                       self.stem_words)
        return TfidfVectorizer(analyzer=analyzer, sublinear_tf=self.sublinear_tf,
                               min_df=self.min_df, max_df=self.max_df, dtype=np.float32)

    def _stop_set(self) -> frozenset[str] | None:
        if not self.stop_words:
            return None
        from sklearn.feature_extraction.text import TfidfVectorizer

        return frozenset(TfidfVectorizer(stop_words=self.stop_words).get_stop_words())

    def fit(self, texts: Sequence[str], titles: Sequence[str] | None = None
            ) -> tuple[Any, sparse.csr_matrix]:
        """The fitted vectoriser and the matrix of `texts` (each a record's title,
        abstract and keywords; `titles` their titles alone, for `title_repeats`)."""
        settings, X, vocabulary, idf = self._fit_texts(texts, titles)
        vec = settings.vectorizer()
        vec.set_params(vocabulary=vocabulary)
        vec.idf_ = idf
        return vec, X

    def fit_transform(self, texts: Sequence[str], titles: Sequence[str] | None = None
                      ) -> sparse.csr_matrix:
        # no vectoriser is built: a simulation needs the matrix alone
        return self._fit_texts(texts, titles)[1]

    def _fit_texts(self, texts: Sequence[str], titles: Sequence[str] | None
                   ) -> tuple[Tfidf, sparse.csr_matrix, dict[str, int], np.ndarray]:
        if titles is not None and self.title_repeats > 1:
            if len(titles) != len(texts):
                raise ComponentError("Every text needs its title: the two lists differ in length.")
            more = self.title_repeats - 1
            texts = [" ".join([t.strip()] * more + [x]) if t and t.strip() else x
                     for t, x in zip(titles, texts)]
        if not any(t.strip() for t in texts):
            raise ComponentError("No record has a title or abstract: there is no text to rank by.")
        tokens = termcounts.tokenize(texts, self._stop_set())
        settings, X, vocabulary, idf = self._fit_bounded(texts, tokens)
        if self.number_view and not self.numbers:
            # the same tokens counted again with numbers kept: the second view
            numbers_kept = dataclasses.replace(self, numbers=True, number_view=False)
            X = ViewMatrix.of(X, numbers_kept._fit_bounded(texts, tokens)[1])
        return settings, X, vocabulary, idf

    def _fit_bounded(self, texts: Sequence[str], tokens: termcounts.Tokens
                     ) -> tuple[Tfidf, sparse.csr_matrix, dict[str, int], np.ndarray]:
        try:
            return (self, *self._fit(texts, tokens))
        except ValueError:
            # a handful of records can leave no term inside the document-frequency
            # bounds; every term then counts
            every_term = dataclasses.replace(self, min_df=1, max_df=1.0)
            try:
                return (every_term, *every_term._fit(texts, tokens))
            except ValueError:
                raise NoWordsError(
                    "No record has a word to rank by: the titles and abstracts hold only "
                    "numbers, single letters or stop words.") from None

    def _fit(self, texts: Sequence[str], tokens: termcounts.Tokens | None = None
             ) -> tuple[sparse.csr_matrix, dict[str, int], np.ndarray]:
        # TfidfVectorizer.fit_transform's matrix and idf, computed in bulk
        counts, vocabulary = termcounts.count_terms(texts, self.ngram_max, self.min_df,
                                                    self.max_df, self._stop_set(), self.numbers,
                                                    self.stem_words, tokens)
        X, idf = termcounts.tfidf_weights(counts, self.sublinear_tf)
        return X, vocabulary, idf


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


def _linear_scores(X: sparse.csr_matrix, model: Any) -> np.ndarray:
    """Decision values of a fitted linear model for every row of X.

    One sparse product in float32 instead of `decision_function`, which would
    copy X to float64 on every retrain.
    """
    return np.asarray(X @ model.coef_.ravel().astype(np.float32)).ravel() + model.intercept_[0]


@register("classifier")
@dataclass(frozen=True)
class Logistic(Component):
    """L2-regularised logistic regression (lbfgs: liblinear was 40x slower than the SVM)."""

    name: ClassVar[str] = "logistic"
    kind: ClassVar[str] = "classifier"
    C: float = 1.0

    def fit_scores(self, X: sparse.csr_matrix, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        from sklearn.linear_model import LogisticRegression

        m = LogisticRegression(C=self.C, solver="lbfgs", max_iter=200, random_state=seed)
        m.fit(X[train], y, sample_weight=w)
        return _linear_scores(X, m)


@register("classifier")
@dataclass(frozen=True)
class LinearSvm(Component):
    """Linear support vector machine (squared hinge loss)."""

    name: ClassVar[str] = "svm"
    kind: ClassVar[str] = "classifier"
    C: float = 0.11

    def fit_scores(self, X: sparse.csr_matrix, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        m = fastfit.fit_linear_svc(X, train, y, w, C=self.C, seed=seed)  # = LinearSVC's fit
        return _linear_scores(X, m)


@register("classifier")
@dataclass(frozen=True)
class ComplementNb(Component):
    """Complement naive Bayes (suited to unbalanced text classes)."""

    name: ClassVar[str] = "nb"
    kind: ClassVar[str] = "classifier"
    alpha: float = 1.0

    def fit_scores(self, X: sparse.csr_matrix, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        return fastfit.complement_nb_scores(X, train, y, w, alpha=self.alpha)  # = ComplementNB's


@register("classifier")
@dataclass(frozen=True)
class Sgd(Component):
    """A linear model fitted by stochastic gradient descent (`loss` as scikit-learn's)."""

    name: ClassVar[str] = "sgd"
    kind: ClassVar[str] = "classifier"
    loss: str = "modified_huber"
    alpha: float = 1e-4

    def fit_scores(self, X: sparse.csr_matrix, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        from sklearn.linear_model import SGDClassifier

        m = SGDClassifier(loss=self.loss, alpha=self.alpha, max_iter=50, tol=1e-3,
                          random_state=seed)
        m.fit(X[train], y, sample_weight=w)
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
    matrix's second view (`ViewMatrix`; the default's keeps numbers), joins with
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

    def fit_scores(self, X: sparse.csr_matrix, train: np.ndarray, y: np.ndarray,
                   w: np.ndarray, seed: int) -> np.ndarray:
        _check_two_classes(y)
        both = fastfit.svm_nb_scores(X, train, y, w, self.C, self.alpha, seed)
        if both is None:  # scikit-learn's own classes
            both = (LinearSvm(C=self.C).fit_scores(X, train, y, w, seed),
                    ComplementNb(alpha=self.alpha).fit_scores(X, train, y, w, seed))
        a, b = both
        second = views(X)[1:2]
        svm_share = 1 - self.nb_share - self.knn_share - (self.view_share if second else 0)
        r = svm_share * fastfit.average_ranks(a) + self.nb_share * fastfit.average_ranks(b)
        if second:
            r += self.view_share * fastfit.average_ranks(
                LinearSvm(C=self.C).fit_scores(second[0], train, y, w, seed))
        if self.knn_share:
            near = fastfit.nearest_include_similarity(X, train[np.asarray(y) == 1])
            r += self.knn_share * fastfit.average_ranks(near)
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


def textless_rows(X: sparse.csr_matrix) -> np.ndarray:
    """Row positions of X with no feature at all."""
    return np.flatnonzero(np.diff(X.indptr) == 0)


def excludes_in_a_row(labels: Sequence[int]) -> int:
    """How many of the last labels, counted back from the end, are excludes."""
    run = 0
    for v in reversed(list(labels)):
        if v:
            break
        run += 1
    return run


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


#: named models. "default" was chosen by simulation on all nine labelled sets of
#: bench/bench_simulate.py (one setting for every set, by the mean WSS@95 over sets,
#: seeds 1-3; the winner confirmed with seeds 1-5): the ranks of a linear SVM
#: (C=0.11) and of complement naive Bayes averaged 0.7:0.3, includes weighted 9.8x,
#: uni+bigram sublinear TF-IDF with 2 <= df <= 95 %: .581. Tried on the same sets
#: and seeds: the SVM alone (the previous default, ASReview's elas_u4 settings
#: but min_df 2): .575; naive Bayes share 0.15: .579, 0.5: .569; SVM C=0.05:
#: .570, C=0.3: .573; includes weighted 20x: .575; 1-3-grams: .578; unigrams only:
#: .564; dynamic balance (includes 2*sqrt(n0/n1) times): .569; a 10 % share of
#: uncertainty batches: .555; SGD with modified Huber loss: .511; this default
#: with 1-3-grams: .579, with naive Bayes alpha 0.1: .577. With seeds 1-5 the
#: default gives .580 against .575 for the SVM alone, at about 1.4x its fit time.
#: Earlier, on four sets: min_df 1 or English stop words lowered WSS@95; logistic
#: regression (liblinear) was 40x and (lbfgs) 13x slower to fit than the SVM.
#: Then a third ranking joined the average: each record's cosine similarity to its
#: nearest labelled include (weight 0.15, naive Bayes 0.2, the SVM 0.65), which
#: finds includes that sit close to one known include but apart from the rest.
#: All nine sets, seeds 1-5, mean WSS@95: .614 against .606 for the SVM and naive
#: Bayes 0.7:0.3 (per set PTSD .927/.931, Wilson .805/.807, Nagtegaal .709/.675,
#: Bannach-Brown .447/.425, Kitchenham .711/.731, ACE .799/.787, ADHD .569/.550,
#: OralHypo .153/.150, PPI .407/.399). Tried on the same seeds: nearest-include
#: weight 0.10: .609, 0.20: .614 (0.15 with naive Bayes 0.3: .614 but Bannach-Brown
#: .406, with 0.1: .608); the mean of the 3 nearest: .612-.614; a weight that
#: shrinks as includes are found (0.25 * 50 / (50 + includes)): .611; the
#: includes' centroid (Rocchio) instead, weight 0.2: .601; a second SVM with
#: C=1 at 0.3: .581; C growing with the labels: .552, with the includes: .606;
#: records without text shown after 30 or 100 excludes in a row instead of 50:
#: .606, .604; retraining after every label: .606; includes weighted 5x: .609.
#: Last, the title counted twice (each text starts with its title once more):
#: .625 (PTSD .927, Wilson .803, Nagtegaal .704, Bannach-Brown .451, Kitchenham
#: .743, ACE .800, ADHD .592, OralHypo .174, PPI .427); three times: .624, twice
#: with nearest-include weight 0.20: .622, with naive Bayes 0.3: .624, without the
#: nearest include: .616.
#: Then terms in more than 80 % of the records dropped (max_df 0.8, was 0.95) and
#: the SVM's C lowered to 0.08 (was 0.11): seeds 1-5 .628 against .625 (PTSD .927,
#: Wilson .808, Nagtegaal .708, Bannach-Brown .459, Kitchenham .733, ACE .799,
#: ADHD .600, OralHypo .185, PPI .431), seeds 6-10 .625 against .623, seeds 11-15
#: .622 against .619 (15 seeds: .625 against .622), and a simulation takes about
#: an eighth less CPU time (fewer terms, fewer solver iterations). Each change alone
#: (seeds 1-5): max_df 0.8 .626, C 0.08 .626.
#: Tried after that (seeds 1-5, on this default): a second SVM over TF-IDF of raw
#: term counts (not sublinear) at 0.2 of the average: .628 (Wilson .811, Nagtegaal
#: .714, PPI .442, Kitchenham .724), at 0.35: .626 (OralHypo .149); with its naive
#: Bayes at 0.05 too: .629; raw counts alone: .617 (PPI .488, Nagtegaal .635);
#: counts to the power 0.85: .619 (Nagtegaal .618); 1 + 1.5 log(count): .627;
#: 200 random unscreened records as light excludes: .626; the three rankings'
#: weights adapted to how high each had ranked the includes found since: .629, and
#: with the raw-count SVM and naive Bayes: .631, but .627 on seeds 6-10 (default
#: .625) at twice the CPU time per simulation; idf raised to the power 1.5 (rare
#: terms weigh more): .618 (Wilson .825 and PPI .444, but Nagtegaal .673 and
#: Kitchenham .687), to 0.7: .621; the SVM alone on idf^1.5 features: .620 (Wilson
#: .824, Kitchenham .686), on idf^1.25: .623; the nearest include on idf^1.5: .627.
#: The sets pull apart: what lifts Wilson and PPI (rarer terms, raw counts) costs
#: Nagtegaal, Kitchenham and OralHypo about as much.
#: Last, the words themselves: tokens of digits alone ("2010", "95", "300")
#: dropped and one-word terms counted by Harman's plural stem (word pairs as
#: written), with naive Bayes at 0.15 and the SVM at 0.70. Seeds 1-5: .631 against
#: .629 (PTSD .927, Wilson .831, Nagtegaal .713, Bannach-Brown .469, Kitchenham
#: .718, ACE .803, ADHD .584, OralHypo .172, PPI .466); seeds 6-10 .626 against
#: .625, seeds 11-15 .620 against .621: the mean is unchanged, but Wilson (+.02 in
#: every block of seeds), PPI and Nagtegaal, the three sets where ASReview's
#: default had been ahead, gain what OralHypo, Kitchenham and ADHD give up; 7 of
#: the 9 sets at or above ASReview's figure in two blocks of five seeds, 6 in the
#: third (6, 6, 6 before). Each part alone (seeds 1-5, naive Bayes 0.2): numbers
#: dropped .627 (Wilson .830, Nagtegaal .701), plurals folded in every term .623
#: (Nagtegaal .742, but Kitchenham .629: with seed 1 its two includes titled
#: "...: A Literature Review" came 535th and 536th instead of 235th and 246th), in
#: word pairs only .627, in single words only .627; both together .629, with
#: naive Bayes 0.25 .629, 0.10 .631; the number-free, plural-folded matrix for
#: one or two of the three rankings (the SVM; naive Bayes; the nearest include;
#: both of the last two) and the plain one for the rest: .627-.629. On the
#: previous default: the SVM with the ordinary hinge loss .625; the rankings'
#: scores averaged as z-scores instead of ranks .616.
#: Tried after that, on this default (seeds 1-5, default .6305): word pairs
#: weighted 1.2 against single words .633 (Kitchenham .746, Nagtegaal .703), 1.1
#: .631, 0.85 .626; single words counted both as written and plural-folded .623
#: (Nagtegaal .725, Bannach-Brown .420); the title once .622 (Nagtegaal .725,
#: OralHypo .155), three times .629 (Nagtegaal .698); the three rankings' weights
#: adapted to how they ranked the includes found since .631; includes weighted 7x
#: .628, 14x .629; naive Bayes alpha 0.5 .628, 2 .630. Then with the simulation's
#: batches scaled by the records (simulate.Schedule; default .6319): numbers kept
#: .626 (Nagtegaal .723, OralHypo .184, but Kitchenham .676, Wilson .813), an
#: effect of two-digit numbers alone (dropping only those gives the figures of
#: dropping every number, dropping only years those of dropping none); numbers as
#: one word per count of digits .622 (Kitchenham .648); a second SVM over the
#: same terms with numbers kept, at 0.35 of the average and the first SVM at
#: 0.35: .633 and all nine sets at or above ASReview's figures (Wilson .822,
#: Nagtegaal .719, OralHypo .180), seeds 6-10 .628 (all nine), seeds 11-15 .622
#: (Nagtegaal .714 short); at 0.30 Nagtegaal .717, at 0.40 Wilson .821, so only
#: just, for a second matrix and a second SVM fit: OralHypo's simulation took
#: 2.05 s of CPU against 1.06 s, where ASReview's whole run takes 5.8 s, so under
#: 3x its speed; both matrices side by side in one .629
#: (Kitchenham .698). Numbers kept as single words but left out of word pairs
#: (pairs join the words around them, which Kitchenham needs: numbers kept in
#: pairs and weighted 0.5 or 0.25 gave it .690, .686), weighted 0.7: .632 (Nagtegaal
#: .719, Wilson .824), but seeds 6-10 .626 and 11-15 .619 (PPI .440 and .439
#: short); weighted 0.5: .632, 1: .629 (Wilson .816).
#: Last, that second SVM taken into the default: the feature extractor's
#: `number_view` hands the classifier the texts a second time with numbers kept
#: (`ViewMatrix`), the SVM fitted on it weighs 0.35 and the first one 0.35, and
#: the simulation retrains per 750 records instead of 1,500 (`simulate.Schedule`),
#: about as many fits in all as before since each retrain now fits twice. Seeds
#: 1-5: .6334 against .6319, all nine sets at or above ASReview's figures (PTSD
#: .925, Wilson .831, Nagtegaal .721, Bannach-Brown .470, Kitchenham .710, ACE
#: .802, ADHD .591, OralHypo .180, PPI .470); seeds 6-10: .6266 against .6273
#: (Nagtegaal .715 and PPI .443 short of .719 and .444); seeds 11-15: .6237
#: against .6201 (all nine); 15 seeds .6279 against .6264. OralHypo gains in
#: every block (.180, .181, .180 against .174, .176, .180). The same model
#: retraining per 1,500 records: .6329 (all nine) at 1.5x the CPU time; per 1,000
#: .6318 (OralHypo .163), per 500 .6318 (OralHypo .162): OralHypo's figure moves
#: by .02 with where the batches fall alone. The second SVM at 0.30 (the first at
#: 0.40): .6318 (OralHypo .171); at 0.40 (the first at 0.30): .6290 (OralHypo
#: .172, PPI .442).
_DEFAULT_FEATURE = ("tfidf", {"min_df": 2, "max_df": 0.95})
PRESETS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "default": {"feature": ("tfidf", {"min_df": 2, "max_df": 0.8, "title_repeats": 2,
                                      "numbers": False, "stem_words": True,
                                      "number_view": True}),
                "classifier": ("svm-nb", {"C": 0.08, "nb_share": 0.15, "knn_share": 0.15,
                                          "view_share": 0.35}),
                "balance": ("balanced", {"ratio": 9.8}), "query": ("max", {})},
    "svm": {"feature": _DEFAULT_FEATURE, "classifier": ("svm", {"C": 0.11}),
            "balance": ("balanced", {"ratio": 9.8}), "query": ("max", {})},
    "logistic": {"feature": _DEFAULT_FEATURE, "classifier": ("logistic", {"C": 1.0}),
                 "balance": ("balanced", {"ratio": 1.0}), "query": ("max", {})},
    "nb": {"feature": ("tfidf", {"stop_words": "english"}), "classifier": ("nb", {"alpha": 1.0}),
           "balance": ("balanced", {"ratio": 1.0}), "query": ("max", {})},
}


def build_model(parts: dict[str, tuple[str, dict[str, Any]]]) -> Model:
    return Model(**{k: make(k, *parts[k][:1], **parts[k][1]) for k in KINDS})


def resolve_model(spec: str = "default") -> Model:
    """A preset name, or four registered names joined by '+' (feature+classifier+balance+query)."""
    if spec in PRESETS:
        return build_model(PRESETS[spec])
    names = spec.split("+")
    if len(names) != len(KINDS):
        raise ComponentError(
            f"Unknown model {spec!r}: use one of {', '.join(PRESETS)} or "
            "feature+classifier+balance+query such as tfidf+svm+balanced+max.")
    return build_model({k: (n, {}) for k, n in zip(KINDS, names)})
