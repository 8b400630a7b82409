"""Which record a reviewer should see next: the relevance ranking of a store's
records, retrained from the decision log, and the estimate of relevant records
left.

The model itself is `screeners.prioritiser` (the default in
`screeners/prioritiser/presets.py`). Only canonical records get features (a
duplicate is never screened); their TF-IDF matrix is weighed from term counts
kept per record in a file beside the store (`screeners.feature_cache`), so a
new process counts only records added or edited since, and in memory (the
cache policy of `screeners.prioritiser.cache`) while the records stay as they
were: the same count of records and of duplicates, the same highest id, no
write to them through this connection (`_records_version`, a few milliseconds
on any store; texts edited in place by another process are seen by the next
process). The counts are read back a few rows at a time and packed
(`Tfidf.weigh_blocks`): matrices up to `MATRIX_BUDGET` bytes are weighed whole,
larger ones (a million records: about 4 GB) stay packed and are weighed a
block of rows at a time for each product (`CountedViews`), with the same
scores. A model whose features are not hashed per record is fitted in memory
only.

The classifier is refitted on every call while a fit is fast; once a fit
takes longer than `FIT_BUDGET` seconds, the last model is reused until the
labelled set has grown by the simulation's schedule (`Schedule`: 1.5 % of the
labels per 750 records), so a reviewer never waits on it and a large store
refits in proportionally larger batches, as the simulation measured.

Before the team has both an include and an exclude, records are ranked by
cosine similarity to the protocol's question and include terms, to the index
articles (records with a source of role "index") and to any record labelled
relevant so far, minus half their similarity to the protocol's exclude terms.
"""

from __future__ import annotations

import json
import time
import itertools
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np
from scipy import sparse

from db.events import TITLE_ABSTRACT
from db.protocol import get_protocol
from db.state import screening_sequence, stage_states, training_labels
from db.store import Store
from screeners import feature_cache
from screeners.prioritiser.cache import Memo
from screeners.prioritiser.components import (CountedViews, Model, NoWordsError, Views,
                                              textless_due, textless_rows)
from screeners.prioritiser.presets import resolve_model
from screeners.prioritiser.simulation import Schedule
from screeners.stopping import excludes_in_a_row

FIT_BUDGET = 0.2  # seconds; a slower fit switches to batched refits
DEFAULT_MODEL = "default"
COUNT_BATCH = 5000  # records counted at a time: bounds the texts held at once
#: bytes of weighted matrices held whole; past that, the term counts are held and
#: weighed a block of rows at a time for each product (`CountedViews`): the same
#: scores, half the memory or less, a few passes of weighing per ranking
MATRIX_BUDGET = 2 * 2**30
_SERIALS = itertools.count()


@dataclass(frozen=True)
class Features:
    ids: np.ndarray  # record id of each row (the canonical records, in id order)
    X: Views | CountedViews
    vectorizer: Any  # places a new text in the first matrix's columns (`transform`)
    empty: frozenset[int]  # records with no text at all
    known: frozenset[int]  # every record id with a row
    origin: str = "fitted"  # "fitted": all counted here; "disk": none; "updated": some
    recounted: int = 0  # records whose terms were counted in this process
    serial: int = field(default_factory=lambda: next(_SERIALS))  # tells two apart

    def rows(self, record_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        pos = np.searchsorted(self.ids, np.asarray(record_ids, dtype=np.int64))
        return pos

    def positions(self, record_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(the ids among `record_ids` that have a row, in the order given; their rows)."""
        ids = np.asarray(record_ids, dtype=np.int64)
        if not len(ids) or not len(self.ids):
            return ids[:0], ids[:0]
        pos = np.minimum(np.searchsorted(self.ids, ids), len(self.ids) - 1)
        hit = self.ids[pos] == ids
        return ids[hit], pos[hit]


@dataclass(frozen=True)
class Ranking:
    scores: list[tuple[int, float]]
    mode: str  # "model" or "cold-start"
    warnings: tuple[str, ...] = ()


# owner: where the store is; version: the feature settings and `_records_version`
_FEATURES: Memo[Features] = Memo(size=4)
# owner: (where, stage, model); version: the features' serial; value: (labels, scores, fit s)
_MODELS: Memo[tuple[int, np.ndarray, float]] = Memo(size=8)
# owner: (where, stage); version: the features' serial; value: (labels, estimate, fit s)
_ESTIMATES: Memo[tuple[int, "float | None", float]] = Memo(size=8)


# owner: (where, stage, reviewer); value: (labels at the model's fit, labels at the
# last ranking, fit s, rows): what `ranking_stands` decides from
_STANDING: Memo[tuple[int, int, float, int]] = Memo(size=8)


def _record_writes(conn: Any) -> int | None:
    """How many times this connection has written to `records` since it was first
    asked (None where temporary triggers cannot be made)."""
    try:
        return conn.execute("SELECT n FROM temp.record_writes").fetchone()[0]
    except Exception:
        pass
    try:
        if conn.execute("PRAGMA query_only").fetchone()[0]:
            return 0  # a connection that may only read (a ranking process's) writes nothing
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


def _where(store: Store) -> str:
    return str(store.path) if store.path is not None else f"memory:{id(store)}"


def _records_version(store: Store) -> tuple | None:
    """What changes when records are added, removed, merged or unmerged, or written
    through this connection (None where writes cannot be counted: never reused).
    Reading every text to hash it costs seconds on a large store: too much for
    each decision."""
    conn = store.conn
    writes = _record_writes(conn)
    if writes is None:
        return None
    return (id(conn), writes, *store.records_signature())


def _settings(m: Model) -> str:
    return json.dumps(m.feature.describe(), sort_keys=True, default=str)


def _texts(title: str | None, abstract: str | None, keywords: str | None) -> tuple[str, str]:
    """(the record's text: title, abstract and keywords; its title alone)."""
    kw = " ".join(json.loads(keywords or "[]"))
    text = " ".join(t.strip() for t in (title or "", abstract or "", kw) if t and t.strip())
    return text, (title or "").strip()


def features(store: Store, model: Model | None = None) -> Features:
    """The TF-IDF matrix of the canonical records: from this process's memory
    while the records are as they were, else from the term counts kept beside the
    store, counting only the records whose text is new or changed."""
    m = model or resolve_model(DEFAULT_MODEL)
    where, settings = _where(store), _settings(m)
    version = _records_version(store)
    cached = _FEATURES.get(where, (settings, version)) if version is not None else None
    if cached is not None:
        return cached
    if getattr(m.feature, "hash_bits", None):
        f = _counted_features(store, m, settings)
    else:
        f = _fit_features(store, m)
    return _FEATURES.put(where, (settings, version), f)


def _canonical_texts(store: Store) -> Any:
    return store.db.conn.execute("SELECT id, title, abstract, keywords FROM records "
                                 "WHERE duplicate_of IS NULL ORDER BY id")


def _fit_features(store: Store, m: Model) -> Features:
    """The features fitted whole, in memory (a model without per-record counts)."""
    ids, texts, titles = [], [], []
    for rid, t, a, k in _canonical_texts(store):
        text, title = _texts(t, a, k)
        ids.append(rid)
        texts.append(text)
        titles.append(title)
    vec, X = None, Views(sparse.csr_matrix((len(ids), 1), dtype=np.float32))
    if any(t for t in texts):
        try:
            vec, X = m.feature.fit(texts, titles)
        except NoWordsError:
            pass  # not one countable word yet: every record ranks alike, as with no text
    empty = frozenset(i for i, t in zip(ids, texts) if not t)
    return Features(np.asarray(ids, dtype=np.int64), X, vec, empty, frozenset(ids),
                    recounted=len(ids))


def _counted_features(store: Store, m: Model, settings: str) -> Features:
    """The features from per-record term counts: those kept in the file whose
    text hash still matches, the others counted now (and written)."""
    feat = m.feature
    width, n_views = 1 << feat.hash_bits, feat.n_views
    path = feature_cache.cache_path(store)
    cache = feature_cache.FeatureFile.open(path, settings) if path is not None else None
    vec: Any = None
    X: Views | CountedViews = Views(sparse.csr_matrix((0, 1), dtype=np.float32))
    try:
        have = cache.hashes() if cache is not None else {}
        ids, empty, parts, recounted = _count_changed(store, feat, cache, have)
        gone = set(have) - set(ids)
        del have
        weighed = False
        if cache is not None and parts is None:
            # every row is in the file: read back a few rows at a time, so only
            # their packed counts are held, never a whole count matrix
            if gone:
                cache.remove(sorted(gone))
            try:
                vec, X, weighed = _weighed(feat, cache.read_rows(
                    np.asarray(ids, dtype=np.int64), n_views, width), ids, empty)
            except feature_cache.Unreadable:
                # a row that does not decode, a write that failed: every row anew
                ids, empty, parts, recounted = _count_changed(store, feat, cache, {})
                if parts is None:
                    try:
                        vec, X, weighed = _weighed(feat, cache.read_rows(
                            np.asarray(ids, dtype=np.int64), n_views, width), ids, empty)
                    except feature_cache.Unreadable:
                        pass
        if not weighed:
            if parts is None:
                ids, empty, parts, recounted = _count_changed(store, feat, None, {})
            assert parts is not None
            vec, X, weighed = _weighed(feat, _rows_of(parts), ids, empty)
        del parts
    finally:
        if cache is not None:
            cache.close()
    origin = "fitted" if recounted == len(ids) else "disk" if recounted == 0 else "updated"
    return Features(np.asarray(ids, dtype=np.int64), X, vec, frozenset(empty), frozenset(ids),
                    origin, recounted)


def _rows_of(parts: list[tuple[sparse.csr_matrix, ...]]
             ) -> Iterator[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Count matrices as `Tfidf.weigh_blocks` takes them, emptied as they go."""
    while parts:
        views = parts.pop(0)
        yield [(np.diff(C.indptr), C.indices, C.data) for C in views]


def _weighed(feat: Any, rows: Iterator[list[tuple[np.ndarray, np.ndarray, np.ndarray]]],
             ids: list[int], empty: list[int]) -> tuple[Any, Views | CountedViews, bool]:
    """(what places a text in the features, the features, True) from the
    records' counts; no vectoriser and a single column where no record has a word."""
    if len(ids) > len(empty):
        try:
            X, vec = feat.weigh_blocks(rows, MATRIX_BUDGET)
            return vec, X, True
        except NoWordsError:
            pass  # not one countable word yet: every record ranks alike, as with no text
    else:
        for _ in rows:
            pass  # every row read: a row that does not decode still shows
    return None, Views(sparse.csr_matrix((len(ids), 1), dtype=np.float32)), True


def _count_changed(store: Store, feat: Any, cache: feature_cache.FeatureFile | None,
                   have: dict[int, bytes]
                   ) -> tuple[list[int], list[int], list[tuple[sparse.csr_matrix, ...]] | None, int]:
    """(the canonical record ids, those without text, the counts of the records
    whose hash is not in `have`, how many those are). With a `cache`, the counts
    are written to it and none are kept (None)."""
    ids: list[int] = []
    empty: list[int] = []
    parts: list[tuple[sparse.csr_matrix, ...]] = []
    batch: list[tuple[int, bytes, str, str]] = []
    recounted = 0

    def count() -> None:
        counts = feat.term_counts([b[2] for b in batch], [b[3] for b in batch])
        if cache is not None:
            # in the file (read back with the rest); a failed write shows when read
            cache.write([b[0] for b in batch], [b[1] for b in batch], counts)
        else:
            parts.append(counts)
        batch.clear()

    for rid, t, a, k in _canonical_texts(store):
        h = feature_cache.text_hash(t, a, k)
        text, title = _texts(t, a, k)
        ids.append(rid)
        if not text:
            empty.append(rid)
        if have.get(rid) != h:
            batch.append((rid, h, text, title))
            recounted += 1
            if len(batch) >= COUNT_BATCH:
                count()
    if batch:
        count()
    return ids, empty, (None if cache is not None else parts), recounted


def remembered_order(store: Store, stage: str, reviewer: str) -> list[int]:
    """The top of `reviewer`'s last ranking at `stage`, as kept beside the store
    (nothing for an in-memory store or a store never ranked)."""
    path = feature_cache.cache_path(store)
    if path is None or not path.is_file():
        return []
    cache = feature_cache.FeatureFile.open(path, _settings(resolve_model(DEFAULT_MODEL)))
    if cache is None:
        return []
    try:
        return cache.order(stage, reviewer)
    finally:
        cache.close()


def remember_order(store: Store, stage: str, reviewer: str, order: Sequence[int]) -> None:
    """Keep the top of `reviewer`'s ranking for the next sitting's first card."""
    path = feature_cache.cache_path(store)
    if path is None:
        return
    cache = feature_cache.FeatureFile.open(path, _settings(resolve_model(DEFAULT_MODEL)))
    if cache is not None:
        try:
            cache.save_order(stage, reviewer, order)
        finally:
            cache.close()


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
    score = np.zeros(len(f.ids))
    pos_text = " ".join([proto.question, *proto.include_terms]).strip()
    # each similarity row by row, a block of rows at a time where the matrix is not
    # held whole
    if pos_text:
        q = f.vectorizer.transform([pos_text])
        score = np.maximum(score, f.X.map_rows([lambda M: (M @ q.T).todense()])[0])
    if seeds:
        S = f.X.rows(f.rows(seeds)).first
        # rows are L2-normalised, so the dot product is the cosine similarity
        score = np.maximum(score, f.X.map_rows([lambda M: (M @ S.T).max(axis=1).todense()])[0])
    if proto.exclude_terms:
        q_out = f.vectorizer.transform([" ".join(proto.exclude_terms)])
        score = score - 0.5 * f.X.map_rows([lambda M: (M @ q_out.T).todense()])[0]
    if not pos_text and not seeds:
        warnings.append("No protocol question, include terms or index articles yet: "
                        "records stay in id order until the first include and exclude.")
    return score, warnings


def _model_scores(where: str, stage: str, f: Features, labels: dict[int, int],
                  model: Model) -> np.ndarray:
    train_ids = np.asarray(sorted(labels), dtype=np.int64)
    y = np.asarray([labels[r] for r in train_ids], dtype=np.int64)
    return _on_schedule(_MODELS, (where, stage, model.label), f, len(train_ids),
                        lambda: model.classifier.fit_scores(f.X, f.rows(train_ids), y,
                                                            model.balance.weights(y), 0))


def _due(n_labelled: int, f: Features) -> int:
    """New labels after which a slow fit is made again: the simulation's schedule."""
    return Schedule().batch(n_labelled, f.X.n_rows)


T = TypeVar("T")


def _on_schedule(memo: Memo[tuple[int, T, float]], owner: tuple, f: Features, n_labelled: int,
                 fit: Callable[[], T]) -> T:
    """`fit()`, or what the last fit gave while that fit was slow (over `FIT_BUDGET`)
    and fewer new labels than the schedule's batch have arrived since."""
    cached = memo.get(owner, f.serial)
    if cached is not None:
        n_then, value, secs = cached
        if secs > FIT_BUDGET and 0 <= n_labelled - n_then < _due(n_then, f):
            return value
    t0 = time.perf_counter()
    value = fit()
    memo.put(owner, f.serial, (n_labelled, value, time.perf_counter() - t0))
    return value


def rank_details(store: Store, stage: str, reviewer: str | None, candidates: Sequence[int],
                 model: str = DEFAULT_MODEL) -> Ranking:
    """The ranking with how it was made (model or cold start) and any warnings."""
    cands = list(dict.fromkeys(int(c) for c in candidates))
    if not cands:
        return Ranking([], "cold-start")
    m = resolve_model(model)
    f = features(store, m)
    labels = training_labels(store, stage, reviewer)
    known = f.known
    labels = {r: y for r, y in labels.items() if r in known}
    ys = set(labels.values())
    warnings: list[str] = []
    standing = (_where(store), stage, reviewer)
    _STANDING.put(standing, None, (0, 0, float("-inf"), 0))  # no model: rank again
    if ys == {0, 1}:
        scores = _model_scores(_where(store), stage, f, labels, m)
        mode = "model"
        fitted = _MODELS.get((_where(store), stage, m.label), f.serial)
        if fitted is not None:
            _STANDING.put(standing, None, (fitted[0], len(labels), fitted[2], f.X.n_rows))
    else:
        scores, warnings = _cold_scores(store, f, labels)
        mode = "cold-start"
    ck, pos = f.positions(cands)
    vals = np.asarray(scores, dtype=np.float64)[pos]
    order = np.lexsort((np.arange(len(ck)), -vals))  # ties keep the order given
    out = list(zip(ck[order].tolist(), vals[order].tolist()))
    out = _place_textless(store, stage, reviewer, f, out)
    # candidates unknown to the store go last, in the order given
    if len(ck) < len(cands):
        out += [(c, float("-inf")) for c in cands if c not in known]
    return Ranking(out, mode, tuple(warnings))


def ranking_stands(store: Store, stage: str, reviewer: str | None, decided_since: int) -> bool:
    """Whether `reviewer`'s last ranking at `stage` still stands after
    `decided_since` more decisions: it came from a model whose fit was slow
    (over `FIT_BUDGET`) and the schedule's batch of new labels has not arrived,
    so ranking again would reuse that model's scores."""
    hit = _STANDING.get((_where(store), stage, reviewer), None)
    if hit is None:
        return False
    n_fit, n_ranked, secs, rows = hit
    return secs > FIT_BUDGET and (n_ranked - n_fit) + decided_since < Schedule().batch(n_fit, rows)


def _place_textless(store: Store, stage: str, reviewer: str | None, f: Features,
                    ranked: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Records without text go last until the reviewer's last labels are a run of
    excludes long enough (`components.TEXTLESS_AFTER_EXCLUDES`), then first."""
    textless = set(f.ids[textless_rows(f.X)].tolist())
    if not textless:
        return ranked
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
    Where the fit is slow (a large store), it is made again on the ranking's
    schedule and the last estimate stands in between.
    """
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
    return _on_schedule(_ESTIMATES, (_where(store), stage), f, len(labels),
                        lambda: _estimate(f, labels, left))


def _estimate(f: Features, labels: dict[int, int], left: list[int]) -> float:
    from sklearn.linear_model import LogisticRegression

    ids = np.asarray(sorted(labels), dtype=np.int64)
    y = np.asarray([labels[r] for r in ids])
    clf = LogisticRegression(C=1.0, solver="liblinear")
    rows = f.X.rows(f.rows(ids)).first
    # fitted on the columns the labelled rows use: a column none of them has keeps a
    # weight of 0 (only the penalty acts on it), and the solver's vectors are as wide
    # as the columns it is given (millions at a million records)
    used = np.unique(rows.indices)
    clf.fit(rows[:, used], y)
    # the model's probability for the records left, from one product over the
    # matrix (predict_proba on their rows would copy them to float64 first)
    _, pos = f.positions(left)
    coef = np.zeros(rows.shape[1], dtype=np.float32)
    coef[used] = clf.coef_.ravel()
    product = f.X.map_rows([lambda M: M @ coef])[0]
    decision = np.asarray(product, dtype=np.float64)[pos] + float(clf.intercept_[0])
    sign = 1.0 if list(clf.classes_).index(1) == 1 else -1.0
    return float((1.0 / (1.0 + np.exp(-sign * decision))).sum())
