"""The `cluster` command: parse, call the library, print. No logic lives here.

Settings resolve as: command-line flag, then environment variable, then the
default. Library errors (each one sentence a user can act on) become a message
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from cluster import __version__
from connectors.errors import ClusterError
from db.store import Store, open_store

DEFAULT_DB = "review.db"


class UserError(click.ClickException):
    """A failure the user caused or can fix; printed as one sentence, exit 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


def handle_errors(fn: Callable) -> Callable:
    """Turn the library's named exceptions into a one-sentence error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ClusterError as exc:
            raise UserError(str(exc)) from None

    return wrapper


def db_option(fn: Callable) -> Callable:
    return click.option(
        "--db", "db_path", envvar="CLUSTER_DB", default=DEFAULT_DB, show_default=True,
        type=click.Path(dir_okay=False), help="The review store (env CLUSTER_DB).",
    )(fn)


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")(fn)


def quiet_option(fn: Callable) -> Callable:
    return click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(fn)


def get_store(db_path: str, create: bool = True) -> Store:
    return open_store(db_path, create=create)


def echo_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cluster")
def cli() -> None:
    """cluster: find, deduplicate, screen and report the records of a literature review.

    Start from a few index articles, expand them the CLUSTER way, deduplicate,
    screen with two blind reviewers, and report PRISMA 2020 numbers.

    Example: cluster demo
    """


@cli.command()
@db_option
@handle_errors
def init(db_path: str) -> None:
    """Create a review store (or check an existing one).

    Example: cluster init --db review.db
    """
    store = get_store(db_path)
    click.echo(f"Review store ready at {db_path} (review {store.review_id}).")


# --- reviewers ------------------------------------------------------------------


@cli.group()
def reviewers() -> None:
    """Manage the review team.

    Example: cluster reviewers add alice
    """


@reviewers.command("add")
@click.argument("names", nargs=-1, required=True)
@click.option("--role", default="reviewer", show_default=True)
@db_option
@handle_errors
def reviewers_add(names: tuple[str, ...], role: str, db_path: str) -> None:
    """Add reviewers by name.

    Example: cluster reviewers add alice bob
    """
    store = get_store(db_path)
    with store.transaction():
        for name in names:
            store.add_reviewer(name, role)
    click.echo(f"Reviewers: {', '.join(store.reviewer_names())}")


@reviewers.command("list")
@db_option
@json_option
@handle_errors
def reviewers_list(db_path: str, as_json: bool) -> None:
    """List reviewers.

    Example: cluster reviewers list --json
    """
    names = get_store(db_path).reviewer_names()
    if as_json:
        echo_json(names)
    else:
        for n in names:
            click.echo(n)


# === import / export =====================================================


# === connectors ==========================================================


def connector_settings(db_path: str):
    """Settings from the environment, with the HTTP cache beside the store."""
    from connectors.http import Settings

    cache = Path(db_path).with_name(Path(db_path).stem + ".http-cache.sqlite")
    return Settings.from_env(os.environ, cache_path=cache)


@cli.command("fetch")
@click.option("--pmid", "pmids", multiple=True, help="A PubMed id (repeatable).")
@click.option("--doi", "dois", multiple=True, help="A DOI (repeatable).")
@click.option("--fill", is_flag=True,
              help="Complete the store's records that were imported needing metadata.")
@db_option
@json_option
@quiet_option
@handle_errors
def fetch_cmd(pmids: tuple[str, ...], dois: tuple[str, ...], fill: bool, db_path: str,
              as_json: bool, quiet: bool) -> None:
    """Fetch records by PMID (PubMed) or DOI (Crossref), or complete records needing metadata.

    Set CLUSTER_EMAIL (and NCBI_API_KEY) to be a polite client; answers are
    cached beside the store, so a rerun makes no requests.

    Example: cluster fetch --pmid 36987902 --doi 10.1371/journal.pone.0033693
    """
    from connectors.http import connect
    from connectors.metadata import fetch_by_ids, fill_needs_metadata

    if not (pmids or dois or fill):
        raise UserError("Nothing to fetch: give --pmid, --doi or --fill.")
    with connect(connector_settings(db_path)) as services, _progress(quiet) as progress:
        if fill:
            done = fill_needs_metadata(get_store(db_path, create=False), services,
                                       progress=progress)
            summary = {"filled": done.filled, "still_needing_metadata": done.remaining,
                       "missing": list(done.missing), "failed": dict(done.failed),
                       "requests": len(done.calls)}
            if as_json:
                echo_json(summary)
            else:
                click.echo(f"Completed {done.filled} record(s); {done.remaining} still need "
                           f"metadata.")
                _echo_problems(done.missing, done.failed, list(done.notes))
            return
        got = fetch_by_ids(services, pmids=pmids, dois=dois, progress=progress)
    if as_json:
        echo_json({"records": [_record_json(r) for r in got.records],
                   "missing": list(got.missing), "failed": dict(got.failed)})
        return
    for r in got.records:
        ident = f"PMID {r.pmid}" if r.pmid else f"doi:{r.doi}"
        authors = (r.authors[0] + (" et al." if len(r.authors) > 1 else "")) if r.authors else ""
        click.echo(f"{ident}  {authors} ({r.year or 'n.d.'}) {r.title or ''}"
                   f"{'  ' + r.journal if r.journal else ''}")
    _echo_problems(got.missing, got.failed, [])


def _record_json(r) -> dict:
    return {k: v for k, v in {
        "title": r.title, "authors": list(r.authors), "year": r.year, "journal": r.journal,
        "volume": r.volume, "issue": r.issue, "pages": r.pages, "doi": r.doi, "pmid": r.pmid,
        "pmcid": r.pmcid, "language": list(r.language), "pub_types": list(r.pub_types),
        "abstract": r.abstract}.items() if v not in (None, [], "")}


def _echo_problems(missing, failed, notes) -> None:
    for ident in missing:
        click.echo(f"Not found: {ident}", err=True)
    for ident, why in dict(failed).items():
        click.echo(f"Failed: {ident}: {why}", err=True)
    for note in notes:
        click.echo(note, err=True)


class _progress:
    """A progress callback drawing a bar on stderr (nothing with --quiet)."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar = None

    def __enter__(self):
        return None if self.quiet else self

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="Fetching", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)


# === expand, searches, contacts, find =====================================


def _http_settings(db_path: str):
    """The connectors' settings (HTTP cache beside the store), with test-world knobs.

    CLUSTER_HTTP_RETRIES, CLUSTER_HTTP_BACKOFF (seconds) and
    CLUSTER_RATE_LIMITS ("pubmed=3,crossref=10") tune retries and pacing,
    for local review worlds where the real limits are not the point.
    """
    import dataclasses

    overrides: dict[str, Any] = {}
    env = os.environ
    try:
        if env.get("CLUSTER_HTTP_RETRIES"):
            overrides["max_retries"] = int(env["CLUSTER_HTTP_RETRIES"])
        if env.get("CLUSTER_HTTP_BACKOFF"):
            overrides["backoff_base"] = float(env["CLUSTER_HTTP_BACKOFF"])
            overrides["backoff_max"] = float(env["CLUSTER_HTTP_BACKOFF"]) * 4
        if env.get("CLUSTER_RATE_LIMITS"):
            overrides["rate_limits"] = {k.strip(): float(v) for k, v in (
                p.split("=", 1) for p in env["CLUSTER_RATE_LIMITS"].split(",") if p.strip())}
    except ValueError:
        raise UserError("CLUSTER_HTTP_RETRIES, CLUSTER_HTTP_BACKOFF or CLUSTER_RATE_LIMITS is "
                        "malformed: use e.g. 3, 0.5 and pubmed=3,crossref=10.") from None
    return dataclasses.replace(connector_settings(db_path), **overrides)


@contextlib.contextmanager
def _open(db_path: str):
    """An existing store, closed afterwards (so its WAL is folded back at once)."""
    store = get_store(db_path, create=False)
    try:
        yield store
    finally:
        store.close()


def _connect(db_path: str):
    from connectors.http import connect

    return connect(_http_settings(db_path))


@cli.command("add")
@click.option("--pmid", "pmids", multiple=True, help="PubMed id of an index article (repeatable).")
@click.option("--doi", "dois", multiple=True, help="DOI of an index article (repeatable).")
@db_option
@json_option
@handle_errors
def add_cmd(pmids: tuple[str, ...], dois: tuple[str, ...], db_path: str, as_json: bool) -> None:
    """Add index articles by PMID or DOI, fetching their records from PubMed or Crossref.

    All or nothing: if one identifier is unknown, nothing is added.

    Example: cluster add --pmid 23121403 --doi 10.1037/a0030292
    """
    from cluster.expand import add_index_articles

    store = get_store(db_path)
    services = _connect(db_path)
    try:
        added = add_index_articles(store, services, pmids=pmids, dois=dois)
    finally:
        services.close()
        store.close()
    if as_json:
        echo_json([a.__dict__ for a in added])
        return
    for a in added:
        click.echo(f"{'added' if a.new else 'already in the store'}: #{a.record_id} "
                   f"{a.identifier} ({a.service}) {a.title or ''}")
    click.echo(f"{len(added)} index article(s); run `cluster expand` next.")


@cli.command("expand")
@click.option("--strategies", default="lead-author,cited-by,references,related", show_default=True,
              help="Comma-separated CLUSTER strategies to run.")
@click.option("--top", default=20, show_default=True, type=int,
              help="Records kept per index article and strategy (after the filters).")
@click.option("--any-type", is_flag=True, help="Keep every publication type, not only journal articles.")
@click.option("--any-language", is_flag=True, help="Keep every language, not only English.")
@click.option("--depth", default=1, show_default=True, type=int,
              help="Expand again from the records found, this many levels.")
@db_option
@json_option
@quiet_option
@handle_errors
def expand_cmd(strategies: str, top: int, any_type: bool, any_language: bool, depth: int,
               db_path: str, as_json: bool, quiet: bool) -> None:
    """Run the CLUSTER search from the index articles (lead authors, cited by, references, related).

    \b
    lead-author  the lead (first) author's publications: PubMed author query
                 (Surname Initials[au]) disambiguated by ORCID, else affiliation,
                 else a year window; OpenAlex author works; Crossref by ORCID.
    cited-by     PubMed citedin + OpenCitations + OpenAlex cites: (each counted).
    references   PubMed refs + Crossref reference lists (references without DOI
                 matched by title and year where possible) + OpenAlex.
    related      PubMed similar articles (neighbour score) + OpenAlex related works.

    Each list is filtered (journal articles in English unless --any-type /
    --any-language; records of unknown type or language are kept and flagged)
    and capped at the --top most relevant. "Most relevant" is the service's
    own ranking where it publishes one (PubMed neighbour score), otherwise the
    TF-IDF cosine similarity of title and abstract to the index article's.
    Every query is logged (`cluster searches`); a rerun resumes where a run
    stopped and repeats nothing already done. If some searches fail (a
    service down for some index articles), the others are saved, the
    failures are listed and the exit status is 3: run it again to retry them.

    Example: cluster expand --strategies cited-by,related --top 20
    """
    from cluster.expand import SERVICE_LABELS, ExpandOptions, expand

    options = ExpandOptions(strategies=tuple(s.strip() for s in strategies.split(",") if s.strip()),
                            top=top, any_type=any_type, any_language=any_language, depth=depth)
    store = get_store(db_path)
    services = _connect(db_path)
    bar = None
    last = [0]

    def progress(done: int, total: int, label: str) -> None:
        nonlocal bar
        if quiet:
            return
        if bar is None:
            bar = click.progressbar(length=total, label="Expanding", file=sys.stderr,
                                    show_pos=True)
            bar.__enter__()
            last[0] = 0
        bar.update(done - last[0])
        last[0] = done

    try:
        report = expand(store, services, options, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
        services.close()
        store.close()
    if as_json:
        echo_json(report.to_json())
    else:
        click.echo(_table(report.table(), ["strategy", "service", "searches", "found", "kept", "new",
                                           "already_done", "failed"]))
    for r in report.results:
        if r.warning:
            click.echo(f"Note: {r.strategy} for index article {r.seed_label}: {r.warning}", err=True)
    for f in report.failures:
        click.echo(f"Failed: {f.strategy} via {SERVICE_LABELS[f.service]} for index article "
                   f"{f.seed_label}: {f.error}", err=True)
    if report.failures:
        click.echo(f"Error: {len(report.failures)} search(es) failed; the others are saved: run "
                   f"`cluster expand` again to retry them.", err=True)
        sys.exit(3)


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "(nothing)"
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols),
             "  ".join("-" * widths[c] for c in cols)]
    lines += ["  ".join(_cell(r.get(c)).ljust(widths[c]) for c in cols).rstrip() for r in rows]
    return "\n".join(lines)


@cli.command("searches")
@db_option
@json_option
@click.option("--markdown", "as_markdown", is_flag=True, help="A methods appendix in Markdown.")
@handle_errors
def searches_cmd(db_path: str, as_json: bool, as_markdown: bool) -> None:
    """Show the search log (PRISMA-S): every query and import, with results and limits.

    Example: cluster searches --markdown > search-methods.md
    """
    from cluster.searchlog import markdown, search_rows

    with _open(db_path) as store:
        rows_all = search_rows(store)
        text = markdown(store) if as_markdown else ""
    if as_json:
        echo_json(rows_all)
    elif as_markdown:
        click.echo(text)
    else:
        rows = [{"id": r["id"], "date": (r["finished_at"] or r["started_at"] or "")[:16],
                 "service": r["service"] or r["kind"], "strategy": r["strategy"] or "",
                 "seed": r["seed_record_id"] or "", "query": (r["query"] or r["file_name"] or "")[:50],
                 "found": r["n_found"], "kept": r["n_kept"], "new": r["n_added"], "status": r["status"]}
                for r in rows_all]
        click.echo(_table(rows, ["id", "date", "service", "strategy", "seed", "query", "found", "kept",
                                 "new", "status"]))


@cli.command("contacts")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the contacts as CSV.")
@click.option("--log", "log_name", help="Log a contact with this author.")
@click.option("--status", type=click.Choice(["sent", "replied", "no-reply"]), help="With --log.")
@click.option("--email", help="With --log: the address used, if not the one found.")
@click.option("--note", help="With --log: a free note.")
@db_option
@json_option
@handle_errors
def contacts_cmd(output: str | None, log_name: str | None, status: str | None, email: str | None,
                 note: str | None, db_path: str, as_json: bool) -> None:
    """List the index articles' lead and corresponding authors to ask for unpublished work.

    Log contacts with --log NAME --status sent|replied|no-reply. Records an
    author sends are imported with
    `cluster import FILE --as other --source "author contact"`.

    Example: cluster contacts -o contacts.csv
    """
    from cluster.contacts import contacts, log_contact, write_csv

    if log_name and not status:
        raise UserError("--log needs --status sent, replied or no-reply.")
    with _open(db_path) as store:
        if log_name:
            data = log_contact(store, log_name, status, email=email, note=note)
            click.echo(f"Logged: {data['author']} {status}.")
            return
        rows = contacts(store)
    if output:
        write_csv(rows, Path(output))
        click.echo(f"{len(rows)} contacts written to {output}.")
    elif as_json:
        echo_json([r.__dict__ for r in rows])
    else:
        click.echo(_table([{**r.__dict__, "title": r.title[:40]} for r in rows],
                          ["record_id", "role", "name", "email", "affiliation", "status"]))


@cli.command("find")
@click.argument("query")
@click.option("--tag", "tag_value", help="Tag every record found (a `tag` event), e.g. theory.")
@click.option("--reviewer", help="Who tags (with --tag).")
@click.option("--limit", type=int, help="Show at most this many records.")
@db_option
@json_option
@handle_errors
def find_cmd(query: str, tag_value: str | None, reviewer: str | None, limit: int | None,
             db_path: str, as_json: bool) -> None:
    """Full-text search of titles and abstracts (to find theories and frameworks).

    QUERY uses SQLite FTS syntax: words, "quoted phrases", AND/OR/NOT, prefix*.

    Example: cluster find '"normalisation process theory" OR realist' --tag theory
    """
    from cluster.find import find, tag

    with _open(db_path) as store:
        hits = find(store, query, limit=limit)
        n_tagged = tag(store, hits, tag_value, reviewer=reviewer) if tag_value else 0
    if as_json:
        echo_json({"hits": [h.__dict__ for h in hits], "tagged": n_tagged})
        return
    for h in hits:
        click.echo(f"#{h.record_id}  {h.year or ''}  {h.title or ''}")
        click.echo(f"    {h.snippet}")
    click.echo(f"{len(hits)} record(s)" + (f"; {n_tagged} newly tagged {tag_value!r}." if tag_value else "."))


# === dedup ===============================================================


# === prioritisation, status, stop, simulate ===============================


# === screening, conflicts, agreement, decisions ===========================


# === flow and report =====================================================


# === demo ================================================================


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
