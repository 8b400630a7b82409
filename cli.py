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

from db.events import ROLES, STAGES  # noqa: E402  (kept with the commands that use them)


@cli.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option("--as", "role", type=click.Choice(ROLES),
              default="database", show_default=True,
              help="What the records are for PRISMA: index articles, a database search, other methods.")
@click.option("--source", default=None,
              help="Name of the service or tool the file came from (default: the file name).")
@click.option("--labels-reviewer", default=None, metavar="NAME",
              help="Keep screening labels found in the file as decisions by this reviewer.")
@db_option
@json_option
@quiet_option
@handle_errors
def import_(files: tuple[str, ...], role: str, source: str | None, labels_reviewer: str | None,
            db_path: str, as_json: bool, quiet: bool) -> None:
    """Import reference files: RIS, BibTeX, MEDLINE/.nbib, EndNote XML, Web of Science, CSV/TSV, PMID/DOI lists.

    The format is read from each file's content. Each file becomes one logged
    search; a file already imported into this store is skipped.

    Example: cluster import embase.ris pubmed.nbib --as database --source Embase
    """
    import dataclasses

    from db.formats import import_files

    store = get_store(db_path)
    with click.progressbar(length=len(files), label="Importing", file=sys.stderr,
                           hidden=quiet or as_json or not sys.stderr.isatty()) as bar:
        results = import_files(store, list(files), role=role, source=source,
                               labels_reviewer=labels_reviewer, progress=bar.update)
    if as_json:
        echo_json([dataclasses.asdict(r) for r in results])
        return
    for r in results:
        for w in r.warnings:
            click.echo(f"Warning: {w}", err=True)
        if r.already_imported:
            click.echo(f"{r.file_name}: already imported into this store; nothing added.")
        else:
            labels = f", {r.n_labels} labels kept as decisions" if r.n_labels else ""
            click.echo(f"{r.file_name}: {r.n_read} records read ({r.format}), {r.n_added} added"
                       f"{labels} (search {r.search_id}).")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["ris", "bibtex", "csv", "jsonl", "asreview"]),
              required=True, help="Output format; asreview is the CSV layout ASReview LAB reads.")
@click.option("--stage", type=click.Choice(STAGES),
              default="title-abstract", show_default=True, help="Screening stage whose decisions to show.")
@click.option("--decision", type=click.Choice(["include", "exclude", "maybe", "conflict", "undecided"]),
              default=None, help="Only records whose current decision at --stage is this.")
@click.option("--all", "include_duplicates", is_flag=True,
              help="Also export records marked as duplicates.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write to this file instead of standard output.")
@db_option
@handle_errors
def export(fmt: str, stage: str, decision: str | None, include_duplicates: bool,
           output: str | None, db_path: str) -> None:
    """Export records with their decisions, reasons and notes.

    Example: cluster export --format ris --decision include -o included.ris
    """
    from db.formats import export_records

    store = get_store(db_path, create=False)
    result = export_records(store, fmt, stage=stage, decision=decision,
                            include_duplicates=include_duplicates)
    if output is None:
        click.echo(result.text, nl=False)
        return
    try:
        with open(output, "w", encoding="utf-8", newline="") as fh:
            fh.write(result.text)
    except OSError as exc:
        raise UserError(f"Cannot write {output} ({exc.strerror}).") from None
    click.echo(f"Exported {result.n_records} records to {output} ({fmt}).", err=True)



# === connectors ==========================================================


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
