"""Timing of reference import/export on the real corpus in ../shared/fixtures/files.

Prints medians (5 runs) per format folder for parsing alone and for a full
import, and compares the import's write path with the store's one-row API
(`Store.add_record` + `Store.add_source`) as the baseline, run in the same
script. Numbers, not pass/fail.

Run from the repository root: python bench/bench_formats.py
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from db.formats import export_records, import_files, read_file  # noqa: E402
from db.store import open_store  # noqa: E402

FILES = ROOT.parent / "shared" / "fixtures" / "files"
RUNS = 5


def median_time(fn) -> float:
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    if not (FILES / "index.json").exists():
        print("../shared/fixtures/files is absent: nothing to measure")
        return
    entries = json.loads((FILES / "index.json").read_text())
    folders: dict[str, list[Path]] = {}
    for e in entries:
        folders.setdefault(e["path"].split("/")[0], []).append(FILES / e["path"])
    print(f"{'folder':<12} {'files':>5} {'records':>8} {'parse s':>8} {'import s':>9} {'rec/s':>8}")
    for folder, paths in folders.items():
        n = sum(len(read_file(p).result.records) for p in paths)
        parse = median_time(lambda: [read_file(p) for p in paths])
        full = median_time(lambda: import_files(open_store(None), paths, role="database"))
        print(f"{folder:<12} {len(paths):>5} {n:>8} {parse:>8.3f} {full:>9.3f} {n / full:>8.0f}")

    every = [FILES / e["path"] for e in entries]
    parsed = [read_file(p).result for p in every]
    records = [r for res in parsed for r in res.records]

    def api_path() -> None:
        store = open_store(None)
        with store.transaction():
            sid = store.start_search(kind="import", service="bench")
            for r in records:
                rid = store.add_record(r)
                store.add_source(rid, sid, role="database", service="bench",
                                 source_record_id=r.source_id)

    def bulk_path() -> None:
        import_files(open_store(None), every, role="database")

    parse_all = median_time(lambda: [read_file(p) for p in every])
    api = median_time(api_path) + parse_all
    bulk = median_time(bulk_path)
    print(f"\nwhole corpus, {len(records)} records, median of {RUNS}:")
    print(f"  baseline (parse + Store.add_record/add_source): {api:.3f} s")
    print(f"  import_files (parse + one INSERT per row):      {bulk:.3f} s  ratio {bulk / api:.2f}")
    store = open_store(None)
    import_files(store, every, role="database")
    for fmt in ("ris", "bibtex", "csv", "jsonl", "asreview"):
        t = median_time(lambda: export_records(store, fmt))
        print(f"  export {fmt:<9} {t:.3f} s ({len(records) / t:.0f} records/s)")


if __name__ == "__main__":
    main()
