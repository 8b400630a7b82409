"""Which record a reviewer should see next: the relevance ranking of a store's
records, retrained from the decision log, and the estimate of relevant records
left.

The model itself is `screeners.prioritiser` (the default in
`screeners/prioritiser/presets.py`). TF-IDF features are fitted once per store
content, keyed by a fingerprint of the feature settings and of every record's
id and texts, kept in memory (the cache policy of
`screeners.prioritiser.cache`) and in a file beside the store
(`screeners.feature_cache`), so a new process loads them and they are refitted
only when records are added or their texts change. The classifier is refitted
on every call while a fit is fast; once a fit takes longer than `FIT_BUDGET`
seconds the last model is reused until the labelled set has grown by the
simulation schedule's share of it (1.5 %, whatever the store's size), so a
reviewer never waits on it.

Before the team has both an include and an exclude, records are ranked by
cosine similarity to the protocol's question and include terms, to the index
articles (records with a source of role "index") and to any record labelled
relevant so far, minus half their similarity to the protocol's exclude terms.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from scipy import sparse

from db.events import TITLE_ABSTRACT
from db.protocol import get_protocol
from db.state import screening_sequence, stage_states, training_labels
from db.store import Store
from screeners import feature_cache
from screeners.prioritiser.cache import Memo
from screeners.prioritiser.components import (Model, NoWordsError, Views, textless_due,
                                              textless_rows)
from screeners.prioritiser.presets import resolve_model
from screeners.prioritiser.simulation import Schedule
from screeners.stopping import excludes_in_a_row

FIT_BUDGET = 0.2  # seconds; a slower fit switches to batched refits
DEFAULT_MODEL = "default"


@dataclass(frozen=True)
class Features:
    ids: np.ndarray  # record id of each row
    X: Views
    vectorizer: Any
    empty: frozenset[int]  # records with no text at all
    known: frozenset[int]  # every record id with a row
    origin: str = "fitted"  # "fitted" in this process, or "disk" (loaded from the cache file)

    def rows(self, record_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.ids, np.asarray(record_ids, dtype=np.int64))
        return pos


@dataclass(frozen=True)
class Ranking:
    scores: list[tuple[int, float]]
    mode: str  # "model" or "cold-start"
    warnings: tuple[str, ...] = ()


# owner: where the store is; version: the fingerprint of its texts and the settings
_FEATURES: Memo[Features] = Memo(size=4)
# owner: (where, stage, model); version: the features' signature; value: (labels, scores, fit s)
_MODELS: Memo[tuple[int, np.ndarray, float]] = Memo(size=8)
# owner: where; version: what could have changed the records since the hash was taken
_FINGERPRINTS: Memo[str] = Memo(size=4)


def _record_writes(conn: Any) -> int | None:
    """How many times this connection has written to `records` since it was first
    asked (None where temporary triggers cannot be made)."""
    try:
        return conn.execute("SELECT n FROM temp.record_writes").fetchone()[0]
    except Exception:
        pass
    try:
        conn.execute("CREATE TEMP TABLE record_writes AS SELECT 0 AS n")
        for event in ("INSERT", "UPDATE", "DELETE"):
            conn.execute(f"CREATE TEMP TRIGGER record_writes_{event.lower()} AFTER {event} "
                         "ON main.records BEGIN UPDATE record_writes SET n = n + 1; END")
        return 0
    except Exception:
        return None


def _signature(store: Store, model: Model | None = None) -> tuple:
    """(where the store is, fingerprint of its records' texts and the feature settings)."""
    m = model or resolve_model(DEFAULT_MODEL)
    where = str(store.path) if store.path is not None else f"memory:{id(store)}"
    settings = m.feature.describe()
    # Hashing every text costs about 60 ms at 10,000 records, too much for each
    # update. The hash is remembered while nothing can have changed the records:
    # no other connection has committed (SQLite's data_version) and this one has
    # not written to them (a per-connection counter kept by temporary triggers).
    conn = store.db.conn
    changes = _record_writes(conn)
    version = conn.execute("PRAGMA data_version").fetchone()[0]
    state = (id(conn), version, changes, repr(settings))
    fp = _FINGERPRINTS.get(where, state) if changes is not None else None
    if fp is None:
        fp = _FINGERPRINTS.put(where, state, feature_cache.fingerprint(store, settings))
    return (where, fp)


def _text(row: dict) -> str:
    import json

    kw = " ".join(json.loads(row.get("keywords") or "[]"))
    return " ".join(t.strip() for t in (row.get("title") or "", row.get("abstract") or "", kw)
                    if t and t.strip())


def features(store: Store, model: Model | None = None, signature: tuple | None = None
             ) -> Features:
    """The TF-IDF matrix of every record (duplicates too, so any id has a row):
    from this process's memory, else from the file beside the store, else
    fitted (and the file written)."""
    m = model or resolve_model(DEFAULT_MODEL)
    key = signature or _signature(store, m)
    cached = _FEATURES.get(key[0], key[1])
    if cached is not None:
        return cached
    path = feature_cache.cache_path(store)
    f = _load_features(path, key[1], m) if path is not None else None
    if f is None:
        f, counts = _fit_features(store, m)
        if path is not None and counts is not None:
            feature_cache.save(path, key[1], f.ids, f.X, counts,
                               np.isin(f.ids, list(f.empty)), f.vectorizer)
    return _FEATURES.put(key[0], key[1], f)


def _fit_features(store: Store, m: Model) -> tuple[Features, tuple[np.ndarray, ...] | None]:
    """The features fitted, with each view's term counts (None where the feature
    extractor keeps none: nothing is written to the cache then)."""
    ids, texts, titles = [], [], []
    for row in store.record_rows(include_duplicates=True):
        ids.append(row["id"])
        texts.append(_text(row))
        titles.append((row.get("title") or "").strip())
    vec, X = None, Views(sparse.csr_matrix((len(ids), 1), dtype=np.float32))
    counts: tuple[np.ndarray, ...] | None = (np.zeros(0, dtype=np.uint8),)
    if any(t for t in texts):
        try:
            if hasattr(m.feature, "fit_counted"):
                vec, X, counts = m.feature.fit_counted(texts, titles)
            else:
                (vec, X), counts = m.feature.fit(texts, titles), None
        except NoWordsError:
            pass  # not one countable word yet: every record ranks alike, as with no text
    empty = frozenset(i for i, t in zip(ids, texts) if not t)
    return Features(np.asarray(ids, dtype=np.int64), X, vec, empty, frozenset(ids)), counts


def _load_features(path: Any, fp: str, m: Model) -> Features | None:
    c = feature_cache.load(path, fp)
    if c is None:
        return None
    if c.terms is not None:
        if not hasattr(m.feature, "weigh"):
            return None
        # the weights from the counts, as the fit computed them
        X, idf = m.feature.weigh(c.counts, [V.data for V in c.counts.all])
        vec = feature_cache.vectorizer_from(m.feature, c.terms, idf)
        try:
            vec.transform([""])  # a vocabulary the vectoriser refuses: refit instead
        except Exception:
            return None
    else:
        X = Views(*(V.astype(np.float32) for V in c.counts.all))
        vec = None
    ids = c.ids.tolist()
    return Features(c.ids, X, vec, frozenset(c.ids[c.empty].tolist()), frozenset(ids), "disk")


def index_record_ids(store: Store) -> list[int]:
    return [r[0] for r in store.db.execute(
        "SELECT DISTINCT record_id FROM sources WHERE role = 'index' ORDER BY record_id")]


def _cold_scores(store: Store, f: Features, labels: dict[int, int]) -> tuple[np.ndarray, list[str]]:
    warnings: list[str] = []
    proto = get_protocol(store)
    if f.vectorizer is None:
        return np.zeros(len(f.ids)), ["No record has a title or abstract: records stay in id order."]
    seeds = sorted(set(index_record_ids(store)) | {r for r, y in labels.items() if y == 1})
    for rid in seeds:
        if rid in f.empty:
            warnings.append(f"Seed record {rid} has no title or abstract, so it cannot guide the ranking.")
    seeds = [r for r in seeds if r not in f.empty and r in f.known]
    X = f.X.first
    score = np.zeros(len(f.ids))
    pos_text = " ".join([proto.question, *proto.include_terms]).strip()
    if pos_text:
        q = f.vectorizer.transform([pos_text])
        score = np.maximum(score, np.asarray((X @ q.T).todense()).ravel())
    if seeds:
        S = X[f.rows(seeds)]
        # rows are L2-normalised, so the dot product is the cosine similarity
        score = np.maximum(score, np.asarray((X @ S.T).max(axis=1).todense()).ravel())
    if proto.exclude_terms:
        q = f.vectorizer.transform([" ".join(proto.exclude_terms)])
        score = score - 0.5 * np.asarray((X @ q.T).todense()).ravel()
    if not pos_text and not seeds:
        warnings.append("No protocol question, include terms or index articles yet: "
                        "records stay in id order until the first include and exclude.")
    return score, warnings


def _model_scores(signature: tuple, stage: str, f: Features, labels: dict[int, int],
                  model: Model) -> np.ndarray:
    train_ids = np.asarray(sorted(labels), dtype=np.int64)
    y = np.asarray([labels[r] for r in train_ids], dtype=np.int64)
    owner = (signature[0], stage, model.label)
    cached = _MODELS.get(owner, signature)
    if cached is not None:
        n_then, scores_then, secs = cached
        # by labels alone, whatever the store's size: a reviewer should not work
        # from a ranking many decisions old
        sch = Schedule()
        due = sch.batch(n_then, sch.per_records)
        if secs > FIT_BUDGET and 0 <= len(train_ids) - n_then < due:
            return scores_then
    t0 = time.perf_counter()
    scores = model.classifier.fit_scores(f.X, f.rows(train_ids), y, model.balance.weights(y), 0)
    _MODELS.put(owner, signature, (len(train_ids), scores, time.perf_counter() - t0))
    return scores


def rank_details(store: Store, stage: str, reviewer: str | None, candidates: Sequence[int],
                 model: str = DEFAULT_MODEL) -> Ranking:
    """The ranking with how it was made (model or cold start) and any warnings."""
    cands = list(dict.fromkeys(int(c) for c in candidates))
    if not cands:
        return Ranking([], "cold-start")
    m = resolve_model(model)
    sig = _signature(store, m)
    f = features(store, m, sig)
    labels = training_labels(store, stage, reviewer)
    known = f.known
    cands_known = [c for c in cands if c in known]
    labels = {r: y for r, y in labels.items() if r in known}
    ys = set(labels.values())
    warnings: list[str] = []
    if ys == {0, 1}:
        scores = _model_scores(sig, stage, f, labels, m)
        mode = "model"
    else:
        scores, warnings = _cold_scores(store, f, labels)
        mode = "cold-start"
    ck = np.asarray(cands_known, dtype=np.int64)
    vals = np.asarray(scores, dtype=np.float64)[f.rows(ck)]
    order = np.lexsort((np.arange(len(ck)), -vals))  # ties keep the order given
    out = list(zip(ck[order].tolist(), vals[order].tolist()))
    out = _place_textless(store, stage, reviewer, f, out)
    # candidates unknown to the store go last, in the order given
    out += [(c, float("-inf")) for c in cands if c not in known]
    return Ranking(out, mode, tuple(warnings))


def _place_textless(store: Store, stage: str, reviewer: str | None, f: Features,
                    ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Records without text go last until the reviewer's last labels are a run of
    excludes long enough (`components.TEXTLESS_AFTER_EXCLUDES`), then first."""
    textless = set(f.ids[textless_rows(f.X)].tolist())
    held = [p for p in ranked if p[0] in textless]
    if not held:
        return ranked
    run = excludes_in_a_row([y for _, y in screening_sequence(store, stage, reviewer)])
    rest = [p for p in ranked if p[0] not in textless]
    return held + rest if textless_due(run) else rest + held


def rank(store: Store, stage: str, reviewer: str | None, candidates: Sequence[int]
         ) -> list[tuple[int, float]]:
    """(record id, predicted relevance) for `candidates`, most likely relevant first."""
    return rank_details(store, stage, reviewer, candidates).scores


def estimate_relevant_left(store: Store, stage: str) -> float | None:
    """Expected number of relevant records among the records nobody has labelled,
    or None where there is no basis for one.

    A logistic model without class balancing, trained on the labels so far, gives
    each unlabelled record a probability of relevance; their sum is the estimate.
    The labelled records were chosen as the likeliest, so their share of
    includes is higher than the remainder's and the estimate errs high early on.
    Before there is an include the estimate is unknown (excludes alone say
    nothing about how many relevant records are left); with includes but no
    exclude yet, it is the share of includes among the labelled records times
    the records left. At full text there is none: the records not yet assessed
    there are reports waiting for retrieval or reading, not a ranked remainder.
    """
    from sklearn.linear_model import LogisticRegression

    if stage != TITLE_ABSTRACT:
        return None
    states = stage_states(store, stage)
    if not states:
        return 0.0
    labels = training_labels(store, stage)
    f = features(store)
    labels = {r: y for r, y in labels.items() if r in f.known}
    left = [r for r in states if r not in labels and not states[r].final]
    if not left:
        return 0.0
    if 1 not in labels.values():
        return None
    if 0 not in labels.values():
        return float(len(left))
    ids = np.asarray(sorted(labels), dtype=np.int64)
    y = np.asarray([labels[r] for r in ids])
    clf = LogisticRegression(C=1.0, solver="liblinear")
    clf.fit(f.X.first[f.rows(ids)], y)
    p = clf.predict_proba(f.X.first[f.rows(left)])[:, list(clf.classes_).index(1)]
    return float(p.sum())
