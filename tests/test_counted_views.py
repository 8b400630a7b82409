"""The feature matrices kept as packed term counts and weighed a block of rows
at a time (`CountedViews`): the very numbers of the whole matrices, so every
score, order and estimate is the same whichever a store's ranking holds."""


import numpy as np
import pytest

from base.record import Record
from db.protocol import set_protocol
from db.store import open_store
from screeners import feature_cache, prioritise
from screeners.prioritiser import features as features_module
from screeners.prioritiser import fitting
from screeners.prioritiser.presets import resolve_model
from screeners.prioritiser.views import Block, ComponentError, CountedViews, Views
from tests.conftest import screening_rows

TA = "title-abstract"


pytestmark = pytest.mark.usefixtures("fresh_prioritiser")


def _real(n=600):
    return screening_rows(n, 15)


def _counts(rows):
    feat = resolve_model("default").feature
    texts = [" ".join(p for p in (t, a) if p) for t, a, _ in rows]
    return feat, feat.term_counts(texts, [t for t, _, _ in rows])


def _stream(counts, step):
    """The counts a few rows at a time, as the cache file gives them."""
    n = counts[0].shape[0]
    for r0 in range(0, n, step):
        yield [(np.diff(C.indptr[r0:r0 + step + 1]), C.indices[C.indptr[r0]:C.indptr[min(r0 + step, n)]],
                C.data[C.indptr[r0]:C.indptr[min(r0 + step, n)]]) for C in counts]


def _equal(a, b):
    assert a.shape == b.shape and a.dtype == b.dtype == np.float32
    assert np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
    assert np.array_equal(a.data, b.data)


@pytest.fixture
def blocks_of_37(monkeypatch):
    # many blocks, and read chunks that do not fall on their edges
    monkeypatch.setattr(features_module, "BLOCK", 37)
    monkeypatch.setattr(feature_cache, "READ_CHUNK", 50)


def test_weighing_from_packed_counts_gives_the_whole_matrices_bit_for_bit(blocks_of_37):
    feat, counts = _counts(_real())
    whole, terms = feat.weigh_counts(tuple(C.copy() for C in counts))
    held, held_terms = feat.weigh_blocks(_stream(counts, 50), budget=2**40)
    packed, _ = feat.weigh_blocks(_stream(counts, 50), budget=0)
    assert isinstance(held, Views) and isinstance(packed, CountedViews)
    assert len(packed.blocks[0]) == 12  # a block closes with the chunk of 50 rows that fills it
    for a, b, c in zip(whole.all, held.all, packed.whole().all):
        _equal(a, b)
        _equal(a, c)
    assert np.array_equal(terms.column, held_terms.column) and np.array_equal(terms.idf, held_terms.idf)
    # packed: about three bytes an entry against eight
    assert packed.nbytes < 0.45 * sum(8 * M.nnz for M in whole.all)


def test_rows_and_products_of_the_packed_counts_are_those_of_the_whole_matrix(blocks_of_37):
    feat, counts = _counts(_real())
    whole, _ = feat.weigh_counts(tuple(C.copy() for C in counts))
    packed, _ = feat.weigh_blocks(_stream(counts, 64), budget=0)
    pick = np.array([599, 3, 40, 3, 0, 74, 73, 36, 37])  # across blocks, unsorted, repeated
    for a, b in zip(whole.rows(pick).all, packed.rows(pick).all):
        _equal(a, b)
    v = np.random.default_rng(1).random(whole.second.shape[1]).astype(np.float32)
    got = packed.map_rows([lambda M: M @ v, lambda M: M.sum(axis=1)], view=1)
    assert np.array_equal(got[0], whole.second @ v)
    assert np.array_equal(got[1], np.asarray(whole.second.sum(axis=1)).ravel())
    assert np.array_equal(packed.row_lengths(), whole.row_lengths())


def test_the_default_model_scores_packed_counts_exactly_as_the_whole_matrices(blocks_of_37):
    rows = _real()
    feat, counts = _counts(rows)
    whole, _ = feat.weigh_counts(tuple(C.copy() for C in counts))
    packed, _ = feat.weigh_blocks(_stream(counts, 64), budget=0)
    m = resolve_model("default")
    y_all = np.array([y for _, _, y in rows])
    train = np.r_[0:6, 20:80, 300:340]  # 6 includes, 100 excludes
    y = y_all[train]
    w = m.balance.weights(y)
    a = m.classifier.fit_scores(whole, train, y, w, 0)
    b = m.classifier.fit_scores(packed, train, y, w, 0)
    assert np.array_equal(a, b)
    # more includes: the similarity columns of the new ones alone, still the same
    train2 = np.r_[0:12, 20:80, 300:340]
    y2 = y_all[train2]
    a2 = m.classifier.fit_scores(whole, train2, y2, m.balance.weights(y2), 0)
    b2 = m.classifier.fit_scores(packed, train2, y2, m.balance.weights(y2), 0)
    assert np.array_equal(a2, b2)
    fitting._SIMILAR.clear()  # computed afresh, not the answer the fits above kept
    assert np.array_equal(fitting.nearest_include_similarity(packed, np.arange(12)),
                          fitting.nearest_include_similarity(whole, np.arange(12)))


@pytest.mark.parametrize("direct", [True, False])
def test_naive_bayes_scores_packed_counts_a_block_at_a_time(blocks_of_37, monkeypatch, direct):
    # scikit-learn's own classes (a direct fit unavailable) score the blocks as they
    # are weighed too: the whole matrices are never made
    rows = _real()
    feat, counts = _counts(rows)
    whole, _ = feat.weigh_counts(tuple(C.copy() for C in counts))
    packed, _ = feat.weigh_blocks(_stream(counts, 64), budget=0)
    if not direct:
        monkeypatch.setattr(fitting, "_direct_ok", lambda which: False)
    monkeypatch.setattr(CountedViews, "whole", lambda *a, **k: pytest.fail("weighed whole"))
    m = resolve_model("default")
    y_all = np.array([y for _, _, y in rows])
    train = np.r_[0:6, 20:80, 300:340]
    y = y_all[train]
    w = m.balance.weights(y)
    a = m.classifier.fit_scores(whole, train, y, w, 0)
    b = m.classifier.fit_scores(packed, train, y, w, 0)
    assert np.array_equal(a, b) and len(b) == len(rows)
    nb = resolve_model("nb").classifier
    assert np.array_equal(nb.fit_scores(whole, train, y, w, 0), nb.fit_scores(packed, train, y, w, 0))


def test_columns_and_counts_are_packed_and_unpacked_exactly():
    cols = np.array([5, 9, 2**24 - 1], dtype=np.int64)
    counts = np.array([1.0, 300.0, 255.0], dtype=np.float32)
    b = Block.pack(cols, counts, np.array([0, 3]))
    assert b.columns().tolist() == [5, 9, 2**24 - 1]
    assert b.term_counts().tolist() == [1.0, 300.0, 255.0]
    assert b.high_at.tolist() == [2]  # the one gap of 2**16 or more
    small = Block.pack(cols, np.array([1.0, 2.0, 255.0], dtype=np.float32), np.array([0, 3]))
    assert small.counts is None and small.term_counts().tolist() == [1.0, 2.0, 255.0]
    # rows of their own: each row's first column is its own, whatever came before
    rows = Block.pack(np.array([70000, 3, 2, 65536, 131073]), np.ones(5, dtype=np.float32),
                      np.array([0, 1, 2, 2, 5]))
    assert rows.columns().tolist() == [70000, 3, 2, 65536, 131073]
    assert rows.columns(np.array([4, 1])).tolist() == [131073, 3]
    with pytest.raises(ComponentError, match="in order within each row"):
        Block.pack(np.array([9, 5]), np.ones(2, dtype=np.float32), np.array([0, 2]))


def _decided_store(db_path):
    rows = _real(400)
    store = open_store(db_path)
    with store.transaction():
        ids = [store.add_record(Record(title=t or None, abstract=a or None)) for t, a, _ in rows]
    set_protocol(store, reviewers_per_record=1, question="copper metabolism in Wilson disease")
    return store, ids, [y for _, _, y in rows]


@pytest.mark.parametrize("labelled", [0, 30])
def test_a_store_ranks_alike_with_the_matrices_whole_or_packed(db_path, monkeypatch, labelled,
                                                               blocks_of_37):
    store, ids, ys = _decided_store(db_path)
    for rid, y in list(zip(ids, ys))[:labelled // 2] + list(zip(ids, ys))[200:200 + labelled // 2]:
        store.log_event("decision", record_id=rid, reviewer="alice", stage=TA,
                        value="include" if y else "exclude")
    whole = prioritise.rank_details(store, TA, "alice", ids)
    left = prioritise.estimate_relevant_left(store, TA)
    assert isinstance(prioritise.features(store).X, Views)
    prioritise._FEATURES.clear()
    prioritise._MODELS.clear()
    prioritise._ESTIMATES.clear()
    monkeypatch.setattr(prioritise, "MATRIX_BUDGET", 0)
    packed = prioritise.rank_details(store, TA, "alice", ids)
    assert isinstance(prioritise.features(store).X, CountedViews)
    assert packed.mode == whole.mode == ("model" if labelled else "cold-start")
    assert packed.scores == whole.scores
    assert prioritise.estimate_relevant_left(store, TA) == left
