"""The `cluster` command: parse, call the library, print. No logic lives here.

Settings resolve as: command-line flag, then environment variable, then the
default. Library errors (each one sentence a user can act on) become a message
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

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
