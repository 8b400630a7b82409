"""PRISMA 2020 flow-diagram numbers, computed from the store and checked.

`compute_flow(store, layout)` is a pure function of the store: records (and
their `duplicate_of` links), `sources` (provenance), and the event log, read
through `db.state` (the only derivation of screening states). Nothing is
counted by hand and nothing is cached.

How the log maps onto the diagram (the rules a methods section can cite):

- **Records identified** are retrievals: one `sources` row is one record
  retrieved by one search route. A record found by two routes (two rows), or
  two records later merged by deduplication, are counted once per retrieval
  in identification, and every retrieval beyond the first of a work is a
  **duplicate record removed** in the row (source) where it was retrieved. So
  for every source row and in total, identified - duplicates = unique works.
- **Index articles** (role `index`) are what the protocol's `review_type`
  says: in a new review (the default) included studies identified another way
  than the searches, counted with other methods (template row
  ``citations_results``, as the searches start from them); in an update, the
  studies of the previous version of the review (``previous_studies``).
- Each unique work (a canonical record) belongs to one **column**: the
  previous-studies column if any retrieval was an index article of an update,
  else databases and registers if any retrieval came from one, else other
  methods. Its first retrieval in that order is the one kept; the others are
  its duplicates.
- **Marked ineligible by automation tools**: records whose title-abstract
  state is an `automation` exclusion (a logged stopping rule). An automation
  event whose data has `"category": "other"` counts as **removed for other
  reasons** instead.
- **Screened** = unique works minus those removed before screening;
  **excluded** = title-abstract exclusions by reviewers; **awaiting** =
  still pending or in conflict (shown, never hidden, while screening runs).
- **Reports sought** = records included at title-abstract. **Not retrieved** =
  latest `fulltext` event `not-retrieved` (this wins over a full-text
  exclusion, since a report not obtained cannot be assessed; a not-retrieved
  report that is also included is a contradiction and an error). **Assessed** =
  sought - not retrieved - awaiting full-text decisions; **excluded** with the
  standing reason of each (``Reason not recorded`` where none was given).
- **Studies**: several reports of one study count once. A record's study is
  the value of its latest (not undone) `tag` event of the form
  ``study:KEY`` (see `link_study`; an empty KEY, from `unlink_study`, makes it
  a study of its own), else ``extra["study"]`` from its import, else the
  record itself.
- **Layouts.** ``standard``: PRISMA 2020: the databases column is screened,
  and the other-methods column goes from identification to reports sought
  (its title-abstract decisions decide which reports are sought; its
  screening is not drawn, as PRISMA has no box for it). ``screen-other``:
  other-methods records pass through title/abstract screening together with
  database records, so the duplicates, screening, retrieval, assessment and
  inclusion boxes count all of them, as CLUSTER reviews report. Without a
  layout, a store whose records came only from index articles and other
  methods is drawn ``screen-other``, any other ``standard``. In both, the
  previous studies of an update are not screened again (their decisions are
  not drawn); new studies are the included studies that are not previous
  studies, and total = previous + new, for studies and for reports.
- **Template rows.** The PRISMA2020 R package's template has three
  other-methods rows. Imports name theirs with the roles `website`,
  `organisation` and `citation` (each source its own line in that row); for
  role `other`, ``citations_results`` counts the CLUSTER routes
  (citing articles, references, lead authors' lists, related articles) and
  any unnamed other route; ``organisation_results`` counts author contact and
  organisations; ``website_results`` counts websites. A route is named by a
  source row's strategy, or by its service when an imported file has none.
  In the standard layout, duplicates among other-methods retrievals are not
  part of the databases' duplicates box; the diagram shows them in the
  other-methods identification box and the JSON in ``columns.other``.

Every call checks the invariants; a broken one raises `FlowError` naming the
records involved.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from base.errors import ClusterError
from db.events import FULL_TEXT, TITLE_ABSTRACT
from db.protocol import get_protocol
from db.state import (CONFLICT, EXCLUDED, INCLUDED, PENDING, RecordState,
                      removed_search_records, stage_view, standing_events, standing_sources)
from db.store import Store, id_list

LAYOUTS = ("standard", "screen-other")
NO_REASON = "Reason not recorded"

#: column order decides which retrieval of a work is the kept one
COLUMN_OF_ROLE = {"index": "previous", "database": "databases", "register": "databases",
                  "website": "other", "organisation": "other", "citation": "other",
                  "other": "other"}
#: the template row of each other-methods role; `other` is placed by its route
ROW_OF_ROLE = {"website": ("website", "Websites", "website_results"),
               "organisation": ("organisation", "Organisations", "organisation_results"),
               "citation": ("citation", "Citation searching", "citations_results")}
COLUMN_ORDER = ("previous", "databases", "other")

#: other-methods routes: strategy spellings -> (route, label, PRISMA template row)
ROUTES: dict[str, tuple[str, str, str]] = {}
for _names, _route, _label, _row in (
    (("cited-by", "citedby", "cited_by", "citing", "forward"), "cited-by",
     "Citation searching, forward (cited by)", "citations_results"),
    (("references", "refs", "reference", "backward", "cited"), "references",
     "Citation searching, backward (references)", "citations_results"),
    (("lead-author", "lead-authors", "lead_author", "author", "authors"), "lead-author",
     "Lead authors' publication lists", "citations_results"),
    (("related", "related-articles", "similar"), "related", "Related articles",
     "citations_results"),
    (("author-contact", "contact", "contacts", "unpublished"), "author-contact",
     "Author contact", "organisation_results"),
    (("organisation", "organisations", "organization", "organizations"), "organisation",
     "Organisations", "organisation_results"),
    (("website", "websites", "web"), "website", "Websites", "website_results"),
):
    for _n in _names:
        ROUTES[_n] = (_route, _label, _row)


class FlowError(ClusterError):
    """The log does not add up to a PRISMA diagram; names the records involved."""

    def __init__(self, message: str, record_ids: Iterable[int] = ()):
        super().__init__(message)
        self.record_ids = tuple(sorted(set(record_ids)))


@dataclass(frozen=True)
class SourceCount:
    """One identification row: a database, a register, a route, or the index articles."""

    role: str
    key: str
    label: str
    template_row: str
    identified: int
    duplicates: int

    @property
    def unique(self) -> int:
        return self.identified - self.duplicates


@dataclass(frozen=True)
class Column:
    """The counts of one PRISMA column, from identification to inclusion."""

    name: str
    identified: int = 0
    duplicates: int = 0
    excluded_automatic: int = 0
    excluded_other: int = 0
    screened: int = 0
    screen_excluded: int = 0
    screen_awaiting: int = 0
    sought: int = 0
    not_retrieved: int = 0
    fulltext_awaiting: int = 0
    assessed: int = 0
    excluded: int = 0
    excluded_reasons: tuple[tuple[str, int], ...] = ()
    reports_included: int = 0
    studies_included: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["excluded_reasons"] = dict(self.excluded_reasons)
        return d


@dataclass(frozen=True)
class Flow:
    """Every number of the diagram for one layout; see the module docstring."""

    layout: str
    sources: tuple[SourceCount, ...]
    columns: Mapping[str, Column]  # previous, databases, other (by where records came from)
    screening: Column  # the column drawn below the databases identification box
    previous_studies: int
    previous_reports: int
    new_studies: int
    new_reports: int
    total_studies: int
    total_reports: int
    complete: bool
    review_type: str = "new"
    study_of: Mapping[int, str] = field(default_factory=dict, repr=False)

    def identified(self, role: str | None = None, template_row: str | None = None) -> int:
        return sum(s.identified for s in self.sources
                   if (role is None or s.role == role)
                   and (template_row is None or s.template_row == template_row))

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "review_type": self.review_type,
            "complete": self.complete,
            "identification": [
                {"role": s.role, "source": s.key, "label": s.label,
                 "template_row": s.template_row, "identified": s.identified,
                 "duplicates": s.duplicates, "unique": s.unique}
                for s in self.sources
            ],
            "columns": {k: c.to_dict() for k, c in self.columns.items()},
            "screening": self.screening.to_dict(),
            "previous_studies": self.previous_studies,
            "previous_reports": self.previous_reports,
            "new_studies": self.new_studies,
            "new_reports": self.new_reports,
            "total_studies": self.total_studies,
            "total_reports": self.total_reports,
            "prisma": prisma_fields(self),
        }


# --- reading the store ------------------------------------------------------------


def _canonical_of(store: Store) -> dict[int, int]:
    """record id -> canonical id for every duplicate; read it as `canon.get(rid, rid)`.
    A large store's records are mostly canonical: a map of every record would cost
    more than the counting."""
    return store.canonical_map()


def _source_key(role: str, service: str | None, strategy: str | None,
                update: bool) -> tuple[str, str, str]:
    """(key, label, template row) of a source row's identification line."""
    if role == "index" and update:
        return "index", "Index articles (studies included in the previous review)", \
            "previous_studies"
    if role == "index":
        return "index", "Index articles (included studies identified another way)", \
            "citations_results"
    if role in ("database", "register"):
        name = (service or "unnamed " + role).strip()
        return name, name, f"{role}_results"
    if role in ROW_OF_ROLE:
        key, label, row = ROW_OF_ROLE[role]
        route = ROUTES.get((strategy or "").strip().lower())
        if role == "citation" and route is not None and route[2] == row:
            return route[0], route[1], row
        name = (service or strategy or "").strip()
        return (name, name, row) if name else (key, label, row)
    route = ROUTES.get((strategy or "").strip().lower())
    if route is None and not strategy:
        # an imported file's source name may name the route: "website", "author contact"
        route = ROUTES.get((service or "").strip().lower().replace(" ", "-"))
    if route is not None:
        return route[0], route[1], route[2]
    name = (strategy or service or "other").strip()
    return name, name, "citations_results"


def _study_links(store: Store, canon: Mapping[int, int], only: Sequence[int] | None = None
                 ) -> dict[int, tuple[str, dict | None]]:
    """canonical record id -> (its study key, the standing `tag` event that set it, or None
    when its import named the study). A link with an empty key (`unlink_study`) leaves the
    record a study of its own. `only`: read the links of these records alone (a record and
    its duplicates, with `canon` mapping them), not the whole store's."""
    out: dict[int, tuple[str, dict | None]] = {}
    where, params = "", list(only or ())
    if only is not None:
        where = f" AND id IN ({','.join('?' * len(params))})"
    # only the records whose `extra` mentions a study are parsed (json.dumps writes the key
    # as it is): a large store has hundreds of thousands of records and a few such keys,
    # listed by the partial index idx_records_study (`+` keeps the planner from reading
    # every canonical record through the duplicate_of index instead)
    for rid, extra in store.conn.execute(
            "SELECT id, extra FROM records WHERE instr(extra, 'study') AND +duplicate_of IS NULL"
            + where, params):
        key = json.loads(extra or "{}").get("study")
        if key not in (None, ""):
            out[rid] = (str(key), None)
    for e in standing_events(store, "kind = 'tag' AND value LIKE 'study:%'" + where.replace(
            " id IN", " record_id IN"), params):
        if e["record_id"] is None:
            continue
        key = e["value"][len("study:"):].strip()
        rid = canon.get(e["record_id"], e["record_id"])
        if key:
            out[rid] = (key, e)
        else:
            out.pop(rid, None)
    return out


def study_keys(store: Store, canon: Mapping[int, int] | None = None,
               only: Sequence[int] | None = None) -> dict[int, str]:
    """canonical record id -> its study key (see the module docstring); `only`: the keys
    of these records alone (a record and its duplicates, with `canon` mapping them)."""
    canon = canon if canon is not None else _canonical_of(store)
    return {rid: key for rid, (key, _) in _study_links(store, canon, only).items()}


def link_study(store: Store, record_ids: Iterable[int], study: str,
               reviewer: str | None = None) -> list[str]:
    """Mark records as reports of one study (logged as `tag` events `study:KEY`, one batch:
    one undo takes the link back)."""
    ids = list(record_ids)
    key = study.strip()
    if not key:
        raise FlowError("A study needs a name: give a key such as the first report's id.")
    _require_records(store, ids)
    with store.transaction():
        return store.log_batch("tag", ({"record_id": i, "value": f"study:{key}",
                                        "reviewer": reviewer} for i in ids))


def _require_records(store: Store, ids: Iterable[int]) -> None:
    known = {r[0] for r in store.conn.execute("SELECT id FROM records")}
    missing = [i for i in ids if i not in known]
    if missing:
        one = len(set(missing)) == 1
        what = f"Record {missing[0]} is" if one else f"Records {id_list(missing)} are"
        raise FlowError(f"{what} not in this store.", missing)


@dataclass(frozen=True)
class StudyReport:
    """One report (a canonical record) of a study, and how it came to be in it."""

    record_id: int
    title: str | None
    linked_by: str | None   # who linked it (None: unnamed, or named by its import)
    linked_at: str | None
    event_id: str | None    # the `tag` event to undo; None when its import named the study

    def to_dict(self) -> dict[str, Any]:
        return {"record_id": self.record_id, "title": self.title, "linked_by": self.linked_by,
                "linked_at": self.linked_at, "event_id": self.event_id,
                "from": "link" if self.event_id else "import"}


def study_list(store: Store) -> dict[str, list[StudyReport]]:
    """study key -> its reports by record id, keys sorted; only studies named by a link
    or an import (a record alone is a study of its own and is not listed)."""
    canon = _canonical_of(store)
    links = _study_links(store, canon)
    titles = dict(store.conn.execute("SELECT id, title FROM records WHERE duplicate_of IS NULL"))
    out: dict[str, list[StudyReport]] = {}
    for rid in sorted(links):
        key, e = links[rid]
        out.setdefault(key, []).append(StudyReport(
            rid, titles.get(rid), e["reviewer"] if e else None, e["ts"] if e else None,
            e["id"] if e else None))
    return dict(sorted(out.items()))


def unlink_study(store: Store, record_ids: Iterable[int] = (), study: str | None = None,
                 reviewer: str | None = None) -> dict[int, str]:
    """Make records (or every report of `study`) studies of their own again, as one batch
    of `tag` events with an empty key; returns record id -> the study it left."""
    ids = list(record_ids)
    _require_records(store, ids)
    with store.transaction():
        canon = _canonical_of(store)
        links = _study_links(store, canon)
        if study is not None:
            key = study.strip()
            members = [rid for rid, (k, _) in links.items() if k == key]
            if not members:
                raise FlowError(f"No study {key!r} in this store: `cluster study list` names them.")
            ids += members
        if not ids:
            raise FlowError("Name the records to unlink, or a study with --key.")
        rids = list(dict.fromkeys(canon.get(i, i) for i in ids))
        alone = [r for r in rids if r not in links]
        if alone:
            raise FlowError(f"{'Record' if len(alone) == 1 else 'Records'} {id_list(alone)} "
                            f"{'is' if len(alone) == 1 else 'are'} not linked to a study: "
                            "nothing was unlinked.", alone)
        store.log_batch("tag", ({"record_id": r, "value": "study:", "reviewer": reviewer}
                                for r in rids))
    return {r: links[r][0] for r in rids}


# --- the computation ----------------------------------------------------------------


def default_layout(store: Store, sources: Iterable[tuple[int, int, str, str | None, str | None]]
                   | None = None) -> str:
    """``screen-other`` when no record came from a database or register, else ``standard``
    (`sources`: `standing_sources`, when already read)."""
    rows = sources if sources is not None else standing_sources(store)
    found = any(role in ("database", "register") for _, _, role, _, _ in rows)
    return "standard" if found else "screen-other"


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector paused: counting makes a few million tuples and ints, no
    cycles, and collecting them over and over as they pile up costs a quarter of the time
    on a large store."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def compute_flow(store: Store, layout: str | None = None) -> Flow:
    """The PRISMA 2020 numbers of this store in `layout` (None: `default_layout`), with
    every invariant checked.

    Read in one snapshot: a decision or import landing half-way through would
    otherwise be counted in some boxes and not others."""
    with store.read_snapshot(), _collector_paused():
        sources = standing_sources(store)
        return _compute_flow(store, layout if layout is not None
                             else default_layout(store, sources), sources)


def _compute_flow(store: Store, layout: str,
                  source_rows: list[tuple[int, int, str, str | None, str | None]]) -> Flow:
    if layout not in LAYOUTS:
        raise FlowError(f"Unknown layout {layout!r}: use one of {', '.join(LAYOUTS)}.")
    review_type = get_protocol(store).review_type
    update = review_type == "update"
    column_of_role = {**COLUMN_OF_ROLE, "index": "previous" if update else "other"}
    canon = _canonical_of(store)
    # the records taking part are title-abstract's: every canonical record but those that
    # only searches since removed found (they leave the flow; their decisions stay logged)
    ta_view = stage_view(store, TITLE_ABSTRACT, canon)
    canonical_ids = ta_view.ids
    removed = removed_search_records(store)

    # identification: group each work's retrievals, keep one, count the rest as duplicates.
    # A large store has hundreds of thousands of rows and a handful of distinct sources:
    # rows are handled column-wise and each distinct (role, service, strategy) named once
    sids, rids, triples = _split_rows(source_rows)
    distinct = set(triples)
    elsewhere = set(rids).difference(canonical_ids, canon.keys())
    bad_role = any(role not in COLUMN_OF_ROLE for role, _, _ in distinct)
    if bad_role or elsewhere:  # a removed search's record, or no record at all
        known = {r for (r,) in store.conn.execute(
            "SELECT id FROM records WHERE duplicate_of IS NULL")}
        if bad_role or not elsewhere <= known:
            _check_source_rows(source_rows, known, canon)
    named = {t: _source_key(t[0], t[1], t[2], update) for t in distinct}
    column_of_triple = {t: column_of_role[t[0]] for t in distinct}
    works = [canon.get(r, r) for r in rids] if canon else list(rids)
    retrieved = Counter(works)  # work -> its number of retrievals
    orphans = [r for r in canonical_ids if r not in retrieved]
    if orphans:
        raise FlowError(
            f"Records {id_list(orphans)} have no provenance (no source row says how they were "
            "identified): import them again with a source, or merge them into a record that "
            "has one.",
            orphans)

    # a work retrieved once is in the column of its one retrieval; a work retrieved several
    # times keeps its first retrieval in column order, and the others are its duplicates
    column_of = dict(zip(works, map(column_of_triple.__getitem__, triples)))
    several: dict[int, list[tuple[int, int, tuple[str, str | None, str | None]]]] = {}
    if len(retrieved) != len(works):
        multi = {w for w, n in retrieved.items() if n > 1 and w not in removed}
        for sid, w, t in zip(sids, works, triples):
            if w in multi:
                several.setdefault(w, []).append(
                    (COLUMN_ORDER.index(column_of_triple[t]), sid, t))
        for w, rows in several.items():
            rows.sort()
            column_of[w] = column_of_triple[rows[0][2]]
    counted = Counter(triples) if not removed else Counter(
        t for w, t in zip(works, triples) if w not in removed)
    ident: dict[tuple[str, str], list[Any]] = {}  # (role, key) -> [label, row, identified, dups]
    dups_by_column: Counter[str] = Counter()
    ident_by_column: Counter[str] = Counter()
    for t, n in counted.items():
        key, label, row = named[t]
        slot = ident.get((t[0], key))
        if slot is None:
            slot = ident[(t[0], key)] = [label, row, 0, 0]
        slot[2] += n
        ident_by_column[column_of_triple[t]] += n
    for rows in several.values():
        for _col, _sid, t in rows[1:]:
            # a retrieval's duplicate is removed where it was retrieved
            ident[(t[0], named[t][0])][3] += 1
            dups_by_column[column_of_triple[t]] += 1
    _first_labels(ident, named, sids, works, triples, removed, column_of_triple)
    role_order = {r: i for i, r in enumerate(COLUMN_OF_ROLE)}
    route_order = {r: i for i, r in enumerate(dict.fromkeys(v[0] for v in ROUTES.values()))}
    sources = tuple(
        SourceCount(role, key, v[0], v[1], v[2], v[3])
        for (role, key), v in sorted(ident.items(), key=lambda kv: (
            role_order[kv[0][0]], route_order.get(kv[0][1], len(route_order)), kv[0][1]))
    )

    # screening states (the one derivation), plus the automation category; at
    # title-abstract only the touched records' states are built, the rest are pending
    ft = stage_view(store, FULL_TEXT, canon, ta_view).states()
    ta_ids, ta = ta_view.ids, ta_view.touched
    if removed:
        ta_ids = [r for r in ta_ids if r not in removed or r in retrieved]
        ta = {r: st for r, st in ta.items() if r not in removed or r in retrieved}
        ft = {r: st for r, st in ft.items() if r not in removed or r in retrieved}
    _check_state_keys(canonical_ids, ta_ids, ta, ft)
    auto_other: set[int] = set()
    for e in standing_events(store, "kind = 'automation' AND stage = ?", [TITLE_ABSTRACT]):
        rid = canon.get(e["record_id"], e["record_id"])
        if e["data"].get("category") == "other":
            auto_other.add(rid)
        else:
            auto_other.discard(rid)
    fulltext: dict[int, str] = {}
    for e in standing_events(store, "kind = 'fulltext'"):
        if e["record_id"] is not None:
            fulltext[canon.get(e["record_id"], e["record_id"])] = e["value"]
    contradictions = [r for r, s in ft.items() if s.status == INCLUDED
                      and fulltext.get(r) == "not-retrieved"]
    if contradictions:
        raise FlowError(
            f"Records {id_list(contradictions)} are marked as full text not retrieved yet included "
            "at full text: log `fulltext retrieved` for them or undo the inclusion.",
            contradictions)

    studies = study_keys(store, canon)
    # the one terminal box each record ends in: a record no decision touched is awaiting
    # title-abstract screening, so only the touched ones are looked at one by one
    box: dict[int, str] = {}
    reason_of: dict[int, str] = {}
    touched_in: dict[str, list[int]] = {name: [] for name in COLUMN_ORDER}
    for rid in sorted(ta):
        box[rid], why = _terminal_box(ta[rid], ft.get(rid), fulltext.get(rid), rid in auto_other)
        if why is not None:
            reason_of[rid] = why
        touched_in[column_of[rid]].append(rid)
    n_of = Counter(map(column_of.__getitem__, canonical_ids))

    def ids_of(*names: str) -> list[int]:
        return [r for r in canonical_ids if column_of[r] in names]

    columns = {name: _column(name, n_of[name], touched_in[name], box, reason_of, studies,
                             ident_by_column[name], dups_by_column[name])
               for name in COLUMN_ORDER}
    for c in columns.values():
        _check_column(c, n_of[c.name], partial(ids_of, c.name), box)

    # a column per layout; previous studies are never screened again, and studies
    # count once across reports: new = included studies that are not previous ones
    prev_ids = ids_of("previous") if n_of["previous"] else []
    prev_study_keys = {studies.get(r, f"record:{r}") for r in prev_ids}
    screened_touched = touched_in["databases"] + touched_in["other"]
    new_reports_ids = {r for r in screened_touched if box[r] == "included"}
    new_keys = {studies.get(r, f"record:{r}") for r in new_reports_ids} - prev_study_keys
    new_studies = len(new_keys)
    if layout == "standard":
        screening = columns["databases"]
    else:
        screening = replace(
            _merge_columns("all", [columns["databases"], columns["other"]]),
            studies_included=len({studies.get(r, f"record:{r}") for r in screened_touched
                                  if box[r] == "included"}))
        _check_column(screening, n_of["databases"] + n_of["other"],
                      lambda: ids_of("databases", "other"), box)
    new_reports = len(new_reports_ids)
    complete = n_of["databases"] + n_of["other"] == len(screened_touched) and all(
        box[r] not in ("screen_awaiting", "fulltext_awaiting") for r in screened_touched)
    flow = Flow(
        layout=layout, sources=sources, columns=columns, screening=screening,
        previous_studies=len(prev_study_keys), previous_reports=len(prev_ids),
        new_studies=new_studies, new_reports=new_reports,
        total_studies=len(prev_study_keys) + new_studies,
        total_reports=len(prev_ids) + new_reports, complete=complete, review_type=review_type,
        study_of=StudyOf(canonical_ids, studies),
    )
    _check_totals(flow, canonical_ids)
    return flow


def _split_rows(rows: Sequence[tuple[int, int, str, str | None, str | None]]
                ) -> tuple[Sequence[int], Sequence[int], list[tuple[str, str | None, str | None]]]:
    """Source rows as columns: their ids, their record ids, their (role, service, strategy)."""
    if not rows:
        return (), (), []
    sids, rids, roles, services, strategies = zip(*rows)
    return sids, rids, list(zip(roles, services, strategies))


def _check_source_rows(rows: Iterable[tuple[int, int, str, str | None, str | None]],
                       known: set[int], canon: Mapping[int, int]) -> None:
    """Name the first source row with a role the flow does not know or no record."""
    for sid, rid, role, _service, _strategy in rows:
        if role not in COLUMN_OF_ROLE:
            raise FlowError(
                f"Source row {sid} of record {rid} has role {role!r}, not one of "
                f"{', '.join(COLUMN_OF_ROLE)}: fix the import that wrote it.", [rid])
        if rid not in known and rid not in canon:
            raise FlowError(f"Source row {sid} points to record {rid}, which is not in this store.",
                            [rid])


def _first_labels(ident: dict[tuple[str, str], list[Any]],
                  named: Mapping[tuple[str, str | None, str | None], tuple[str, str, str]],
                  sids: Sequence[int], works: Sequence[int],
                  triples: Sequence[tuple[str, str | None, str | None]], removed: set[int],
                  column_of_triple: Mapping[tuple[str, str | None, str | None], str]) -> None:
    """Where sources of different spellings share an identification line but not its label
    or template row, the line takes them from its first retrieval (by record, then column
    order, then row); elsewhere every retrieval of the line agrees."""
    spellings: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for t, (key, label, row) in named.items():
        spellings.setdefault((t[0], key), set()).add((label, row))
    mixed = {k for k, v in spellings.items() if len(v) > 1 and k in ident}
    if not mixed:
        return
    first: dict[tuple[str, str], tuple[tuple[int, int, int], str, str]] = {}
    for sid, w, t in zip(sids, works, triples):
        key, label, row = named[t]
        if w in removed or (t[0], key) not in mixed:
            continue
        at = (w, COLUMN_ORDER.index(column_of_triple[t]), sid)
        if (t[0], key) not in first or at < first[(t[0], key)][0]:
            first[(t[0], key)] = (at, label, row)
    for k, (_, label, row) in first.items():
        ident[k][0], ident[k][1] = label, row


class StudyOf(Mapping[int, str]):
    """canonical record id -> its study key (``record:ID`` for a study of its own), made
    on asking: most records of a large store are studies of their own."""

    def __init__(self, ids: Iterable[int], keys: Mapping[int, str]):
        self._ids = frozenset(ids)
        self._keys = keys

    def __getitem__(self, rid: int) -> str:
        if rid not in self._ids:
            raise KeyError(rid)
        return self._keys.get(rid, f"record:{rid}")

    def __iter__(self) -> Iterator[int]:
        return iter(sorted(self._ids))

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, rid: object) -> bool:
        return rid in self._ids


def _check_state_keys(canonical_ids: list[int], ta_ids: list[int], ta: Mapping[int, RecordState],
                      ft: Mapping[int, RecordState]) -> None:
    """`ta_ids`: the records at title-abstract; `ta`: the states of those touched (others
    are pending)."""
    missing: list[int] = []
    extra: list[int] = []
    if ta_ids != canonical_ids:  # both are in id order when they agree
        known = set(canonical_ids)
        staged = set(ta_ids)
        missing = [r for r in canonical_ids if r not in staged]
        extra = [r for r in ta_ids if r not in known]
    if missing or extra:
        raise FlowError(f"Records {id_list(missing + extra)} have no single title-abstract state: "
                        "the store changed while counting; run the command again.", missing + extra)
    passed = {r for r, s in ta.items() if s.status == INCLUDED}
    odd = passed.symmetric_difference(ft)
    if odd:
        raise FlowError(f"Records {id_list(odd)} are at full text without passing title-abstract "
                        "screening (or the reverse): run the command again.", odd)


BOXES = ("excluded_automatic", "excluded_other", "screen_excluded", "screen_awaiting",
         "not_retrieved", "fulltext_awaiting", "excluded", "included")


def _terminal_box(ta: RecordState, ft: RecordState | None, fulltext: str | None,
                  removed_other: bool) -> tuple[str, str | None]:
    """The one box a record ends in, and the exclusion reason where it is excluded."""
    if ta.status == EXCLUDED and ta.automated:
        return ("excluded_other" if removed_other else "excluded_automatic"), ta.reason
    if ta.status == EXCLUDED:
        return "screen_excluded", ta.reason
    if ta.status in (PENDING, CONFLICT):
        return "screen_awaiting", None
    if ft is None:  # unreachable after _check_state_keys; kept as a guard
        raise FlowError(f"Record {ta.record_id} passed title-abstract screening but has no "
                        "full-text state.", [ta.record_id])
    if fulltext == "not-retrieved":
        return "not_retrieved", None
    if ft.status == EXCLUDED:
        return "excluded", ft.reason or NO_REASON
    if ft.status == INCLUDED:
        return "included", None
    return "fulltext_awaiting", None


def _column(name: str, n_ids: int, touched: list[int], box: Mapping[int, str],
            reason_of: Mapping[int, str], studies: Mapping[int, str], identified: int,
            duplicates: int) -> Column:
    """One column of `n_ids` records, of which `touched` have a box in `box`; the others
    await title-abstract screening."""
    n = Counter(box[r] for r in touched)
    n["screen_awaiting"] += n_ids - len(touched)
    reasons = Counter(reason_of[r] for r in touched if box[r] == "excluded")
    included = [r for r in touched if box[r] == "included"]
    removed = n["excluded_automatic"] + n["excluded_other"]
    sought = n["not_retrieved"] + n["fulltext_awaiting"] + n["excluded"] + n["included"]
    return Column(
        name=name, identified=identified, duplicates=duplicates,
        excluded_automatic=n["excluded_automatic"], excluded_other=n["excluded_other"],
        screened=n_ids - removed, screen_excluded=n["screen_excluded"],
        screen_awaiting=n["screen_awaiting"], sought=sought, not_retrieved=n["not_retrieved"],
        fulltext_awaiting=n["fulltext_awaiting"], assessed=n["excluded"] + n["included"],
        excluded=n["excluded"], excluded_reasons=_sorted_reasons(reasons),
        reports_included=len(included),
        studies_included=len({studies.get(r, f"record:{r}") for r in included}),
    )


def _sorted_reasons(reasons: Mapping[str, int]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


def _merge_columns(name: str, cols: list[Column]) -> Column:
    reasons: Counter[str] = Counter()
    for c in cols:
        reasons.update(dict(c.excluded_reasons))
    sums = {f.name: sum(getattr(c, f.name) for c in cols) for f in fields(Column)
            if f.name not in ("name", "excluded_reasons", "studies_included")}
    # studies are recounted by the caller across columns; the per-column sum is an upper bound
    return replace(Column(name=name), **sums, excluded_reasons=_sorted_reasons(reasons),
                   studies_included=sum(c.studies_included for c in cols))


def _check_column(c: Column, n_ids: int, ids_of: Callable[[], list[int]],
                  box: Mapping[int, str]) -> None:
    """The PRISMA identities, each side counted separately; a mismatch names the records
    (the column's `n_ids` records, listed by `ids_of` only then; a record not in `box`
    awaits title-abstract screening)."""
    problems = []
    if c.identified - c.duplicates != n_ids:
        problems.append("identified - duplicates != unique records")
    if c.identified - c.duplicates - c.excluded_automatic - c.excluded_other != c.screened:
        problems.append("identified - duplicates - removed != screened")
    if c.screened - c.screen_excluded - c.screen_awaiting != c.sought:
        problems.append("screened - excluded != sought")
    if c.sought - c.not_retrieved - c.fulltext_awaiting != c.assessed:
        problems.append("sought - not retrieved != assessed")
    if c.assessed - c.excluded != c.reports_included:
        problems.append("assessed - excluded != included reports")
    if sum(n for _, n in c.excluded_reasons) != c.excluded:
        problems.append("exclusion reasons do not add up to reports excluded")
    if problems:
        ids = ids_of()
        odd = [r for r in ids if box.get(r, "screen_awaiting") not in BOXES]
        raise FlowError(f"The {c.name} column does not add up ({'; '.join(problems)}) for records "
                        f"{id_list(odd or ids)}: report this with the store attached.", odd or ids)


def _check_totals(flow: Flow, canonical_ids: list[int]) -> None:
    total = sum(s.identified for s in flow.sources)
    dups = sum(s.duplicates for s in flow.sources)
    if total - dups != len(canonical_ids) or \
            sum(c.identified for c in flow.columns.values()) != total:
        raise FlowError("Records identified minus duplicates does not equal the unique records "
                        f"{id_list(canonical_ids)}: report this with the store attached.",
                        canonical_ids)


# --- the PRISMA2020 R package template ------------------------------------------

#: data rows of the PRISMA2020 R package's template (inst/extdata/PRISMA.csv,
#: version 1.1): (data, node, box, description, boxtext, tooltips, url)
TEMPLATE: tuple[tuple[str, str, str, str, str, str, str], ...] = (
    ("previous_studies", "node5", "box1", "Studies included in previous version of review",
     "Studies included in previous version of review",
     "Studies included in previous version of review", "previous_studies.html"),
    ("previous_reports", "NA", "box1", "Reports of studies included in previous version of review",
     "Reports of studies included in previous version of review", "NA", "previous_reports.html"),
    ("database_results", "node7", "box2", "Records identified from: Databases", "Databases",
     "Records identified from: Databases and Registers", "database_results.html"),
    ("database_specific_results", "NA", "box2", "Records identified from: specific databases",
     "Specific Databases", "NA", "database_results.html"),
    ("register_results", "NA", "box2", "Records identified from: Registers", "Registers", "NA",
     "NA"),
    ("register_specific_results", "NA", "box2", "Records identified from: specific registers",
     "Specific Registers", "NA", "database_results.html"),
    ("website_results", "node17", "box11", "Records identified from: Websites", "Websites",
     "Records identified from: Websites, Organisations and Citation Searching",
     "website_results.html"),
    ("organisation_results", "", "box11", "Records identified from: Organisations",
     "Organisations", "NA", "NA"),
    ("citations_results", "NA", "box11", "Records identified from: Citation searching",
     "Citation searching", "NA", "NA"),
    ("duplicates", "node8", "box3", "Duplicate records", "Duplicate records", "Duplicate records",
     "duplicates.html"),
    ("excluded_automatic", "NA", "box3", "Records marked as ineligible by automation tools",
     "Records marked as ineligible by automation tools", "NA", "NA"),
    ("excluded_other", "NA", "box3", "Records removed for other reasons",
     "Records removed for other reasons", "NA", "NA"),
    ("records_screened", "node9", "box4", "Records screened (databases and registers)",
     "Records screened", "Records screened (databases and registers)", "records_screened.html"),
    ("records_excluded", "node10", "box5", "Records excluded (databases and registers)",
     "Records excluded", "Records excluded (databases and registers)", "records_excluded.html"),
    ("dbr_sought_reports", "node11", "box6",
     "Reports sought for retrieval (databases and registers)",
     "Reports sought for retrieval", "Reports sought for retrieval (databases and registers)",
     "dbr_sought_reports.html"),
    ("dbr_notretrieved_reports", "node12", "box7",
     "Reports not retrieved (databases and registers)",
     "Reports not retrieved", "Reports not retrieved (databases and registers)",
     "dbr_notretrieved_reports.html"),
    ("other_sought_reports", "node18", "box12", "Reports sought for retrieval (other)",
     "Reports sought for retrieval", "Reports sought for retrieval (other)",
     "other_sought_reports.html"),
    ("other_notretrieved_reports", "node19", "box13", "Reports not retrieved (other)",
     "Reports not retrieved", "Reports not retrieved (other)", "other_notretrieved_reports.html"),
    ("dbr_assessed", "node13", "box8", "Reports assessed for eligibility (databases and registers)",
     "Reports assessed for eligibility",
     "Reports assessed for eligibility (databases and registers)", "dbr_assessed.html"),
    ("dbr_excluded", "node14", "box9",
     "Reports excluded (databases and registers): [separate reasons and numbers using ; e.g. "
     "Reason1, xxx; Reason2, xxx; Reason3, xxx]", "Reports excluded",
     "Reports excluded (databases and registers)", "dbrexcludedrecords.html"),
    ("other_assessed", "node20", "box14", "Reports assessed for eligibility (other)",
     "Reports assessed for eligibility", "Reports assessed for eligibility (other)",
     "other_assessed.html"),
    ("other_excluded", "node21", "box15",
     "Reports excluded (other): [separate reasons and numbers using ; e.g. Reason1, xxx; "
     "Reason2, xxx; Reason3, xxx]", "Reports excluded", "Reports excluded (other)",
     "other_excluded.html"),
    ("new_studies", "node15", "box10", "New studies included in review",
     "New studies included in review", "New studies included in review", "new_studies.html"),
    ("new_reports", "NA", "box10", "Reports of new included studies",
     "Reports of new included studies", "NA", "NA"),
    ("total_studies", "node22", "box16", "Total studies included in review",
     "Total studies included in review", "Total studies included in review",
     "total_studies.html"),
    ("total_reports", "NA", "box16", "Reports of total included studies",
     "Reports of total included studies", "NA", "NA"),
)
#: the template's title and band rows (no count), and the data row each one precedes
#: (None: after the last data row); the R package falls back to these texts when absent
TITLE_ROWS: tuple[tuple[str | None, tuple[str, str, str, str, str, str, str]], ...] = (
    ("previous_studies", ("NA", "node4", "prevstud", "Grey title box; Previous studies",
                          "Previous studies", "Grey title box; Previous studies", "prevstud.html")),
    ("database_results", ("NA", "node6", "newstud",
                          "Yellow title box; Identification of new studies via databases and "
                          "registers", "Identification of new studies via databases and registers",
                          "Yellow title box; Identification of new studies via databases and "
                          "registers", "newstud.html")),
    ("website_results", ("NA", "node16", "othstud",
                         "Grey title box; Identification of new studies via other methods",
                         "Identification of new studies via other methods",
                         "Grey title box; Identification of new studies via other methods",
                         "othstud.html")),
    (None, ("identification", "node1", "identification", "Blue identification box",
            "Identification", "Blue identification box", "identification.html")),
    (None, ("screening", "node2", "screening", "Blue screening box", "Screening",
            "Blue screening box", "screening.html")),
    (None, ("included", "node3", "included", "Blue included box", "Included",
            "Blue included box", "included.html")),
)
TEMPLATE_COLUMNS = ("data", "node", "box", "description", "boxtext", "tooltips", "url", "n")
TEMPLATE_ROWS = tuple(t[0] for t in TEMPLATE)


def _pairs(items: Iterable[tuple[str, int]]) -> str:
    """The template's "Name, n; Name, n" list; a bare 0 where there is none."""
    parts = [f"{name.replace(';', ',')}, {n}" for name, n in items]
    return "; ".join(parts) if parts else "0"


def prisma_fields(flow: Flow) -> dict[str, int | str]:
    """The template's `n` value for each data row, in template order."""
    s = flow.screening
    other = flow.columns["other"] if flow.layout == "standard" else Column(name="other")
    values: dict[str, int | str] = {
        "previous_studies": flow.previous_studies,
        "previous_reports": flow.previous_reports,
        "database_results": flow.identified("database"),
        "database_specific_results": _pairs((x.label, x.identified) for x in flow.sources
                                            if x.role == "database"),
        "register_results": flow.identified("register"),
        "register_specific_results": _pairs((x.label, x.identified) for x in flow.sources
                                            if x.role == "register"),
        "website_results": flow.identified(template_row="website_results"),
        "organisation_results": flow.identified(template_row="organisation_results"),
        "citations_results": flow.identified(template_row="citations_results"),
        "duplicates": s.duplicates,
        "excluded_automatic": s.excluded_automatic,
        "excluded_other": s.excluded_other,
        "records_screened": s.screened,
        "records_excluded": s.screen_excluded,
        "dbr_sought_reports": s.sought,
        "dbr_notretrieved_reports": s.not_retrieved,
        "other_sought_reports": other.sought,
        "other_notretrieved_reports": other.not_retrieved,
        "dbr_assessed": s.assessed,
        "dbr_excluded": _pairs(s.excluded_reasons),
        "other_assessed": other.assessed,
        "other_excluded": _pairs(other.excluded_reasons),
        "new_studies": flow.new_studies,
        "new_reports": flow.new_reports,
        "total_studies": flow.total_studies,
        "total_reports": flow.total_reports,
    }
    return {k: values[k] for k in TEMPLATE_ROWS}


def template_rows(flow: Flow, titles: bool = False) -> list[dict[str, str]]:
    """The template's data rows with `n` filled in, as the PRISMA2020 R package reads them;
    with `titles`, also its title and band rows in their places (n = 0, as in the template)."""
    values = prisma_fields(flow)
    before = {k: row for k, row in TITLE_ROWS if k is not None} if titles else {}
    out = []
    for t in TEMPLATE:
        if t[0] in before:
            out.append(dict(zip(TEMPLATE_COLUMNS, (*before[t[0]], "0"))))
        out.append(dict(zip(TEMPLATE_COLUMNS, (*t, str(values[t[0]])))))
    if titles:
        out += [dict(zip(TEMPLATE_COLUMNS, (*row, "0"))) for k, row in TITLE_ROWS if k is None]
    return out


def to_csv(flow: Flow, titles: bool = False) -> str:
    from base.output import csv_text

    return csv_text(TEMPLATE_COLUMNS, template_rows(flow, titles))


def to_table(flow: Flow) -> str:
    """A plain-text table for the terminal: identification rows, the template, the origins."""
    lines = [f"PRISMA 2020 flow ({flow.layout} layout)"
             + ("" if flow.complete else " - screening still in progress"), ""]
    labels = [f"{x.role}: {x.label}" for x in flow.sources]
    w = max([len("Identification")] + [len(t) + 2 for t in labels])
    lines.append(f"{'Identification':<{w}}{'identified':>12}{'duplicates':>12}")
    for x, label in zip(flow.sources, labels):
        lines.append(f"  {label:<{w - 2}}{x.identified:>12,}{x.duplicates:>12,}")
    lines.append("")
    for key, value in prisma_fields(flow).items():
        shown = f"{value:,}" if isinstance(value, int) else value
        lines.append(f"  {key:<28}{shown}")
    lines += ["", "By where records came from (every record, whichever boxes the layout draws):"]
    heads = ("screened", "excluded", "waiting", "sought", "not ret.", "waiting", "assessed",
             "excluded", "included")
    lines.append(f"  {'':<10}" + "".join(f"{h:>9}" for h in heads))
    for c in flow.columns.values():
        vals = (c.screened, c.screen_excluded, c.screen_awaiting, c.sought, c.not_retrieved,
                c.fulltext_awaiting, c.assessed, c.excluded, c.reports_included)
        lines.append(f"  {c.name:<10}" + "".join(f"{v:>9,}" for v in vals))
    return "\n".join(lines)
