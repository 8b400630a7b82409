"""The term counts kept beside the store, a row per record: reused by a new
process, counted again for the changed records alone, rebuilt silently when
damaged, never changing a ranking."""

import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
from scipy import sparse
import pytest

from base.record import Record
from db.store import open_store
from screeners import feature_cache, prioritise
from screeners.prioritiser.features import Tfidf
from screeners.prioritiser.presets import resolve_model
from screeners.prioritise import estimate_relevant_left, features, rank_details
from db.protocol import set_protocol
from tests.conftest import ROOT, screening_rows

TA = "title-abstract"


pytestmark = pytest.mark.usefixtures("fresh_prioritiser")


def _real_rows(n=150):
    return screening_rows(n, 10)


def _filled(db_path, n=150):
    store = open_store(db_path)
    rows = _real_rows(n)
    with store.transaction():
        ids = [store.add_record(Record(title=t or None, abstract=a or None)) for t, a, _ in rows]
    set_protocol(store, reviewers_per_record=1, question="copper metabolism in Wilson disease")
    return store, ids, {i: y for i, (_, _, y) in zip(ids, rows)}


def _no_recount(monkeypatch):
    def recount(*a, **k):
        raise AssertionError("terms were counted again")

    monkeypatch.setattr(Tfidf, "term_counts", recount)


def _same(a, b):
    assert len(a.X.all) == len(b.X.all) == 2
    for x, y in zip(a.X.all, b.X.all):
        assert x.shape == y.shape and x.dtype == y.dtype == np.float32
        assert np.array_equal(x.indptr, y.indptr) and np.array_equal(x.indices, y.indices)
        assert np.array_equal(x.data, y.data)


def _rows(path):
    with sqlite3.connect(path) as conn:
        return {rid: (h, blob) for rid, h, blob in conn.execute("SELECT id, hash, counts FROM rows")}


def test_a_new_store_object_loads_the_file_instead_of_counting(db_path, monkeypatch):
    store, ids, _ = _filled(db_path)
    f = features(store)
    side = db_path.with_name("review.db.features.sqlite")
    assert (f.origin, f.recounted) == ("fitted", 150)
    assert feature_cache.cache_path(store) == side and side.is_file()
    assert side.stat().st_mode & 0o777 == db_path.stat().st_mode & 0o666
    assert sorted(_rows(side)) == ids
    store.close()
    prioritise._FEATURES.clear()
    _no_recount(monkeypatch)
    again = open_store(db_path, create=False)
    g = features(again)
    assert (g.origin, g.recounted) == ("disk", 0)
    assert g.ids.tolist() == ids
    _same(f, g)
    # the default model's second view (numbers kept) comes back with the matrix
    assert g.X.second.shape[1] > f.X.first.shape[1]
    assert g.empty == f.empty and g.known == f.known
    again.close()


def test_status_in_a_second_process_reuses_the_file(db_path):
    store, ids, label = _filled(db_path)
    for rid in ids[:12]:
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA,
                        value="include" if label[rid] else "exclude")
    store.close()
    side = db_path.with_name("review.db.features.sqlite")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)

    def status():
        r = subprocess.run([sys.executable, "-m", "cli", "status", "--estimate", "--db", str(db_path),
                            "--json"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    first = status()
    made = side.stat().st_mtime_ns
    second = status()
    # read, not counted again: a count would have written rows
    assert side.stat().st_mtime_ns == made
    assert second == first and first["estimated_relevant_left"] > 0


def test_editing_one_title_counts_that_record_alone(db_path, monkeypatch):
    store, ids, _ = _filled(db_path, 40)
    features(store)
    side = feature_cache.cache_path(store)
    before = _rows(side)
    counted = []
    real = Tfidf.term_counts

    def spy(self, texts, titles=None):
        counted.append(list(titles))
        return real(self, texts, titles)

    monkeypatch.setattr(Tfidf, "term_counts", spy)
    # a title of the same length, other words: the lengths alone would not see it
    title = store.db["records"].get(ids[7])["title"]
    store.db["records"].update(ids[7], {"title": ("quokka " * 40)[: len(title)]})
    g = features(store)
    assert (g.origin, g.recounted) == ("updated", 1)
    assert counted == [[("quokka " * 40)[: len(title)].strip()]]
    after = _rows(side)
    assert sorted(after) == ids
    assert [rid for rid in ids if after[rid] != before[rid]] == [ids[7]]
    # a record added: that one counted, the rest read
    new = store.add_record(Record(title="Zinc therapy in Wilson disease", abstract="Zinc acetate."))
    h = features(store)
    assert (h.origin, h.recounted) == ("updated", 1) and new in h.known
    assert counted[-1] == ["Zinc therapy in Wilson disease"]
    # the same matrices as counting every record afresh
    store.close()
    side.unlink()
    prioritise._FEATURES.clear()
    fresh = features(open_store(db_path, create=False))
    assert fresh.origin == "fitted"
    _same(h, fresh)


def test_a_duplicate_gets_no_row_and_is_not_ranked(db_path):
    store, ids, _ = _filled(db_path, 40)
    features(store)
    store.db.execute("UPDATE records SET duplicate_of = ? WHERE id = ?", [ids[0], ids[1]])
    store.db.conn.commit()
    f = features(store)
    assert (f.origin, f.recounted) == ("disk", 0)
    assert ids[1] not in f.known and len(f.ids) == 39
    assert ids[1] not in _rows(feature_cache.cache_path(store))
    ranked = rank_details(store, TA, "ann", ids).scores
    assert ranked[-1] == (ids[1], float("-inf"))


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "row", "settings", "folder"])
def test_a_damaged_cache_file_is_rebuilt_without_a_word(db_path, damage):
    store, ids, label = _filled(db_path, 40)
    ref = features(store)
    side = feature_cache.cache_path(store)
    prioritise._FEATURES.clear()
    if damage == "garbage":
        side.write_bytes(b"not a features file\x00" * 50)
    elif damage == "truncated":
        side.write_bytes(side.read_bytes()[: side.stat().st_size // 2])
    elif damage == "empty":
        side.write_bytes(b"")
    elif damage in ("row", "settings"):
        with sqlite3.connect(side) as conn:
            if damage == "row":  # one row's counts not a deflated stream
                conn.execute("UPDATE rows SET counts = x'0102' WHERE id = ?", [ids[3]])
            else:
                conn.execute("UPDATE meta SET value = 'other' WHERE key = 'layout'")
    else:
        side.unlink()
        side.mkdir()  # nothing can be written there
    f = features(store)
    assert f.origin == "fitted"
    _same(f, ref)
    if damage == "folder":
        assert side.is_dir()
    else:
        prioritise._FEATURES.clear()
        assert features(store).origin == "disk"  # rewritten whole
    store.log_event("decision", record_id=ids[0], reviewer="ann", stage=TA, value="include")
    store.log_event("decision", record_id=ids[-1], reviewer="ann", stage=TA, value="exclude")
    assert rank_details(store, TA, "ann", ids[1:-1]).mode == "model"


def test_a_cache_from_other_feature_settings_is_not_used(db_path):
    store, _, _ = _filled(db_path, 40)
    features(store)
    prioritise._FEATURES.clear()
    m = resolve_model("default")
    other = dataclasses.replace(m, feature=dataclasses.replace(m.feature, title_repeats=3))
    f = features(store, other)
    assert (f.origin, f.recounted) == ("fitted", 40)
    # a model without hashed columns is fitted in memory and leaves the file alone
    g = features(store, resolve_model("nb"))
    assert "the" not in g.vectorizer.vocabulary_


def test_rankings_and_estimate_are_identical_with_and_without_the_cache(db_path):
    store, ids, label = _filled(db_path)
    cold_fit = rank_details(store, TA, "ann", ids)  # cold start: protocol question
    for rid in ids[:3] + ids[-5:]:
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA,
                        value="include" if label[rid] else "exclude")
    pending = ids[3:-5]
    model_fit = rank_details(store, TA, "ann", pending)
    est_fit = estimate_relevant_left(store, TA)
    assert cold_fit.mode == "cold-start" and model_fit.mode == "model"
    store.close()

    prioritise._FEATURES.clear()
    prioritise._MODELS.clear()
    prioritise._ESTIMATES.clear()
    again = open_store(db_path, create=False)
    assert features(again).origin == "disk"
    assert rank_details(again, TA, "ann", pending).scores == model_fit.scores
    assert estimate_relevant_left(again, TA) == est_fit
    # the protocol question is placed in the columns as before
    cold = prioritise._cold_scores(again, features(again), {})[0]
    order = np.lexsort((np.arange(len(ids)), -cold))
    assert [(ids[i], float(cold[i])) for i in order] == cold_fit.scores
    again.close()


def test_an_in_memory_store_keeps_its_features_in_memory_only(tmp_path):
    store = open_store(None)
    store.add_record(Record(title="Copper chelation", abstract="Penicillamine."))
    store.add_record(Record(title="Zinc salts", abstract="Zinc acetate therapy."))
    assert feature_cache.cache_path(store) is None
    f = features(store)
    assert features(store) is f
    assert list(tmp_path.iterdir()) == []


def test_texts_are_not_read_again_for_a_decision_but_are_for_a_record_write(db_path, monkeypatch):
    store, ids, _ = _filled(db_path, 40)
    calls = []
    real = prioritise._count_changed
    monkeypatch.setattr(prioritise, "_count_changed", lambda *a: calls.append(1) or real(*a))
    features(store)
    store.log_event("decision", record_id=ids[0], reviewer="ann", stage="title-abstract",
                    value="include")
    features(store)
    assert len(calls) == 1
    store.db["records"].update(ids[1], {"abstract": "Copper in the liver."})
    assert features(store).recounted == 1
    assert len(calls) == 2
    store.close()


def _row_by_row(counts):
    """The layout encode_rows documents, one row at a time: the reference."""
    out = []
    for r in range(counts[0].shape[0]):
        cols, vals, ns = [], [], []
        for C in counts:
            a, b = C.indptr[r], C.indptr[r + 1]
            cols.append(np.diff(C.indices[a:b].astype(np.uint32), prepend=np.uint32(0)))
            vals.append(C.data[a:b].astype(np.uint32))
            ns.append(b - a)
        arr = np.concatenate([np.asarray(ns, dtype=np.uint32), *cols, *vals]).astype("<u4")
        out.append(zlib.compress(arr.tobytes(), 6))
    return out


def test_rows_are_encoded_at_once_as_row_by_row():
    from screeners.feature_cache import decode_rows, encode_rows
    from screeners.prioritiser.presets import resolve_model

    feat = resolve_model("default").feature
    texts = ["Compassion in care: a trial of 2010", "", "1999 2000", "Empathy studies of nurses",
             "care care care nurses 12 trials"]
    counts = feat.term_counts(texts, ["Compassion", "", "", "Empathy", "care"])
    blobs = encode_rows(counts)
    assert blobs == _row_by_row([sparse.csr_matrix(C) for C in counts])
    back = decode_rows(blobs, 2, 1 << feat.hash_bits)
    assert back is not None
    for C, D in zip(counts, back):
        assert (C != D).nnz == 0 and C.shape == D.shape
    empty = sparse.csr_matrix((0, 8), dtype=np.float32)
    assert encode_rows([empty, empty]) == []
