"""The PRISMA-S details of every logged search, and the logged changes to a search.

A database search carries, beside its source (the database) and its records,
the platform it was run on, the date it was run, the full strategy and the
limits (PRISMA-S items 1, 13 and 8-9). `cluster search pubmed` logs them itself;
an export from a database is imported with them (`check_details` at import),
and `relabel_search`, `remove_search` and `edit_search` change a search later
through `search` events, so every change is dated, kept and undoable: the
`searches` and `sources` rows are never rewritten. `search_view` is the log as
those events leave it, for the search table, the methods report and the flow's
labels.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Mapping

from base.errors import ClusterError
from db.events import ROLES, SEARCH_DETAILS
from db.state import SearchChanges, search_changes
from db.store import Store

#: a date searched: a day, or a month or year where that is all a team noted
_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")
#: the longest strategy kept (a long Ovid strategy runs to a few thousand characters)
MAX_QUERY_CHARS = 100_000


class SearchLogError(ClusterError):
    """A search detail or change that cannot be logged as given."""


@dataclass(frozen=True)
class SearchDetails:
    platform: str | None = None
    searched: str | None = None
    query: str | None = None
    limits: str | None = None

    def given(self) -> dict[str, str]:
        return {k: v for k, v in (("platform", self.platform), ("searched", self.searched),
                                  ("query", self.query), ("limits", self.limits)) if v}


def check_details(*, platform: str | None = None, searched: str | None = None,
                  query: str | None = None, limits: str | None = None,
                  today: date | None = None) -> SearchDetails:
    """Details as given, trimmed; a date searched must be a real date, not in the future."""
    def clean(value: str | None) -> str | None:
        return value.strip() if value and value.strip() else None

    searched = clean(searched)
    if searched is not None:
        if not _DATE.fullmatch(searched):
            raise SearchLogError(f"The date searched {searched!r} is not a date: give it as "
                                 f"YYYY-MM-DD, e.g. 2025-05-01.")
        parts = [int(p) for p in searched.split("-")]
        try:
            day = date(parts[0], parts[1] if len(parts) > 1 else 1,
                       parts[2] if len(parts) > 2 else 1)
        except ValueError:
            raise SearchLogError(f"The date searched {searched!r} is not a date: give it as "
                                 f"YYYY-MM-DD, e.g. 2025-05-01.") from None
        if day > (today or date.today()):
            raise SearchLogError(f"The date searched {searched} is in the future: give the "
                                 f"date the search was run.")
    query = clean(query)
    if query is not None and len(query) > MAX_QUERY_CHARS:
        raise SearchLogError(f"The search strategy is {len(query):,} characters long, over the "
                             f"{MAX_QUERY_CHARS:,} kept: check that the file is the strategy.")
    return SearchDetails(clean(platform), searched, query, clean(limits))


def read_query_file(path: str) -> str:
    """The search strategy saved in a text file (as a database exports or shows it)."""
    p = Path(path)
    try:
        if p.is_dir():
            raise SearchLogError(f"{path} is a folder: give the file that holds the strategy.")
        data = p.read_bytes()
    except FileNotFoundError:
        raise SearchLogError(f"The query file {path} does not exist: check the path.") from None
    except OSError as exc:
        raise SearchLogError(f"The query file {path} cannot be read ({exc.strerror}): check "
                             f"it.") from None
    if len(data) > MAX_QUERY_CHARS * 4:
        raise SearchLogError(f"The query file {path} is {len(data):,} bytes, too large for a "
                             f"search strategy: check that it is the strategy.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SearchLogError(f"The query file {path} is not UTF-8 text: save it as UTF-8 and "
                             f"try again.") from None
    if not text.strip():
        raise SearchLogError(f"The query file {path} is empty: save the strategy in it.")
    return text.strip()


# --- the log as its changes leave it ------------------------------------------------------


def _limits_text(limits: Mapping[str, Any]) -> str | None:
    if not limits:
        return None
    if set(limits) == {"limits"}:
        return str(limits["limits"])
    return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(limits.items()))


def search_view(store: Store) -> list[dict[str, Any]]:
    """Every logged search, oldest first, with its changes applied.

    Each row has the `searches` columns plus: `source` (the database or source
    name), `platform`, `searched` (the date the search was run: the time cluster
    ran it, or the date a team gave for an import; None where none was given,
    never the import date), `limits_text`, `removed`, `original_role` and
    `original_source` where a relabel changed them, and `changes` (event ids).
    """
    changes = search_changes(store)
    cur = store.conn.execute("SELECT * FROM searches ORDER BY id")
    cols = [c[0] for c in cur.description]
    out = []
    for values in cur:
        row = dict(zip(cols, values))
        params = json.loads(row["params"] or "{}")
        limits = json.loads(row["limits"] or "{}")
        c = changes.get(row["uuid"], SearchChanges())
        if row["kind"] == "import":
            searched = params.get("searched")
        else:
            searched = row["started_at"]
        view = {**row, "params": params, "limits": limits,
                "source": c.source or row["service"], "role": c.role or row["role"],
                "platform": params.get("platform"), "searched": searched,
                "limits_text": _limits_text(limits), "removed": c.removed,
                "original_role": row["role"] if c.role and c.role != row["role"] else None,
                "original_source": (row["service"] if c.source and c.source != row["service"]
                                    else None),
                "changes": list(c.event_ids)}
        for key in SEARCH_DETAILS:
            if key in c.details:
                view["limits_text" if key == "limits" else key] = c.details[key]
        if c.removed:
            view["status"] = "removed"
        out.append(view)
    return out


# --- changes, each one logged event ---------------------------------------------------------


def _search(store: Store, search_id: int) -> dict[str, Any]:
    row = next((r for r in search_view(store) if r["id"] == search_id), None)
    if row is None:
        raise SearchLogError(f"There is no search {search_id} in this store: `cluster searches` "
                             f"lists them.")
    return row


def relabel_search(store: Store, search_id: int, *, role: str | None = None,
                   source: str | None = None, reviewer: str | None = None) -> str:
    """Move a search's records to another PRISMA row (role) and/or source name."""
    row = _search(store, search_id)
    if role is None and not (source and source.strip()):
        raise SearchLogError("Nothing to change: give --as ROLE and/or --source NAME.")
    if role is not None and role not in ROLES:
        raise SearchLogError(f"Unknown role {role!r}: choose one of {', '.join(ROLES)}.")
    if row["removed"]:
        raise SearchLogError(f"Search {search_id} was removed: undo its removal before "
                             f"relabelling it.")
    source = source.strip() if source and source.strip() else None
    if (role or row["role"]) == row["role"] and (source or row["source"]) == row["source"]:
        raise SearchLogError(f"Search {search_id} is already {row['role']}: {row['source']}; "
                             f"nothing changed.")
    with store.transaction():
        return store.log_event("search", value="relabel", reviewer=reviewer, data={
            "search": row["uuid"], "search_id": search_id, "role": role, "source": source,
            "was": {"role": row["role"], "source": row["source"]}})


def remove_search(store: Store, search_id: int, *, reviewer: str | None = None) -> str:
    """Take a search out of the flow: records only it found leave; decisions stay logged."""
    row = _search(store, search_id)
    if row["removed"]:
        raise SearchLogError(f"Search {search_id} is already removed; nothing changed.")
    with store.transaction():
        return store.log_event("search", value="remove", reviewer=reviewer, data={
            "search": row["uuid"], "search_id": search_id,
            "was": {"role": row["role"], "source": row["source"]}})


def edit_search(store: Store, search_id: int, details: SearchDetails, *,
                reviewer: str | None = None) -> str:
    """Add or correct a search's platform, date searched, strategy or limits."""
    row = _search(store, search_id)
    given = details.given()
    if not given:
        raise SearchLogError("Nothing to change: give --platform, --searched, --query-file or "
                             "--limits.")
    current = {"platform": row["platform"], "searched": row["searched"], "query": row["query"],
               "limits": row["limits_text"]}
    if all(current[k] == v for k, v in given.items()):
        raise SearchLogError(f"Search {search_id} already has these details; nothing changed.")
    with store.transaction():
        return store.log_event("search", value="edit", reviewer=reviewer, data={
            "search": row["uuid"], "search_id": search_id, "details": given,
            "was": {k: current[k] for k in given}})


# --- PRISMA-S items -------------------------------------------------------------------------

_ROLE_HEADINGS = {"database": "Databases", "register": "Registers", "website": "Websites",
                  "organisation": "Organisations", "citation": "Citation searching",
                  "other": "Other methods"}


def _when(row: Mapping[str, Any]) -> str:
    searched = row["searched"]
    if not searched:
        return (f"not recorded (add it: `cluster searches edit {row['id']} --searched "
                f"YYYY-MM-DD`)")
    if len(searched) > 10:  # a search cluster ran itself: its time, in UTC
        return f"{searched[:10]} {searched[11:16]} UTC"
    return searched


def prisma_s_items(store: Store, rows: list[dict[str, Any]] | None = None) -> list[str]:
    """Markdown: for each database, register and other source searched or imported, the
    PRISMA-S items a journal asks for: database and platform, date searched, full strategy,
    limits, records found. CLUSTER's own citation searches are reported beside them."""
    rows = search_view(store) if rows is None else rows
    shown = [r for r in rows if not r["removed"] and r["kind"] in ("import", "search")
             and r["role"] in _ROLE_HEADINGS]
    if not shown:
        return []
    out: list[str] = []
    for role, heading in _ROLE_HEADINGS.items():
        mine = [r for r in shown if r["role"] == role]
        if not mine:
            continue
        out += [f"### {heading}", ""]
        for r in mine:
            platform = f" via {r['platform']}" if r["platform"] else ""
            rerun = (f" (rerun of search {r['params']['rerun_of']})"
                     if r["params"].get("rerun_of") else "")
            out += [f"#### {r['source']}{platform}{rerun}", "",
                    f"- Search: {r['id']}" + (f", file {r['file_name']}" if r["file_name"] else ""),
                    f"- Date searched: {_when(r)}",
                    f"- Records found: "
                    f"{r['n_found'] if r['n_found'] is not None else 'not recorded'}"
                    + (f" ({r['n_kept']} fetched or read)" if r["n_kept"] != r["n_found"] else ""),
                    f"- Limits: {r['limits_text'] or 'none recorded'}"]
            translation = r["params"].get("translation")
            if r["query"]:
                out += ["- Search strategy, as run:", "", "```", r["query"], "```"]
                if translation and translation != r["query"]:
                    out += ["", f"  {r['source']} searched it as: `{translation}`"]
            else:
                out.append(f"- Search strategy: not recorded (add it: `cluster searches edit "
                           f"{r['id']} --query-file FILE`)")
            out.append("")
    return out
