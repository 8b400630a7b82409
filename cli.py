"""The `cluster` command: parse, call the library, print. No logic lives here.

Settings resolve as: command-line flag, then environment variable, then the
default. Library errors (each one sentence a user can act on) become a message
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
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


# === expand, searches, contacts, find =====================================


# === dedup ===============================================================


def _stage_progress(quiet: bool) -> tuple[Callable[[str, int, int], None] | None, Callable[[], None]]:
    """A progress callback drawing one bar per pipeline stage on stderr, and its closer."""
    if quiet:
        return None, lambda: None
    state: dict[str, Any] = {"stage": None, "bar": None, "done": 0}

    def close() -> None:
        if state["bar"] is not None:
            state["bar"].__exit__(None, None, None)
            state["bar"] = None

    def progress(stage: str, done: int, total: int) -> None:
        if stage != state["stage"]:
            close()
            state.update(stage=stage, done=0,
                         bar=click.progressbar(length=max(total, 1), label=f"{stage:<8}",
                                               file=sys.stderr).__enter__())
        state["bar"].update(max(0, done - state["done"]))
        state["done"] = done

    return progress, close


@cli.command()
@click.option("--review", is_flag=True, help="Decide grey-zone pairs side by side, one keypress each.")
@click.option("--export-pairs", "export_csv", type=click.Path(dir_okay=False),
              help="Write the pairs waiting for review to this CSV (fill its decision column).")
@click.option("--import-pairs", "import_csv", type=click.Path(dir_okay=False),
              help="Apply the decisions (same/different/skip) of a CSV written by --export-pairs.")
@click.option("--undo", "undo_id", metavar="MERGE_ID", help="Split a merge again (logged as an unmerge).")
@click.option("--reviewer", help="Who is deciding (recorded on the decision events).")
@db_option
@json_option
@quiet_option
@handle_errors
def dedup(review: bool, export_csv: str | None, import_csv: str | None, undo_id: str | None,
          reviewer: str | None, db_path: str, as_json: bool, quiet: bool) -> None:
    """Find and merge duplicate records; uncertain pairs wait for a person.

    Nothing is deleted: a duplicate points at the record that stands for the
    work (its sources stay), and each merge is an event you can undo. Only
    records added since the last run are compared with the rest.

    Example: cluster dedup && cluster dedup --review
    """
    from cluster.dedup.apply import run_dedup, undo_merge
    from cluster.dedup.review import export_pairs, import_pairs, review_session

    modes = [m for m in (review, export_csv, import_csv, undo_id) if m]
    if len(modes) > 1:
        raise UserError("Use one of --review, --export-pairs, --import-pairs and --undo at a time.")
    store = get_store(db_path)
    if undo_id:
        out = undo_merge(store, undo_id, reviewer=reviewer)
        if as_json:
            echo_json(out)
        else:
            click.echo(f"Merge {undo_id} undone: records {', '.join(map(str, out['restored']))} "
                       f"stand apart from record {out['canonical']} again.")
        return
    if export_csv:
        n = export_pairs(store, export_csv)
        if as_json:
            echo_json({"exported": n, "path": export_csv})
        else:
            click.echo(f"{n} pairs written to {export_csv}: fill the decision column with same, "
                       f"different or skip, then run cluster dedup --import-pairs {export_csv}.")
        return
    if import_csv:
        counts = import_pairs(store, import_csv, reviewer=reviewer)
        if as_json:
            echo_json(counts)
        else:
            click.echo(f"{counts['same']} pairs merged, {counts['different']} kept apart, "
                       f"{counts['skipped']} skipped; {counts['left']} pairs left for review.")
        return
    if review:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UserError("--review needs an interactive terminal: use --export-pairs CSV, "
                            "decide in the file, then --import-pairs CSV.")
        width = min(140, shutil.get_terminal_size((100, 24)).columns)
        counts = review_session(store, click.getchar, click.echo, reviewer=reviewer, width=width)
        click.echo(f"{counts['same']} merged, {counts['different']} kept apart, "
                   f"{counts['skip']} skipped; {counts['left']} pairs left for review.")
        return
    progress, close = _stage_progress(quiet)
    try:
        summary = run_dedup(store, progress=progress)
    finally:
        close()
    if as_json:
        echo_json(summary.as_dict())
        return
    if summary.records_in == 0:
        click.echo("The store has no records to deduplicate: import or expand some first.")
        return
    click.echo(f"Records in: {summary.records_in} ({summary.new_records} new since the last run)")
    click.echo(f"Pairs compared: {summary.pairs_compared}")
    click.echo(f"Clusters merged: {summary.clusters}")
    click.echo(f"Duplicates marked: {summary.duplicates_marked}")
    click.echo(f"Pairs left for review: {summary.pairs_for_review}"
               + (" (cluster dedup --review)" if summary.pairs_for_review else ""))
    if summary.records_without_title:
        click.echo(f"Records without a title: {summary.records_without_title} "
                   f"(matched on identifiers and citation details only)")


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
