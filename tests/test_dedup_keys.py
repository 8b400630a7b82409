"""Prepared keys kept in the store: reused across processes, invalidated by edits and versions."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import pytest

from cluster.dedup import prepare
from cluster.dedup.apply import pending_pairs, run_dedup
from cluster.dedup.keys import TABLE, decode, encode, fingerprint, layout
from cluster.dedup.prepare import NORMALISER_VERSION, PREPARED_FROM, prepare_one
from base.record import Record, normalize_year
from db.store import open_store
from tests.conftest import shared_path
from faults import fail_on_event

DATA = Path(__file__).resolve().parent / "data"

#: sha256 of the layout and the encoded keys of the golden-pair records, per NORMALISER_VERSION.
#: A failure here means `prepare_one` now gives other keys: bump NORMALISER_VERSION in
#: cluster/dedup/prepare.py and pin the new digests under the new number.
PINNED_GOLDEN = {2: "a402572ed0184a96e3344e9cfa541ee5440cc79eb90bcc1d672c34a0ea68b24a",
                 3: "a402572ed0184a96e3344e9cfa541ee5440cc79eb90bcc1d672c34a0ea68b24a",
                 4: "edb4e09cca8e91f82a02e79c22da031ffe6c1879ff1a8d4470070ef68ce019fb"}
PINNED_NEUROIMAGING = {2: "ba28361956a1fc49f7ed8c990e61d3aa8e869ed66b298d261bc53a2ad7c24e02",
                       3: "679e17289c3d78058b16dcda041fcbcda9fda72dc10dbca7387303d045497970",
                       4: "5bb4c2de97e7aeece74be8ca4dc6c34463308450c8eb632e6e24e3d5b7f8b443"}

TITLE_1 = "Ischemic preconditioning in chronically hypoxic neonatal rat heart"
TITLE_2 = "Cardioprotection at a distance: mesenteric artery occlusion protects the myocardium"


# --- the corpus the pins rest on -------------------------------------------------------------


def golden_items() -> list[dict]:
    """Both records of every golden pair, as the mappings `prepare_one` also accepts."""
    with open(DATA / "golden_pairs.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    names = ("title", "authors", "year", "journal", "volume", "issue", "pages", "doi", "pmid")
    return [{n: r[f"{side}_{n}"] for n in names} for r in rows for side in ("a", "b")]


EDGE_CASES = (
    Record(title="Erratum: Ischemic preconditioning (vol 52 pg 561 2002)", year=2003),
    Record(title="Retraction notice", authors=("Doe, J",)),
    Record(title="Comment on: statins", abstract="We disagree."),
    Record(title="Heart failure. Part II", journal="Scand J Gastroenterol Suppl", volume="26",
           issue="Suppl 51", pages="S12-4"),
    Record(title="[Therapie der Herzinsuffizienz]. [Article in German]", authors=("Müller, Ä",),
           year=1999, pages="06-Oct", doi="10.1002/14651858.CD003463.pub2"),
    Record(title="Optimisation of haemodynamic monitoring", pages="CD000437", volume="1)",
           doi="10.1016/s0022"),
)


def _digest(items) -> str:
    h = hashlib.sha256(layout().encode())
    for i, item in enumerate(items):
        h.update(encode(prepare_one(item, i)).encode() + b"\n")
    return h.hexdigest()


def test_normalisation_is_pinned_to_the_version_golden_corpus():
    digest = _digest([*golden_items(), *EDGE_CASES])
    assert PINNED_GOLDEN.get(NORMALISER_VERSION) == digest, (
        "prepare_one gives other keys than NORMALISER_VERSION promised: bump NORMALISER_VERSION "
        f"and pin {digest!r} for it")


def test_normalisation_is_pinned_to_the_version_real_set():
    path = shared_path("data", "dedup", "asysd_neuroimaging.csv.gz")
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    digest = _digest(rows)
    assert PINNED_NEUROIMAGING.get(NORMALISER_VERSION) == digest, (
        "prepare_one gives other keys than NORMALISER_VERSION promised: bump NORMALISER_VERSION "
        f"and pin {digest!r} for it")


class Reading(Mapping):
    """A record that notes which fields are read."""

    def __init__(self, data: dict) -> None:
        self._data = data
        self.read: set[str] = set()

    def __getitem__(self, name: str):
        self.read.add(name)
        return self._data[name]

    def get(self, name, default=None):
        self.read.add(name)
        return self._data.get(name, default)

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def test_prepare_reads_only_the_fields_the_fingerprint_covers():
    read: set[str] = set()
    for item in [*golden_items(), *({**r.__dict__} for r in EDGE_CASES)]:
        reading = Reading(item)
        prepare_one(reading, 0)
        read |= reading.read
    assert read <= set(PREPARED_FROM), f"add {sorted(read - set(PREPARED_FROM))} to PREPARED_FROM"
    assert read == set(PREPARED_FROM)


def test_keys_round_trip_exactly():
    for i, item in enumerate([*golden_items(), *EDGE_CASES]):
        p = prepare_one(item, i)
        back = decode(i, encode(p))
        assert back == p
        assert [type(getattr(back, n)) for n in p.__slots__] == \
            [type(getattr(p, n)) for n in p.__slots__]


def test_fingerprint_follows_every_field_prepare_reads():
    base = Record(title=TITLE_1, authors=("Ostadalova, I",), year=2002, journal="Pediatr Res",
                  volume="52", issue="4", pages="561-7", doi="10.1203/x", pmid="12357051",
                  abstract="Hearts.")
    fp = fingerprint(base)
    assert fingerprint(base.replace(keywords=("rat",), url="http://x")) == fp
    as_dict = dict(zip(PREPARED_FROM, (getattr(base, f) for f in PREPARED_FROM)))
    assert fingerprint(as_dict) == fingerprint(dict(as_dict))
    assert fingerprint({**as_dict, "pages": "561-8"}) != fingerprint(as_dict)
    assert fingerprint(base.replace(volume=52)) != fingerprint(base.replace(volume="52"))
    # a value pickle cannot write still counts, through its repr
    assert fingerprint({**as_dict, "pages": lambda: 1}) != fingerprint(as_dict)
    changed = {fingerprint(base.replace(**{f: v})) for f, v in (
        ("title", TITLE_2), ("authors", ("Ostadalova, I", "Ostadal, B")), ("year", 2003),
        ("journal", "Pediatric Research"), ("volume", "53"), ("issue", "5"), ("pages", "561"),
        ("doi", "10.1203/y"), ("pmid", "1"), ("abstract", "Hearts!"))}
    assert len(changed) == 10 and fp not in changed
    # values cannot run into each other, nor a tuple into its joined text
    assert fingerprint(base.replace(volume="5", issue="24")) != fingerprint(base.replace(volume="52",
                                                                                      issue="4"))
    assert fingerprint(base.replace(authors=("a; b",))) != fingerprint(base.replace(authors=("a", "b")))


# --- runs on a store ---------------------------------------------------------------------------


def _add(store, *records: Record) -> list[int]:
    with store.transaction():
        return [store.add_record(r) for r in records]


FULL_1 = Record(title=TITLE_1, authors=("Ostadalova, I", "Ostadal, B"), year=2002,
                journal="Pediatr Res", volume="52", issue="4", pages="561-7",
                doi="10.1203/00006450-200210000-00016", pmid="12357051")
WORKS = (
    FULL_1,
    # the same work with an abstract the canonical lacks: the merge fills it in
    FULL_1.replace(doi=None, pmid=None, abstract="Hypoxic hearts were preconditioned..."),
    Record(title=TITLE_2, authors=("Patel, H H",), year=2002, journal="J Mol Cell Cardiol",
           volume="34", pages="1317-1323", abstract="Remote occlusion."),
    Record(title=TITLE_2, authors=("Patel, H H",), year=2002, journal="J Mol Cell Cardiol",
           volume="34", pages="1317-1323", abstract="Remote occlusion."),
    Record(title="Statins and the heart: a review", year=2010),
    Record(title="A completely unrelated study of soil bacteria", year=2020),
)


SINGLE_TOPICS = ("sleep in shift workers", "coffee and alertness at night", "noise in open offices",
                 "blue light before bedtime")


def _single(n: int) -> Record:
    return Record(title=f"A cohort study of {SINGLE_TOPICS[n]}", year=2010)


def _rows(store) -> dict[int, tuple[bytes, str]]:
    return {r: (f, k) for r, f, k in store.db.execute(f"SELECT record_id, fingerprint, keys FROM {TABLE}")}


def _assert_consistent(store) -> None:
    """Every stored row is a standing record's, fingerprinted from its fields as they are."""
    for rid, (fp, text) in _rows(store).items():
        record = store.get_record(rid)
        assert store.canonical_id(rid) == rid
        assert fp == fingerprint(record)
        assert decode(rid, text) == prepare_one(record, rid)


def _fresh_run(db_path, **kw):
    store = open_store(db_path)
    try:
        summary = run_dedup(store, **kw)
        _assert_consistent(store)
        return summary
    finally:
        store.close()


@pytest.fixture
def works(db_path):
    store = open_store(db_path)
    ids = _add(store, *WORKS)
    store.close()
    return ids


def test_a_later_run_in_a_new_process_prepares_only_new_and_changed_records(db_path, works):
    first = _fresh_run(db_path)
    assert (first.records_in, first.clusters, first.records_prepared, first.records_reused) == \
        (6, 2, 6, 0)
    store = open_store(db_path)
    standing = [rid for rid, _ in store.records()]
    # the canonical of work 1 got an abstract in the merge: its keys are those of its new fields
    assert works[0] in standing and store.get_record(works[0]).abstract
    assert set(_rows(store)) == set(standing)
    late = _add(store, _single(1))
    store.close()
    second = _fresh_run(db_path)
    assert (second.records_in, second.new_records, second.records_prepared,
            second.records_reused) == (5, 1, 1, 4)
    store = open_store(db_path)
    assert set(_rows(store)) == set(standing) | set(late)
    _add(store, _single(2), _single(3))
    store.close()
    third = _fresh_run(db_path)
    assert (third.records_in, third.records_prepared, third.records_reused) == (7, 2, 5)
    nothing_new = _fresh_run(db_path)
    assert (nothing_new.new_records, nothing_new.records_prepared, nothing_new.records_reused) == \
        (0, 0, 0)


def test_an_edited_record_is_prepared_again(db_path, works):
    _fresh_run(db_path)
    store = open_store(db_path)
    statins = works[4]
    store.update_record(statins, store.get_record(statins).replace(journal="Heart"))
    # a field the keys do not depend on changes no fingerprint
    soil = works[5]
    store.db.execute("UPDATE records SET keywords = ? WHERE id = ?", ['["soil"]', soil])
    _add(store, _single(1))
    store.close()
    summary = _fresh_run(db_path)
    # the new record and the edited one
    assert (summary.records_in, summary.records_prepared, summary.records_reused) == (5, 2, 3)
    store = open_store(db_path)
    assert fingerprint(store.get_record(statins)) == _rows(store)[statins][0]
    store.close()


def test_a_new_normaliser_version_prepares_every_record_again(db_path, works, monkeypatch):
    _fresh_run(db_path)
    store = open_store(db_path)
    _add(store, _single(1))
    store.close()
    monkeypatch.setattr(prepare, "NORMALISER_VERSION", NORMALISER_VERSION + 1)
    summary = _fresh_run(db_path)
    assert (summary.records_in, summary.records_prepared, summary.records_reused) == (5, 5, 0)
    store = open_store(db_path)
    _add(store, _single(2))
    store.close()
    # under the new version the rows just written are reused again
    later = _fresh_run(db_path)
    assert (later.records_in, later.records_prepared, later.records_reused) == (6, 1, 5)
    monkeypatch.undo()
    store = open_store(db_path)
    _add(store, _single(3))
    store.close()
    back = _fresh_run(db_path)
    assert (back.records_in, back.records_prepared, back.records_reused) == (7, 7, 0)


def test_an_interrupted_run_leaves_no_keys_behind(db_path, works, monkeypatch):
    store = open_store(db_path)
    fail_on_event(store, monkeypatch)
    with pytest.raises(RuntimeError, match="disk full"):
        run_dedup(store)
    assert _rows(store) == {} and store.events() == []
    monkeypatch.undo()
    store.close()
    first = _fresh_run(db_path)
    assert (first.records_prepared, first.records_reused, first.clusters) == (6, 0, 2)

    store = open_store(db_path)
    before = _rows(store)
    _add(store, _single(1), FULL_1.replace(title=TITLE_1.upper()))

    def interrupt(stage, done, total):
        if stage == "match":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_dedup(store, progress=interrupt)
    assert _rows(store) == before
    store.close()
    again = _fresh_run(db_path)
    assert (again.records_in, again.records_prepared, again.records_reused, again.clusters) == \
        (6, 2, 4, 1)


def _outcome(db_path) -> tuple:
    store = open_store(db_path)
    try:
        dup = store.db.execute("SELECT id, duplicate_of, title, abstract FROM records ORDER BY id").fetchall()
        merges = [(e["data"]["canonical"], e["data"]["members"], e["data"]["rule"], e["data"]["score"],
                   e["data"]["filled"]) for e in store.events("kind = 'merge'")]
        return dup, merges, pending_pairs(store)
    finally:
        store.close()


def _golden_records() -> list[Record]:
    return [Record(title=r["title"] or None, authors=(r["authors"],) if r["authors"] else (),
                   year=normalize_year(r["year"] or None), journal=r["journal"] or None,
                   volume=r["volume"] or None, issue=r["issue"] or None, pages=r["pages"] or None,
                   doi=r["doi"] or None, pmid=r["pmid"] or None) for r in golden_items()]


def test_the_outcome_is_the_same_with_and_without_stored_keys(tmp_path):
    records = _golden_records()
    outcomes, counts = [], []
    for persist in (True, False):
        db = tmp_path / f"{persist}.db"
        store = open_store(db)
        _add(store, *records[:50])
        store.close()
        first = _fresh_run(db, persist_keys=persist)
        store = open_store(db)
        filled = sum(1 for e in store.events("kind = 'merge'") if e["data"]["filled"])
        # an edit behind the library's back: the stored keys of this record no longer fit it
        edited = next(rid for rid, r in store.records() if r.pages)
        store.db.execute("UPDATE records SET pages = '1-2', year = 1990 WHERE id = ?", [edited])
        _add(store, *records[50:])
        store.close()
        second = _fresh_run(db, persist_keys=persist)
        outcomes.append(_outcome(db))
        counts.append((first.records_prepared, second.records_prepared, second.records_reused,
                       second.records_in, filled))
    assert outcomes[0] == outcomes[1]
    dup, merges, _ = outcomes[0]
    assert len(merges) >= 20 and len(dup) == len(records) == 134
    (first_keys, again_keys, reused, n_in, filled), plain = counts
    assert filled > 0
    # the new records and the edited one are normalised, no others
    new = len(records) - 50
    assert (first_keys, again_keys, reused) == (50, new + 1, n_in - new - 1)
    assert plain == (50, n_in, 0, n_in, filled)


def test_the_keys_table_is_added_to_an_older_store(db_path):
    store = open_store(db_path)
    rid = _add(store, FULL_1)[0]
    # as a store written before migration m003 looks
    store.db.execute(f"DROP TABLE {TABLE}")
    store.db.execute("DELETE FROM _sqlite_migrations WHERE name = 'm003_dedup_keys'")
    store.close()
    store = open_store(db_path)
    assert store.get_record(rid) == FULL_1
    assert _rows(store) == {}
    assert run_dedup(store).records_prepared == 1
    assert set(_rows(store)) == {rid}
    store.close()
    con = sqlite3.connect(db_path)
    cols = [r[1] for r in con.execute(f"PRAGMA table_info({TABLE})")]
    con.close()
    assert cols == ["record_id", "fingerprint", "keys"]


def test_cli_summary_says_how_many_records_were_normalised(run, db_path):
    store = open_store(db_path)
    _add(store, *WORKS)
    store.close()
    out = run("dedup", "--quiet").output
    assert "Records normalised: 6 (0 reused from earlier runs)" in out
    store = open_store(db_path)
    _add(store, _single(1))
    store.close()
    out = run("dedup", "--quiet").output
    assert "Records in: 5 (1 new since the last run)" in out
    assert "Records normalised: 1 (4 reused from earlier runs)" in out
    out = run("dedup", "--quiet").output
    assert "Records normalised" not in out
    store = open_store(db_path)
    _add(store, _single(2))
    store.close()
    summary = json.loads(run("dedup", "--json", "--quiet").output)
    assert (summary["records_in"], summary["records_prepared"], summary["records_reused"]) == (6, 1, 5)
