"""The records' feature matrices as the classifiers see them: `Views`, the
matrices held whole, and `CountedViews`, the same matrices kept as term counts
and weighed a block of rows at a time.

Fitting needs only the labelled rows (`rows`), and scoring is row by row (a
linear score, a similarity to the includes: `map_rows`), so neither needs a
whole weighted matrix. `CountedViews` keeps each entry of the TF-IDF matrices
as its column and term count in about three bytes (the weights took eight), with
each row's length (L2 norm) computed once, and weighs a block of rows when
asked: the same operations on the same numbers as the whole matrices, row for
row, so every score is the same to the last bit (tests/test_counted_views.py).
A large store's ranking holds these instead of the matrices
(`Tfidf.weigh_blocks` decides by a memory budget).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy import sparse

from base.errors import ClusterError
from screeners.prioritiser import termcounts



class ComponentError(ClusterError):
    """A prioritiser component given what it cannot work with."""


class NoWordsError(ComponentError):
    """Texts there are, but not one term the feature extractor counts."""


RowFn = Callable[[sparse.csr_matrix], Any]  # a block of rows -> one value per row


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: matrices have no ==
class Views:
    """The records' feature matrices, row for row: `first`, the one every ranking
    uses, and optionally `second`, the same records seen another way (the
    default model's texts with numbers kept, `Tfidf.number_view`) for a
    classifier that fits a second model on it (`svm-nb`'s `view_share`). Rows
    are selected from both at once (`rows`), so neither is ever lost."""

    first: sparse.csr_matrix
    second: sparse.csr_matrix | None = None

    def __post_init__(self) -> None:
        if self.second is not None and self.second.shape[0] != self.first.shape[0]:
            raise ComponentError("Every view needs a row per record: the views differ in rows.")

    @property
    def n_rows(self) -> int:
        return int(self.first.shape[0])

    @property
    def n_views(self) -> int:
        return 1 if self.second is None else 2

    @property
    def all(self) -> tuple[sparse.csr_matrix, ...]:
        """Every matrix, `first` first."""
        return (self.first,) if self.second is None else (self.first, self.second)

    def rows(self, index: Any) -> Views:
        """Both matrices restricted to the rows `index` selects."""
        return Views(self.first[index], None if self.second is None else self.second[index])

    def view(self, k: int) -> Views:
        """The `k`-th matrix alone."""
        return self if k == 0 and self.second is None else Views(self.all[k])

    def map_rows(self, fns: Sequence[RowFn], view: int = 0) -> list[np.ndarray]:
        """Each of `fns` applied to the `view`-th matrix (one value per row)."""
        M = self.all[view]
        return [np.asarray(fn(M)).ravel() for fn in fns]

    def row_lengths(self) -> np.ndarray:
        """Entries in each row of `first`."""
        return np.diff(self.first.indptr)

    @property
    def owner(self) -> object:
        """What values derived from the first matrix are kept by (its identity)."""
        return self.first

    def whole(self) -> Views:
        return self


BLOCK = 10000  # rows per block of CountedViews: bounds the arrays a weighing makes


@dataclass(frozen=True, eq=False)
class Block:
    """A block of rows of one view in three bytes an entry: the gap from the
    entry's column to the one before it in its row (the first: the column
    itself) in 16 bits, with the higher bits of the few larger gaps apart, and
    the count in 8 bits, with the exact counts apart where one is over 255; the
    rows' offsets and L2 norms. Columns are below 2**24 and in order within
    each row (hashed columns, and the kept columns numbered in their order)."""

    gaps: np.ndarray  # uint16: each gap's low 16 bits
    high_at: np.ndarray  # int32: the entries whose gap is 2**16 or more
    high: np.ndarray  # uint8: their gaps' bits above 16
    small: np.ndarray  # uint8: min(count, 255)
    counts: np.ndarray | None  # float32 counts, only where one is over 255
    indptr: np.ndarray  # int64, from 0
    norms: np.ndarray | None  # float64: each row's length once weighed (1 for an empty
    # row); None: not found yet (found as the rows are weighed)

    @staticmethod
    def pack(cols: np.ndarray, counts: np.ndarray, indptr: np.ndarray,
             norms: np.ndarray | None = None) -> Block:
        """`cols` (below 2**24, ascending within each row) and float32 `counts`
        (integers from 1) packed."""
        indptr = np.asarray(indptr, dtype=np.int64)
        gaps: np.ndarray = np.diff(cols.astype(np.int64), prepend=0)
        starts = indptr[:-1][np.diff(indptr) > 0]
        gaps[starts] = cols[starts]
        if len(gaps) and (int(gaps.min()) < 0 or int(gaps.max()) >= 1 << 24):
            raise ComponentError("Columns must be below 2**24 and in order within each row.")
        high_at = np.flatnonzero(gaps >= 1 << 16).astype(np.int32)
        c = counts.astype(np.uint32)
        big = bool(len(c)) and int(c.max()) > 255
        high = np.right_shift(gaps[high_at], 16).astype(np.uint8)
        return Block(gaps.astype(np.uint16), high_at, high,
                     np.minimum(c, 255).astype(np.uint8),
                     counts.astype(np.float32) if big else None, indptr, norms)

    @property
    def n_rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return len(self.gaps)

    @property
    def nbytes(self) -> int:
        return int(self.gaps.nbytes + self.high_at.nbytes + self.high.nbytes + self.small.nbytes
                   + self.indptr.nbytes + (self.norms.nbytes if self.norms is not None else 0)
                   + (self.counts.nbytes if self.counts is not None else 0))

    def columns(self, at: Any = slice(None)) -> np.ndarray:
        """The int32 columns of the entries `at` (all by default)."""
        run = self.gaps.astype(np.int64)
        run[self.high_at] += self.high.astype(np.int64) << 16
        np.cumsum(run, out=run)
        # each row's columns are its gaps summed from the row's start
        before = np.r_[np.int64(0), run][self.indptr[:-1]]
        run -= np.repeat(before, np.diff(self.indptr))
        return run[at].astype(np.int32)

    def term_counts(self, at: Any = slice(None)) -> np.ndarray:
        if self.counts is not None:
            return self.counts[at].copy()
        return self.small[at].astype(np.float32)


def _weighed(block: Block, at: Any, indptr: np.ndarray, idf: np.ndarray, n_cols: int,
             sublinear_tf: bool) -> sparse.csr_matrix:
    """The entries `at` of `block` (rows laid out by `indptr`) weighed, not yet scaled
    to unit length."""
    cols = block.columns(at)
    data = termcounts.tf_idf(block.term_counts(at), cols, idf, sublinear_tf)
    idx = np.int32 if indptr[-1] < 2**31 else np.int64
    return sparse.csr_matrix((data, cols, indptr.astype(idx)), shape=(len(indptr) - 1, n_cols))


def weigh_block(block: Block, idf: np.ndarray, n_cols: int, sublinear_tf: bool,
                rows: np.ndarray | None = None) -> sparse.csr_matrix:
    """The TF-IDF rows of `block` (all, or the local `rows`): each entry weighed,
    then divided by its row's norm as `termcounts.normalize_rows_l2` does (the
    norms found now where the block has none)."""
    if rows is None:
        at: Any = slice(None)
        indptr, norms = block.indptr, block.norms
    else:
        starts, ends = block.indptr[rows], block.indptr[rows + 1]
        lens = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        at = np.repeat(starts - indptr[:-1], lens) + np.arange(int(indptr[-1]), dtype=np.int64)
        norms = block.norms[rows] if block.norms is not None else None
    M = _weighed(block, at, indptr, idf, n_cols, sublinear_tf)
    termcounts.normalize_rows_l2(M, norms)
    return M


def row_norms(block: Block, idf: np.ndarray, n_cols: int, sublinear_tf: bool) -> np.ndarray:
    """Each row's length once weighed (`termcounts.row_norms_l2`; 1 for an empty row)."""
    return termcounts.row_norms_l2(_weighed(block, slice(None), block.indptr, idf, n_cols,
                                            sublinear_tf))


class CountedViews:
    """The matrices of `Views`, kept as packed term counts in blocks of rows
    (`Block`) with each view's idf: a block is weighed when its rows are asked
    for, the same numbers as the whole matrix has (`weigh_block`)."""

    def __init__(self, blocks: Sequence[Sequence[Block]], idfs: Sequence[np.ndarray],
                 n_cols: Sequence[int], sublinear_tf: bool):
        self.blocks = [list(b) for b in blocks]  # per view, its blocks in row order
        self.idfs, self.n_cols = list(idfs), list(n_cols)
        self.sublinear_tf = sublinear_tf
        sizes = [[b.n_rows for b in bs] for bs in self.blocks]
        if any(s != sizes[0] for s in sizes):
            raise ComponentError("Every view needs a row per record: the views differ in rows.")
        self._starts = np.r_[0, np.cumsum(sizes[0])].astype(np.int64)

    @property
    def n_rows(self) -> int:
        return int(self._starts[-1])

    @property
    def n_views(self) -> int:
        return len(self.blocks)

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for bs in self.blocks for b in bs)

    def with_norms(self) -> CountedViews:
        """These views with every block's row norms found (once, not at each weighing)."""
        for v, blocks in enumerate(self.blocks):
            for k, b in enumerate(blocks):
                if b.norms is None:
                    blocks[k] = dataclasses.replace(b, norms=row_norms(
                        b, self.idfs[v], self.n_cols[v], self.sublinear_tf))
        return self

    def _weigh(self, view: int, k: int, rows: np.ndarray | None = None) -> sparse.csr_matrix:
        return weigh_block(self.blocks[view][k], self.idfs[view], self.n_cols[view],
                           self.sublinear_tf, rows)

    def rows(self, index: Any) -> Views:
        """The weighed rows `index` selects (positions), in that order, of every view."""
        pos = np.arange(self.n_rows)[index] if not isinstance(index, np.ndarray) or \
            index.dtype == bool else np.asarray(index, dtype=np.int64)
        pos = np.atleast_1d(np.asarray(pos, dtype=np.int64))
        if len(pos) and (pos.min() < 0 or pos.max() >= self.n_rows):
            raise IndexError("row index out of range")
        block_of = np.searchsorted(self._starts, pos, side="right") - 1
        order = np.argsort(block_of, kind="stable")
        mats = []
        for v in range(self.n_views):
            parts = []
            for k in np.unique(block_of).tolist():
                local = pos[order][block_of[order] == k] - self._starts[k]
                parts.append(self._weigh(v, k, local))
            M = sparse.vstack(parts, format="csr") if parts else \
                sparse.csr_matrix((0, self.n_cols[v]), dtype=np.float32)
            back = np.empty(len(pos), dtype=np.int64)
            back[order] = np.arange(len(pos))
            mats.append(M[back] if len(pos) > 1 else M)
        return Views(*mats)

    def view(self, k: int) -> CountedViews:
        return CountedViews([self.blocks[k]], [self.idfs[k]], [self.n_cols[k]],
                            self.sublinear_tf)

    def map_rows(self, fns: Sequence[RowFn], view: int = 0) -> list[np.ndarray]:
        """Each of `fns` applied to the `view`-th matrix a block at a time (each
        block weighed once for all of them)."""
        out: list[list[np.ndarray]] = [[] for _ in fns]
        for k in range(len(self.blocks[view])):
            M = self._weigh(view, k)
            for j, fn in enumerate(fns):
                out[j].append(np.asarray(fn(M)).ravel())
            del M
        return [np.concatenate(o) if o else np.zeros(0) for o in out]

    def row_lengths(self) -> np.ndarray:
        return np.concatenate([np.diff(b.indptr) for b in self.blocks[0]]) \
            if self.blocks[0] else np.zeros(0, dtype=np.int64)

    @property
    def owner(self) -> object:
        return self

    def whole(self, free: bool = False) -> Views:
        """The matrices weighed whole (as much memory as `Views`); with `free`,
        each block is let go once weighed (this object is then empty)."""
        return Views(*(self._whole(v, free) for v in range(self.n_views)))

    def _whole(self, view: int, free: bool) -> sparse.csr_matrix:
        blocks = self.blocks[view]
        nnz = sum(b.nnz for b in blocks)
        data = np.empty(nnz, dtype=np.float32)
        indices = np.empty(nnz, dtype=np.int32)
        indptr = np.zeros(self.n_rows + 1, dtype=np.int64)
        at = 0
        for k in range(len(blocks)):
            M = self._weigh(view, k)
            if free:
                blocks[k] = _EMPTY
            data[at:at + M.nnz] = M.data
            indices[at:at + M.nnz] = M.indices
            indptr[self._starts[k] + 1:self._starts[k + 1] + 1] = at + M.indptr[1:]
            at += M.nnz
        idx = np.int32 if at < 2**31 else np.int64
        return sparse.csr_matrix((data, indices, indptr.astype(idx)),
                                 shape=(self.n_rows, self.n_cols[view]))


_EMPTY = Block.pack(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32),
                    np.zeros(1, dtype=np.int64), np.ones(0))


def as_views(X: Any) -> Views | CountedViews:
    """`X` itself, or a single matrix as `Views`."""
    return X if isinstance(X, (Views, CountedViews)) else Views(X)
