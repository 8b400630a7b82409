"""Word n-gram counts for TF-IDF, the matrix and vocabulary scikit-learn's
`CountVectorizer` builds inside `TfidfVectorizer.fit_transform`, in bulk.

`CountVectorizer` looks up every n-gram of every document in a Python dict, one
at a time; on a few thousand abstracts with bigrams that was half of a whole
simulation. Here only the words go through a dict (one lookup each); n-grams
are numbered with numpy from the word numbers, and counts, document
frequencies and pruning are array operations.

The result is the same matrix, entry for entry and in the same storage order:
each row keeps its terms in the order they first appeared in the collection
(which is what the TF-IDF row normalisation sums over), the columns are the
terms in alphabetical order, and the vocabulary maps each term to its column.
Errors are the `ValueError`s `CountVectorizer` raises for the same input.
With numbers left out or plurals folded, the reference is a `CountVectorizer`
given this module's `Analyzer` with the same settings.
`tests/test_termcounts.py` compares both on hand-made and real collections.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from numbers import Integral
from typing import Collection, Sequence

import numpy as np
from scipy import sparse

#: scikit-learn's default token pattern: runs of two or more word characters
_TOKENS = re.compile(r"(?u)\b\w\w+\b").findall


def is_number(token: str) -> bool:
    """Whether a token is digits alone ("2010", "95"): a record's years, doses and
    counts, which the default model leaves out (on some benchmark sets two-digit
    numbers help, on others they hurt: see bench/RESULTS.md).
    Digits are the characters the token pattern's \\d matches (Unicode category
    Nd), so "2x2" and "5ht" are words."""
    return token.isdecimal()


def plural_stem(word: str) -> str:
    """`word` with a plural ending folded, by Harman's S stemmer (Harman 1991,
    "How effective is suffixing?", JASIS 42:7-15): -ies -> -y unless -eies or
    -aies, -es -> -e unless -aes, -ees or -oes, -s dropped unless -us or -ss.
    Here words ending in -is (analysis, diagnosis) and words of three letters or
    fewer are also left alone. "studies" -> "study", "patients" -> "patient"."""
    if len(word) <= 3 or word[-1] != "s":
        return word
    if word.endswith("ies") and not word.endswith(("eies", "aies")):
        return word[:-3] + "y"
    if word.endswith("es") and not word.endswith(("aes", "ees", "oes")):
        return word[:-1]
    if word.endswith(("us", "ss", "is")):
        return word
    return word[:-1]


@dataclass(frozen=True)
class Tokens:
    """A collection's tokens (lower-cased, stop words out, numbers in): every
    distinct word in order of first appearance, the word number of every token,
    and the number of tokens per text. Made once (`tokenize`), counted by
    `count_terms` in as many ways as asked."""

    words: list[str]
    word_of: np.ndarray
    lens: np.ndarray


def tokenize(texts: Sequence[str], stop_words: Collection[str] | None = None) -> Tokens:
    """The tokens of `texts`, for `count_terms` (which tokenizes itself when given none)."""
    vocab: defaultdict[str, int] = defaultdict()
    vocab.default_factory = vocab.__len__  # a new word gets the next number
    lookup = vocab.__getitem__
    ids: list[int] = []
    lens = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        toks = _TOKENS(text.lower())
        if stop_words:
            toks = [t for t in toks if t not in stop_words]
        ids.extend(map(lookup, toks))
        lens[i] = len(toks)
    return Tokens(list(vocab), np.array(ids, dtype=np.int64), lens)


def _word_ids(tokens: Tokens, numbers: bool = True) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The words, token word numbers and tokens per text of `tokens`; with
    `numbers` False, tokens that are `is_number` are no words."""
    words, word_of, lens = tokens.words, tokens.word_of, tokens.lens
    if not numbers:
        # dropped by word, not token by token: one test per distinct word
        number = np.fromiter(map(is_number, words), dtype=bool, count=len(words))
        if number.any():
            keep = ~number[word_of]
            lens = np.bincount(np.repeat(np.arange(len(lens)), lens)[keep],
                               minlength=len(lens)).astype(np.int64)
            # the words left, still numbered in order of first appearance
            renumber = np.cumsum(~number) - 1
            word_of = renumber[word_of[keep]]
            words = [w for w, n in zip(words, number.tolist()) if not n]
    return words, word_of, lens


@dataclass(frozen=True)
class Analyzer:
    """The terms `count_terms` counts in one text, in the order scikit-learn's
    word analyser lists them (the words, then the pairs, ...): what a
    `TfidfVectorizer(analyzer=...)` needs to transform new text the same way."""

    ngram_max: int = 1
    stop_words: frozenset[str] | None = None
    numbers: bool = True
    stem_words: bool = False

    def __call__(self, text: str) -> list[str]:
        toks = _TOKENS(text.lower())
        if self.stop_words:
            toks = [t for t in toks if t not in self.stop_words]
        if not self.numbers:
            toks = [t for t in toks if not is_number(t)]
        terms = [plural_stem(t) for t in toks] if self.stem_words else list(toks)
        for n in range(2, self.ngram_max + 1):
            terms.extend(" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1))
        return terms


def _stem_ids(words: list[str], ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The distinct stems of `words` in order of first appearance, and the stem
    number of every token."""
    stems: dict[str, int] = {}
    of_word = np.array([stems.setdefault(plural_stem(w), len(stems)) for w in words],
                       dtype=np.int64)
    return list(stems), of_word[ids]


def count_terms(texts: Sequence[str], ngram_max: int = 1, min_df: int | float = 1,
                max_df: int | float = 1.0, stop_words: Collection[str] | None = None,
                numbers: bool = True, stem_words: bool = False, tokens: Tokens | None = None
                ) -> tuple[sparse.csr_matrix, dict[str, int]]:
    """The float32 term-count matrix of `texts` over their 1..ngram_max-word terms
    kept by document frequency, and the vocabulary (term -> column).

    With `numbers` False, tokens of digits alone are left out before n-grams are
    formed; with `stem_words`, one-word terms are counted by their `plural_stem`
    ("study" counts "studies"), longer terms as written. `Analyzer` gives the
    same terms one text at a time. `tokens` are `tokenize(texts, stop_words)`,
    when already made."""
    if ngram_max < 1:
        raise ValueError(f"ngram_max must be at least 1, not {ngram_max}")
    if tokens is None:
        tokens = tokenize(texts, stop_words)
    words, ids, lens = _word_ids(tokens, numbers)
    unigram_words, unigram_ids = _stem_ids(words, ids) if stem_words else (words, ids)
    n_docs = len(texts)
    if not words:
        raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
    high = max_df if isinstance(max_df, Integral) else max_df * n_docs
    low = min_df if isinstance(min_df, Integral) else min_df * n_docs
    if high < low:
        raise ValueError("max_df corresponds to < documents than min_df")

    n_words = len(words)
    doc_of_token = np.repeat(np.arange(n_docs), lens)
    starts = np.cumsum(lens) - lens
    pos_in_doc = np.arange(len(ids)) - starts[doc_of_token]
    # the analyser's order: per document its unigrams, then its bigrams, ...
    per_level = [np.maximum(lens - (n - 1), 0) for n in range(1, ngram_max + 1)]
    per_doc = sum(per_level)
    level_base = np.cumsum(per_doc) - per_doc  # where each document's terms start

    # one level at a time: each term's number within its level, its first token
    # and its first place in the stream of terms, and every occurrence's place
    occ_slot, occ_term, first_tok, first_slot, level_of = [], [], [], [], []
    gram = ids  # the current n-gram's number at each of its start tokens
    offset = 0  # terms of shorter n-grams are numbered first
    for n in range(1, ngram_max + 1):
        at = np.flatnonzero(pos_in_doc + n <= lens[doc_of_token]) if n > 1 else np.arange(len(ids))
        if not len(at):
            break
        if n > 1:
            # an n-gram is its first (n-1)-gram followed by one more word
            _, first, inv = np.unique(gram[at] * n_words + ids[at + n - 1],
                                      return_index=True, return_inverse=True)
            gram = np.full(len(ids), -1, dtype=np.int64)
            gram[at] = inv
            first = at[first]
        else:
            # words (or stems) are numbered in order of first appearance
            top = np.maximum.accumulate(unigram_ids)
            first = np.flatnonzero(np.r_[True, top[1:] > top[:-1]])
        slot = level_base[doc_of_token] + pos_in_doc
        occ_slot.append(slot[at])
        occ_term.append(offset + (unigram_ids if n == 1 else gram)[at])
        first_tok.append(first)
        first_slot.append(slot[first])
        level_of.append(np.full(len(first), n, dtype=np.int64))
        offset += len(first)
        level_base = level_base + per_level[n - 1]

    # renumber the terms by first appearance in the stream; each row then keeps
    # its terms in that order once sorted, as CountVectorizer's matrix has them
    by_first = np.argsort(np.concatenate(first_slot), kind="stable")
    rank = np.empty(offset, dtype=np.int64)
    rank[by_first] = np.arange(offset)
    first_tok_all = np.concatenate(first_tok)[by_first]
    level_all = np.concatenate(level_of)[by_first]
    stream = np.empty(int(per_doc.sum()), dtype=np.int32)
    for slot, term in zip(occ_slot, occ_term):
        stream[slot] = rank[term]
    indptr = np.zeros(n_docs + 1, dtype=np.int32)
    np.cumsum(per_doc, out=indptr[1:])
    C = sparse.csr_matrix((np.ones(len(stream), dtype=np.float32), stream, indptr),
                          shape=(n_docs, offset))
    C.sum_duplicates()  # sorts each row, then adds up repeats: the counts
    df = np.bincount(C.indices, minlength=offset)
    keep = (df >= low) & (df <= high)
    if not keep.any():
        raise ValueError("After pruning, no terms remain. Try a lower min_df or a higher max_df.")

    # the kept terms' text, from their first occurrence
    kept = np.flatnonzero(keep)
    names = []
    for tok, n in zip(first_tok_all[kept].tolist(), level_all[kept].tolist()):
        names.append(" ".join(words[w] for w in ids[tok:tok + n].tolist()) if n > 1
                     else unigram_words[unigram_ids[tok]])
    alpha = sorted(range(len(kept)), key=names.__getitem__)
    column = np.full(offset, -1, dtype=np.int32)
    column[kept[alpha]] = np.arange(len(kept), dtype=np.int32)
    sel = keep[C.indices]
    indptr = np.zeros(n_docs + 1, dtype=np.int32)
    kept_before = np.r_[0, np.cumsum(sel)]
    indptr[:] = kept_before[C.indptr]
    X = sparse.csr_matrix((C.data[sel], column[C.indices[sel]], indptr),
                          shape=(n_docs, len(kept)))
    vocabulary = {names[i]: c for c, i in enumerate(alpha)}
    return X, vocabulary


def tfidf_weights(counts: sparse.csr_matrix, sublinear_tf: bool = True
                  ) -> tuple[sparse.csr_matrix, np.ndarray]:
    """The TF-IDF matrix and idf vector `TfidfTransformer(sublinear_tf=...)`
    (smooth idf, l2 rows) gives for a float32 count matrix, computed in the
    same dtypes and order; `counts` is changed in place and returned."""
    n_docs = counts.shape[0]
    df = np.bincount(counts.indices, minlength=counts.shape[1]).astype(counts.dtype)
    df += 1.0
    idf = np.full_like(df, fill_value=n_docs + 1, dtype=counts.dtype)
    idf /= df
    np.log(idf, out=idf)
    idf += 1.0
    tf_idf(counts.data, counts.indices, idf, sublinear_tf)
    normalize_rows_l2(counts)
    return counts, idf


def tf_idf(counts: np.ndarray, cols: np.ndarray, idf: np.ndarray, sublinear_tf: bool
           ) -> np.ndarray:
    """The weights of entries (`counts` in their columns `cols`, changed in place and
    returned) before the rows are scaled to unit length, as `tfidf_weights` weighs them."""
    if sublinear_tf:
        np.log(counts, counts)
        counts += 1.0
    counts *= idf[cols]
    return counts


def normalize_rows_l2(X: sparse.csr_matrix, norms: np.ndarray | None = None) -> None:
    """Scale each row of X to unit length in place, with the numbers
    scikit-learn's `sparsefuncs_fast.inplace_csr_row_normalize_l2` gives:
    each entry divided by its row's `row_norms_l2` in float64 and stored in X's
    dtype; rows of zeros left alone (importing that module would start all of
    scikit-learn). `norms`: the rows' `row_norms_l2`, if known already."""
    if not X.shape[0] or not X.nnz:
        return
    if norms is None:
        norms = row_norms_l2(X)
    X.data[:] = X.data.astype(np.float64) / np.repeat(norms, np.diff(X.indptr))


def row_norms_l2(X: sparse.csr_matrix) -> np.ndarray:
    """Each row's length as `normalize_rows_l2` divides by it: the row's squares
    (in X's dtype) summed one after the other in float64, its root; 1 for a row
    of zeros. The rows are summed side by side, one position at a time, longest
    rows first."""
    lens = np.diff(X.indptr)
    if not len(lens) or not X.nnz:
        return np.ones(len(lens), dtype=np.float64)
    by_length = np.argsort(-lens, kind="stable")
    longest_first = lens[by_length]
    starts = X.indptr[:-1][by_length].astype(np.int64)
    squares = (X.data * X.data).astype(np.float64)
    sums = np.zeros(len(lens), dtype=np.float64)
    active = len(lens)  # rows still longer than the position being added
    for pos in range(int(longest_first[0])):
        while longest_first[active - 1] <= pos:
            active -= 1
        sums[:active] += squares[starts[:active] + pos]
    norms = np.empty(len(lens), dtype=np.float64)
    norms[by_length] = np.sqrt(sums)
    norms[norms == 0.0] = 1.0
    return norms
