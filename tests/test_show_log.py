"""`cluster show` (one record whole), `cluster log` (the event log), tags everywhere they
are read, and the screening card's identifiers, built through the CLI in a tmp store."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path

import pytest
from clikit import invoke, one_sentence
from screenkit import FT, TA, make_review

from db.store import open_store
from screeners.decisions import add_note, appraise, mark_fulltext
from tests.export_readers import RIS_TAG_LINE, mismatches, read_ris_lines, ris_grammar_errors

EMBASE = ("TY  - JOUR\nTI  - Self-compassion training for nurses\nAU  - Smith, Jane\n"
          "AU  - Doe, John\nPY  - 2019\nT2  - Journal of Care\nVL  - 12\nIS  - 3\nSP  - 45\n"
          "EP  - 67\nDO  - 10.1037/a0030292\nPM  - 23121403\n"
          "AB  - We trained nurses in self-compassion and measured burnout.\nER  - \n"
          "TY  - JOUR\nTI  - Empathy in medical students\nAU  - Roe, Ann\nPY  - 2020\n"
          "AB  - A cohort of students and their empathy.\nER  - \n")
PUBMED = ("TY  - JOUR\nTI  - Self-compassion training for nurses\nAU  - Smith, Jane\n"
          "AU  - Doe, John\nPY  - 2019\nT2  - Journal of Care\nDO  - 10.1037/a0030292\n"
          "PM  - 23121403\nER  - \n")


def _cli(db: Path, *args: str, code: int = 0):
    result = invoke(*args, "--db", str(db))
    assert result.exit_code == code, (result.output, result.stderr)
    return result


@pytest.fixture
def review(tmp_path: Path) -> Path:
    """Two records from Embase, the first found again in PubMed (record 3, merged into 1);
    record 1 decided, taken back, decided again, resolved, tagged, retrieved, assessed."""
    db = tmp_path / "review.db"
    (tmp_path / "embase.ris").write_text(EMBASE)
    (tmp_path / "pubmed.ris").write_text(PUBMED)
    _cli(db, "reviewers", "add", "alice", "bob", "carol")
    _cli(db, "import", str(tmp_path / "embase.ris"), "--source", "Embase", "-q")
    _cli(db, "import", str(tmp_path / "pubmed.ris"), "--source", "PubMed", "-q")
    _cli(db, "dedup", "-q")
    _cli(db, "decide", "1", "--reviewer", "alice", "--include")
    _cli(db, "decide", "1", "--reviewer", "bob", "--exclude")
    _cli(db, "undo", "--reviewer", "bob")
    _cli(db, "decide", "3", "--reviewer", "bob", "--exclude", "--note", "not nurses")
    _cli(db, "conflicts", "1", "--resolver", "carol", "--include")
    _cli(db, "find", "self-compassion", "--tag", "theory", "--reviewer", "alice")
    _cli(db, "find", "empathy OR compassion", "--tag", "framework")
    _cli(db, "fulltext", "1", "--retrieved")
    _cli(db, "decide", "1", "--reviewer", "alice", "--include", "--stage", FT)
    store = open_store(db)
    appraise(store, 1, "alice", relevance=4, rigour=2)
    add_note(store, 1, "bob", "ask the authors for the protocol")
    store.close()
    return db


def _events(db: Path) -> list[dict]:
    store = open_store(db)
    try:
        return store.events()
    finally:
        store.close()


def _strip(rows: list[dict], *keys: str) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in keys} for r in rows]


# --- cluster show ------------------------------------------------------------------------


def test_show_json_holds_the_whole_record(review: Path) -> None:
    got = json.loads(_cli(review, "show", "1", "--json").stdout)
    events = _events(review)
    merge_id = next(e["data"]["merge_id"] for e in events if e["kind"] == "merge")
    assert got["fields"] == {
        "title": "Self-compassion training for nurses", "authors": ["Smith, Jane", "Doe, John"],
        "year": 2019, "journal": "Journal of Care", "volume": "12", "issue": "3",
        "pages": "45-67", "language": [], "pub_types": ["JOUR"], "keywords": [], "issn": None,
        "url": None, "abstract": "We trained nurses in self-compassion and measured burnout."}
    assert got["identifiers"] == {"doi": "10.1037/a0030292", "pmid": "23121403", "pmcid": None,
                                  "openalex": None}
    assert got["links"] == {"PubMed": "https://pubmed.ncbi.nlm.nih.gov/23121403/",
                            "doi.org": "https://doi.org/10.1037/a0030292"}
    assert (got["merged_into"], got["merge_id"]) == (None, None)
    assert got["duplicates"] == [{"record_id": 3, "title": "Self-compassion training for nurses",
                                  "merge_id": merge_id}]
    assert [(s["record_id"], s["role"], s["service_name"], s["rank"], s["search_id"],
             s["file_name"], s["line"]) for s in got["sources"]] == [
        (1, "database", "Embase", 1, 1, "embase.ris", "imported from embase.ris (rank 1, Embase)"),
        (3, "database", "PubMed", 1, 2, "pubmed.ris", "imported from pubmed.ris (rank 1, PubMed)")]
    assert got["tags"] == ["framework", "theory"]

    ta = got["stages"][TA]
    assert (ta["state"], ta["final"], ta["partial"]) == ("include", True, False)
    assert _strip(ta["decisions"], "event_id", "ts") == [
        {"reviewer": "alice", "value": "include", "reason": None, "note": None, "undone": False,
         "counts": True},
        {"reviewer": "bob", "value": "exclude", "reason": None, "note": None, "undone": True,
         "counts": False},
        {"reviewer": "bob", "value": "exclude", "reason": None, "note": "not nurses",
         "undone": False, "counts": True, "decided_on_record": 3}]
    assert _strip(ta["resolutions"], "event_id", "ts") == [
        {"reviewer": "carol", "value": "include", "reason": None, "note": None, "undone": False,
         "method": "arbiter", "decided_by": ["carol"]}]
    assert ta["automation"] == []

    ft = got["stages"][FT]
    assert (ft["state"], ft["final"], ft["partial"]) == ("1 of 2 reviewers: include", False, True)
    assert [(d["reviewer"], d["value"]) for d in ft["decisions"]] == [("alice", "include")]
    assert (got["fulltext"]["state"], [h["state"] for h in got["fulltext"]["history"]]) == (
        "retrieved", ["retrieved"])
    assert {k: (v["relevance"], v["rigour"], v["stage"]) for k, v in got["appraisals"].items()} == {
        "alice": (4, 2, FT)}
    assert [(n["reviewer"], n["note"]) for n in got["notes"]] == [
        ("bob", "ask the authors for the protocol")]


def test_show_of_a_duplicate_names_its_record_and_reads_its_screening(review: Path) -> None:
    got = json.loads(_cli(review, "show", "3", "--json").stdout)
    merge_id = next(e["data"]["merge_id"] for e in _events(review) if e["kind"] == "merge")
    assert (got["record_id"], got["merged_into"], got["merge_id"], got["duplicates"]) == (
        3, 1, merge_id, [])
    assert [s["service_name"] for s in got["sources"]] == ["PubMed"]
    assert got["stages"][TA]["state"] == "include" and got["tags"] == ["framework", "theory"]
    text = _cli(review, "show", "3").stdout
    assert text.splitlines()[1].startswith("  A duplicate of record 1, which stands")
    assert ("A duplicate of record 1, which stands for the work: its screening below is "
            f"record 1's (merge {merge_id}).") in " ".join(text.split())


def test_show_reads_at_80_columns(review: Path) -> None:
    text = _cli(review, "show", "1").stdout
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[:8] == [
        "Record 1: Self-compassion training for nurses",
        "Authors: Smith, Jane; Doe, John",
        "Published: Journal of Care · 2019 · vol. 12 · issue 3 · pp. 45-67",
        "Type: JOUR",
        "Ids: DOI 10.1037/a0030292 · PMID 23121403",
        "  PubMed   https://pubmed.ncbi.nlm.nih.gov/23121403/",
        "  doi.org  https://doi.org/10.1037/a0030292",
        "Tags: framework, theory",
    ]
    assert "Title and abstract: include (final)" in lines
    assert "Full text: 1 of 2 reviewers: include (partial)" in lines
    assert "  Retrieval: retrieved" in lines
    assert "  alice: relevance 4 · rigour 2" in lines
    assert [line[20:] for line in lines if line.startswith("  20")][:4] == [
        "alice: include", "bob: exclude  [undone]",
        "bob: exclude; note: not nurses",
        "resolved: include by carol (arbiter)"]


def test_show_an_unknown_record_is_one_sentence(review: Path) -> None:
    result = _cli(review, "show", "99", code=1)
    assert one_sentence(result) == "Error: Record 99 is not in this store."


# --- cluster log -------------------------------------------------------------------------


def test_log_newest_first_with_undone_events_marked(review: Path) -> None:
    got = json.loads(_cli(review, "log", "--json").stdout)
    assert [(e["kind"], e["reviewer"], e["record_id"], e["value"], e["undone"]) for e in got] == [
        ("note", "bob", 1, None, False),
        ("appraisal", "alice", 1, None, False),
        ("decision", "alice", 1, "include", False),
        ("fulltext", None, 1, "retrieved", False),
        ("tag", None, 1, "framework", False),
        ("tag", None, 2, "framework", False),
        ("tag", "alice", 1, "theory", False),
        ("resolution", "carol", 1, "include", False),
        ("decision", "bob", 1, "exclude", False),
        ("undo", "bob", 1, None, False),
        ("decision", "bob", 1, "exclude", True),
        ("decision", "alice", 1, "include", False),
        ("merge", None, 1, None, False),
    ]
    undo = got[9]
    assert got[10]["undone_by"] == undo["event_id"] and undo["undoes"] == got[10]["event_id"]
    stored = {e["id"] for e in _events(review)}
    assert {e["event_id"] for e in got} <= stored and len(got) == len(stored)


def test_log_text_names_each_event_by_its_id(review: Path) -> None:
    got = json.loads(_cli(review, "log", "--reviewer", "bob", "--json").stdout)
    text = _cli(review, "log", "--reviewer", "bob").stdout.splitlines()
    when = [e["ts"][:16].replace("T", " ") for e in got]
    assert text == [
        f"{when[0]}  note  bob  record 1  note: ask the authors for the protocol",
        f"    id {got[0]['event_id']}",
        f"{when[1]}  decision  bob  record 1  exclude at title-abstract; note: not",
        "    nurses",
        f"    id {got[1]['event_id']}",
        f"{when[2]}  undo  bob  record 1  takes back event",
        f"    {got[3]['event_id']}",
        f"    id {got[2]['event_id']}",
        f"{when[3]}  [undone] decision  bob  record 1  exclude at title-abstract",
        f"    id {got[3]['event_id']}",
        f"    undone by {got[2]['event_id']}",
    ]


def test_log_filters(review: Path) -> None:
    def kinds(*args: str) -> list[tuple]:
        return [(e["kind"], e["reviewer"], e["record_id"])
                for e in json.loads(_cli(review, "log", *args, "--json").stdout)]

    assert kinds("--kind", "decision", "--limit", "2") == [
        ("decision", "alice", 1), ("decision", "bob", 1)]
    assert kinds("--kind", "tag", "--record", "2") == [("tag", None, 2)]
    # a duplicate's events are its work's: record 3 and record 1 share one log
    assert kinds("--record", "3") == kinds("--record", "1")
    assert len(kinds("--record", "1")) == 12
    assert kinds("--reviewer", "carol") == [("resolution", "carol", 1)]
    assert kinds("--since", "2999-01-01") == []
    assert _cli(review, "log", "--since", "2999-01-01").stdout == "No events match.\n"


def test_log_since_a_date_or_a_time(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    store = open_store(db)
    store.add_reviewer("alice")
    rid = store.add_record(__import__("base.record", fromlist=["Record"]).Record(title="A"))
    for ts in ("2026-01-01T23:59:59.000000+00:00", "2026-01-02T09:30:00.000000+00:00",
               "2026-01-02T12:00:00.000000+00:00"):
        store.log_event("note", record_id=rid, reviewer="alice", note=ts[:16], ts=ts)
    store.close()

    def notes(since: str) -> list[str]:
        return [e["note"] for e in json.loads(_cli(db, "log", "--since", since, "--json").stdout)]

    assert notes("2026-01-02") == ["2026-01-02T12:00", "2026-01-02T09:30"]
    assert notes("2026-01-02T10:00") == ["2026-01-02T12:00"]
    assert notes("2026-01-02 10:00") == ["2026-01-02T12:00"]
    assert notes("2026-01-02T11:00+02:00") == ["2026-01-02T12:00", "2026-01-02T09:30"]
    assert notes("2026-01-02T12:00Z") == ["2026-01-02T12:00"]


@pytest.mark.parametrize("args, message", [
    (("--since", "last tuesday"), "Error: 'last tuesday' is not a date or a date and time: give "
                                  "one like 2026-12-01 or 2026-12-01T14:30."),
    (("--since", "2026-13-01"), "Error: '2026-13-01' is not a date or a date and time: give one "
                                "like 2026-12-01 or 2026-12-01T14:30."),
    (("--reviewer", "zed"), "Error: Unknown reviewer 'zed': add them with `cluster reviewers add "
                            "zed`."),
    (("--record", "99"), "Error: Record 99 is not in this store."),
])
def test_log_refuses_in_one_sentence(review: Path, args: tuple[str, ...], message: str) -> None:
    assert one_sentence(_cli(review, "log", *args, code=1)) == message


# --- tags ----------------------------------------------------------------------------------


def test_tags_listed_with_their_record_counts(review: Path) -> None:
    assert _cli(review, "tags").stdout == "framework  2 records\ntheory     1 record\n"
    assert _cli(review, "find", "--list-tags").stdout == _cli(review, "tags").stdout
    assert json.loads(_cli(review, "tags", "--json").stdout) == [
        {"tag": "framework", "records": 2}, {"tag": "theory", "records": 1}]
    # study links are not tags a reviewer reads
    _cli(review, "study", "link", "1", "2", "--key", "smith2019")
    assert json.loads(_cli(review, "show", "1", "--json").stdout)["study"] == "smith2019"
    assert _cli(review, "tags").stdout == "framework  2 records\ntheory     1 record\n"


def test_a_tag_taken_back_is_no_longer_listed_and_can_be_given_again(review: Path) -> None:
    store = open_store(review)
    theory = next(e for e in store.events("kind = 'tag' AND value = 'theory'"))
    store.log_event("undo", record_id=1, reviewer="alice", undoes=theory["id"])
    store.close()
    assert json.loads(_cli(review, "tags", "--json").stdout) == [
        {"tag": "framework", "records": 2}]
    out = _cli(review, "find", "self-compassion", "--tag", "theory").stdout
    assert out.endswith("1 record(s); 1 newly tagged 'theory'.\n")


def test_one_records_tags_are_those_the_whole_store_gives_it(review: Path) -> None:
    from db.tags import record_tags, tags_of

    store = open_store(review)
    # a tag on the duplicate (record 3) belongs to record 1; a study link is no tag
    store.log_event("tag", record_id=3, reviewer="bob", value="mechanism")
    store.log_event("tag", record_id=2, reviewer="bob", value="study:roe2020")
    whole = record_tags(store)
    assert whole == {1: ("framework", "mechanism", "theory"), 2: ("framework",)}
    assert [tags_of(store, rid) for rid in (1, 2, 3)] == [whole[1], whole[2], whole[1]]
    store.close()


def test_no_tags_yet(tmp_path: Path) -> None:
    db = tmp_path / "review.db"
    _cli(db, "init")
    assert _cli(db, "tags").stdout == ("No tags yet: tag records with cluster find QUERY --tag "
                                       "NAME.\n")
    result = _cli(db, "find", "--list-tags", "care", code=1)
    assert one_sentence(result) == ("Error: --list-tags lists the tags in use: give it without a "
                                    "query or --tag.")
    assert one_sentence(_cli(db, "find", code=1)) == (
        "Error: Give a query to search for, e.g. cluster find self-compassion, or --list-tags.")


def test_exports_carry_tags_and_read_back(review: Path, tmp_path: Path) -> None:
    store = open_store(review)
    records = dict(store.records())
    store.close()
    ris = _cli(review, "export", "--format", "ris").stdout
    assert ris_grammar_errors(ris) == []
    assert mismatches(records, read_ris_lines(ris)) == Counter()
    keywords: dict[str, list[str]] = {}
    current = None
    for line in ris.splitlines():
        m = RIS_TAG_LINE.match(line)
        if m and m.group(1) == "ID":
            current = m.group(2)
        elif m and m.group(1) == "KW":
            keywords.setdefault(current or "", []).append(m.group(2))
    assert keywords == {
        "1": ["cluster title-abstract decision: include", "cluster tag: framework",
              "cluster tag: theory"],
        "2": ["cluster tag: framework"]}

    bib = _cli(review, "export", "--format", "bibtex").stdout
    from pybtex.database import parse_string

    entries = {e.fields["cluster_id"]: e for e in parse_string(bib, "bibtex").entries.values()}
    assert entries["2"].fields["keywords"] == "cluster tag: framework"
    assert entries["1"].fields["keywords"] == (
        "cluster title-abstract decision: include; cluster tag: framework; cluster tag: theory")

    rows = list(csv.DictReader(io.StringIO(_cli(review, "export", "--format", "csv").stdout)))
    assert [(r["record_id"], r["tags"]) for r in rows] == [("1", "framework; theory"),
                                                          ("2", "framework")]
    lines = _cli(review, "export", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line)["tags"] for line in lines] == [["framework", "theory"], ["framework"]]


# --- the screening card ----------------------------------------------------------------------


def test_card_shows_identifiers_link_sources_tags_and_retrieval(store) -> None:
    from screeners.screen import card_lines
    from screeners.session import ScreeningSession

    make_review(store, 3)
    rec = store.get_record(1)
    store.update_record(1, rec.replace(doi="10.1000/xyz", pmid="123"))
    store.update_record(2, store.get_record(2).replace(doi="10.1000/abc"))
    store.log_event("tag", record_id=1, value="theory", reviewer="alice")
    for rid in (1, 2):
        for who in ("alice", "bob"):
            store.log_event("decision", record_id=rid, reviewer=who, stage=TA, value="include")
    mark_fulltext(store, 1, "retrieved")

    s = ScreeningSession(store, "alice", FT, background=False, rank_fn=lambda *a: sorted(a[3]))
    card = s.card()
    lines = ["".join(t for _, t in line) for line in card_lines(card, 80, [], [], FT)]
    assert lines[1:10] == [
        "Authors: Author1, A, Second, B",
        "Published: Journal of Care · 2000",
        "Ids: DOI 10.1000/xyz · PMID 123",
        "Link: https://pubmed.ncbi.nlm.nih.gov/123/",
        "Keywords: care; compassion",
        "Tags: theory",
        "Sources: OpenAlex",
        "Found: cites index article 1 (cited-by, rank 1, OpenAlex)",
        "Full text: retrieved",
    ]
    # record 2's report is not in hand: it waits, and the progress line says so
    assert s.progress().awaiting_retrieval == 1
    store.log_event("fulltext", record_id=2, value="retrieved",
                    data={"source": "Unpaywall", "file": "2-5e1f.pdf"})
    s.decide("include")
    card = s.card()
    lines = ["".join(t for _, t in line) for line in card_lines(card, 80, [], [], FT)]
    assert "Link: https://doi.org/10.1000/abc" in lines and "Tags: theory" not in lines
    assert "Full text: retrieved from Unpaywall · file 2-5e1f.pdf" in lines
    s.close()


# --- one record's state, read from its own events ------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_one_records_state_is_the_stores_state(store, seed: int) -> None:
    """`record_decisions` (what `cluster show` reads) names every record's state exactly as
    `current_decisions` (exports, reports) does, through changed minds, undos,
    resolutions, stopping rules, retrieval and merged duplicates."""
    import random

    from base.record import Record
    from db.state import current_decisions, record_decisions

    rng = random.Random(seed)
    with store.transaction():
        for name in ("alice", "bob", "carol"):
            store.add_reviewer(name)
        ids = [store.add_record(Record(title=f"Record {i}")) for i in range(30)]
        for dup in rng.sample(ids[10:], 5):  # merged into one of the first ten
            store.db.execute("UPDATE records SET duplicate_of = ? WHERE id = ?",
                             [rng.choice(ids[:10]), dup])
        logged: list[str] = []
        for _ in range(160):
            rid, stage = rng.choice(ids), rng.choice((TA, TA, FT))
            roll = rng.random()
            if roll < 0.6:
                value = rng.choice(("include", "exclude", "maybe"))
                reason = rng.choice(("wrong outcome", "wrong population")) \
                    if value == "exclude" and stage == FT else None
                logged.append(store.log_event("decision", record_id=rid, stage=stage, value=value,
                                              reviewer=rng.choice(("alice", "bob")),
                                              reason=reason))
            elif roll < 0.7 and logged:
                store.log_event("undo", reviewer="alice", undoes=rng.choice(logged))
            elif roll < 0.8:
                store.log_event("resolution", record_id=rid, stage=stage, reviewer="carol",
                                value=rng.choice(("include", "exclude")))
            elif roll < 0.9:
                store.log_event("automation", record_id=rid, stage=stage, value="exclude",
                                data={"rule": "consecutive"})
            else:
                store.log_event("fulltext", record_id=rid, stage=FT,
                                value=rng.choice(("sought", "retrieved", "not-retrieved")))
    whole = {stage: current_decisions(store, stage) for stage in (TA, FT)}
    for rid in ids:
        canonical = store.canonical_id(rid)
        assert record_decisions(store, rid) == {
            stage: whole[stage].get(canonical, "undecided") for stage in (TA, FT)}, rid


def test_log_names_an_older_stores_unmerge_as_what_took_its_merge_back(tmp_path: Path) -> None:
    # stores written before undo was one event kind split a merge with an `unmerge`
    db = tmp_path / "old.db"
    store = open_store(str(db))
    try:
        merge = store.log_event("merge", record_id=1, data={"merge_id": "m1", "members": [2]})
        split = store.log_event("unmerge", record_id=1, data={"merge_id": "m1"})
    finally:
        store.close()
    rows = {e["event_id"]: e for e in json.loads(_cli(db, "log", "--json").stdout)}
    assert (rows[merge]["undone"], rows[merge]["undone_by"]) == (True, split)
    assert (rows[split]["undone"], rows[split]["undone_by"]) == (False, None)
