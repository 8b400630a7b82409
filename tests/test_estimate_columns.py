"""The estimate of relevant records left fits its logistic model on the columns the
labelled records use, not on every column of the store's matrix."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.linear_model

from base.record import Record
from db.protocol import set_protocol
from db.store import open_store
from screeners import prioritise
from tests.conftest import screening_rows

pytestmark = pytest.mark.usefixtures("fresh_prioritiser")
TA = "title-abstract"


def test_the_estimate_fits_on_the_labelled_columns_and_matches_the_full_width_fit(
        db_path, monkeypatch):
    rows = screening_rows(300, 10)
    store = open_store(db_path)
    with store.transaction():
        ids = [store.add_record(Record(title=t or None, abstract=a or None)) for t, a, _ in rows]
    set_protocol(store, reviewers_per_record=1)
    labelled = ids[:6] + ids[100:140]
    for rid in labelled:
        y = rows[ids.index(rid)][2]
        store.log_event("decision", record_id=rid, reviewer="alice", stage=TA,
                        value="include" if y else "exclude")
    widths: list[int] = []
    real = sklearn.linear_model.LogisticRegression

    class Spy(real):
        def fit(self, X, y, sample_weight=None):
            widths.append(X.shape[1])
            return super().fit(X, y, sample_weight)

    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", Spy)
    got = prioritise.estimate_relevant_left(store, TA)
    f = prioritise.features(store)
    train = f.X.rows(f.rows(np.asarray(sorted(labelled)))).first
    assert widths == [len(np.unique(train.indices))] and widths[0] < f.X.first.shape[1]
    # the same model fitted on every column
    y = np.asarray([rows[ids.index(r)][2] for r in sorted(labelled)])
    full = real(C=1.0, solver="liblinear").fit(train, y)
    _, pos = f.positions([r for r in ids if r not in labelled])
    decision = np.asarray(f.X.first @ full.coef_.ravel().astype(np.float32))[pos] + full.intercept_[0]
    expected = float((1.0 / (1.0 + np.exp(-decision))).sum())
    assert got == pytest.approx(expected, rel=1e-9)
    store.close()
