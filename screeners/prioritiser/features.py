"""The feature extractor: TF-IDF of each record's title, abstract and keywords.

Terms are counted by `termcounts` (the matrix scikit-learn's `TfidfVectorizer`
would build, in bulk); the fitted vectoriser is kept only to place a new text
(a protocol's question) in the same space.
"""

from __future__ import annotations

import dataclasses
import zlib
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
    classifier that fits a second model on it (`svm-nb`'s `view_share`).

    With `hash_bits`, a term's column is a hash of the term (`term_counts`), so
    a record's counts do not depend on the other records: a store keeps them
    per record and counts again only the records whose text changed
    (`screeners.feature_cache`). The document-frequency bounds and the weights
    are applied afterwards, over the records ranked together (`weigh_counts`);
    only the columns of terms inside the bounds are kept, so the matrix has as
    many columns as a vocabulary would (two terms in one column are rare)."""

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
    hash_bits: int | None = None

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
        if self.hash_bits:
            if not any(t.strip() for t in texts):
                raise ComponentError(
                    "No record has a title or abstract: there is no text to rank by.")
            return self.weigh_counts(self.term_counts(texts, titles))[0]
        return self._fit_texts(texts, titles)[1]

    def _titled(self, texts: Sequence[str], titles: Sequence[str] | None) -> Sequence[str]:
        if titles is not None and self.title_repeats > 1:
            if len(titles) != len(texts):
                raise ComponentError("Every text needs its title: the two lists differ in length.")
            more = self.title_repeats - 1
            texts = [" ".join([t.strip()] * more + [x]) if t and t.strip() else x
                     for t, x in zip(titles, texts)]
        return texts

    @property
    def n_views(self) -> int:
        return 2 if self.number_view and not self.numbers else 1

    def term_counts(self, texts: Sequence[str], titles: Sequence[str] | None = None
                    ) -> tuple[sparse.csr_matrix, ...]:
        """Each view's float32 term counts of `texts` (needs `hash_bits`): a row per
        text, 2**hash_bits columns, a term counted in the column its hash names.
        A row depends on its own text alone."""
        if not self.hash_bits:
            raise ComponentError("Term counts per record need hashed columns (hash_bits).")
        width = 1 << self.hash_bits
        texts = self._titled(texts, titles)
        empty = sparse.csr_matrix((len(texts), width), dtype=np.float32)
        if not any(t.strip() for t in texts):
            return (empty,) * self.n_views
        tokens = termcounts.tokenize(texts, self._stop_set())
        out = []
        for numbers in (self.numbers, True)[: self.n_views]:
            try:
                C, vocabulary = termcounts.count_terms(
                    texts, self.ngram_max, 1, 1.0, self._stop_set(), numbers,
                    self.stem_words, tokens)
            except ValueError:  # not one countable word in these texts
                out.append(empty)
                continue
            column = np.empty(len(vocabulary), dtype=np.int32)
            for term, c in vocabulary.items():
                column[c] = term_column(term, self.hash_bits)
            H = sparse.csr_matrix((C.data, column[C.indices], C.indptr), shape=(len(texts), width))
            H.sum_duplicates()  # two terms of one text in one column: their counts add up
            out.append(H)
        return tuple(out)

    def weigh_counts(self, counts: Sequence[sparse.csr_matrix]
                     ) -> tuple[Views, HashedTerms]:
        """The TF-IDF matrices of the records whose `term_counts` are given, over
        the columns inside the document-frequency bounds, and what places a new
        text in the first one's columns."""
        mats, columns, idfs = [], [], []
        for k, C in enumerate(counts):
            X, column, idf = self._weigh_one(C, first=k == 0)
            mats.append(X)
            columns.append(column)
            idfs.append(idf)
        analyzer = termcounts.Analyzer(self.ngram_max, self._stop_set(), self.numbers,
                                       self.stem_words)
        terms = HashedTerms(analyzer, self.hash_bits or 0, columns[0], idfs[0], self.sublinear_tf)
        return Views(*mats), terms

    def _weigh_one(self, C: sparse.csr_matrix, first: bool
                   ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        n_docs, width = C.shape
        df = np.bincount(C.indices, minlength=width)
        high = self.max_df if isinstance(self.max_df, int) else self.max_df * n_docs
        low = self.min_df if isinstance(self.min_df, int) else self.min_df * n_docs
        keep = (df >= low) & (df <= high) & (df > 0)
        if not keep.any():
            # a handful of records can leave no term inside the bounds: every term counts
            keep = df > 0
        if not keep.any() and first:
            raise NoWordsError(
                "No record has a word to rank by: the titles and abstracts hold only "
                "numbers, single letters or stop words.")
        column = np.full(width, -1, dtype=np.int32)
        column[keep] = np.arange(int(keep.sum()), dtype=np.int32)
        sel = keep[C.indices]
        lens = np.diff(C.indptr)
        per_row = np.zeros(n_docs, dtype=np.int64)
        if len(sel):
            # entries kept per row, without an array of row numbers as long as the matrix
            at = np.minimum(C.indptr[:-1], len(sel) - 1)
            per_row = np.where(lens > 0, np.add.reduceat(sel, at, dtype=np.int64), 0)
        indptr = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(per_row, out=indptr[1:])
        X = sparse.csr_matrix((C.data[sel].astype(np.float32), column[C.indices[sel]],
                               indptr.astype(np.int64 if len(sel) >= 2**31 else np.int32)),
                              shape=(n_docs, max(int(keep.sum()), 1)))
        X, idf = termcounts.tfidf_weights(X, self.sublinear_tf)
        return X, column, idf

    def _fit_texts(self, texts: Sequence[str], titles: Sequence[str] | None
                   ) -> tuple[Tfidf, Views, dict[str, int], np.ndarray, tuple[np.ndarray, ...]]:
        texts = self._titled(texts, titles)
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


def term_column(term: str, bits: int) -> int:
    """The column of `term` among 2**bits: the low bits of its CRC-32 (stable
    across processes and machines, unlike Python's own string hash)."""
    return zlib.crc32(term.encode("utf-8")) & ((1 << bits) - 1)


@dataclass(frozen=True, eq=False)
class HashedTerms:
    """Places a new text (a protocol's question) in the columns of a hashed
    TF-IDF matrix: its terms, their columns, weighed with the matrix's idf and
    scaled to unit length (`transform`, as a fitted vectoriser's)."""

    analyzer: termcounts.Analyzer
    bits: int
    column: np.ndarray  # hashed column -> matrix column, -1 where the term is not kept
    idf: np.ndarray
    sublinear_tf: bool

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        rows, cols, vals = [], [], []
        for i, text in enumerate(texts):
            hashed = np.fromiter((term_column(t, self.bits) for t in self.analyzer(text)),
                                 dtype=np.int64)
            where = self.column[hashed] if len(hashed) else hashed
            where = where[where >= 0]
            c, n = np.unique(where, return_counts=True)
            tf = n.astype(np.float32)
            if self.sublinear_tf:
                tf = np.log(tf) + np.float32(1.0)
            w = tf * self.idf[c]
            norm = float(np.sqrt(np.sum(w.astype(np.float64) ** 2)))
            if norm:
                w = (w / norm).astype(np.float32)
            rows += [i] * len(c)
            cols += c.tolist()
            vals += w.tolist()
        return sparse.csr_matrix((np.asarray(vals, dtype=np.float32), (rows, cols)),
                                 shape=(len(texts), len(self.idf)))
