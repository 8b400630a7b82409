"""Benchmark: CLUSTER expansion of 40 index articles against a generated world
of several thousand works, with the services' real rate limits (NCBI 3/s).

Reports total HTTP requests, requests per index article per service, wall
time, and the requests of an immediate re-run (0 expected: every unit is
done). Two baselines in the same run: what the expansion would cost without
batching (one request per seed per link list and one per record found), and
the same expansion asking one service at a time (wall time). Run from the
repository root:

    python bench/bench_expand.py [--works 3000] [--seeds 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.expand import ExpandOptions, add_index_articles, expand  # noqa: E402
from cluster.demo.services import serve_world  # noqa: E402
from cluster.demo.world import World  # noqa: E402
from connectors.http import Settings  # noqa: E402
from connectors.services import connect  # noqa: E402
from db.store import open_store  # noqa: E402

SERVICES = ("pubmed", "crossref", "openalex", "opencitations")


def count(server, start: int) -> Counter:
    c: Counter = Counter()
    for r in server.log[start:]:
        c[r.path.split("/")[1]] += 1
    return c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--works", type=int, default=3000)
    ap.add_argument("--seeds", type=int, default=40)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    t0 = time.perf_counter()
    world = World.generate(args.seed, args.works, args.seeds)
    print(f"world: {len(world.works)} works, {len(world.relevant)} relevant, {args.seeds} index articles "
          f"(generated in {time.perf_counter() - t0:.1f} s)")
    server = serve_world(world)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "review.db"
        # the real limits: rate_limits=None; no API key, so NCBI allows 3 requests/s
        settings = Settings(base_urls=server.base_urls, cache_path=Path(str(db) + ".http-cache.sqlite"))
        services = connect(settings)
        store = open_store(db)
        start = len(server.log)
        t = time.perf_counter()
        add_index_articles(store, services, pmids=[w.pmid for w in world.index_articles])
        add_requests = count(server, start)
        add_time = time.perf_counter() - t

        start = len(server.log)
        t = time.perf_counter()
        report = expand(store, services, ExpandOptions())
        wall = time.perf_counter() - t
        used = count(server, start)

        start = len(server.log)
        t = time.perf_counter()
        again = expand(store, services, ExpandOptions())
        rerun_wall = time.perf_counter() - t
        rerun = count(server, start)
        services.close()

        # baseline: the same expansion asking one service at a time (fresh store and cache)
        seq_db = Path(tmp) / "sequential.db"
        seq_services = connect(Settings(base_urls=server.base_urls,
                                        cache_path=Path(str(seq_db) + ".http-cache.sqlite")))
        seq_store = open_store(seq_db)
        add_index_articles(seq_store, seq_services, pmids=[w.pmid for w in world.index_articles])
        start = len(server.log)
        t = time.perf_counter()
        expand(seq_store, seq_services, ExpandOptions(), parallel=False)
        seq_wall = time.perf_counter() - t
        seq_requests = sum(count(server, start).values())
        seq_records = seq_store.db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        seq_services.close()
        seq_store.close()

        n_records = store.db.execute("SELECT COUNT(*) FROM records").fetchone()[0]
        n_sources = store.db.execute("SELECT COUNT(*) FROM sources WHERE role='other'").fetchone()[0]
        store.close()
    server.stop()

    # unbatched baseline: one link request per seed and list, one request per record fetched
    fetched_ids = sum(r.n_found for r in report.results if r.status == "done")
    link_lists = sum(1 for r in report.results if r.status == "done")
    baseline = link_lists + fetched_ids
    total = sum(used.values())
    print(f"add {args.seeds} index articles: {sum(add_requests.values())} requests "
          f"({dict(add_requests)}), {add_time:.1f} s")
    print(f"expand: {total} HTTP requests in {wall:.1f} s wall; {n_records} records, {n_sources} provenance rows; "
          f"{len(report.failures)} failed searches")
    print("requests per index article per service:")
    for svc in SERVICES:
        print(f"  {svc:14s} {used[svc]:5d} requests  {used[svc] / args.seeds:5.2f} per index article")
    print(f"  {'all':14s} {total:5d} requests  {total / args.seeds:5.2f} per index article")
    print(f"unbatched baseline (one request per link list and per record found): {baseline} requests; "
          f"batched/baseline = {total / baseline:.3f}")
    print(f"sequential baseline (one service at a time): {seq_requests} requests in {seq_wall:.1f} s, "
          f"{seq_records} records; parallel/sequential wall = {wall / seq_wall:.2f}")
    print(f"re-run: {sum(rerun.values())} HTTP requests, {rerun_wall:.2f} s, "
          f"{sum(r['new'] for r in again.table())} new records, "
          f"{sum(r['already_done'] for r in again.table())} units already done")
    print("per strategy and service (found / kept / new):")
    for row in report.table():
        print(f"  {row['strategy']:12s} {row['service']:14s} {row['found']:6d} {row['kept']:6d} {row['new']:6d}")


if __name__ == "__main__":
    main()
