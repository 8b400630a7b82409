"""The methods-section report: PRISMA-S search log, deduplication, screening, flow.

`methods_report(store, ...)` returns Markdown built only from the store: the
searches in `searches` by strategy and service (results found and kept, the
limits each used and the records they dropped, summed, each justification
once; with `detail`, every search with its query or seed), the date of the last search per
strategy, the deduplication method from `merge` events, the screening process
(reviewers per record, blinding, conflicts, agreement per reviewer pair) and
the stopping rule from `automation` events, followed by the PRISMA 2020
numbers. Agreement statistics are figures the caller computes (per stage and
reviewer pair, over the decisions that `db.state` says stand) and passes in.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from base.output import check_output_path, write_file
from base.services import SERVICE_NAMES
from base.version import version
from db.flow import Flow, FlowError, compute_flow, prisma_fields
from db.events import BY_HAND, STAGE_LABELS, TITLE_ABSTRACT
from db.files import store_files
from db.protocol import get_protocol
from db.searches import prisma_s_items, search_view
from db.state import (effective_decisions, fulltext_sources, resolution_method, retrievals,
                      standing_events, undone_ids)
from db.store import Store


class PairFigures(Protocol):
    """Agreement between two reviewers at one stage, as the report prints it.

    Read-only, so that frozen dataclasses and computed properties both fit.
    """

    @property
    def reviewer_a(self) -> str: ...
    @property
    def reviewer_b(self) -> str: ...
    @property
    def n(self) -> int: ...
    @property
    def agreements(self) -> int: ...
    @property
    def disagreements(self) -> int: ...
    @property
    def percent(self) -> float | None: ...
    @property
    def kappa(self) -> float | None: ...


#: stage -> the agreement of every reviewer pair at that stage
Agreement = Mapping[str, Sequence[PairFigures]]


# --- pieces of the report -------------------------------------------------------------


def _date(ts: str | None) -> str:
    return (ts or "")[:10] or "not recorded"


def _searched(row: Mapping[str, Any]) -> str:
    """The date a search was run; for an import, the date its team gave, never the date of the
    import ("" when none was given)."""
    if row["kind"] == "import":
        return _date(row["searched"]) if row.get("searched") else ""
    return _date(row["finished_at"] or row["started_at"])


def _cell(text: Any) -> str:
    return str(text if text not in (None, "") else "-").replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _limits_text(limits: Mapping[str, Any], justify: bool = True) -> str:
    """Limits in words, each with its justification (logged, or the method's default)."""
    why = limits.get("justification") or limits.get("why")
    parts = []
    if "top" in limits:
        ranking = limits.get("ranking") or "the service's relevance ranking or the tool's score"
        parts.append(f"top {limits['top']} per index article and strategy, by {ranking}")
    if limits.get("types"):
        parts.append("publication types: " + ", ".join(map(str, limits["types"])))
    if limits.get("languages"):
        parts.append("languages: " + ", ".join(map(str, limits["languages"])))
    for key in sorted(limits):
        if key not in ("top", "types", "languages", "justification", "why", "ranking"):
            parts.append(f"{key}: {limits[key]}")
    if not parts:
        return "none"
    text = "; ".join(parts)
    if not justify:
        return text
    if why:
        return f"{text} ({why})"
    if "top" in limits or limits.get("types") or limits.get("languages"):
        return (f"{text} (the CLUSTER method's cap of the most relevant records per list, "
                "journal articles in English unless the team chose otherwise)")
    return text


#: limits keys that say why, not what: printed once for the whole report
_REASON_KEYS = ("justification", "why", "relevance")


def _is_count(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _split_limits(limits: Mapping[str, Any]) -> tuple[dict[str, Any], Counter[str], list[str]]:
    """A search's limits as (settings, counts to add up over searches, reasons)."""
    settings: dict[str, Any] = {}
    counts: Counter[str] = Counter()
    reasons = []
    for key, value in limits.items():
        if key in _REASON_KEYS or key.endswith("_why"):
            reasons.append(str(value))
        elif key == "top" or (key == "cap" and "top" in limits):
            settings.setdefault("top", limits.get("top"))
        elif _is_count(value):
            counts[key.replace("_", " ")] += value
        elif isinstance(value, dict) and value and all(_is_count(v) for v in value.values()):
            for sub, n in value.items():
                counts[f"{key.replace('_', ' ')} {sub.replace('_', ' ')}"] += n
        else:
            settings[key] = value
    return settings, counts, reasons


def limits_lines(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per strategy and service with the limits its searches used and the
    records each limit dropped, summed; then each justification once."""
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["strategy"] or r["kind"] or "search", r["service"] or "")].append(r)
    out, reasons = [], {}
    for (strategy, service), rs in sorted(groups.items()):
        texts: dict[str, None] = {}
        totals: Counter[str] = Counter()
        for r in rs:
            settings, counts, why = _split_limits(json.loads(r["limits"] or "{}"))
            texts[_limits_text(settings, justify=False)] = None
            totals.update(counts)
            reasons.update(dict.fromkeys(why))
        shown = [f"{k} {v:,}" for k, v in sorted(totals.items()) if v]
        out.append(f"- {strategy}, {service or 'no service'} ({len(rs):,} search"
                   f"{'es' if len(rs) != 1 else ''}): " + " / ".join(texts)
                   + (f"; totals: {', '.join(shown)}" if shown else "") + ".")
    if reasons:
        out += ["", "Why: " + "; ".join(reasons) + "."]
    return out


def _seed_text(store: Store, seed: int | None, cache: dict[int, str]) -> str:
    if seed is None:
        return ""
    if seed not in cache:
        rows = list(store.record_rows("id = ?", [seed], include_duplicates=True))
        if not rows:
            cache[seed] = f"record {seed}"
        else:
            r = rows[0]
            authors = json.loads(r.get("authors") or "[]")
            who = (authors[0].split(",")[0] if authors else "") + (f" {r['year']}" if r.get("year")
                                                                  else "")
            ident = (f"PMID {r['pmid']}" if r.get("pmid")
                     else f"DOI {r['doi']}" if r.get("doi") else f"record {seed}")
            cache[seed] = f"seed: record {seed} ({', '.join(p for p in (who.strip(), ident) if p)})"
    return cache[seed]


def searches_section(store: Store, flow: Flow, detail: bool = False) -> list[str]:
    view = sorted(search_view(store), key=lambda r: (r["started_at"] or "", r["id"]))
    removed = [r for r in view if r["removed"]]
    # the rest of the section reads the log as its changes leave it: relabelled sources
    # under their new names, removed searches left out
    rows = [{**r, "service": r["source"], "params": json.dumps(r["params"]),
             "limits": json.dumps(r["limits"])} for r in view if not r["removed"]]
    out = ["## Search methods (PRISMA-S)", ""]
    if not rows:
        return out + ["No searches or imports are logged in this store.", ""]
    first = min(_date(r["started_at"]) for r in rows)
    last = max(_date(r["finished_at"] or r["started_at"]) for r in rows)
    failed = [r for r in rows if r["status"] not in ("done",)]
    out += [f"{len(rows):,} searches and imports were logged between {first} and {last}"
            + (f"; {len(failed):,} did not finish:" if failed else "."), ""]
    if failed:
        out += [f"- search {r['id']} ({r['strategy'] or r['kind']}, {r['service']}): {r['status']}"
                + (f": {r['error']}" if r["error"] else "") for r in failed] + [""]
    if removed:
        out += ["Removed from the review (their records count nowhere unless another search "
                "found them too):", ""]
        out += [f"- search {r['id']} ({r['role']}: {r['source']})" for r in removed] + [""]
    items = prisma_s_items(store, view)
    if items:
        out += items

    out += ["### By strategy and service", ""]
    groups: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        key3 = (r["role"] or r["kind"] or "", r["strategy"] or r["kind"] or "", r["service"] or "")
        groups[key3].append(r)
    out += _table(
        ("role", "strategy", "service", "searches", "found", "kept", "new to the store",
         "last search"),
        ((role, strat, svc, len(rs), sum(r["n_found"] or 0 for r in rs),
          sum(r["n_kept"] or 0 for r in rs), sum(r["n_added"] or 0 for r in rs),
          max(_searched(r) for r in rs) or "not recorded")
         for (role, strat, svc), rs in sorted(groups.items())))
    out.append("")

    out += ["### Date of the last search per strategy", ""]
    per_strategy: dict[str, str] = {}
    for r in rows:
        key = (f"{r['role'] or 'import'}: {r['service']}" if r["kind"] == "import"
               else r["strategy"] or r["kind"] or "search")
        per_strategy[key] = max(per_strategy.get(key, ""), _searched(r))
    out += [f"- {k}: {v or 'not recorded'}" for k, v in sorted(per_strategy.items())] + [""]

    out += ["### Limits and why", "", *limits_lines(rows), ""]

    out += ["### Records identified per source", ""]
    out += _table(("source", "records identified", "duplicates removed", "unique"),
                  ((f"{s.role}: {s.label}", f"{s.identified:,}", f"{s.duplicates:,}",
                    f"{s.unique:,}") for s in flow.sources))
    out.append("")

    if not detail:
        return out + [f"The query or seed, limits and counts of each of the {len(rows):,} "
                      "searches are in the detailed report (`cluster report --detail`).", ""]
    out += ["### Every search", ""]
    seeds: dict[int, str] = {}
    out += _table(
        ("#", "date", "service", "strategy", "query or seed", "limits", "found", "kept", "new",
         "status"),
        ((r["id"], _date(r["started_at"]), r["service"], r["strategy"] or r["kind"],
          r["query"] or r["file_name"] or _seed_text(store, r["seed_record_id"], seeds),
          _limits_text(json.loads(r["limits"] or "{}"), justify=False), r["n_found"], r["n_kept"],
          r["n_added"],
          r["status"] + (f": {r['error']}" if r["error"] else ""))
         for r in rows))
    return out + [""]


def _merge_figures(store: Store) -> tuple[int, Counter[str], list[float]]:
    """The standing merges (as `standing_merges` gives them): how many, their rules, their
    scores. A large store has a merge per duplicate, so each merge's data is not parsed
    whole: SQLite picks the two fields out."""
    undone = undone_ids(store)
    n = 0
    rules: Counter[str] = Counter()
    scores: list[float] = []
    for eid, data, rule, rule_type, score in store.conn.execute(
            "SELECT id, data, json_extract(d, '$.rule'), json_type(d, '$.rule'), "
            "json_extract(d, '$.score') FROM (SELECT id, data, nullif(data, '') AS d "
            "FROM events WHERE kind = 'merge')"):
        if eid in undone:
            continue
        n += 1
        if rule_type in ("true", "false", "object", "array"):  # as Python spells them
            rule = json.loads(data).get("rule")
        rules[str(rule or "unspecified")] += 1
        if isinstance(score, (int, float)):
            scores.append(float(score))
    return n, rules, scores


def dedup_section(store: Store, flow: Flow) -> list[str]:
    n_merges, rules, scores = _merge_figures(store)
    try:
        rapidfuzz = metadata.version("rapidfuzz")
    except metadata.PackageNotFoundError:
        rapidfuzz = "not installed"
    total_dups = sum(s.duplicates for s in flow.sources)
    marked = store.conn.execute("SELECT count(*) FROM records WHERE duplicate_of IS NOT NULL"
                              ).fetchone()[0]
    out = ["## Deduplication", "",
           f"Software: cluster {version()} (fuzzy matching with rapidfuzz {rapidfuzz}). "
           "Every retrieval of a record is kept as provenance: a work retrieved again by another "
           "route or service counts as a duplicate retrieval, and records matched by the rules "
           "below are marked as duplicates of a canonical record (never deleted). "
           f"In all, {total_dups:,} retrievals were duplicates; {marked:,} records were marked "
           f"as duplicates in {n_merges:,} logged merges.", ""]
    if n_merges:
        out += _table(("rule", "merges"), sorted(rules.items()))
        if scores:
            out += ["", f"Match scores of merged records ranged from {min(scores):.3g} "
                        f"to {max(scores):.3g}."]
        out.append("")
    return out


def screening_section(store: Store, agreement: Agreement) -> list[str]:
    protocol = get_protocol(store)
    out = ["## Selection process", ""]
    if not effective_decisions(store, TITLE_ABSTRACT):
        return out + ["No screening decisions are logged yet.", ""] + stopping_section(store)
    out += [f"The protocol asked for {protocol.reviewers_per_record} independent reviewer"
            f"{'s' if protocol.reviewers_per_record != 1 else ''} per record, first on title "
            "and abstract, then on full text. Screening used cluster "
            f"{version()}, which shows no reviewer another's decision before the record's "
            "conflict is resolved (blind dual review); conflicts were resolved by consensus or "
            "by a further reviewer, as logged below.", ""]
    for stage, name in STAGE_LABELS.items():
        decided = effective_decisions(store, stage)
        if not decided:
            continue
        reviewers = sorted({rev for _, rev in decided if rev})
        records = len({rid for rid, _ in decided})
        per_record = Counter(Counter(rid for rid, _ in decided).values())
        methods: Counter[str] = Counter()
        deciders: dict[str, set[str]] = {}
        for e in standing_events(store, "kind = 'resolution' AND stage = ?", [stage]):
            m = resolution_method(e["data"])
            methods[m] += 1
            deciders.setdefault(m, set()).update(e["data"].get("decided_by")
                                                 or [e["reviewer"] or "unnamed"])
        out += [f"### {name}", "",
                f"{len(decided):,} decisions on {records:,} records by {len(reviewers)} reviewers "
                f"({', '.join(reviewers)}). Reviewers per record: "
                + "; ".join(f"{k} ({v:,} records)" for k, v in sorted(per_record.items())) + "."
                + (" Conflicts resolved: " + ", ".join(
                    f"{k} by {m} ({', '.join(sorted(deciders[m]))})"
                    for m, k in sorted(methods.items())) + "."
                   if methods else ""), ""]
        pairs = agreement.get(stage, ())
        if pairs:
            out += _table(("reviewers", "records both screened", "agreements", "disagreements",
                           "agreement", "Cohen's kappa"),
                          ((f"{p.reviewer_a} / {p.reviewer_b}", f"{p.n:,}",
                            f"{p.agreements:,}", f"{p.disagreements:,}",
                            "n/a" if p.percent is None else f"{p.percent:.1f} %",
                            "n/a" if p.kappa is None else f"{p.kappa:.2f}") for p in pairs))
            out += ["", "Agreement = agreements / (agreements + disagreements); kappa corrects "
                        "it for chance agreement.", ""]
    out += stopping_section(store)
    return out


def stopping_section(store: Store) -> list[str]:
    events = standing_events(store, "kind = 'automation'")
    out = ["### Stopping rule", ""]
    if not events:
        protocol = get_protocol(store)
        return out + [f"Screening was not stopped early: no record was excluded by a stopping "
                      f"rule (the protocol's rule, {protocol.stopping_rule}, was not applied).", ""]
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for e in events:
        groups[(e["stage"] or "", str(e["data"].get("rule") or "unspecified"))].append(e)
    for (stage, rule), es in sorted(groups.items()):
        figures: Counter[str] = Counter(
            json.dumps({k: v for k, v in e["data"].items() if k not in ("rule", "category")},
                       sort_keys=True) for e in es)
        out.append(f"- {STAGE_LABELS.get(stage, stage)}: {len(es):,} records marked as ineligible "
                   f"by the stopping rule `{rule}` on {_date(max(e['ts'] for e in es))}"
                   + "".join("; figures: " + ", ".join(f"{k} = {v}"
                                                       for k, v in json.loads(f).items())
                             for f in figures if f != "{}") + ".")
    return out + [""]


def fulltext_section(store: Store, flow: Flow) -> list[str]:
    """Where the reports read in full came from: each service, by hand, or not recorded."""
    got = fulltext_sources(store)
    if not got and not flow.screening.sought:
        return []
    names = {**SERVICE_NAMES, BY_HAND: "obtained by hand (library, author)",
             "unrecorded": "marked retrieved without a source"}
    total = sum(got.values())
    parts = [f"{n:,} {'from ' if k in SERVICE_NAMES else ''}{names.get(k, k)}"
             for k, n in sorted(got.items(), key=lambda kv: (kv[0] not in SERVICE_NAMES,
                                                              kv[0]))]
    located = sum(1 for r in retrievals(store).values() if r.located)
    text = (f"Reports sought: {flow.screening.sought:,}; full texts retrieved: {total:,}"
            + (f" ({'; '.join(parts)})" if parts else "") + "; not retrieved: "
            f"{flow.screening.not_retrieved:,}.")
    if located:
        text += (f" Open-access copies were looked up for {located:,} records in Unpaywall, "
                 f"PubMed Central, OpenAlex and Crossref.")
    return ["## Full texts", "", text, ""]


def flow_section(flow: Flow, diagram_file: str | None) -> list[str]:
    out = ["## PRISMA 2020 flow", ""]
    if diagram_file:
        out += [f"![PRISMA 2020 flow diagram]({diagram_file})", ""]
    s = flow.screening
    out.append(
        f"Records screened: {s.screened:,}; excluded: {s.screen_excluded:,}; reports sought: "
        f"{s.sought:,}; not retrieved: {s.not_retrieved:,}; assessed: {s.assessed:,}; "
        f"excluded: {s.excluded:,}; studies included: {flow.total_studies:,} "
        f"({flow.total_reports:,} reports)."
        + ("" if flow.complete else " Screening is still in progress."))
    out.append("")
    out += _table(("PRISMA2020 field", "n"), prisma_fields(flow).items())
    return out + [""]


def methods_report(store: Store, agreement: Agreement, layout: str | None = None,
                   diagram_file: str | None = None, flow: Flow | None = None,
                   detail: bool = False, extraction: Sequence[str] = ()) -> str:
    """The whole Markdown report; `agreement` holds each stage's reviewer pairs,
    `diagram_file` is the diagram's name beside the report, if any; `detail` adds
    every search with its query or seed, limits and counts; `extraction` is the data
    extraction section's lines, which the caller builds (congruence is computed above
    this floor)."""
    flow = flow if flow is not None else compute_flow(store, layout)
    parts = ["# Methods: searching, selection and flow", ""]
    parts += searches_section(store, flow, detail)
    parts += dedup_section(store, flow)
    parts += screening_section(store, agreement)
    parts += fulltext_section(store, flow)
    parts += list(extraction)
    parts += flow_section(flow, diagram_file)
    return "\n".join(parts).rstrip() + "\n"


def write_report(store: Store, agreement: Agreement, layout: str | None = None,
                 output: str | Path | None = None, detail: bool = False,
                 extraction: Callable[[], Sequence[str]] | None = None) -> tuple[str, list[Path]]:
    """The report's text; with `output`, also the .md file and the diagram beside it.

    Every section is read from one snapshot of the store, so the numbers agree;
    `extraction` builds the data extraction section inside that snapshot."""
    if output is None:
        with store.read_snapshot():
            return methods_report(store, agreement, layout, detail=detail,
                                  extraction=extraction() if extraction else ()), []
    from db.diagram import layout as place, write_png, write_svg

    md = Path(output)
    svg, png = md.with_suffix(".svg"), md.with_suffix(".png")
    if md.suffix.lower() not in (".md", ".markdown"):
        raise FlowError(f"{md} should end in .md: the diagram is written beside it as "
                        f"{svg.name} and {png.name}.")
    with store.read_snapshot():
        flow = compute_flow(store, layout)
        text = methods_report(store, agreement, layout, diagram_file=svg.name, flow=flow,
                              detail=detail, extraction=extraction() if extraction else ())
    diagram = place(flow)
    protect = store_files(store.path) if store.path else ()
    for p in (md, svg, png):  # all three checked before any is written
        check_output_path(p, protect)
    write_svg(diagram, svg, protect)
    write_png(diagram, png, protect=protect)
    write_file(md, text, protect)
    return text, [md, svg, png]
