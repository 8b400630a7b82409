"""The methods report: PRISMA-S search log, deduplication, agreement, stopping rule."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from connectors.record import Record
from db.report import agreement_by_pair, cohen_kappa, methods_report, percent_agreement
from db.store import open_store
from tests.review_world import build_review_file

TA, FT = "title-abstract", "full-text"


def test_percent_agreement_as_reported():
    # 100 extraction decisions, 91 agreements
    assert percent_agreement(91, 9) == 91.0
    # the review's inter-reviewer congruence: agreements / (agreements + disagreements)
    assert round(percent_agreement(91, 10), 1) == 90.1
    assert percent_agreement(0, 0) is None


def test_agreement_from_the_log_matches_sklearn(store):
    ids = [store.add_record(Record(title=f"r{i}")) for i in range(100)]
    a_vals, b_vals = [], []
    for i, rid in enumerate(ids):
        a = "include" if i % 4 == 0 else "exclude"
        b = a if i < 91 else ("exclude" if a == "include" else "include")
        if i == 95:
            b = "maybe"
        a_vals.append(a)
        b_vals.append(b)
        store.log_event("decision", record_id=rid, reviewer="ann", stage=FT, value=a)
        store.log_event("decision", record_id=rid, reviewer="bob", stage=FT, value=b)
    (pair,) = agreement_by_pair(store, FT)
    assert (pair.reviewer_a, pair.reviewer_b, pair.records) == ("ann", "bob", 100)
    assert (pair.agreements, pair.disagreements, pair.percent) == (91, 9, 91.0)
    assert pair.kappa == pytest.approx(cohen_kappa_score(a_vals, b_vals))
    assert pair.table["include"]["include"] == 23
    assert cohen_kappa([("x", "x"), ("x", "x")]) is None  # chance agreement is total
    assert agreement_by_pair(store, TA) == []


def test_report_of_the_review(run, tmp_path):
    db = tmp_path / "review.db"
    build_review_file(db)
    store = open_store(db)
    with store.transaction():
        store.log_event("merge", record_id=1, data={"merge_id": "m1", "canonical": 1,
                                                    "members": [1, 2], "rule": "doi+title",
                                                    "score": 0.97})
        store.log_event("merge", record_id=3, data={"merge_id": "m2", "canonical": 3,
                                                    "members": [3, 4], "rule": "title+authors",
                                                    "score": 0.91})
        store.log_event("unmerge", record_id=3, data={"merge_id": "m2"})
    store.close()
    out = run("report", "-o", str(tmp_path / "methods.md"), "--layout", "screen-other",
              "--db", str(db)).output
    assert "methods.md" in out and "methods.svg" in out and "methods.png" in out
    md = (tmp_path / "methods.md").read_text()
    assert "![PRISMA 2020 flow diagram](methods.svg)" in md
    assert (tmp_path / "methods.png").read_bytes()[:4] == b"\x89PNG"
    assert "170 searches and imports were logged" in md
    assert "| other | cited-by | OpenAlex | 42 | 1114 | 820 | 820 |" in md
    assert "- related: " in md  # date of the last search per strategy
    assert "seed: record 1 (2000, PMID 10000)" in md
    assert "top 20 per index article and strategy" in md
    assert "| other: Citation searching, forward (cited by) | 925 | 105 | 820 |" in md
    assert "1 logged merges" in md and "| doi+title | 1 |" in md and "title+authors" not in md
    # 40 title-abstract disagreements among 2,991 records, all resolved by consensus
    assert "| ann / bob | 2,991 | 2,951 | 40 | 98.7 % |" in md
    assert "by 2 reviewers (ann, bob). Reviewers per record: 2 (2,991 records)." in md
    assert "Conflicts resolved: 40 by consensus." in md
    assert "| ann / bob | 53 | 53 | 0 | 100.0 % |" in md
    assert "Records screened: 2,991; excluded: 2,938; reports sought: 53" in md
    assert "Screening was not stopped early" in md


def test_report_stopping_rule_figures(store):
    rid = store.add_record(Record(title="x"))
    store.add_source(rid, None, role="database", service="MEDLINE")
    store.log_event("automation", record_id=rid, stage=TA, value="exclude",
                    data={"rule": "hypergeometric", "target_recall": 0.95, "p": 0.031,
                          "screened": 1200})
    md = methods_report(store)
    assert "No screening decisions are logged yet." in md
    assert ("1 records marked as ineligible by the stopping rule `hypergeometric`" in md)
    assert "figures: p = 0.031, screened = 1200, target_recall = 0.95" in md
