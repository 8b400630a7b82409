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


@cli.command("status")
@click.option("--stage", type=click.Choice(["title-abstract", "full-text"]), default="title-abstract",
              show_default=True)
@db_option
@json_option
@handle_errors
def status_cmd(stage: str, db_path: str, as_json: bool) -> None:
    """Screening progress and the stopping rules: screened / total, includes found,
    estimated relevant records left, and whether each stopping rule is met.

    Example: cluster status --stage title-abstract --json
    """
    from screeners.stopping import status

    st = status(get_store(db_path, create=False), stage)
    if as_json:
        echo_json(st.to_dict())
        return
    click.echo(f"Stage {st.stage}: {st.screened} / {st.total} screened "
               f"({st.final} final, {st.pending} not yet seen)")
    click.echo(f"Includes found: {st.includes_found}")
    if st.estimated_relevant_left is not None:
        click.echo(f"Estimated relevant records left: {st.estimated_relevant_left:.1f}")
    for name, r in st.rules.items():
        mark = "in force" if name == st.rule_in_force else "also"
        click.echo(f"Stopping rule {name} ({mark}): {'MET' if r.met else 'not met'}: {r.explanation}")


@cli.command("stop")
@click.option("--rule", type=click.Choice(["hypergeometric", "consecutive"]), required=True,
              help="The stopping rule that justifies stopping.")
@click.option("--stage", type=click.Choice(["title-abstract", "full-text"]), default="title-abstract",
              show_default=True)
@click.option("--force", is_flag=True, help="Stop even though the rule is not met (recorded as forced).")
@click.option("--reviewer", help="Who decided to stop (recorded with the events).")
@db_option
@json_option
@handle_errors
def stop_cmd(rule: str, stage: str, force: bool, reviewer: str | None, db_path: str,
             as_json: bool) -> None:
    """Stop screening: mark every record not yet screened as excluded by automation,
    with the rule and its figures, so PRISMA counts them as "marked as ineligible
    by automation tools".

    Example: cluster stop --rule hypergeometric --stage title-abstract
    """
    from screeners.stopping import apply_stop

    out = apply_stop(get_store(db_path, create=False), stage, rule, force, reviewer)
    if as_json:
        echo_json({"rule": out.rule, "marked": out.marked, "forced": out.forced,
                   "met": out.result.met, **out.result.figures})
        return
    click.echo(f"Marked {out.marked} unscreened records as excluded by the {out.rule} rule"
               f"{' (forced)' if out.forced else ''}: {out.result.explanation}.")


@cli.command("simulate")
@click.argument("dataset", type=click.Path(dir_okay=False))
@click.option("--model", default="default", show_default=True,
              help="A preset (default, logistic, svm, nb) or feature+classifier+balance+query.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Chooses the prior include and exclude (and any random step).")
@click.option("--repeat", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Run seeds seed..seed+K-1 and report mean and range.")
@click.option("--order-out", type=click.Path(dir_okay=False),
              help="Write the labelling order (first seed), one record id per line.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Write the recall curve(s) to a .png or .svg file.")
@json_option
@quiet_option
@handle_errors
def simulate_cmd(dataset: str, model: str, seed: int, repeat: int, order_out: str | None,
                 plot_path: str | None, as_json: bool, quiet: bool) -> None:
    """Replay a labelled dataset (CSV with record_id, title, abstract and a 0/1
    label_included or included column) as ASReview's simulate does: one prior
    include and one exclude chosen by the seed, then the model picks every next
    record. Prints WSS@95, WSS@100, RRF@10, recall at 10/20/50 % and time to discovery.

    Example: cluster simulate data.csv --repeat 5 --plot recall.png --order-out order.txt
    """
    from screeners.simulate import load_dataset, plot_recall, simulate

    ds = load_dataset(dataset)
    seeds = list(range(seed, seed + repeat))
    with click.progressbar(length=len(ds.labels) * repeat, label="Simulating", file=sys.stderr,
                           hidden=quiet or as_json) as bar:
        last = {"i": 0}

        def progress(i: int, n: int) -> None:
            # i restarts at 2 with each seed's run
            bar.update(i - last["i"] if i >= last["i"] else i)
            last["i"] = i

        summary = simulate(ds, model, seeds, progress=progress)
    if order_out:
        try:
            Path(order_out).write_text("".join(f"{r}\n" for r in summary.runs[0].prior
                                               + summary.runs[0].order))
        except OSError as exc:
            raise UserError(f"Cannot write {order_out}: {exc.strerror}.") from None
    if plot_path:
        plot_recall(summary.runs, plot_path)
    if as_json:
        echo_json(summary.to_dict())
        return
    agg = summary.aggregate()
    click.echo(f"{ds.name}: {len(ds.labels)} records, {ds.n_included} included; "
               f"model {summary.runs[0].model}; seeds {seeds[0]}-{seeds[-1]}")
    names = [("wss95", "WSS@95"), ("wss100", "WSS@100"), ("rrf10", "RRF@10"),
             ("recall10", "recall@10%"), ("recall20", "recall@20%"), ("recall50", "recall@50%"),
             ("td_mean", "time to discovery (mean)"), ("td_median", "time to discovery (median)"),
             ("seconds", "seconds per simulation")]
    for key, label in names:
        a = agg[key]
        if repeat == 1:
            click.echo(f"{label:28s} {a['mean']:.3f}")
        else:
            click.echo(f"{label:28s} {a['mean']:.3f}  (range {a['min']:.3f}-{a['max']:.3f})")


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
