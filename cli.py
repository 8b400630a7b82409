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


# --- protocol -------------------------------------------------------------------


@cli.group()
def protocol() -> None:
    """The review protocol: question, criteria terms, exclusion reasons, team rules.

    Example: cluster protocol show
    """


@protocol.command("set")
@click.option("--question", help="The review question (used to rank records before any decision).")
@click.option("--include-terms", help="Comma-separated terms highlighted as include cues.")
@click.option("--exclude-terms", help="Comma-separated terms highlighted as exclude cues.")
@click.option("--reasons", help="Semicolon-separated fixed list of exclusion reasons.")
@click.option("--reviewers-per-record", type=int, help="Independent reviewers per record (default 2).")
@click.option("--stopping-rule", type=click.Choice(["hypergeometric", "consecutive"]))
@click.option("--target-recall", type=float, help="Target recall for the statistical stopping rule.")
@click.option("--consecutive-excludes", type=int, help="N for the consecutive-excludes heuristic.")
@db_option
@handle_errors
def protocol_set(question, include_terms, exclude_terms, reasons, reviewers_per_record,
                 stopping_rule, target_recall, consecutive_excludes, db_path) -> None:
    """Change the protocol; each change is logged with its date.

    Example: cluster protocol set --question "compassion training for health staff" --include-terms "compassion,empathy"
    """
    from screeners.protocol import set_protocol

    def split(text, sep=","):
        return None if text is None else [t for t in text.split(sep)]

    new = set_protocol(
        get_store(db_path), question=question, include_terms=split(include_terms),
        exclude_terms=split(exclude_terms), exclusion_reasons=split(reasons, ";"),
        reviewers_per_record=reviewers_per_record, stopping_rule=stopping_rule,
        target_recall=target_recall, consecutive_excludes=consecutive_excludes,
    )
    echo_json(new.to_dict())


@protocol.command("show")
@db_option
@handle_errors
def protocol_show(db_path: str) -> None:
    """Print the protocol in force, as JSON.

    Example: cluster protocol show
    """
    from screeners.protocol import get_protocol

    echo_json(get_protocol(get_store(db_path)).to_dict())


# === import / export =====================================================


# === connectors ==========================================================


# === expand, searches, contacts, find =====================================


# === dedup ===============================================================


# === prioritisation, status, stop, simulate ===============================


# === screening, conflicts, agreement, decisions ===========================


# === flow and report =====================================================


LAYOUT_HELP = ("standard: PRISMA 2020 (other-methods records go straight to reports sought); "
               "screen-other: index and other-methods records are screened with database records.")


@cli.command("flow")
@click.option("--layout", type=click.Choice(["standard", "screen-other"]), default="standard",
              show_default=True, help=LAYOUT_HELP)
@json_option
@click.option("--csv", "as_csv", is_flag=True,
              help="The PRISMA2020 R package's template (data,node,box,...,n) on stdout.")
@click.option("--with-titles", is_flag=True,
              help="With --csv: also the template's title and band rows (data NA, n 0).")
@click.option("--svg", "svg_path", type=click.Path(dir_okay=False), help="Write the diagram as SVG.")
@click.option("--png", "png_path", type=click.Path(dir_okay=False), help="Write the diagram as PNG.")
@db_option
@handle_errors
def flow_cmd(layout: str, as_json: bool, as_csv: bool, with_titles: bool, svg_path: str | None,
             png_path: str | None, db_path: str) -> None:
    """PRISMA 2020 flow numbers from the log, checked, as a table, JSON, CSV or a diagram.

    Every record must end in exactly one box; if the log does not add up, the
    command names the records involved instead of drawing a wrong diagram.

    Example: cluster flow --layout screen-other --csv > prisma.csv --svg prisma.svg
    """
    from db.flow import compute_flow, to_csv, to_table

    if as_json and as_csv:
        raise UserError("Choose one of --json and --csv.")
    result = compute_flow(get_store(db_path, create=False), layout)
    if svg_path or png_path:
        from db.diagram import layout as place, write_png, write_svg

        diagram = place(result)
        if svg_path:
            write_svg(diagram, svg_path)
        if png_path:
            write_png(diagram, png_path)
    if as_json:
        echo_json(result.to_dict())
    elif as_csv:
        click.echo(to_csv(result, with_titles), nl=False)
    else:
        click.echo(to_table(result))
        for path in (svg_path, png_path):
            if path:
                click.echo(f"Diagram written to {path}", err=True)


@cli.group("study")
def study() -> None:
    """Group reports of one study, so PRISMA counts the study once.

    Example: cluster study link 12 57 --key smith2019
    """


@study.command("link")
@click.argument("record_ids", nargs=-1, type=int, required=True)
@click.option("--key", required=True, help="A name for the study, e.g. the first report's id.")
@click.option("--reviewer", help="Who made the link (a reviewer name).")
@db_option
@handle_errors
def study_link(record_ids: tuple[int, ...], key: str, reviewer: str | None, db_path: str) -> None:
    """Mark records as reports of one study (logged; undo like any event).

    Example: cluster study link 12 57 --key smith2019 --reviewer ann
    """
    from db.flow import link_study

    store = get_store(db_path, create=False)
    if reviewer:
        store.require_reviewer(reviewer)
    link_study(store, record_ids, key, reviewer)
    click.echo(f"Records {', '.join(map(str, record_ids))} are now reports of study {key}.")


@cli.command("report")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False),
              help="Write the Markdown here, with the diagram beside it (same name, .svg and .png).")
@click.option("--layout", type=click.Choice(["standard", "screen-other"]), default="standard",
              show_default=True, help=LAYOUT_HELP)
@db_option
@handle_errors
def report_cmd(output: str | None, layout: str, db_path: str) -> None:
    """Methods-section Markdown: PRISMA-S search log, deduplication, screening, flow.

    Example: cluster report -o methods.md --layout screen-other
    """
    from db.report import write_report

    text, written = write_report(get_store(db_path, create=False), layout, output)
    if output is None:
        click.echo(text, nl=False)
    else:
        click.echo("Wrote " + ", ".join(str(p) for p in written))


# === demo ================================================================


def main() -> None:
    try:
        cli(standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
