"""The feature extractor: TF-IDF of each record's title, abstract and keywords.

Terms are counted by `termcounts` (the matrix scikit-learn's `TfidfVectorizer`
would build, in bulk); the fitted vectoriser is kept only to place a new text
(a protocol's question) in the same space.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Sequence

import numpy as np
from scipy import sparse

from screeners.prioritiser import termcounts
from screeners.prioritiser.components import (Component, ComponentError, NoWordsError, Views,
                                              register)


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
    `number_view` (and `numbers` False), the features (`Views`) hold a second
    matrix of the records with the same settings but numbers kept, for a
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
            ) -> tuple[Any, Views]:
        """The fitted vectoriser and the matrix of `texts` (each a record's title,
        abstract and keywords; `titles` their titles alone, for `title_repeats`)."""
        vec, X, _ = self.fit_counted(texts, titles)
        return vec, X

    def fit_counted(self, texts: Sequence[str], titles: Sequence[str] | None = None
                    ) -> tuple[Any, Views, tuple[np.ndarray, ...]]:
        """As `fit`, with each view's term counts, entry for entry with its matrix's
        `data` (same rows, columns and order): with the matrices' structure they are
        all `weigh` needs to give the same matrices back, in a quarter of the bytes."""
        settings, X, vocabulary, idf, counts = self._fit_texts(texts, titles)
        vec = settings.vectorizer()
        vec.set_params(vocabulary=vocabulary)
        vec.idf_ = idf
        return vec, X, counts

    def weigh(self, structure: Views, counts: Sequence[np.ndarray]) -> tuple[Views, np.ndarray]:
        """The matrices `fit_counted` gave (and the first one's idf), from their
        structure (indices, indptr, shape) and their term counts."""
        out = []
        for V, c in zip(structure.all, counts):
            C = sparse.csr_matrix((np.asarray(c, dtype=np.float32), V.indices, V.indptr),
                                  shape=V.shape)
            out.append(termcounts.tfidf_weights(C, self.sublinear_tf))
        return Views(*(X for X, _ in out)), out[0][1]

    def fit_transform(self, texts: Sequence[str], titles: Sequence[str] | None = None
                      ) -> Views:
        # no vectoriser is built: a simulation needs the matrix alone
        return self._fit_texts(texts, titles)[1]

    def _fit_texts(self, texts: Sequence[str], titles: Sequence[str] | None
                   ) -> tuple[Tfidf, Views, dict[str, int], np.ndarray, tuple[np.ndarray, ...]]:
        if titles is not None and self.title_repeats > 1:
            if len(titles) != len(texts):
                raise ComponentError("Every text needs its title: the two lists differ in length.")
            more = self.title_repeats - 1
            texts = [" ".join([t.strip()] * more + [x]) if t and t.strip() else x
                     for t, x in zip(titles, texts)]
        if not any(t.strip() for t in texts):
            raise ComponentError("No record has a title or abstract: there is no text to rank by.")
        tokens = termcounts.tokenize(texts, self._stop_set())
        settings, X, vocabulary, idf, counts = self._fit_bounded(texts, tokens)
        second = None
        all_counts: tuple[np.ndarray, ...] = (counts,)
        if self.number_view and not self.numbers:
            # the same tokens counted again with numbers kept: the second matrix
            numbers_kept = dataclasses.replace(self, numbers=True, number_view=False)
            _, second, _, _, second_counts = numbers_kept._fit_bounded(texts, tokens)
            all_counts = (counts, second_counts)
        return settings, Views(X, second), vocabulary, idf, all_counts

    def _fit_bounded(self, texts: Sequence[str], tokens: termcounts.Tokens
                     ) -> tuple[Tfidf, sparse.csr_matrix, dict[str, int], np.ndarray, np.ndarray]:
        try:
            return (self, *self._fit_counted(texts, tokens))
        except ValueError:
            # a handful of records can leave no term inside the document-frequency
            # bounds; every term then counts
            every_term = dataclasses.replace(self, min_df=1, max_df=1.0)
            try:
                return (every_term, *every_term._fit_counted(texts, tokens))
            except ValueError:
                raise NoWordsError(
                    "No record has a word to rank by: the titles and abstracts hold only "
                    "numbers, single letters or stop words.") from None

    def _fit(self, texts: Sequence[str], tokens: termcounts.Tokens | None = None
             ) -> tuple[sparse.csr_matrix, dict[str, int], np.ndarray]:
        return self._fit_counted(texts, tokens)[:3]

    def _fit_counted(self, texts: Sequence[str], tokens: termcounts.Tokens | None = None
                     ) -> tuple[sparse.csr_matrix, dict[str, int], np.ndarray, np.ndarray]:
        # TfidfVectorizer.fit_transform's matrix and idf, computed in bulk, and the
        # counts they were weighed from (tfidf_weights weighs in place)
        counts, vocabulary = termcounts.count_terms(texts, self.ngram_max, self.min_df,
                                                    self.max_df, self._stop_set(), self.numbers,
                                                    self.stem_words, tokens)
        top = counts.data.max(initial=0)
        n = counts.data.astype(np.uint8 if top < 2**8 else np.uint16 if top < 2**16
                               else np.uint32)
        X, idf = termcounts.tfidf_weights(counts, self.sublinear_tf)
        return X, vocabulary, idf, n
