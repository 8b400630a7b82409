"""The methods report: PRISMA-S search log, deduplication, agreement, stopping rule."""

from __future__ import annotations

import json

from sklearn.metrics import cohen_kappa_score

from base.record import Record
from db.report import methods_report
from db.store import open_store
from screeners.agreement import agreement_by_stage
from tests.review_world import build_review_file

TA, FT = "title-abstract", "full-text"


def _double_decisions(store, n, agree, stage=FT):
    """`n` records decided by ann and bob at `stage`, the first `agree` of them alike."""
    a_vals, b_vals = [], []
    for i in range(n):
        rid = store.add_record(Record(title=f"r{i}"))
        store.add_source(rid, None, role="database", service="MEDLINE")
        a = "include" if i % 4 == 0 else "exclude"
        b = a if i < agree else ("exclude" if a == "include" else "include")
        a_vals.append(a)
        b_vals.append(b)
        for who, v in (("ann", a), ("bob", b)):
            store.log_event("decision", record_id=rid, reviewer=who, stage=TA, value="include")
            store.log_event("decision", record_id=rid, reviewer=who, stage=stage, value=v)
    return a_vals, b_vals


def test_agreement_in_the_report_100_decisions_91_agree(store):
    a_vals, b_vals = _double_decisions(store, 100, 91)
    md = methods_report(store, agreement_by_stage(store))
    kappa = cohen_kappa_score(a_vals, b_vals)
    assert f"| ann / bob | 100 | 91 | 9 | 91.0 % | {kappa:.2f} |" in md


def test_agreement_in_the_report_matches_the_review_congruence(store):
    # the review reported agreements / (agreements + disagreements) = 90.1 %
    _double_decisions(store, 101, 91)
    assert "| ann / bob | 101 | 91 | 10 | 90.1 % |" in methods_report(store, agreement_by_stage(store))


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
    # the seeds of each search are in the detailed report only
    assert "seed: record 1 (2000, PMID 10000)" not in md
    assert "`cluster report --detail`" in md
    detail = run("report", "--detail", "--db", str(db)).output
    assert "seed: record 1 (2000, PMID 10000)" in detail and "### Every search" in detail
    assert "top 20 per index article and strategy" in md
    assert "| other: Citation searching, forward (cited by) | 925 | 105 | 820 |" in md
    assert "1 logged merges" in md and "| doi+title | 1 |" in md and "title+authors" not in md
    # 40 title-abstract disagreements among 2,991 records, all resolved by consensus
    assert "| ann / bob | 2,991 | 2,951 | 40 | 98.7 % |" in md
    assert "by 2 reviewers (ann, bob). Reviewers per record: 2 (2,991 records)." in md
    assert "Conflicts resolved: 40 by consensus (ann)." in md
    assert "| ann / bob | 53 | 53 | 0 | 100.0 % |" in md
    assert "Records screened: 2,991; excluded: 2,938; reports sought: 53" in md
    assert "Screening was not stopped early" in md


def test_report_stopping_rule_figures(store):
    rid = store.add_record(Record(title="x"))
    store.add_source(rid, None, role="database", service="MEDLINE")
    store.log_event("automation", record_id=rid, stage=TA, value="exclude",
                    data={"rule": "hypergeometric", "target_recall": 0.95, "p": 0.031,
                          "screened": 1200})
    md = methods_report(store, agreement_by_stage(store))
    assert "No screening decisions are logged yet." in md
    assert ("1 records marked as ineligible by the stopping rule `hypergeometric`" in md)
    assert "figures: p = 0.031, screened = 1200, target_recall = 0.95" in md


def test_limits_are_one_line_per_strategy_and_service_with_totals():
    from db.report import limits_lines

    why = "the CLUSTER method keeps the most relevant records of each list"
    limits = [{"top": 20, "cap": "top 20 per list", "cap_why": why, "language": "English only",
               "dropped": {"language": 2, "type": 0}, "total_in_pubmed": 30},
              {"top": 20, "cap": "top 20 per list", "cap_why": why, "language": "English only",
               "dropped": {"language": 1, "type": 4}, "total_in_pubmed": 12}]
    rows = [{"strategy": "cited-by", "kind": "search", "service": "openalex",
             "limits": json.dumps(lim)} for lim in limits * 3]
    rows.append({"strategy": None, "kind": "import", "service": "Embase", "limits": None})
    assert limits_lines(rows) == [
        "- cited-by, openalex (6 searches): top 20 per index article and strategy, by the "
        "service's relevance ranking or the tool's score; language: English only; totals: "
        "dropped language 9, dropped type 12, total in pubmed 126.",
        "- import, Embase (1 search): none.",
        "",
        f"Why: {why}.",
    ]
