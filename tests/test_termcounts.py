"""The bulk term counter gives TfidfVectorizer's matrix and vocabulary exactly,
and the prioritiser's feature extractor is built on it."""

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from screeners.prioritiser.components import make
from screeners.prioritiser.simulation import load_dataset
from screeners.prioritiser.termcounts import (Analyzer, count_terms, is_number, normalize_rows_l2,
                                  plural_stem)
from tests.conftest import shared_path

TEXTS = [
    "The cat sat on the mat, the MAT.",
    "",
    "a b c",  # single letters are no tokens
    "Cat cat CAT dog; dog-cat",
    "dog sat",
    "mat dog cat sat on the mat dog cat",
    "Über Ärzte: Ärzte über Straße",
    "x",
    "sat on the mat",
]


def _reference(texts, **kw):
    vec = TfidfVectorizer(dtype=np.float32, sublinear_tf=True, **kw)
    return vec.fit_transform(texts).tocsr(), vec


def _ours(texts, ngram_range=(1, 1), min_df=1, max_df=1.0, stop_words=None, **words):
    params = {"ngram_max": ngram_range[1], "min_df": min_df, "max_df": max_df,
              "stop_words": stop_words, **words}
    feature = make("feature", "tfidf", **params)
    X, vocabulary, idf = feature._fit(texts)
    # the vectoriser the live prioritiser keeps: the same terms and weights
    vec, fitted = feature.fit(texts)
    X_fit = fitted.first
    assert vec.vocabulary_ == vocabulary and np.array_equal(vec.idf_, idf)
    assert np.array_equal(X_fit.data, X.data) and np.array_equal(X_fit.indices, X.indices)
    # a simulation's matrix is the same, built without a vectoriser
    X_sim = feature.fit_transform(texts).first
    assert np.array_equal(X_sim.data, X.data) and np.array_equal(X_sim.indices, X.indices)
    return vec, X


def _assert_same(texts, **kw):
    X_ref, vec_ref = _reference(texts, **kw)
    vec, X = _ours(texts, **kw)
    assert vec.vocabulary_ == vec_ref.vocabulary_
    assert X.shape == X_ref.shape and X.dtype == np.float32
    # entry for entry, in the same storage order: the same floats, not just close
    assert np.array_equal(X.indptr, X_ref.indptr)
    assert np.array_equal(X.indices, X_ref.indices)
    assert np.array_equal(X.data, X_ref.data)
    assert np.array_equal(vec.idf_, vec_ref.idf_)
    return X, vec


@pytest.mark.parametrize("kw", [
    {}, {"ngram_range": (1, 2)}, {"ngram_range": (1, 3)},
    {"ngram_range": (1, 2), "min_df": 2}, {"ngram_range": (1, 2), "min_df": 2, "max_df": 0.5},
    {"ngram_range": (1, 2), "max_df": 3}, {"ngram_range": (1, 2), "stop_words": "english"},
])
def test_same_matrix_as_tfidfvectorizer(kw):
    _assert_same(TEXTS, **kw)


def test_counts_vocabulary_and_order_by_hand():
    X, vocab = count_terms(["bb aa bb", "aa cc", "cc cc dd"], ngram_max=2)
    assert vocab == {"aa": 0, "aa bb": 1, "aa cc": 2, "bb": 3, "bb aa": 4, "cc": 5, "cc cc": 6,
                     "cc dd": 7, "dd": 8}
    assert X.toarray().tolist() == [[1, 1, 0, 2, 1, 0, 0, 0, 0], [1, 0, 1, 0, 0, 1, 0, 0, 0],
                                    [0, 0, 0, 0, 0, 2, 1, 1, 1]]
    # each row in order of first appearance in the collection: bb, aa, bb aa, aa bb
    assert X.indices[X.indptr[0]:X.indptr[1]].tolist() == [3, 0, 4, 1]
    X, vocab = count_terms(["bb aa bb", "aa cc", "cc cc dd"], ngram_max=2, min_df=2)
    assert vocab == {"aa": 0, "cc": 1} and X.toarray().tolist() == [[1, 0], [1, 1], [0, 2]]


def test_the_same_errors_as_countvectorizer():
    for texts, kw in [(["", "a"], {}), (TEXTS, {"min_df": 20}),
                      (TEXTS, {"min_df": 5, "max_df": 0.1})]:
        with pytest.raises(ValueError) as ref:
            _reference(texts, **kw)
        with pytest.raises(ValueError) as ours:
            count_terms(texts, 1, kw.get("min_df", 1), kw.get("max_df", 1.0))
        assert str(ours.value) == str(ref.value)


def test_fitted_vectoriser_transforms_new_text_as_scikit_learn_would():
    _, vec = _assert_same(TEXTS, ngram_range=(1, 2), min_df=2)
    _, ref = _reference(TEXTS, ngram_range=(1, 2), min_df=2)
    new = ["the cat sat", "unknown words only", "dog cat dog"]
    assert np.array_equal(vec.transform(new).toarray(), ref.transform(new).toarray())


def test_too_few_records_for_the_bounds_fall_back_to_every_term():
    vec, X = make("feature", "tfidf", min_df=2, max_df=0.95).fit(["soil erosion", "cardiac care"])
    assert sorted(vec.vocabulary_) == ["cardiac", "cardiac care", "care", "erosion", "soil",
                                       "soil erosion"]
    assert X.first.shape == (2, 6)


@pytest.mark.shared
def test_same_matrix_on_a_real_dataset():
    ds = load_dataset(shared_path("data", "screening", "Appenzeller-Herzog_2019.csv"))
    X, vec = _assert_same(list(ds.texts), ngram_range=(1, 2), min_df=2, max_df=0.95)
    assert X.shape == (2333, 54987) and X.nnz == 552007


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_normalisation_gives_scikit_learns_numbers(dtype):
    from scipy import sparse
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

    rng = np.random.default_rng(3)
    # rows of 0 to 300 entries, unsorted indices, one row of zeros stored
    # explicitly: long rows are where a sum in another order rounds differently
    lens = rng.integers(0, 300, size=60)
    lens[[4, 9]] = (0, 300)
    indptr = np.r_[0, np.cumsum(lens)].astype(np.int32)
    data = (rng.random(indptr[-1]) * 7).astype(dtype)
    data[indptr[5]:indptr[6]] = 0.0
    indices = np.concatenate([rng.permutation(400)[:n] for n in lens]).astype(np.int32)
    ours = sparse.csr_matrix((data, indices, indptr), shape=(60, 400))
    ref = ours.copy()
    normalize_rows_l2(ours)
    inplace_csr_row_normalize_l2(ref)
    assert ours.dtype == dtype and np.array_equal(ours.data, ref.data)
    assert np.all(ours.data[indptr[5]:indptr[6]] == 0.0)
    assert abs(float(np.linalg.norm(ours[9].toarray())) - 1.0) < 1e-6
    empty = sparse.csr_matrix((3, 5), dtype=dtype)
    normalize_rows_l2(empty)
    assert empty.nnz == 0


def test_title_repeats_put_the_title_first_that_many_times():
    titles = ["Zinc for Wilson disease", "", "Penicillamine trial"]
    texts = ["Zinc for Wilson disease A cohort of patients", "An abstract without a title",
             "Penicillamine trial Copper chelation in children"]
    f = make("feature", "tfidf", title_repeats=3)
    X = f.fit(texts, titles)[1].first
    spelled = ["Zinc for Wilson disease Zinc for Wilson disease " + texts[0],
               texts[1], "Penicillamine trial Penicillamine trial " + texts[2]]
    ref = make("feature", "tfidf").fit(spelled)[1].first
    assert np.array_equal(X.toarray(), ref.toarray())
    # without titles, or with one repeat, the texts are taken as they are
    plain = make("feature", "tfidf").fit_transform(texts).first
    assert np.array_equal(f.fit_transform(texts).first.toarray(), plain.toarray())
    assert np.array_equal(make("feature", "tfidf", title_repeats=1).fit_transform(
        texts, titles).first.toarray(), plain.toarray())
    # the title's words weigh more than the abstract's
    vec, X = make("feature", "tfidf", title_repeats=2).fit(texts, titles)
    row = X.first[0].toarray().ravel()
    assert row[vec.vocabulary_["zinc"]] > row[vec.vocabulary_["cohort"]]
    with pytest.raises(Exception, match="Every text needs its title"):
        f.fit(texts, titles[:2])


WORDY = TEXTS + [
    "Two studies in 2010 and 3 studies in 2011: 95 patients",
    "One study of 95 patients; the patient's diseases (5 mg) in 2x2 trials",
    "Analysis of viruses and virus classes, diagnoses and diagnosis, trees and bees",
    "Studies STUDIES studied; 10 20 30",
]
WORDS = {"numbers": False, "stem_words": True}


def _reference_words(texts, ngram_range=(1, 1), stop_words=None, numbers=True,
                     stem_words=False, **kw):
    stop = TfidfVectorizer(stop_words=stop_words).get_stop_words()
    analyzer = Analyzer(ngram_range[1], frozenset(stop) if stop else None, numbers, stem_words)
    vec = TfidfVectorizer(dtype=np.float32, sublinear_tf=True, analyzer=analyzer, **kw)
    return vec.fit_transform(texts).tocsr(), vec


def test_plural_stem_folds_plurals_and_leaves_other_endings():
    pairs = {"studies": "study", "patients": "patient", "diseases": "disease",
             "trials": "trial", "trees": "tree", "classes": "classe", "series": "sery",
             "analysis": "analysis", "diagnosis": "diagnosis", "virus": "virus",
             "process": "process", "gas": "gas", "was": "was", "study": "study", "": ""}
    assert {w: plural_stem(w) for w in pairs} == pairs


def test_analyzer_drops_numbers_before_pairs_and_stems_single_words():
    a = Analyzer(2, None, numbers=False, stem_words=True)
    assert a("Two Studies in 2010: 95 patients, 2x2") == [
        "two", "study", "in", "patient", "2x2",
        "two studies", "studies in", "in patients", "patients 2x2"]
    # the default keeps numbers and words as written, as scikit-learn's analyser does
    plain = Analyzer(2)
    assert plain("Two Studies in 2010") == TfidfVectorizer(ngram_range=(1, 2)).build_analyzer()(
        "Two Studies in 2010")
    assert Analyzer(1, frozenset({"in"}), numbers=False)("studies in 2010") == ["studies"]


def test_numbers_are_tokens_of_decimal_digits_alone():
    import re
    # the token pattern's runs with at least one word character that is no digit
    words_only = re.compile(r"(?u)\b(?=\w*[^\W\d])\w\w+\b").findall
    for text in WORDY + ["²³ ٣٤ x² 1½ 2x2 5ht 007_ _9 12"]:
        assert Analyzer(1, numbers=False)(text) == words_only(text.lower())
    assert [is_number(t) for t in ["2010", "٣٤", "²³", "2x2", "_9"]] == [
        True, True, False, False, False]


def test_words_without_numbers_and_stemmed_counted_by_hand():
    X, vocab = count_terms(["Two studies in 2010", "one study of 95 patients"], ngram_max=2,
                           numbers=False, stem_words=True)
    assert vocab == {"in": 0, "of": 1, "of patients": 2, "one": 3, "one study": 4,
                     "patient": 5, "studies in": 6, "study": 7, "study of": 8, "two": 9,
                     "two studies": 10}
    assert X.toarray().tolist() == [[1, 0, 0, 0, 0, 0, 1, 1, 0, 1, 1],
                                    [0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0]]
    # a text of numbers alone has no words
    with pytest.raises(ValueError, match="empty vocabulary"):
        count_terms(["2010", "95 5"], numbers=False)


@pytest.mark.parametrize("words", [WORDS, {"numbers": False}, {"stem_words": True}])
@pytest.mark.parametrize("kw", [
    {}, {"ngram_range": (1, 2)}, {"ngram_range": (1, 3), "min_df": 2},
    {"ngram_range": (1, 2), "stop_words": "english", "max_df": 0.5},
])
def test_same_matrix_as_tfidfvectorizer_with_the_word_options(kw, words):
    X_ref, vec_ref = _reference_words(WORDY, **kw, **words)
    vec, X = _ours(WORDY, **kw, **words)
    assert vec.vocabulary_ == vec_ref.vocabulary_
    assert np.array_equal(X.indptr, X_ref.indptr) and np.array_equal(X.indices, X_ref.indices)
    assert np.array_equal(X.data, X_ref.data) and np.array_equal(vec.idf_, vec_ref.idf_)
    # the kept vectoriser reads new text the same way
    new = ["Three studies in 2012", "the patients' diseases", "nothing known here"]
    assert np.array_equal(vec.transform(new).toarray(), vec_ref.transform(new).toarray())


def test_the_numbers_view_is_counted_from_the_same_tokens(monkeypatch):
    from screeners.prioritiser import termcounts

    made = []
    real = termcounts.tokenize
    monkeypatch.setattr(termcounts, "tokenize", lambda *a: made.append(1) or real(*a))
    both = make("feature", "tfidf", ngram_max=2, numbers=False, number_view=True).fit_transform(WORDY)
    assert len(made) == 1  # one tokenization for both views
    for view, numbers in zip(both.all, (False, True)):
        alone = make("feature", "tfidf", ngram_max=2, numbers=numbers).fit_transform(WORDY).first
        assert view.shape == alone.shape and np.array_equal(view.indices, alone.indices)
        assert np.array_equal(view.data, alone.data)


@pytest.mark.shared
def test_word_options_give_the_same_matrix_on_a_real_dataset():
    ds = load_dataset(shared_path("data", "screening", "Appenzeller-Herzog_2019.csv"))
    texts = list(ds.texts)
    kw = {"ngram_range": (1, 2), "min_df": 2, "max_df": 0.8}
    X_ref, vec_ref = _reference_words(texts, **kw, **WORDS)
    vec, X = _ours(texts, **kw, **WORDS)
    assert vec.vocabulary_ == vec_ref.vocabulary_
    assert np.array_equal(X.indices, X_ref.indices) and np.array_equal(X.data, X_ref.data)
    plain = count_terms(texts, 2, 2, 0.8)[1]
    assert "study" in vec.vocabulary_ and "studies" not in vec.vocabulary_
    assert "studies" in plain and "2010" in plain and "2010" not in vec.vocabulary_
    assert X.shape[1] < len(plain)
