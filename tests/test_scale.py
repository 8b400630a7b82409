"""Large stores: commands that need no model load none, the stopping rule's
arithmetic without scipy.stats, the feature cache's size, and imports that stay
all-or-nothing when written in batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from db.protocol import set_protocol

ROOT = Path(__file__).resolve().parents[1]
TA = "title-abstract"

#: modules of the model, or that take about a second to import
HEAVY = ("screeners.prioritise", "screeners.prioritiser", "sklearn", "scipy.stats")

_PROBE = """
import contextlib, io, json, sys
from cli import cli
heavy = {heavy!r}
seen = {{}}
for args in {commands!r}:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            cli.main([*args, "--db", {db!r}], standalone_mode=False)
        except SystemExit:
            pass
    seen[" ".join(args)] = [m for m in heavy if m in sys.modules]
print(json.dumps(seen))
"""


def _loaded(db_path: Path, commands: list[list[str]], heavy: tuple[str, ...] = HEAVY
            ) -> dict[str, list[str]]:
    """For each command run in turn in one fresh process, the heavy modules loaded by then."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("CLUSTER_DB", None)
    code = _PROBE.format(heavy=heavy, commands=commands, db=str(db_path))
    r = subprocess.run([sys.executable, "-c", code], cwd=db_path.parent, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_status_flow_report_export_load_no_model(run, store, db_path, tmp_path):
    csv_file = tmp_path / "search.csv"
    csv_file.write_text("title,abstract,year\n" + "".join(
        f"Compassion training for nurses trial {i},A randomised trial of compassion training.,"
        f"{2010 + i % 5}\n" for i in range(30)))
    run("import", str(csv_file), "--as", "database", "--source", "Embase")
    set_protocol(store, reviewers_per_record=1)
    store.add_reviewer("ann")
    for rid in range(1, 7):
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA,
                        value="include" if rid % 3 == 0 else "exclude")
    store.close()
    light = [["status"], ["status", "--json"], ["flow", "--json"], ["report"],
             ["export", "--format", "csv"], ["export", "--format", "ris"]]
    seen = _loaded(db_path, [*light, ["status", "--estimate", "--json"]])
    assert {" ".join(c): seen[" ".join(c)] for c in light} == {" ".join(c): [] for c in light}
    # asked for, the estimate loads the model (so the probe can see a load)
    assert "screeners.prioritise" in seen["status --estimate --json"]


def test_reading_commands_load_neither_numpy_nor_sqlite_utils(run, store, db_path):
    """Each takes longer to import than a whole `cluster status` may; a decision (a
    screening key press) needs neither, adding a reviewer loads sqlite-utils."""
    run("import", str(ROOT / "tests" / "data" / "screening_small.csv"), "--as", "database")
    set_protocol(store, reviewers_per_record=1)
    store.add_reviewer("ann")
    store.log_event("decision", record_id=1, reviewer="ann", stage=TA, value="include")
    store.close()
    reading = [["status"], ["status", "--json"], ["status", "--stage", "full-text"],
               ["flow", "--json"], ["export", "--format", "csv"], ["show", "1"], ["log"]]
    reading.append(["decide", "2", "--reviewer", "ann", "--exclude"])
    seen = _loaded(db_path, [*reading, ["reviewers", "add", "bea"]],
                   heavy=("numpy", "sqlite_utils"))
    assert {" ".join(c): seen[" ".join(c)] for c in reading} == {" ".join(c): [] for c in reading}
    assert "sqlite_utils" in seen["reviewers add bea"]


def _cdf(k, N, K, n) -> np.ndarray:
    from screeners.stopping import hypergeometric_cdf

    return np.array([hypergeometric_cdf(int(a), int(b), int(c), int(d))
                     for a, b, c, d in zip(k, N, K, n, strict=True)])


@pytest.mark.parametrize("seed", [1, 2])
def test_hypergeometric_cdf_is_scipys(seed):
    from scipy.stats import hypergeom

    rng = np.random.default_rng(seed)
    N = rng.integers(1, 5000, 3000)
    K = rng.integers(0, N + 1)
    n = rng.integers(0, N + 1)
    k = rng.integers(-1, np.minimum(n, K) + 2)
    ours = _cdf(k, N, K, n)
    assert np.abs(ours - hypergeom.cdf(k, N, K, n)).max() < 1e-9
    # the stopping rule's own shapes: a small sample from a large urn, deep in the tail
    k2, N2, K2, n2 = (np.array(v) for v in ([0, 0, 3, 40], [400_000, 5_000, 300_000, 400_000],
                                             [60, 2, 250_000, 1000], [2000, 4999, 5, 30_000]))
    assert np.allclose(_cdf(k2, N2, K2, n2), hypergeom.cdf(k2, N2, K2, n2),
                       rtol=2e-8, atol=1e-300)


def test_hypergeometric_cdf_is_scipys_on_a_grid_to_1e_11():
    from scipy.stats import hypergeom

    grid = [(k, N, K, n) for N in (1, 2, 7, 50, 333, 1000) for K in sorted({0, 1, N // 3, N})
            for n in sorted({0, 1, N // 2, N}) for k in range(-1, min(n, K) + 2)]
    k, N, K, n = (np.array(v) for v in zip(*grid))
    assert len(grid) == 3265
    assert np.abs(_cdf(k, N, K, n) - hypergeom.cdf(k, N, K, n)).max() < 1e-11


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_hypergeometric_p_is_the_smallest_of_scipys_p_over_every_sample(seed):
    """The sum stops early for samples that cannot beat the smallest p so far: the p-value,
    sample and K_tar are still those of the smallest p over every sample, the first one
    where several are as small."""
    from scipy.stats import hypergeom

    from screeners.stopping import hypergeometric_p

    rng = np.random.default_rng(seed)
    for size, total, falling in ((400, 5000, 1), (2000, 2300, 3), (3000, 40_000, 2)):
        labels = (rng.random(size) < 0.2 * np.linspace(1, 0, size) ** falling).astype(int)
        r, n = labels.sum(), np.arange(1, size + 1)
        k = np.cumsum(labels[::-1])
        k_tar = np.floor(r / 0.95 - (r - k) + 1).astype(int)
        n_urn = n + total - size
        p = np.where(k_tar > n_urn, 0.0, hypergeom.cdf(k, n_urn, np.minimum(k_tar, n_urn), n))
        i = int(np.argmin(p))
        got = hypergeometric_p(labels.tolist(), total, 0.95)
        assert got[1:] == (n[i], k[i], k_tar[i])
        assert got[0] == pytest.approx(p[i], rel=1e-9, abs=1e-300)


def test_feature_cache_is_smaller_than_the_store_and_loads_the_same_matrices(store, db_path,
                                                                             tmp_path):
    from conftest import shared_path
    from db.formats import import_files
    from screeners import prioritise
    from screeners.prioritiser.cache import clear_all

    shared_path("data", "screening")  # skips where the labelled sets are absent
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from scale_data import write_csv
    finally:
        sys.path.remove(str(ROOT / "bench"))
    # 3,000 records tiled from the labelled sets as bench/scale_data.py makes them
    summary = write_csv(tmp_path / "tiled.csv", 3000)
    import_files(store, [tmp_path / "tiled.csv"], role="database", source="Bench")
    store.db.execute("UPDATE records SET duplicate_of = id - 1 WHERE id % 100 = 0")
    store.db.conn.commit()
    fitted = prioritise.features(store)
    side = db_path.with_name(db_path.name + ".features.sqlite")
    store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert summary.rows == 3000
    assert fitted.origin == "fitted" and len(fitted.ids) == 2970  # canonical records alone
    assert side.stat().st_size <= db_path.stat().st_size
    clear_all()
    loaded = prioritise.features(store)
    assert loaded.origin == "disk"
    for a, b in zip(fitted.X.all, loaded.X.all, strict=True):
        assert a.dtype == b.dtype == np.float32
        assert (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)
                and np.array_equal(a.data, b.data))
    assert np.array_equal(fitted.vectorizer.idf, loaded.vectorizer.idf)
    assert np.array_equal(fitted.vectorizer.column, loaded.vectorizer.column)


def _csv(path: Path, n: int) -> Path:
    path.write_text("title,abstract,year\n" + "".join(
        f"Record {i} on compassion,Words about care number {i}.,2010\n" for i in range(1, n + 1)))
    return path


def test_import_reports_progress_in_records_as_each_batch_is_written(store, tmp_path, monkeypatch):
    import db.formats as formats

    monkeypatch.setattr(formats, "IMPORT_BATCH", 10)
    seen: list[tuple[int, int]] = []
    formats.import_files(store, [_csv(tmp_path / "a.csv", 25), _csv(tmp_path / "b.csv", 12)],
                         role="database", progress=lambda done, total: seen.append((done, total)))
    # the total is estimated from the bytes read until the last record is written
    assert [done for done, _ in seen] == [10, 20, 25, 35, 37]
    assert all(total > done for done, total in seen[:-1]) and seen[-1] == (37, 37)
    assert store.db["records"].count == 37


def test_import_larger_than_a_batch_writes_nothing_when_a_late_record_fails(
        run, db_path, tmp_path, monkeypatch):
    import sqlite3

    import db.formats as formats
    import db.store as store_module

    run("init")
    monkeypatch.setattr(formats, "IMPORT_BATCH", 10)
    real = store_module.record_values
    written: list[str] = []

    def failing(record):
        if record.title == "Record 45 on compassion":  # four batches in
            raise sqlite3.OperationalError("database or disk is full")
        written.append(record.title)
        return real(record)

    monkeypatch.setattr(store_module, "record_values", failing)
    result = run("import", str(_csv(tmp_path / "big.csv", 50)), expect=1)
    assert len(written) == 44
    assert result.output.strip().splitlines()[-1] == (
        f"Error: The disk holding {db_path} is full; nothing of the step under way was written: "
        "free some space and run the command again.")
    con = sqlite3.connect(db_path)
    assert [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("records", "searches", "sources")] == [0, 0, 0]
    con.close()


def test_reading_a_large_csv_holds_it_a_few_times_not_ten(tmp_path):
    import tracemalloc

    from db.formats import read_file

    # non-ASCII text: Python keeps it at two bytes a character, an io.StringIO at four
    f = tmp_path / "big.csv"
    abstract = "Nurses’ care, and words about a ward. " * 40  # as long as a real abstract
    f.write_text("title,abstract,authors,year\n" + "".join(
        f"Compassion training – trial {i},\"{abstract}{i}\",Liu R.,2010\n"
        for i in range(2_000)), encoding="utf-8")
    size = f.stat().st_size
    tracemalloc.start()
    try:
        parsed = read_file(f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(parsed.result.records) == 2_000
    assert peak < 8 * size, peak / size


@pytest.mark.parametrize("fmt", ["ris", "bibtex", "csv", "jsonl", "asreview"])
def test_export_written_in_pieces_is_the_same_bytes_whatever_the_batch(
        fmt, run, store, db_path, tmp_path, monkeypatch):
    """An export is written a batch of records at a time (a large store is never held
    whole): the file, standard output and the text are the same bytes for any batch."""
    import db.formats.export as export

    run("import", str(ROOT / "tests" / "data" / "screening_small.csv"), "--as", "database")
    set_protocol(store, reviewers_per_record=1)
    store.add_reviewer("ann")
    store.db["records"].update(4, {"duplicate_of": 3})
    for rid in range(1, 12):
        store.log_event("decision", record_id=rid, reviewer="ann", stage=TA,
                        value="exclude" if rid % 3 else "include",
                        reason="wrong population" if rid % 3 else None,
                        note=f"read twice {rid}" if rid % 4 == 0 else None)
    store.log_event("tag", record_id=7, reviewer="ann", value="theory")
    store.close()

    def texts(batch: int) -> list[bytes]:
        monkeypatch.setattr(export, "EXPORT_BATCH", batch)
        out = tmp_path / f"out{batch}.{fmt}"
        run("export", "--format", fmt, "-o", str(out))
        shown = run("export", "--format", fmt, "--all").stdout_bytes
        from db.store import open_store
        s = open_store(db_path)
        try:
            result = export.export_records(s, fmt, decision="exclude")
            assert result.n_records == 8
            subset = result.text.encode()
        finally:
            s.close()
        return [out.read_bytes(), shown, subset]

    whole = texts(10**6)
    assert whole[0].count(b"Soil erosion on terraced hillsides") == 1
    assert texts(1) == whole
    assert texts(3) == whole


def test_a_records_study_key_read_alone_is_the_one_the_whole_store_gives(store):
    """`cluster show` reads one record's study links (its own and its duplicates'), not the
    store's: the key is the same."""
    from base.record import Record
    from db.flow import link_study, study_keys, unlink_study
    from db.provenance import record_family

    ids = [store.add_record(Record(title=f"Report {i}", extra={"study": "trial-a"} if i == 0
                                   else {"note": "study-free"} if i == 1 else {}))
           for i in range(6)]
    store.db["records"].update(ids[3], {"duplicate_of": ids[2]})
    link_study(store, [ids[3], ids[4]], "trial-b")  # through the duplicate
    link_study(store, [ids[0]], "trial-c")
    unlink_study(store, [ids[4]])
    whole = study_keys(store)
    assert whole == {ids[0]: "trial-c", ids[2]: "trial-b"}
    for rid in ids:
        canonical = store.canonical_id(rid)
        family = record_family(store, canonical)
        alone = study_keys(store, {r: canonical for r in family}, family)
        assert alone.get(canonical) == whole.get(canonical)
