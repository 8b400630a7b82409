"""Golden pairs: hard cases, one test each (tests/data/golden_pairs.csv).

Every row holds two records as exported, the expected verdict and why the pair
is hard. Rows of a labelled set quote field values from the labelled data in
../shared/data/dedup; rows of set "invented" are made up, one per pattern of
messy exports (a citation in the journal field, pages that are no range,
authors run together, several identifiers in one field) and per hard negative
(a conference paper and its journal version a year later, annual editorials,
boilerplate titles). "Different" means never merged automatically: a
grey-zone pair goes to a person.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from cluster.dedup import SAME, deduplicate
from cluster.dedup.match import score_pair
from cluster.dedup.prepare import prepare_one

GOLDEN = Path(__file__).parent / "data" / "golden_pairs.csv"
FIELDS = ("title", "authors", "year", "journal", "volume", "issue", "pages", "doi", "pmid")


def _pairs() -> list:
    with open(GOLDEN, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [pytest.param(r, id=f"{r['set']}:{r['a_record_id']}-{r['b_record_id']}:{r['expected']}")
            for r in rows]


def _side(row: dict, side: str) -> dict:
    return {f: row[f"{side}_{f}"] for f in FIELDS}


def test_golden_file_covers_both_verdicts():
    rows = [p.values[0] for p in _pairs()]
    assert len(rows) == 67
    assert sum(r["expected"] == "same" for r in rows) == 49
    assert sum(r["set"] == "invented" for r in rows) == 17
    assert all(r["why"].strip() for r in rows)


@pytest.mark.parametrize("row", _pairs())
def test_golden_pair(row):
    a, b = _side(row, "a"), _side(row, "b")
    verdict = score_pair(prepare_one(a, 0), prepare_one(b, 1))
    assert (verdict.label == SAME) == (row["expected"] == "same"), (verdict, row["why"])
    # and the whole pipeline, in either order, agrees with the pair verdict
    for items in ([a, b], [b, a]):
        result = deduplicate(items)
        merged = [c.members for c in result.clusters]
        assert merged == ([(0, 1)] if row["expected"] == "same" else []), row["why"]
