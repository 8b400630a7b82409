"""The fitted features kept beside the store: reused by a new process, refreshed
when records change, rebuilt silently when damaged, never changing a ranking."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from base.record import Record
from db.store import open_store
from screeners import feature_cache, prioritise
from screeners.prioritiser.features import Tfidf
from screeners.prioritiser.presets import resolve_model
from screeners.prioritise import estimate_relevant_left, features, rank_details
from db.protocol import set_protocol
from tests.conftest import ROOT, shared_path

TA = "title-abstract"


@pytest.fixture(autouse=True)
def _fresh_memory():
    # each test starts as a new process would: nothing fitted in memory
    prioritise._FEATURES.clear()
    prioritise._MODELS.clear()
    yield
    prioritise._FEATURES.clear()
    prioritise._MODELS.clear()


def _real_rows(n=150):
    path = shared_path("data", "screening", "Appenzeller-Herzog_2019.csv")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [(r["title"], r["abstract"], int(r["label_included"])) for r in csv.DictReader(fh)]
    # every include among the first rows, so the sample has both labels
    inc = [r for r in rows if r[2] == 1][:10]
    return inc + [r for r in rows if r[2] == 0][: n - len(inc)]


def _filled(db_path, n=150):
    store = open_store(db_path)
    rows = _real_rows(n)
    with store.transaction():
        ids = [store.add_record(Record(title=t or None, abstract=a or None)) for t, a, _ in rows]
    set_protocol(store, reviewers_per_record=1, question="copper metabolism in Wilson disease")
    return store, ids, {i: y for i, (_, _, y) in zip(ids, rows)}


def _no_refit(monkeypatch):
    def refit(*a, **k):
        raise AssertionError("the features were refitted")

    monkeypatch.setattr(Tfidf, "fit", refit)


def test_a_new_store_object_loads_the_file_instead_of_refitting(db_path, monkeypatch):
    store, ids, _ = _filled(db_path)
    f = features(store)
    side = db_path.with_name("review.db.features.npz")
    assert f.origin == "fitted" and feature_cache.cache_path(store) == side and side.is_file()
    assert side.stat().st_mode & 0o777 == db_path.stat().st_mode & 0o666
    store.close()
    prioritise._FEATURES.clear()
    _no_refit(monkeypatch)
    again = open_store(db_path, create=False)
    g = features(again)
    assert g.origin == "disk"
    assert g.ids.tolist() == ids
    assert (g.X.first != f.X.first).nnz == 0 and np.array_equal(g.X.first.indices, f.X.first.indices)
    # the default model's second view (numbers kept) comes back with the matrix
    nums_then, nums_now = f.X.second, g.X.second
    assert nums_now.shape == nums_then.shape and nums_now.shape[1] > f.X.first.shape[1]
    assert (nums_now != nums_then).nnz == 0
    assert g.empty == f.empty and g.known == f.known
    again.close()


def test_status_in_a_second_process_reuses_the_file(db_path):
    store, ids, label = _filled(db_path)
    for rid in ids[:12]:
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA,
                        value="include" if label[rid] else "exclude")
    store.close()
    side = db_path.with_name("review.db.features.npz")
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
    # loaded, not refitted: a refit would have rewritten the file
    assert side.stat().st_mtime_ns == made
    assert second == first and first["estimated_relevant_left"] > 0


def test_adding_a_record_or_editing_a_text_refreshes_the_features(db_path, monkeypatch):
    store, ids, _ = _filled(db_path, 40)
    features(store)
    new = store.add_record(Record(title="Zinc therapy in Wilson disease", abstract="Zinc acetate."))
    f = features(store)
    assert f.origin == "fitted" and new in f.known
    # titles of the same length, other words: the lengths alone would not see it
    for rid in ids[:2]:
        title = store.db["records"].get(rid)["title"]
        store.db["records"].update(rid, {"title": ("quokka " * 40)[: len(title)]})
    g = features(store)
    assert g.origin == "fitted"
    assert "quokka" in g.vectorizer.vocabulary_ and "quokka" not in f.vectorizer.vocabulary_
    store.close()
    prioritise._FEATURES.clear()
    _no_refit(monkeypatch)
    h = features(open_store(db_path, create=False))
    assert h.origin == "disk" and (h.X.first != g.X.first).nnz == 0


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "forged", "view", "terms",
                                    "folder"])
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
    elif damage == "forged":
        # the right fingerprint, a matrix that does not hang together
        with np.load(side) as z:
            parts = dict(z)
        parts["indices"] = parts["indices"] + 10 ** 6
        with open(side, "wb") as fh:
            np.savez(fh, **parts)
    elif damage == "view":
        # the second view one row short
        with np.load(side) as z:
            parts = dict(z)
        parts["view1_indptr"] = parts["view1_indptr"][:-1]
        parts["view1_shape"] = parts["view1_shape"] - [1, 0]
        with open(side, "wb") as fh:
            np.savez(fh, **parts)
    elif damage == "terms":
        # one term twice: the rebuilt vectoriser would refuse its vocabulary
        with np.load(side) as z:
            parts = dict(z)
        terms = bytes(parts["terms"]).decode().split("\n")
        terms[1] = terms[0]
        parts["terms"] = np.frombuffer("\n".join(terms).encode(), dtype=np.uint8)
        with open(side, "wb") as fh:
            np.savez(fh, **parts)
    else:
        side.unlink()
        side.mkdir()  # nothing can be written there
    f = features(store)
    assert f.origin == "fitted" and (f.X.first != ref.X.first).nnz == 0
    assert len(f.X.all) == 2
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
    other = resolve_model("nb")  # English stop words: other columns
    f = features(store, other)
    assert f.origin == "fitted"
    assert "the" not in f.vectorizer.vocabulary_


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
    again = open_store(db_path, create=False)
    assert features(again).origin == "disk"
    assert rank_details(again, TA, "ann", pending).scores == model_fit.scores
    assert estimate_relevant_left(again, TA) == est_fit
    # the rebuilt vectoriser scores the protocol question as the fitted one did
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


def test_the_text_hash_is_not_recomputed_for_a_decision_but_is_for_a_record_write(db_path, monkeypatch):
    store, ids, _ = _filled(db_path, 40)
    calls = []
    real = feature_cache.fingerprint
    monkeypatch.setattr(feature_cache, "fingerprint", lambda *a: calls.append(1) or real(*a))
    features(store)
    store.log_event("decision", record_id=ids[0], reviewer="ann", stage="title-abstract",
                    value="include")
    features(store)
    assert len(calls) == 1
    store.db["records"].update(ids[1], {"abstract": "Copper in the liver."})
    assert "copper" in features(store).vectorizer.vocabulary_
    assert len(calls) == 2
    store.close()
