"""The named models, the default first: what `--model NAME` means.

The default model ranks unscreened records by a weighted average of four
rankings, refitted as decisions arrive:

- a linear SVM (squared hinge loss, C 0.08) on TF-IDF of the texts without
  numbers standing alone ("2010", "95"): 0.35 of the average;
- a second linear SVM on the same terms with those numbers kept (the feature
  extractor's `number_view`): 0.35;
- complement naive Bayes: 0.15;
- each record's cosine similarity to its nearest known include: 0.15.

The features are uni- and bigram sublinear TF-IDF of the title (counted twice),
the abstract and the keywords, terms in at least 2 records and at most 80 % of
them, single words with plurals folded ("studies" counts as "study"). Includes
weigh 9.8 times the excludes as a class. The next records are the highest
scored.

It was chosen by simulation on the nine labelled sets of
bench/bench_simulate.py, one setting for every set, by the mean WSS@95 over
the sets; bench/RESULTS.md records each variant tried and its figures.
"""

from __future__ import annotations

from typing import Any

from screeners.prioritiser import features as _features  # noqa: F401  (registers "tfidf")
from screeners.prioritiser.components import KINDS, ComponentError, Model, build_model

Parts = dict[str, tuple[str, dict[str, Any]]]

DEFAULT: Parts = {
    "feature": ("tfidf", {"min_df": 2, "max_df": 0.8, "title_repeats": 2, "numbers": False,
                          "stem_words": True, "number_view": True, "hash_bits": 24}),
    "classifier": ("svm-nb", {"C": 0.08, "nb_share": 0.15, "knn_share": 0.15,
                              "view_share": 0.35}),
    "balance": ("balanced", {"ratio": 9.8}),
    "query": ("max", {}),
}

_PLAIN_TFIDF = ("tfidf", {"min_df": 2, "max_df": 0.95})

PRESETS: dict[str, Parts] = {
    "default": DEFAULT,
    # ASReview's default (elas_u4) settings but min_df 2: the default before the ensemble
    "svm": {"feature": _PLAIN_TFIDF, "classifier": ("svm", {"C": 0.11}),
            "balance": ("balanced", {"ratio": 9.8}), "query": ("max", {})},
    "logistic": {"feature": _PLAIN_TFIDF, "classifier": ("logistic", {"C": 1.0}),
                 "balance": ("balanced", {"ratio": 1.0}), "query": ("max", {})},
    "nb": {"feature": ("tfidf", {"stop_words": "english"}), "classifier": ("nb", {"alpha": 1.0}),
           "balance": ("balanced", {"ratio": 1.0}), "query": ("max", {})},
}


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
