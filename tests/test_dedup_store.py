"""Deduplication on a review store: merge events, provenance kept, undo, incremental runs, review."""

from __future__ import annotations

import csv

import pytest

from base.errors import ClusterError
from base.record import Record
from cluster.dedup.apply import DedupError, decide_pairs, pending_pairs, run_dedup, undo_merge
from cluster.dedup.review import export_pairs, import_pairs, review_session, side_by_side
from faults import fail_on_event

TITLE_1 = "Ischemic preconditioning in chronically hypoxic neonatal rat heart"
TITLE_2 = "Cardioprotection at a distance: mesenteric artery occlusion protects the myocardium"
GREY_A = "Exercise training for depression in older adults: a randomized trial"
GREY_B = "Exercise training for depression in older people: a randomized controlled trial"


def _add(store, record, service):
    sid = store.start_search(kind="file", service=service, role="database")
    rid = store.add_record(record)
    store.add_source(rid, sid, role="database", service=service)
    return rid


@pytest.fixture
def filled(store):
    """Work 1 from three sources, work 2 from two, one singleton, one grey pair."""
    ids = {}
    with store.transaction():
        for name in ("alice", "bob"):
            store.add_reviewer(name)
        ids["w1_pubmed"] = _add(store, Record(
            title=TITLE_1, authors=("Ostadalova, I", "Ostadal, B"), year=2002,
            journal="Pediatr Res", volume="52", issue="4", pages="561-7",
            doi="10.1203/00006450-200210000-00016", pmid="12357051"), "pubmed")
        ids["w1_embase"] = _add(store, Record(
            title=TITLE_1, authors=("Ostadalova I.Ostadal B.",), year=2002,
            journal="Pediatric Research", volume="52", issue="4", pages="561-567",
            abstract="Hypoxic hearts were preconditioned..."), "embase")
        ids["w1_crossref"] = _add(store, Record(
            title=TITLE_1.upper(), authors=("Ostadalova, Ivana",), year=2002,
            doi="https://doi.org/10.1203/00006450-200210000-00016"), "crossref")
        ids["w2_a"] = _add(store, Record(
            title=TITLE_2, authors=("Patel, H H", "Gross, G J"), year=2002,
            journal="J Mol Cell Cardiol", volume="34", pages="1317-1323"), "pubmed")
        ids["w2_b"] = _add(store, Record(
            title=TITLE_2 + ".", authors=("Patel H. H.Gross G. J.",), year=2002,
            journal="Journal of Molecular and Cellular Cardiology", volume="34",
            pages="1317-23"), "embase")
        ids["single"] = _add(store, Record(title="Statins and the heart: a review", year=2010),
                             "pubmed")
        ids["grey_a"] = _add(store, Record(title=GREY_A, year=2012), "pubmed")
        ids["grey_b"] = _add(store, Record(title=GREY_B, year=2012), "embase")
    return ids


def _dup_of(store):
    return dict(store.db.execute("SELECT id, duplicate_of FROM records").fetchall())


def test_run_merges_and_keeps_every_source(store, filled):
    sources_before = store.db.execute("SELECT id, record_id FROM sources ORDER BY id").fetchall()
    summary = run_dedup(store)
    assert (summary.records_in, summary.new_records, summary.clusters,
            summary.duplicates_marked, summary.pairs_for_review) == (8, 8, 2, 3, 1)
    dup = _dup_of(store)
    w1 = filled["w1_pubmed"]  # the one with DOI and PMID stands for work 1
    assert dup[filled["w1_embase"]] == w1 and dup[filled["w1_crossref"]] == w1 and dup[w1] is None
    assert {dup[filled["w2_a"]], dup[filled["w2_b"]]} == {None, filled["w2_a"]} or \
        {dup[filled["w2_a"]], dup[filled["w2_b"]]} == {None, filled["w2_b"]}
    assert dup[filled["single"]] is None
    # nothing deleted, every provenance row where it was
    assert store.db.execute("SELECT count(*) FROM records").fetchone()[0] == 8
    assert store.db.execute("SELECT id, record_id FROM sources ORDER BY id").fetchall() == sources_before
    merges = store.events("kind = 'merge'")
    assert len(merges) == 2
    m1 = next(e for e in merges if e["record_id"] == w1)
    assert set(m1["data"]) >= {"merge_id", "canonical", "members", "score", "rule"}
    assert m1["data"]["members"] == [w1, filled["w1_embase"], filled["w1_crossref"]]
    assert m1["data"]["merge_id"] in summary.merge_ids
    # the canonical record borrowed the abstract it lacked
    assert store.get_record(w1).abstract == "Hypoxic hearts were preconditioned..."
    assert m1["data"]["filled"] == ["abstract"] and m1["data"]["before"] == {"abstract": None}


def test_second_run_is_idempotent(store, filled):
    run_dedup(store)
    events = len(store.events())
    again = run_dedup(store)
    assert (again.new_records, again.pairs_compared, again.clusters, again.duplicates_marked) == \
        (0, 0, 0, 0)
    assert again.pairs_for_review == 1
    assert len(store.events()) == events


def test_incremental_run_compares_only_new_records(store, filled):
    run_dedup(store)
    with store.transaction():
        late = _add(store, Record(title=TITLE_1, authors=("Ostadalova, I.",), year=2002,
                                  journal="Pediatr Res", volume="52", pages="561-567"), "openalex")
        _add(store, Record(title="A completely unrelated study of soil bacteria", year=2020),
             "openalex")
    summary = run_dedup(store)
    # the new copy of work 1 meets the standing canonical only (its old duplicates are out)
    assert (summary.new_records, summary.pairs_compared, summary.clusters) == (2, 1, 1)
    assert _dup_of(store)[late] == filled["w1_pubmed"]
    last = store.events("kind = 'merge'")[-1]["data"]
    assert last["canonical"] == filled["w1_pubmed"] and last["members"] == [filled["w1_pubmed"], late]


def test_undo_restores_the_records_and_logs_an_undo_of_the_merge(store, filled):
    run_dedup(store)
    w1 = filled["w1_pubmed"]
    merge = next(e for e in store.events("kind = 'merge'") if e["record_id"] == w1)
    out = undo_merge(store, merge["data"]["merge_id"], reviewer="alice")
    assert out["restored"] == [filled["w1_embase"], filled["w1_crossref"]]
    dup = _dup_of(store)
    assert dup[filled["w1_embase"]] is None and dup[filled["w1_crossref"]] is None
    assert store.get_record(w1).abstract is None
    [undo] = store.events("kind = 'undo'")
    assert (undo["undoes"], undo["reviewer"], undo["data"]["merge_id"]) == (
        merge["id"], "alice", merge["data"]["merge_id"])
    with pytest.raises(DedupError, match="already undone"):
        undo_merge(store, merge["data"]["merge_id"])
    with pytest.raises(DedupError, match="No merge with id 'nope' in this store"):
        undo_merge(store, "nope")


def test_merge_is_all_or_nothing(store, filled, monkeypatch):
    fail_on_event(store, monkeypatch)
    with pytest.raises(RuntimeError):
        run_dedup(store)
    assert all(v is None for v in _dup_of(store).values())
    assert store.events() == []
    assert store.get_meta("dedup_last_record_id") is None


def test_grey_pair_decisions(store, filled):
    run_dedup(store)
    [pair] = pending_pairs(store)
    assert (pair.a, pair.b) == (filled["grey_a"], filled["grey_b"])
    decide_pairs(store, [(pair.a, pair.b, "different")], reviewer="alice")
    assert pending_pairs(store) == []
    [ev] = store.events("kind = 'pair_decision'")
    assert (ev["value"], ev["reviewer"], ev["data"]) == ("different", "alice",
                                                        {"a": pair.a, "b": pair.b})
    with pytest.raises(DedupError, match="Unknown decision 'maybe'"):
        decide_pairs(store, [(pair.a, pair.b, "maybe")])


def test_review_session_with_keypresses(store, filled):
    run_dedup(store)
    keys = iter(["x", "s"])
    shown = []
    counts = review_session(store, lambda: next(keys), shown.append, reviewer="bob", width=80)
    assert counts == {"same": 1, "different": 0, "skip": 0, "left": 0}
    assert sum("[s]ame" in s for s in shown) == 2  # the unknown key asked again
    manual = store.events("kind = 'merge'")[-1]["data"]
    assert manual["rule"] == "manual"
    assert {filled["grey_a"], filled["grey_b"]} == set(manual["members"])
    assert review_session(store, lambda: "q", shown.append)["left"] == 0
    assert shown[-1] == "No pairs are waiting for review."


def test_side_by_side_marks_differences():
    text = side_by_side({"title": "A study", "year": "2002"}, {"title": "A study", "year": "2003"},
                        width=60)
    year = next(line for line in text.splitlines() if line.startswith("year"))
    title = next(line for line in text.splitlines() if line.startswith("title"))
    assert year.split()[:2] == ["year", "*"] and "2002" in year and "2003" in year
    assert title.split()[1] == "A"


def test_export_then_import_pairs(store, filled, tmp_path):
    run_dedup(store)
    path = tmp_path / "pairs.csv"
    assert export_pairs(store, path) == 1
    rows = list(csv.DictReader(open(path, encoding="utf-8")))
    assert rows[0]["a_title"] == GREY_A and rows[0]["b_title"] == GREY_B and rows[0]["decision"] == ""
    rows[0]["decision"] = "same"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    counts = import_pairs(store, path)
    assert counts == {"same": 1, "different": 0, "skipped": 0, "left": 0}
    assert _dup_of(store)[filled["grey_b"]] == filled["grey_a"] or \
        _dup_of(store)[filled["grey_a"]] == filled["grey_b"]


def test_import_rejects_bad_decisions_without_writing(store, filled, tmp_path):
    run_dedup(store)
    path = tmp_path / "pairs.csv"
    path.write_text(f"a,b,decision\n{filled['grey_a']},{filled['grey_b']},same\n1,2,perhaps\n")
    events = len(store.events())
    with pytest.raises(DedupError, match=r"line 3: decision 'perhaps' is not same, different or skip"):
        import_pairs(store, path)
    assert len(store.events()) == events
    with pytest.raises(DedupError, match="No file at"):
        import_pairs(store, tmp_path / "missing.csv")


def test_empty_store_and_records_without_title(store):
    assert run_dedup(store).records_in == 0
    with store.transaction():
        store.add_record(Record(title=None, year=2001))
        store.add_record(Record(title=None, authors=("X" * 200,)))
    summary = run_dedup(store)
    assert (summary.records_in, summary.records_without_title, summary.clusters) == (2, 2, 0)


def test_review_and_exported_pairs_say_why_the_pair_is_uncertain(store, filled, tmp_path):
    run_dedup(store)
    [pair] = pending_pairs(store)
    assert pair.reason == "titles 86 % alike"
    shown: list[str] = []
    review_session(store, lambda: "k", shown.append, width=80)
    assert "Uncertain: titles 86 % alike" in shown
    path = tmp_path / "pairs.csv"
    export_pairs(store, path)
    [row] = list(csv.DictReader(open(path, encoding="utf-8")))
    assert (row["rule"], row["why"]) == ("grey zone", "titles 86 % alike")


def test_pairs_stored_without_a_reason_still_load(store, filled):
    store.set_meta("dedup_pending_pairs", f"[[{filled['grey_a']}, {filled['grey_b']}, 0.7, \"grey zone\"]]")
    [pair] = pending_pairs(store)
    assert (pair.a, pair.b, pair.rule, pair.reason) == (filled["grey_a"], filled["grey_b"], "grey zone", "")


def test_pair_review_fits_80_columns_with_abstract_and_sources(store, filled):
    long_abstract = ("Neonatal rat hearts adapted to chronic hypoxia were subjected to ischemic "
                     "preconditioning protocols and infarct size was measured. ") * 6
    with store.transaction():
        for rid in (filled["grey_a"], filled["grey_b"]):
            store.update_record(rid, store.get_record(rid).replace(abstract=long_abstract))
    run_dedup(store)
    shown = []
    review_session(store, lambda: "q", shown.append, width=80)
    card = next(text for text in shown if "found by" in text).splitlines()
    # a line of 80 characters wraps on many terminals: the right column spilled one letter
    assert max(len(line) for line in card) <= 79
    start = next(i for i, line in enumerate(card) if line.startswith("abstract"))
    end = next(i for i, line in enumerate(card) if line.startswith("found by"))
    left = card[0].index("record")  # where the left column starts
    for side in (0, 1):
        shown_abstract = " ".join(line[left:].split(" | ")[side].strip()
                                  for line in card[start:end]).strip()
        # trimmed at a word, to at most 300 characters
        assert shown_abstract.startswith("Neonatal rat hearts adapted to chronic hypoxia")
        assert shown_abstract.endswith(" ...") and len(shown_abstract) <= 300
    found = card[end]
    assert found.split("|")[0].split()[-2:] == ["database:", "pubmed"]
    assert found.split("|")[1].strip() == "database: embase"


def test_two_full_columns_at_80_leave_the_last_column_free():
    # two full columns at 80: label 9 + mark 3 + 32 + " | " + 32 = 79
    line = side_by_side({"title": "x" * 200}, {"title": "y" * 200}, width=80,
                        fields=("title",)).splitlines()[1]
    assert len(line) == 79


def test_pair_decisions_refuse_a_name_not_in_the_team(store, filled):
    run_dedup(store)
    [pair] = pending_pairs(store)
    with pytest.raises(ClusterError, match=r"^Unknown reviewer 'zed': add them with "
                                           r"`cluster reviewers add zed`\.$"):
        decide_pairs(store, [(pair.a, pair.b, "same")], reviewer="zed")
    with pytest.raises(ClusterError, match="Unknown reviewer 'zed'"):
        review_session(store, lambda: "s", lambda _: None, reviewer="zed")
    assert pending_pairs(store) == [pair]
