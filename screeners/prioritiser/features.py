"""The feature extractor: TF-IDF of each record's title, abstract and keywords.

Terms are counted by `termcounts` (the matrix scikit-learn's `TfidfVectorizer`
would build, in bulk); the fitted vectoriser is kept only to place a new text
(a protocol's question) in the same space.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Sequence

import numpy as np
from scipy import sparse

from screeners.prioritiser import termcounts
from screeners.prioritiser.components import (Component, ComponentError, NoWordsError, Views,
                                              register)
from screeners.prioritiser.views import BLOCK, Block, CountedViews


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
        text, 2**hash_bits columns, a term counted in the column its hash names
        (`hashed_columns`). A row depends on its own text alone."""
        if not self.hash_bits:
            raise ComponentError("Term counts per record need hashed columns (hash_bits).")
        width = 1 << self.hash_bits
        texts = self._titled(texts, titles)
        n = len(texts)
        tokens = termcounts.tokenize(texts, self._stop_set())
        word_hash = np.fromiter((zlib.crc32(w.encode("utf-8", "surrogatepass"))
                                 for w in tokens.words), dtype=np.uint64, count=len(tokens.words))
        out = []
        for numbers in (self.numbers, True)[: self.n_views]:
            kept = termcounts.Tokens(tokens.words, tokens.word_of, tokens.lens)
            words, ids, lens = termcounts._word_ids(kept, numbers)
            hashes = word_hash if numbers or len(words) == len(tokens.words) else \
                np.fromiter((zlib.crc32(w.encode("utf-8", "surrogatepass")) for w in words),
                            dtype=np.uint64, count=len(words))
            if self.stem_words:
                stems, stem_of = termcounts._stem_ids(words, ids)
                single = np.fromiter((zlib.crc32(w.encode("utf-8", "surrogatepass"))
                                      for w in stems), dtype=np.uint64, count=len(stems))[stem_of]
            else:
                single = hashes[ids]
            rows, cols = hashed_columns(single, hashes[ids], lens, self.ngram_max, self.hash_bits)
            C = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                                  shape=(n, width))
            C.sum_duplicates()  # repeats of a term, and two terms of one text in one column
            out.append(C)
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
        return Views(*mats), HashedTerms(self, columns[0], idfs[0])

    def _bounds(self, df: np.ndarray, n_docs: int, first: bool
                ) -> tuple[np.ndarray, np.ndarray, int]:
        """(hashed column -> kept column or -1, the kept columns' idf, how many
        columns) of terms with the document frequencies `df` of `n_docs` records."""
        width = len(df)
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
        n_cols = max(int(keep.sum()), 1)
        column = np.full(width, -1, dtype=np.int32)
        column[keep] = np.arange(int(keep.sum()), dtype=np.int32)
        # smooth idf over the kept columns, as TfidfTransformer computes it
        idf = np.full(n_cols, n_docs + 1, dtype=np.float32)
        idf /= (df[keep].astype(np.float32) + np.float32(1.0)) if keep.any() else 1.0
        np.log(idf, out=idf)
        idf += np.float32(1.0)
        return column, idf, n_cols

    def _weigh_one(self, C: sparse.csr_matrix, first: bool
                   ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
        """C's TF-IDF matrix over the columns inside the bounds (C's arrays are
        reused: the entries kept are moved forward in place, a chunk of rows at a
        time, so no second matrix of C's size is made)."""
        n_docs, width = C.shape
        column, idf, n_cols = self._bounds(np.bincount(C.indices, minlength=width), n_docs,
                                           first)
        data = C.data.astype(np.float32, copy=False)
        indices = C.indices
        indptr = np.zeros(n_docs + 1, dtype=np.int64)
        written = 0
        for r0 in range(0, n_docs, WEIGH_CHUNK):
            r1 = min(r0 + WEIGH_CHUNK, n_docs)
            a, b = int(C.indptr[r0]), int(C.indptr[r1])
            cols = column[indices[a:b]]
            sel = cols >= 0
            k = int(sel.sum())
            lens = np.diff(C.indptr[r0:r1 + 1])
            # rows of kept entries: the row of each entry, counted where kept
            row_of = np.repeat(np.arange(r1 - r0), lens)[sel]
            part = sparse.csr_matrix((data[a:b][sel], cols[sel], np.r_[0, np.cumsum(
                np.bincount(row_of, minlength=r1 - r0))]), shape=(r1 - r0, n_cols))
            termcounts.tf_idf(part.data, part.indices, idf, self.sublinear_tf)
            termcounts.normalize_rows_l2(part)
            # written <= a: the kept entries move forward over ones already read
            data[written:written + k] = part.data
            indices[written:written + k] = part.indices
            indptr[r0 + 1:r1 + 1] = written + part.indptr[1:]
            written += k
        idx = np.int32 if written < 2**31 else np.int64
        X = sparse.csr_matrix((data[:written], indices[:written].astype(np.int32, copy=False),
                               indptr.astype(idx)), shape=(n_docs, n_cols))
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


    def weigh_blocks(self, rows: Iterable[Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]],
                     budget: int) -> tuple[Views | CountedViews, HashedTerms]:
        """What `weigh_counts` gives, from the term counts of the records a few
        rows at a time (`rows`: per view, the entries per row, the hashed
        columns, in order within each row, and the counts), holding them as
        packed counts (`views.Block`), never as a whole count matrix. The
        matrices are weighed whole (`Views`) when they take at most `budget`
        bytes, else kept as counts and weighed a block at a time when used
        (`CountedViews`): the same numbers either way."""
        width = 1 << (self.hash_bits or 0)
        raw: list[list[Block]] = []  # per view, blocks of hashed columns
        dfs: list[np.ndarray] = []
        pending: list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = []
        unfounded: list[list[np.ndarray]] = []  # per view, columns not yet in its frequencies
        n_docs = 0

        def count_documents(v: int) -> None:
            # a record's term counts a column once: its frequency is its entries.
            # Counted for many blocks at once: each count makes an array of every
            # hashed column
            cols = np.concatenate(unfounded[v])
            unfounded[v].clear()
            np.add(dfs[v], np.bincount(cols, minlength=width), out=dfs[v], casting="unsafe")

        def close_block() -> None:
            for v, parts in enumerate(pending):
                lens = np.concatenate([p[0] for p in parts])
                cols = np.concatenate([p[1] for p in parts])
                counts = np.concatenate([p[2] for p in parts])
                parts.clear()
                indptr = np.zeros(len(lens) + 1, dtype=np.int64)
                np.cumsum(lens, out=indptr[1:])
                raw[v].append(Block.pack(cols, counts, indptr))
                unfounded[v].append(cols.astype(np.int32, copy=False))
                if sum(len(c) for c in unfounded[v]) >= DF_BATCH:
                    count_documents(v)

        in_block = 0
        for views_rows in rows:
            if not raw:
                raw = [[] for _ in views_rows]
                dfs = [np.zeros(width, dtype=np.int32) for _ in views_rows]
                pending = [[] for _ in views_rows]
                unfounded = [[] for _ in views_rows]
            for v, part in enumerate(views_rows):
                pending[v].append(part)
            n = len(views_rows[0][0])
            n_docs += n
            in_block += n
            if in_block >= BLOCK:
                close_block()
                in_block = 0
        if not raw:
            raw = [[] for _ in range(self.n_views)]
            dfs = [np.zeros(width, dtype=np.int32) for _ in range(self.n_views)]
        if in_block:
            close_block()
        for v in range(len(unfounded)):
            if unfounded[v]:
                count_documents(v)
        columns, idfs, n_cols, blocks = [], [], [], []
        for v in range(len(raw)):
            column, idf, n = self._bounds(dfs[v], n_docs, first=v == 0)
            dfs[v] = np.zeros(0, dtype=np.int32)
            kept = []
            while raw[v]:
                kept.append(self._kept(raw[v].pop(0), column, idf, n))
            columns.append(column)
            idfs.append(idf)
            n_cols.append(n)
            blocks.append(kept)
        counted = CountedViews(blocks, idfs, n_cols, self.sublinear_tf)
        X: Views | CountedViews
        if 8 * sum(b.nnz for bs in blocks for b in bs) <= budget:
            X = counted.whole(free=True)  # each row's norm found as it is weighed
        else:
            X = counted.with_norms()
        return X, HashedTerms(self, columns[0], idfs[0])

    def _kept(self, block: Block, column: np.ndarray, idf: np.ndarray, n_cols: int) -> Block:
        """`block` over the kept columns (entries of other terms dropped)."""
        cols = column[block.columns()]
        sel = cols >= 0
        lens = np.diff(block.indptr)
        row_of = np.repeat(np.arange(block.n_rows), lens)[sel]
        indptr = np.zeros(block.n_rows + 1, dtype=np.int64)
        np.cumsum(np.bincount(row_of, minlength=block.n_rows), out=indptr[1:])
        return Block.pack(cols[sel], block.term_counts(sel), indptr)


WEIGH_CHUNK = 20000  # rows weighed at a time
DF_BATCH = 1 << 24  # entries whose document frequencies are counted at once (64 MB)

_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))


def hashed_columns(single: np.ndarray, words: np.ndarray, lens: np.ndarray, ngram_max: int,
                   bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every term occurrence of a collection: its one-word terms
    from `single` (each token's hash as a one-word term, its stem's where plurals
    are folded), its runs of 2..ngram_max words from `words` (each token's own
    hash), never across two texts (`lens`: tokens per text). A run's hash mixes
    its words' hashes in order, so no term's text is ever built; the column is
    the top `bits` bits of the mixed 64-bit value. Stable across processes and
    machines (CRC-32 of each word, unlike Python's string hash)."""
    n_tok = len(words)
    doc = np.repeat(np.arange(len(lens), dtype=np.int64), lens)
    shift = np.uint64(64 - bits)
    with np.errstate(over="ignore"):
        rows, cols = [doc], [((single + np.uint64(1)) * _MIX[0]) >> shift]
        run = words.copy()
        for n in range(2, ngram_max + 1):
            if n_tok < n:
                break
            # the run of n words starting at each token, within its text
            same = doc[: n_tok - n + 1] == doc[n - 1:]
            run = (run[: n_tok - n + 1] * _MIX[1]) ^ (words[n - 1:] * _MIX[2])
            run = run ^ (run >> np.uint64(31))
            rows.append(doc[: n_tok - n + 1][same])
            cols.append(((run[same] + np.uint64(n)) * _MIX[0]) >> shift)
    return np.concatenate(rows), np.concatenate(cols).astype(np.int64)


@dataclass(frozen=True, eq=False)
class HashedTerms:
    """Places a new text (a protocol's question) in the columns of a hashed
    TF-IDF matrix: its terms counted as the records' were, weighed with the
    matrix's idf and scaled to unit length (`transform`, as a fitted
    vectoriser's)."""

    feature: Tfidf
    column: np.ndarray  # hashed column -> matrix column, -1 where the term is not kept
    idf: np.ndarray

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        C = self.feature.term_counts(texts)[0]
        keep = self.column[C.indices] >= 0
        n_kept = np.add.reduceat(keep, np.minimum(C.indptr[:-1], max(len(keep) - 1, 0))) \
            if len(keep) else np.zeros(len(texts), dtype=np.int64)
        n_kept = np.where(np.diff(C.indptr) > 0, n_kept, 0)
        indptr = np.r_[0, np.cumsum(n_kept)]
        X = sparse.csr_matrix((C.data[keep], self.column[C.indices[keep]], indptr),
                              shape=(len(texts), len(self.idf)))
        if self.feature.sublinear_tf:
            np.log(X.data, X.data)
            X.data += 1.0
        X.data *= self.idf[X.indices]
        termcounts.normalize_rows_l2(X)
        return X
