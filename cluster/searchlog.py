"""The PRISMA-S search log: every query and import the store remembers, as a
table, as JSON, and as a methods appendix in Markdown.

It is a pure function of the `searches` and `sources` tables, so the numbers
a review reports are the numbers its store holds.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from base.services import SERVICE_NAMES
from db.searches import prisma_s_items, search_view
from db.store import Store

SERVICE_LABELS = SERVICE_NAMES
STRATEGY_TEXT = {
    "lead-author": "publications of each index article's lead (first) author",
    "cited-by": "articles citing each index article (forward citation searching)",
    "references": "articles each index article cites (backward citation searching)",
    "related": "related articles of each index article",
    "index": "index articles added by identifier",
}


def search_rows(store: Store) -> list[dict[str, Any]]:
    """Every `searches` row, oldest first, with its JSON columns decoded."""
    cur = store.db.execute("SELECT * FROM searches ORDER BY id")
    cols = [c[0] for c in cur.description]
    out = []
    for r in cur:
        row = dict(zip(cols, r))
        for k in ("params", "limits"):
            row[k] = json.loads(row[k] or "{}")
        row.pop("uuid", None)
        out.append(row)
    return out


def summary(store: Store) -> dict[str, Any]:
    """What the methods appendix reports: per strategy and service, and dates."""
    rows = [r for r in search_rows(store) if r["kind"] == "api" and r["strategy"] not in (None, "index")]
    done = [r for r in rows if r["status"] in ("done", "skipped")]
    per: dict[tuple[str, str], dict[str, Any]] = {}
    last: dict[str, str] = {}
    for r in done:
        d = per.setdefault((r["strategy"], r["service"]), {
            "strategy": r["strategy"], "service": SERVICE_LABELS.get(r["service"], r["service"]),
            "searches": 0, "found": 0, "kept": 0, "new": 0, "last_search": ""})
        d["searches"] += 1
        d["found"] += r["n_found"] or 0
        d["kept"] += r["n_kept"] or 0
        d["new"] += r["n_added"] or 0
        d["last_search"] = max(d["last_search"], r["finished_at"] or "")
        last[r["strategy"]] = max(last.get(r["strategy"], ""), r["finished_at"] or "")
    # a unit that failed and was never done since is still missing
    done_keys = {(r["seed_record_id"], r["strategy"], r["service"]) for r in done}
    missing = [r for r in rows if r["status"] == "failed"
               and (r["seed_record_id"], r["strategy"], r["service"]) not in done_keys]
    records: defaultdict[tuple[str, str], set[int]] = defaultdict(set)
    for service, strategy, rid in store.db.execute(
            "SELECT so.service, so.strategy, so.record_id FROM sources so JOIN searches s "
            "ON so.search_id = s.id WHERE s.kind = 'api' AND so.role = 'other'"):
        records[(strategy, service)].add(rid)
    for key, d in per.items():
        d["records"] = len(records.get(key, ()))
    limits: dict[str, Any] = next((r["limits"] for r in reversed(done) if r["limits"].get("cap")), {})
    n_index = store.db.execute("SELECT COUNT(DISTINCT record_id) FROM sources WHERE role = 'index'").fetchone()[0]
    return {"table": sorted(per.values(), key=lambda d: (d["strategy"], d["service"])),
            "last_search": last, "missing": missing, "limits": limits, "index_articles": n_index,
            "distinct_records": len(set().union(*records.values())) if records else 0,
            "imports": [r for r in search_view(store) if r["kind"] not in ("api", "search")]}


def markdown(store: Store) -> str:
    """A PRISMA-S methods appendix: method, limits and why, dates, records per source."""
    s = summary(store)
    out = []
    items = prisma_s_items(store)
    if items:
        out += ["## Searches of databases and other sources (PRISMA-S)", "", *items]
    out += ["## Supplementary searching (CLUSTER citation searching)", ""]
    strategies = list(s["last_search"])
    if not strategies:
        out += ["No citation searches have been run in this review store.", ""]
    else:
        services = sorted({d["service"] for d in s["table"]})
        out += [f"Starting from {s['index_articles']} index articles, we searched for "
                + "; ".join(STRATEGY_TEXT.get(x, x) for x in strategies)
                + f", using {', '.join(services)} through their public APIs.", ""]
    lim = s["limits"]
    if lim:
        out += ["### Limits and why", "",
                f"- Cap: {lim.get('cap')} ({lim.get('cap_why')}).",
                f"- Most relevant: {lim.get('relevance')}.",
                f"- Filters: {lim.get('type')}, {lim.get('language')}; {lim.get('unknown')} "
                f"({lim.get('filters_why')}).", ""]
    if strategies:
        out += ["### Date of last search", "", "| Strategy | Last searched (UTC) |", "| --- | --- |"]
        out += [f"| {k} | {v[:10]} |" for k, v in sorted(s["last_search"].items())]
        out += ["", "### Records per source", "",
                "| Strategy | Service | Searches | Found | Kept | New to the store | Distinct records |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        out += [f"| {d['strategy']} | {d['service']} | {d['searches']} | {d['found']} | {d['kept']} | "
                f"{d['new']} | {d['records']} |" for d in s["table"]]
        out += ["", f"Distinct records kept across all citation searches: {s['distinct_records']}.", ""]
    if s["missing"]:
        out += ["### Searches that could not be completed", ""]
        out += [f"- {r['strategy']} via {SERVICE_LABELS.get(r['service'], r['service'])} for index "
                f"record {r['seed_record_id']}: {r['error']}" for r in s["missing"]]
        out.append("")
    if s["imports"]:
        out += ["### Records imported from files or contacts", "",
                "| Imported (UTC) | Date searched | Role | Source | File | Records |",
                "| --- | --- | --- | --- | --- | ---: |"]
        out += [f"| {(r['finished_at'] or r['started_at'] or '')[:10]} | "
                f"{(r['searched'] or '')[:10] or 'not recorded'} | {r['role'] or ''} | "
                f"{r['source'] or r['kind']} | {r['file_name'] or ''} | "
                f"{r['n_added'] if r['n_added'] is not None else r['n_found'] or 0}"
                f"{' (removed)' if r['removed'] else ''} |"
                for r in s["imports"]]
        out.append("")
    return "\n".join(out)
