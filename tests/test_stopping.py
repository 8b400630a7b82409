"""Stopping rules by hand, `cluster status` JSON and `cluster stop` events."""

import json

import pytest

from base.record import Record
from db.protocol import set_protocol
from db.state import screening_sequence, stage_states
from screeners.stopping import (StopError, apply_stop, consecutive_rule, hypergeometric_p,
                                hypergeometric_rule)

TA = "title-abstract"


def test_hypergeometric_p_by_hand():
    # screened 1 1 0 0 0 of N = 10 (5 unseen), target 0.95, r = 2, r / 0.95 = 2.105.
    # last n = 1, 2, 3: k = 0, r_AL = 2, K_tar = floor(2.105 - 2 + 1) = 1, urn 6, 7, 8:
    #   P(X = 0) = 5/6, 5/7, 5/8
    # n = 4: k = 1, K_tar = 2, urn 9: 1 - C(7,2)/C(9,4) = 105/126
    # n = 5: k = 2, K_tar = 3, urn 10: 1 - C(7,2)/C(10,5) = 231/252
    p, n, k, k_tar = hypergeometric_p([1, 1, 0, 0, 0], 10, 0.95)
    assert p == pytest.approx(5 / 8)
    assert (n, k, k_tar) == (3, 0, 1)


def test_hypergeometric_rule_met_by_hand():
    # 10 relevant then 200 excludes, 5 unseen: the 200 excludes as a sample from an
    # urn of 205 that would need 1 relevant: P(X = 0) = 5 / 205 < 0.05
    labels = [1] * 10 + [0] * 200
    r = hypergeometric_rule(labels, 215, 0.95)
    assert r.met
    assert r.figures["p_value"] == pytest.approx(5 / 205, abs=1e-6)
    assert r.figures["sample_size"] == 200
    # with 95 unseen the same screening is not enough: 95 / 295
    r2 = hypergeometric_rule(labels, 305, 0.95)
    assert not r2.met and r2.figures["p_value"] == pytest.approx(95 / 295, abs=1e-6)


def test_consecutive_rule():
    assert consecutive_rule([1, 0, 1, 0, 0, 0], 3).met
    assert consecutive_rule([1, 0, 1, 0, 0, 0], 3).figures["consecutive_excludes"] == 3
    assert not consecutive_rule([0, 0, 0, 1, 0], 3).met
    assert not consecutive_rule([], 0).met


def _screened_store(store, n_records=12, values=("include", "exclude", "exclude", "exclude")):
    ids = [store.add_record(Record(title=f"Record {i} about topic {i % 3}")) for i in range(n_records)]
    set_protocol(store, reviewers_per_record=1, consecutive_excludes=3)
    for rid, v in zip(ids, values):
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA, value=v)
    return ids


def test_screening_sequence_follows_first_decision(store):
    ids = _screened_store(store)
    assert screening_sequence(store, TA) == [(ids[0], 1), (ids[1], 0), (ids[2], 0), (ids[3], 0)]


def test_status_json(run, db_path):
    from db.store import open_store

    s = open_store(db_path)
    ids = _screened_store(s)
    s.close()
    out = json.loads(run("status", "--json").output)
    assert {k: out[k] for k in ("stage", "total", "screened", "final", "unscreened",
                                 "includes_found", "stopping_rule")} == {
        "stage": TA, "total": 12, "screened": 4, "final": 4, "unscreened": 8,
        "includes_found": 1, "stopping_rule": "hypergeometric"}
    assert out["rules"]["consecutive"]["met"] is True
    assert out["rules"]["consecutive"]["consecutive_excludes"] == 3
    assert out["rules"]["hypergeometric"]["met"] is False
    assert "estimated_relevant_left" not in out  # not asked for: no model loaded
    assert json.loads(run("status", "--estimate", "--json").output)["estimated_relevant_left"] >= 0
    text = run("status").output
    assert "Stage title-abstract: 4 / 12 screened (4 final, 8 not yet seen)" in text
    assert "Includes found: 1" in text


def test_stop_logs_automation_events_in_one_go(store):
    ids = _screened_store(store)
    with pytest.raises(StopError, match=r"^The hypergeometric rule is not met \(p = .*\): keep screening, or add --force\.$"):
        apply_stop(store, TA, "hypergeometric")
    assert store.events("kind = 'automation'") == []
    out = apply_stop(store, TA, "consecutive", reviewer="ann")
    assert (out.marked, out.forced) == (8, False)
    events = store.events("kind = 'automation'")
    assert sorted(e["record_id"] for e in events) == ids[4:]
    assert {e["value"] for e in events} == {"exclude"}
    assert events[0]["data"]["rule"] == "consecutive"
    assert events[0]["data"]["consecutive_excludes"] == 3
    st = stage_states(store, TA)
    assert sum(1 for x in st.values() if x.automated) == 8
    # nothing is left to stop a second time
    assert apply_stop(store, TA, "consecutive").marked == 0


def test_stop_cli_refuses_then_forces(run, db_path):
    from db.store import open_store

    s = open_store(db_path)
    _screened_store(s, values=("include", "exclude"))
    s.close()
    res = run("stop", "--rule", "consecutive", expect=1)
    assert res.output.strip().startswith("Error: The consecutive rule is not met (1 consecutive excludes; the rule needs 3)")
    res = run("stop", "--rule", "consecutive", "--force", "--json")
    out = json.loads(res.output)
    assert (out["marked"], out["forced"], out["met"]) == (10, True, False)
    s = open_store(db_path)
    ev = s.events("kind = 'automation'")
    assert len(ev) == 10 and ev[0]["data"]["forced"] is True
