"""The `cluster` command: parse, call the library, print. No logic lives here.

Settings resolve as: command-line flag, then environment variable, then the
default. Library errors (each one sentence a user can act on) become a message
on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import click

from base.errors import ClusterError
from base.terminal import OutputLost, dumps, guard_stdout, visible

if TYPE_CHECKING:  # the store's module is imported where a command opens one
    from db.store import Store

DEFAULT_DB = "review.db"

#: a file a command writes: an existing one must be writable, never readable
OUTPUT_FILE = click.Path(dir_okay=False, readable=False, writable=True)


def echo(message: Any = "", *, err: bool = False, nl: bool = True) -> None:
    """Print for a person: text from outside (titles, names, notes) made visible."""
    click.echo(visible(str(message)), err=err, nl=nl)


def echo_document(text: str, nl: bool = False) -> None:
    """A document (records, a report, CSV) on stdout: kept as it is for a file or a
    pipe, made visible on a terminal."""
    if sys.stdout.isatty():
        # a CSV's CRLF line ends are line ends on screen, not carriage returns to show
        click.echo(visible(text.replace("\r\n", "\n")), nl=nl)
    else:
        # color=True: click would otherwise strip what looks like colour codes from the data
        click.echo(text, nl=nl, color=True)


class UserError(click.ClickException):
    """A failure the user caused or can fix; printed as one sentence, exit 1."""

    def show(self, file: Any = None) -> None:
        echo(f"Error: {self.format_message()}", err=True)


class Interrupted(UserError):
    """Ctrl-C: the transactions already committed stay, the one under way is rolled back."""

    exit_code = 130


def _store_problem(exc: sqlite3.Error, db_path: str | None) -> str | None:
    """One sentence for what SQLite says when the store file (not the code) is at fault."""
    store = f"The review store {db_path}" if db_path else "The review store"
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return (f"{store} is busy: another cluster command is writing to it; run this one "
                f"again when it has finished.")
    if "readonly" in text or "read-only" in text:
        return (f"{store} is read-only: check the permissions of the file and of its folder, "
                f"or work on a copy.")
    if "disk is full" in text:
        return (f"The disk holding {db_path or 'the review store'} is full; nothing of the step "
                f"under way was written: free some space and run the command again.")
    if "malformed" in text or "not a database" in text:
        return f"{store} is damaged ({exc}): restore it from a backup or a copy."
    if "unable to open" in text or "disk i/o" in text:
        return (f"{store} cannot be opened ({exc}): check that its folder exists and that you "
                f"may write to it.")
    return None


def handle_errors(fn: Callable) -> Callable:
    """Turn the library's named exceptions, and trouble with files, into a one-sentence error."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ClusterError as exc:
            raise UserError(str(exc)) from None
        except KeyboardInterrupt:
            raise Interrupted("Interrupted: the steps already finished are saved and nothing "
                              "half-done was kept; run the command again to go on.") from None
        except sqlite3.Error as exc:
            message = _store_problem(exc, kwargs.get("db_path"))
            if message is None:
                raise
            raise UserError(message) from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                what = f"; {exc.filename} was not written" if exc.filename else ""
                raise UserError(f"The disk is full{what}: free some space and run the command "
                                f"again.") from None
            # only a file the user named or owns; network errors are the connectors' to word
            if exc.filename is None or not exc.strerror:
                raise
            raise UserError(f"Cannot use {exc.filename} ({exc.strerror}): check that it exists "
                            f"and that you may read or write it.") from None

    wrapper.handles_errors = True  # type: ignore[attr-defined]  # checked for every command
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


@contextlib.contextmanager
def store_for(db_path: str, create: bool = False) -> Iterator[Store]:
    """The review store for one command, closed when the block ends, however it ends.

    Closing folds the write-ahead log back into the file and lets the next
    command in the same process (a script, a test) open the store afresh.
    """
    from db.store import open_store

    store = open_store(db_path, create=create)
    try:
        yield store
    finally:
        store.close()


class Bar:
    """The progress callback every long command hands the library: a bar on stderr.

    The library calls it as progress(done, total[, what]); `stage` takes
    (stage, done, total) and starts a fresh bar for each stage. With --quiet it
    draws nothing. Use it as a context manager so the last bar is closed.
    """

    def __init__(self, quiet: bool, label: str = "", unit: str | None = None):
        self.quiet = quiet
        self.label = label
        self.unit = unit  # given: the bar also shows the rate, e.g. "1,200 records/s"
        self.bar: Any = None
        self.pos = 0
        self.started = 0.0
        self.current_stage: str | None = None

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None

    def __call__(self, done: int, total: int, *_: Any) -> None:
        if self.quiet:
            return
        if self.bar is None:
            self.started = time.monotonic()
            self.bar = click.progressbar(length=max(total, 1), label=self.label, file=sys.stderr,
                                         show_pos=True,
                                         item_show_func=self._rate if self.unit else None
                                         ).__enter__()
            self.pos = 0
        elif total != self.bar.length:
            self.bar.length = max(total, 1)  # an estimate that moves (an import's, from bytes)
        self.bar.update(max(0, done - self.pos))
        self.pos = done

    def _rate(self, _item: Any) -> str | None:
        spent = time.monotonic() - self.started
        return f"{self.pos / spent:,.0f} {self.unit}/s" if spent > 0 and self.pos else None

    def stage(self, stage: str, done: int, total: int) -> None:
        if stage != self.current_stage:
            self._close()
            self.current_stage, self.label = stage, f"{stage:<8}"
        self(done, total)


def echo_json(obj: Any) -> None:
    click.echo(dumps(obj))


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from base.version import version

        echo(f"cluster, version {version()}")
        ctx.exit()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_version, help="Show the version and exit.")
def cli() -> None:
    """cluster: find, deduplicate, screen and report the records of a literature review.

    Start from a few index articles, expand them the CLUSTER way, deduplicate,
    screen with two blind reviewers, and report PRISMA 2020 numbers.

    Example: cluster demo
    """


@cli.command()
@db_option
@json_option
@handle_errors
def init(db_path: str, as_json: bool) -> None:
    """Create a review store (or check an existing one).

    Example: cluster init --db review.db
    """
    with store_for(db_path, create=True) as store:
        if as_json:
            echo_json({"db": db_path, "review_id": store.review_id})
        else:
            echo(f"Review store ready at {db_path} (review {store.review_id}).")


# --- reviewers ------------------------------------------------------------------


@cli.group()
def reviewers() -> None:
    """Manage the review team.

    Example: cluster reviewers add alice
    """


@reviewers.command("add")
@click.argument("names", nargs=-1, required=True)
@click.option("--role", default="reviewer", show_default=True,
              help="A label for what the person does in the team (e.g. reviewer, arbiter, "
                   "checker), shown by `reviewers list`; it does not change what they may do.")
@db_option
@json_option
@handle_errors
def reviewers_add(names: tuple[str, ...], role: str, db_path: str, as_json: bool) -> None:
    """Add reviewers by name.

    Example: cluster reviewers add alice bob
    """
    with store_for(db_path, create=True) as store:
        with store.transaction():
            for name in names:
                store.add_reviewer(name, role)
        if as_json:
            echo_json([{"name": n, "role": r} for n, r in store.reviewer_roles().items()])
        else:
            echo(f"Reviewers: {', '.join(store.reviewer_names())}")


@reviewers.command("list")
@db_option
@json_option
@handle_errors
def reviewers_list(db_path: str, as_json: bool) -> None:
    """List reviewers.

    Example: cluster reviewers list --json
    """
    with store_for(db_path, create=True) as store:
        team = store.reviewer_roles()
        if as_json:
            echo_json([{"name": name, "role": role} for name, role in team.items()])
        else:
            for name, role in team.items():
                echo(name if role == "reviewer" else f"{name} ({role})")


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
@click.option("--stopping-rule", type=click.Choice(["hypergeometric", "consecutive"]),
              help="The rule `cluster status` reports first and `cluster stop` applies: "
                   "hypergeometric (statistical, with --target-recall) or consecutive "
                   "(N excludes in a row, with --consecutive-excludes).")
@click.option("--target-recall", type=float, help="Target recall for the statistical stopping rule.")
@click.option("--consecutive-excludes", type=int, help="N for the consecutive-excludes heuristic.")
@click.option("--review-type", type=click.Choice(["new", "update"]),
              help="new (default): index articles are included studies identified another way, "
                   "counted with other methods; update: they are the previous review's studies.")
@db_option
@handle_errors
def protocol_set(question, include_terms, exclude_terms, reasons, reviewers_per_record,
                 stopping_rule, target_recall, consecutive_excludes, review_type,
                 db_path) -> None:
    """Change the protocol; each change is logged with its date.

    Example: cluster protocol set --question "compassion training for health staff" --include-terms "compassion,empathy"
    """
    from db.protocol import set_protocol

    def split(text, sep=","):
        return None if text is None else [t for t in text.split(sep)]

    with store_for(db_path, create=True) as store:
        new = set_protocol(
            store, question=question, include_terms=split(include_terms),
            exclude_terms=split(exclude_terms), exclusion_reasons=split(reasons, ";"),
            reviewers_per_record=reviewers_per_record, stopping_rule=stopping_rule,
            target_recall=target_recall, consecutive_excludes=consecutive_excludes,
            review_type=review_type,
        )
    echo_json(new.to_dict())


@protocol.command("show")
@db_option
@handle_errors
def protocol_show(db_path: str) -> None:
    """Print the protocol in force, as JSON.

    Example: cluster protocol show
    """
    from db.protocol import get_protocol

    with store_for(db_path, create=True) as store:
        echo_json(get_protocol(store).to_dict())


# === import / export =====================================================

from db.events import KINDS as EVENT_KINDS, ROLES, STAGE_LABELS, STAGES, TITLE_ABSTRACT  # noqa: E402  (kept with the commands that use them)


def search_details_options(fn: Callable) -> Callable:
    """The PRISMA-S details of a search, shared by `import` and `searches edit`."""
    for option in reversed((
            click.option("--platform", metavar="NAME",
                         help="Platform or interface the database was searched on, e.g. Ovid."),
            click.option("--searched", metavar="DATE",
                         help="Date the search was run (YYYY-MM-DD), not the import date."),
            click.option("--query-file", type=click.Path(dir_okay=False), metavar="FILE",
                         help="Text file holding the full search strategy as run."),
            click.option("--limits", metavar="TEXT",
                         help='Limits applied in the database, e.g. "English; 2000-current".'))):
        fn = option(fn)
    return fn


def _search_details(platform: str | None, searched: str | None, query_file: str | None,
                    limits: str | None) -> Any:
    from db.searches import check_details, read_query_file

    query = read_query_file(query_file) if query_file else None
    return check_details(platform=platform, searched=searched, query=query, limits=limits)


@cli.command("import")
@click.argument("files", nargs=-1, required=True)
@click.option("--as", "role", type=click.Choice(ROLES),
              default="database", show_default=True,
              help="What the records are for PRISMA: index articles, a database search, other methods.")
@click.option("--source", default=None,
              help="Name of the service or tool the file came from (default: the file name).")
@click.option("--labels-reviewer", default=None, metavar="NAME",
              help="Keep screening labels found in the file as decisions by this reviewer.")
@search_details_options
@db_option
@json_option
@quiet_option
@handle_errors
def import_(files: tuple[str, ...], role: str, source: str | None, labels_reviewer: str | None,
            platform: str | None, searched: str | None, query_file: str | None,
            limits: str | None, db_path: str, as_json: bool, quiet: bool) -> None:
    """Import reference files: RIS, BibTeX, MEDLINE/.nbib, EndNote XML, Web of Science, CSV/TSV, PMID/DOI lists.

    The format is read from each file's content. Each file becomes one logged
    search; a file already imported into this store is skipped. A database
    export can carry its PRISMA-S details: the platform, the date the search
    was run, the full strategy and the limits (add or correct them later with
    `cluster searches edit`).

    Example: cluster import embase.ris --as database --source Embase --platform Ovid --searched 2025-05-01 --query-file embase.txt --limits "English; 2000-current"
    """
    from db.formats import import_files

    details = _search_details(platform, searched, query_file, limits)
    with store_for(db_path, create=True) as store:
        with Bar(quiet or as_json or not sys.stderr.isatty(), "Importing", unit="records") as bar:
            results = import_files(store, list(files), role=role, source=source,
                                   labels_reviewer=labels_reviewer, progress=bar,
                                   details=details)
        if as_json:
            echo_json([r.to_dict() for r in results])
            return
        for r in results:
            for w in r.warnings:
                echo(f"Warning: {w}", err=True)
            if r.already_imported:
                echo(f"{r.file_name}: already imported into this store; nothing added.")
            else:
                labels = f", {r.n_labels} labels kept as decisions" if r.n_labels else ""
                held = f" of {r.n_in_file} in the file" if r.n_in_file > r.n_read else ""
                echo(f"{r.file_name}: {r.n_read} records read{held} ({r.format}), "
                     f"{r.n_added} added{labels} (search {r.search_id}).")


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["ris", "bibtex", "csv", "jsonl", "asreview"]),
              required=True, help="Output format; asreview is the CSV layout ASReview LAB reads.")
@click.option("--stage", type=click.Choice(STAGES),
              default=TITLE_ABSTRACT, show_default=True, help="Screening stage whose decisions to show.")
@click.option("--decision", type=click.Choice(["include", "exclude", "conflict", "partial", "undecided"]),
              default=None, help="Only records whose decision at --stage is this: include and "
                                 "exclude are final decisions (every reviewer the protocol asks for, "
                                 "or a resolution); partial: only some reviewers have decided.")
@click.option("--all", "include_duplicates", is_flag=True,
              help="Also export records marked as duplicates.")
@click.option("-o", "--output", type=OUTPUT_FILE, default=None,
              help="Write to this file instead of standard output (- for standard output).")
@db_option
@handle_errors
def export(fmt: str, stage: str, decision: str | None, include_duplicates: bool,
           output: str | None, db_path: str) -> None:
    """Export records with their decisions, reasons and notes.

    Example: cluster export --format ris --decision include -o included.ris
    """
    from base.output import write_file
    from db.files import store_files
    from db.formats import export_records

    with store_for(db_path) as store:
        result = export_records(store, fmt, stage=stage, decision=decision,
                                include_duplicates=include_duplicates)
        if output in (None, "-"):
            for piece in result.chunks():  # written as read: a large store is never held whole
                echo_document(piece)
            return

        def write(fh: Any) -> None:
            for piece in result.chunks():
                fh.write(piece.encode("utf-8"))

        write_file(output, write, store_files(db_path))
        echo(f"Exported {result.n_records} records to {output} ({fmt}).", err=True)



# === connectors ==========================================================


def connector_settings(db_path: str):
    """Settings from the environment, with the HTTP cache beside the store."""
    from connectors.http import Settings
    from db.files import http_cache_path

    return Settings.from_env(os.environ, cache_path=http_cache_path(db_path))


class Countdown:
    """A wait before a retry, counted down on stderr; where stderr is not a terminal, one
    line when the wait starts."""

    def __init__(self) -> None:
        self.waiting = False

    def __call__(self, what: str, left: float) -> None:
        seconds = math.ceil(left)
        if sys.stderr.isatty():
            line = f"{what} in {seconds} s" if seconds > 0 else ""
            click.echo(f"\r\x1b[K{visible(line)}", err=True, nl=False)
        elif seconds > 0 and not self.waiting:
            echo(f"{what} in {seconds} s.", err=True)
        self.waiting = seconds > 0


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
    from connectors.metadata import fetch_by_ids, fill_needs_metadata
    from connectors.services import connect

    if not (pmids or dois or fill):
        raise UserError("Nothing to fetch: give --pmid, --doi or --fill.")
    with connect(connector_settings(db_path), on_wait=Countdown()) as services, \
            Bar(quiet, "Fetching") as progress:
        if fill:
            with store_for(db_path) as store:
                done = fill_needs_metadata(store, services, progress=progress)
            if as_json:
                echo_json(done.to_dict())
            else:
                echo(f"Completed {done.filled} record(s); {done.remaining} still need "
                           f"metadata.")
                _echo_problems(done.missing, done.failed, list(done.notes))
            return
        got = fetch_by_ids(services, pmids=pmids, dois=dois, progress=progress)
    if as_json:
        echo_json(got.to_dict())
        return
    for r in got.records:
        ident = f"PMID {r.pmid}" if r.pmid else f"doi:{r.doi}"
        authors = (r.authors[0] + (" et al." if len(r.authors) > 1 else "")) if r.authors else ""
        echo(f"{ident}  {authors} ({r.year or 'n.d.'}) {r.title or ''}"
                   f"{'  ' + r.journal if r.journal else ''}")
    _echo_problems(got.missing, got.failed, [])


def _echo_problems(missing, failed, notes) -> None:
    for ident in missing:
        echo(f"Not found: {ident}", err=True)
    for ident, why in dict(failed).items():
        echo(f"Failed: {ident}: {why}", err=True)
    for note in notes:
        echo(note, err=True)


# === expand, searches, contacts, find =====================================


def _connect(db_path: str):
    from connectors.services import connect

    return connect(connector_settings(db_path), on_wait=Countdown())


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

    with store_for(db_path, create=True) as store, _connect(db_path) as services:
        added = add_index_articles(store, services, pmids=pmids, dois=dois)
    if as_json:
        echo_json([a.to_dict() for a in added])
        return
    for a in added:
        echo(f"{'added' if a.new else 'already in the store'}: #{a.record_id} "
                   f"{a.identifier} ({a.service}) {a.title or ''}")
    echo(f"{len(added)} index article(s); run `cluster expand` next.")


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
    with store_for(db_path, create=True) as store, _connect(db_path) as services, \
            Bar(quiet, "Expanding") as progress:
        report = expand(store, services, options, progress=progress)
    if report.offline and not as_json:
        # every failure is the same missing network: one sentence, not one per search
        echo(f"Error: {report.offline}", err=True)
        sys.exit(3)
    if as_json:
        echo_json(report.to_dict())
    else:
        echo(_table(report.table(), ["strategy", "service", "searches", "found", "kept", "new",
                                           "already_done", "failed"]))
    for r in report.results:
        if r.warning:
            echo(f"Note: {r.strategy} for index article {r.seed_label}: {r.warning}", err=True)
    for f in report.failures:
        echo(f"Failed: {f.strategy} via {SERVICE_LABELS[f.service]} for index article "
                   f"{f.seed_label}: {f.error}", err=True)
    if report.failures:
        echo(f"Error: {len(report.failures)} search(es) failed; the others are saved: run "
                   f"`cluster expand` again to retry them.", err=True)
        sys.exit(3)


def _cell(value: Any) -> str:
    return "" if value is None else visible(str(value), keep="")


def _table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    if not rows:
        return "(nothing)"
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols),
             "  ".join("-" * widths[c] for c in cols)]
    lines += ["  ".join(_cell(r.get(c)).ljust(widths[c]) for c in cols).rstrip() for r in rows]
    return "\n".join(lines)


@cli.group("searches", invoke_without_command=True)
@db_option
@json_option
@click.option("--markdown", "as_markdown", is_flag=True, help="A methods appendix in Markdown.")
@click.pass_context
@handle_errors
def searches_cmd(ctx: click.Context, db_path: str, as_json: bool, as_markdown: bool) -> None:
    """Show the search log (PRISMA-S): every query and import, with results and limits.

    Without a subcommand, the log; `relabel`, `remove` and `edit` change one
    search, each change a logged event.

    Example: cluster searches --markdown > search-methods.md
    """
    from cluster.searchlog import markdown
    from db.searches import search_view

    if ctx.invoked_subcommand is not None:
        return
    with store_for(db_path) as store:
        rows_all = search_view(store)
        text = markdown(store) if as_markdown else ""
    if as_json:
        for r in rows_all:
            r.pop("uuid", None)
        echo_json(rows_all)
    elif as_markdown:
        echo_document(text, nl=True)
    else:
        rows = [{"id": r["id"], "searched": (r["searched"] or "not recorded")[:16],
                 "role": r["role"] or "", "source": r["source"] or r["kind"],
                 "platform": r["platform"] or "", "strategy": r["strategy"] or "",
                 "seed": r["seed_record_id"] or "",
                 "query": (r["query"] or r["file_name"] or "")[:50],
                 "found": r["n_found"], "kept": r["n_kept"], "new": r["n_added"],
                 "status": r["status"]}
                for r in rows_all]
        echo(_table(rows, ["id", "searched", "role", "source", "platform", "strategy", "seed",
                           "query", "found", "kept", "new", "status"]))


def _changed(store: Any, search_id: int, event_id: str, what: str, as_json: bool) -> None:
    from db.searches import search_view

    if as_json:
        row = next(r for r in search_view(store) if r["id"] == search_id)
        row.pop("uuid", None)
        echo_json({"event_id": event_id, "search": row})
    else:
        echo(f"{what} (event {event_id}).")


@searches_cmd.command("relabel")
@click.argument("search_id", type=int)
@click.option("--as", "role", type=click.Choice(ROLES), default=None,
              help="The PRISMA row the search's records belong to.")
@click.option("--source", default=None, help="The name the source is reported under.")
@click.option("--reviewer", default=None, help="Who made the change (kept in the log).")
@db_option
@json_option
@handle_errors
def searches_relabel_cmd(search_id: int, role: str | None, source: str | None,
                         reviewer: str | None, db_path: str, as_json: bool) -> None:
    """Move a search to the right PRISMA row or source name (logged; can be undone).

    Example: cluster searches relabel 4 --as website --source "WHO website"
    """
    from db.searches import relabel_search, search_view

    with store_for(db_path) as store:
        eid = relabel_search(store, search_id, role=role, source=source, reviewer=reviewer)
        row = next(r for r in search_view(store) if r["id"] == search_id)
        _changed(store, search_id, eid, f"Search {search_id} is now {row['role']}: "
                                        f"{row['source']}", as_json)


@searches_cmd.command("remove")
@click.argument("search_id", type=int)
@click.option("--reviewer", default=None, help="Who made the change (kept in the log).")
@db_option
@json_option
@handle_errors
def searches_remove_cmd(search_id: int, reviewer: str | None, db_path: str,
                        as_json: bool) -> None:
    """Take a search out of the review (logged; can be undone).

    Records that only this search found leave the PRISMA flow; decisions about
    them stay in the log.

    Example: cluster searches remove 4
    """
    from db.searches import remove_search

    with store_for(db_path) as store:
        eid = remove_search(store, search_id, reviewer=reviewer)
        _changed(store, search_id, eid, f"Search {search_id} is removed from the flow", as_json)


@searches_cmd.command("edit")
@click.argument("search_id", type=int)
@search_details_options
@click.option("--reviewer", default=None, help="Who made the change (kept in the log).")
@db_option
@json_option
@handle_errors
def searches_edit_cmd(search_id: int, platform: str | None, searched: str | None,
                      query_file: str | None, limits: str | None, reviewer: str | None,
                      db_path: str, as_json: bool) -> None:
    """Add or correct a search's platform, date searched, strategy or limits (logged).

    Example: cluster searches edit 3 --platform Ovid --searched 2025-05-01 --query-file embase.txt
    """
    from db.searches import edit_search

    details = _search_details(platform, searched, query_file, limits)
    with store_for(db_path) as store:
        eid = edit_search(store, search_id, details, reviewer=reviewer)
        _changed(store, search_id, eid, f"Search {search_id}: {', '.join(details.given())} "
                                        f"recorded", as_json)


@cli.group("search")
def search_group() -> None:
    """Database searches run from the store and logged the PRISMA-S way (PubMed).

    Example: cluster search pubmed '"compassion"[tiab] AND training[tiab]' --from 2000
    """


def _echo_search_warnings(warnings: Sequence[str]) -> None:
    for w in warnings:
        echo(f"Warning: {w}", err=True)


@search_group.command("pubmed")
@click.argument("query")
@click.option("--from", "date_from", metavar="DATE",
              help="Earliest publication date: YYYY, YYYY/MM or YYYY/MM/DD.")
@click.option("--to", "date_to", metavar="DATE", help="Latest publication date, likewise.")
@click.option("--filter", "filters", multiple=True, metavar="CLAUSE",
              help="A PubMed clause ANDed to the query and logged as a limit, e.g. "
                   "'english[lang]' (repeatable).")
@click.option("--count-only", is_flag=True, help="Only say how many records PubMed finds; "
                                                  "fetch and log nothing.")
@db_option
@json_option
@quiet_option
@handle_errors
def search_pubmed_cmd(query: str, date_from: str | None, date_to: str | None,
                      filters: tuple[str, ...], count_only: bool, db_path: str, as_json: bool,
                      quiet: bool) -> None:
    """Search PubMed and add the records found, logged as a database search.

    The log keeps the query as typed, PubMed's translation of it, the count,
    the limits and the date and time of the search; PubMed's warnings (a
    phrase not found, an unknown field tag, no records) are shown. Rerun it
    later with `cluster search rerun ID`.

    Example: cluster search pubmed 'compassion[tiab] AND nurs*[tiab]' --from 2010 --filter 'english[lang]'
    """
    from cluster.dbsearch import count_pubmed, search_pubmed

    if count_only:
        with _connect(db_path) as services:
            counted = count_pubmed(services, query, date_from=date_from, date_to=date_to,
                                   filters=filters)
        _echo_search_warnings(counted.warnings)
        if as_json:
            echo_json({"query": counted.query, "translation": counted.translation,
                       "count": counted.count})
            return
        echo(f"PubMed: {counted.count:,} records (searched as: {counted.translation or query}); "
             f"nothing fetched or logged.")
        return
    with store_for(db_path, create=True) as store, _connect(db_path) as services, \
            Bar(quiet or as_json, "Fetching") as progress:
        run = search_pubmed(store, services, query, date_from=date_from, date_to=date_to,
                            filters=filters, progress=progress)
    _echo_search_run(run, as_json)


def _echo_search_run(run: Any, as_json: bool) -> None:
    _echo_search_warnings(run.warnings)
    if as_json:
        echo_json(run.to_dict())
        return
    again = f"rerun of search {run.rerun_of}: " if run.rerun_of else ""
    echo(f"Search {run.search_id} ({again}PubMed): {run.count:,} records found, "
         f"{run.new_to_search:,} new to this search, {run.fetched:,} fetched, {run.added:,} "
         f"new to the store.")
    echo(f"Searched as: {run.translation or run.query}")


@search_group.command("rerun")
@click.argument("search_id", type=int)
@db_option
@json_option
@quiet_option
@handle_errors
def search_rerun_cmd(search_id: int, db_path: str, as_json: bool, quiet: bool) -> None:
    """Run a logged PubMed search again and add only the records it did not find before.

    The rerun is logged as its own search (for the update of a review).

    Example: cluster search rerun 12
    """
    from cluster.dbsearch import rerun_search

    with store_for(db_path) as store, _connect(db_path) as services, \
            Bar(quiet or as_json, "Fetching") as progress:
        run = rerun_search(store, services, search_id, progress=progress)
    _echo_search_run(run, as_json)


@cli.command("contacts")
@click.option("-o", "--output", type=OUTPUT_FILE, help="Write the contacts as CSV.")
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
    from db.files import store_files

    if log_name is not None and not status:
        raise UserError("--log needs --status sent, replied or no-reply.")
    if log_name is None and (status or email or note):
        raise UserError("--status, --email and --note go with --log NAME (the author contacted).")
    with store_for(db_path) as store:
        if log_name is not None and status:  # --status is required with --log, checked above
            data = log_contact(store, log_name, status, email=email, note=note)
            echo(f"Logged: {data['author']} {status}.")
            return
        rows = contacts(store)
    if output:
        write_csv(rows, output, store_files(db_path))
        echo(f"{len(rows)} contacts written to {output}.")
    elif as_json:
        echo_json([r.to_dict() for r in rows])
    else:
        echo(_table([{**r.__dict__, "title": r.title[:40]} for r in rows],
                          ["record_id", "role", "name", "email", "affiliation", "status"]))


@cli.command("find")
@click.argument("query", required=False)
@click.option("--tag", "tag_value", help="Tag every record found (a `tag` event), e.g. theory.")
@click.option("--reviewer", help="Who tags (with --tag).")
@click.option("--limit", type=int, help="Show at most this many records.")
@click.option("--list-tags", is_flag=True, help="List the tags in use instead (as `cluster tags`).")
@db_option
@json_option
@handle_errors
def find_cmd(query: str | None, tag_value: str | None, reviewer: str | None, limit: int | None,
             list_tags: bool, db_path: str, as_json: bool) -> None:
    """Full-text search of titles and abstracts (to find theories and frameworks).

    QUERY is read as you would type it: words (self-compassion), "quoted
    phrases", prefix*, AND, OR and NOT in capitals, and parentheses; words side
    by side must all match; title: or abstract: limits a word to that field.

    Example: cluster find '"normalisation process theory" OR realist' --tag theory
    """
    if list_tags:
        if query is not None or tag_value is not None:
            raise UserError("--list-tags lists the tags in use: give it without a query or --tag.")
        _echo_tags(db_path, as_json)
        return
    if query is None:
        raise UserError("Give a query to search for, e.g. cluster find self-compassion, or "
                        "--list-tags.")
    from cluster.find import find, tag

    with store_for(db_path) as store:
        hits = find(store, query, limit=limit)
        n_tagged = tag(store, hits, tag_value, reviewer=reviewer) if tag_value else 0
    if as_json:
        echo_json({"hits": [h.to_dict() for h in hits], "tagged": n_tagged})
        return
    for h in hits:
        echo(f"#{h.record_id}  {h.year or ''}  {h.title or ''}")
        echo(f"    {h.snippet}")
    echo(f"{len(hits)} record(s)" + (f"; {n_tagged} newly tagged {tag_value!r}." if tag_value else "."))


@cli.command("tags")
@db_option
@json_option
@handle_errors
def tags_cmd(db_path: str, as_json: bool) -> None:
    """List the tags in use (from `cluster find --tag`), each with its number of records.

    Example: cluster tags --json
    """
    _echo_tags(db_path, as_json)


def _echo_tags(db_path: str, as_json: bool) -> None:
    from db.tags import tag_counts

    with store_for(db_path) as store:
        counts = tag_counts(store)
    if as_json:
        echo_json([{"tag": t, "records": n} for t, n in counts])
        return
    if not counts:
        echo("No tags yet: tag records with cluster find QUERY --tag NAME.")
        return
    width = max(len(t) for t, _ in counts)
    for t, n in counts:
        echo(f"{t:<{width}}  {n} record{'s' if n != 1 else ''}")


# === dedup ===============================================================


@cli.command()
@click.option("--review", is_flag=True,
              help="Decide grey-zone pairs side by side (fields, abstract, the sources that "
                   "found each), one keypress each.")
@click.option("--export-pairs", "export_csv", type=OUTPUT_FILE,
              help="Write the pairs waiting for review to this CSV (fill its decision column).")
@click.option("--import-pairs", "import_csv", type=click.Path(dir_okay=False),
              help="Apply the decisions (same/different/skip) of a CSV written by --export-pairs.")
@click.option("--undo", "undo_id", metavar="MERGE_ID",
              help="Split a merge again (logged as an undo of the merge, as `cluster undo` does).")
@click.option("--list", "list_merges", is_flag=True,
              help="List the merges that stand: merge id, canonical record, members, score, "
                   "rule, who and when.")
@click.option("--reviewer", help="Who is deciding (a reviewer of the team; recorded on the events).")
@db_option
@json_option
@quiet_option
@handle_errors
def dedup(review: bool, export_csv: str | None, import_csv: str | None, undo_id: str | None,
          list_merges: bool, reviewer: str | None, db_path: str, as_json: bool,
          quiet: bool) -> None:
    """Find and merge duplicate records; uncertain pairs wait for a person.

    Nothing is deleted: a duplicate points at the record that stands for the
    work (its sources stay), and each merge is an event you can undo. Only
    records added since the last run are compared with the rest.

    Example: cluster dedup && cluster dedup --review
    """
    from cluster.dedup.apply import run_dedup, undo_merge
    from cluster.dedup.review import export_pairs, import_pairs, review_session

    # an empty value ("--undo ''") still names a mode: it must not fall through to a full run
    modes = [m for m in (review or None, export_csv, import_csv, undo_id, list_merges or None)
             if m is not None]
    if len(modes) > 1:
        raise UserError("Use one of --review, --export-pairs, --import-pairs, --undo and --list "
                        "at a time.")
    with store_for(db_path, create=True) as store:
        if reviewer is not None:
            store.require_reviewer(reviewer)
        if list_merges:
            _print_merges(store, as_json)
            return
        if undo_id is not None:
            out = undo_merge(store, undo_id, reviewer=reviewer)
            if as_json:
                echo_json(out)
            else:
                echo(f"Merge {undo_id} undone: records {', '.join(map(str, out['restored']))} "
                           f"stand apart from record {out['canonical']} again.")
            return
        if export_csv is not None:
            n = export_pairs(store, export_csv)
            if as_json:
                echo_json({"exported": n, "path": export_csv})
            else:
                echo(f"{n} pairs written to {export_csv}: fill the decision column with same, "
                           f"different or skip, then run cluster dedup --import-pairs {export_csv}.")
            return
        if import_csv is not None:
            counts = import_pairs(store, import_csv, reviewer=reviewer)
            if as_json:
                echo_json(counts)
            else:
                echo(f"{counts['same']} pairs merged, {counts['different']} kept apart, "
                           f"{counts['skipped']} skipped; {counts['left']} pairs left for review.")
            return
        if review:
            if not (sys.stdin.isatty() and sys.stdout.isatty()):
                raise UserError("--review needs an interactive terminal: use --export-pairs CSV, "
                                "decide in the file, then --import-pairs CSV.")
            width = min(140, shutil.get_terminal_size((100, 24)).columns)
            counts = review_session(store, click.getchar, echo, reviewer=reviewer, width=width)
            echo(f"{counts['same']} merged, {counts['different']} kept apart, "
                       f"{counts['skip']} skipped; {counts['left']} pairs left for review.")
            return
        with Bar(quiet) as bar:
            summary = run_dedup(store, progress=None if quiet else bar.stage)
        if as_json:
            echo_json(summary.to_dict())
            return
        if summary.records_in == 0:
            echo("The store has no records to deduplicate: import or expand some first.")
            return
        echo(f"Records in: {summary.records_in} ({summary.new_records} new since the last run)")
        if summary.new_records:
            echo(f"Records normalised: {summary.records_prepared} "
                       f"({summary.records_reused} reused from earlier runs)")
        echo(f"Pairs compared: {summary.pairs_compared}")
        echo(f"Clusters merged: {summary.clusters}")
        echo(f"Duplicates marked: {summary.duplicates_marked}")
        echo(f"Pairs left for review: {summary.pairs_for_review}"
                   + (" (cluster dedup --review)" if summary.pairs_for_review else ""))
        if summary.records_without_title:
            echo(f"Records without a title: {summary.records_without_title} "
                       f"(matched on identifiers and citation details only)")


def _print_merges(store: Store, as_json: bool) -> None:
    from cluster.dedup.apply import list_merges

    merges = list_merges(store)
    if as_json:
        echo_json([m.to_dict() for m in merges])
        return
    for m in merges:
        # two lines: a merge id alone nearly fills 80 columns
        others = [r for r in m.members if r != m.canonical]
        score = "" if m.score is None else f", score {m.score:.3f}"
        echo(f"merge {m.merge_id}")
        echo(f"  record {m.canonical} <- {', '.join(map(str, others))}  ({m.rule or 'unspecified'}"
             f"{score}; {m.reviewer or 'dedup run'} {m.ts[:16].replace('T', ' ')})")
    echo(f"{len(merges)} merge{'s' if len(merges) != 1 else ''} stand"
         f"{'s' if len(merges) == 1 else ''}" + (": split one with cluster dedup --undo MERGE_ID."
                                                  if merges else "."))


# === prioritisation, status, stop, simulate ===============================


@cli.command("status")
@click.option("--stage", type=click.Choice(STAGES), default=TITLE_ABSTRACT,
              show_default=True,
              help="The stage to report: progress and stopping rules at title-abstract, "
                   "retrieval and assessment at full text.")
@click.option("--estimate", is_flag=True,
              help="Also estimate the relevant records left (title-abstract): loads the "
                   "prioritiser, seconds on a large store.")
@db_option
@json_option
@handle_errors
def status_cmd(stage: str, estimate: bool, db_path: str, as_json: bool) -> None:
    """Screening progress. At title-abstract: screened / total, includes found,
    whether each stopping rule is met and, with --estimate, the relevant
    records left. At full text: reports retrieved and assessed (stopping rules
    apply at title-abstract only).

    Example: cluster status --stage title-abstract --estimate --json
    """
    from screeners.stopping import fulltext_progress, status

    with store_for(db_path) as store:
        if stage != TITLE_ABSTRACT:
            ft = fulltext_progress(store)
            if as_json:
                echo_json(ft.to_dict())
                return
            echo(f"Stage {stage}: {ft.sought} reports sought: {ft.retrieved} retrieved, "
                 f"{ft.not_retrieved} not retrieved, {ft.awaiting_retrieval} awaiting retrieval")
            echo(f"Reports assessed: {ft.included} included, {ft.excluded} excluded, "
                 f"{ft.conflicts} in conflict, {ft.partly_assessed} decided by some "
                 f"reviewers, {ft.awaiting_assessment} awaiting assessment")
            return
        estimator: Callable[[Store, str], float | None] | None = None
        if estimate:
            # the model is imported (and fitted) only when an estimate is asked for
            from screeners.prioritise import estimate_relevant_left
            estimator = estimate_relevant_left
        st = status(store, stage, estimator)
        if as_json:
            echo_json(st.to_dict())
            return
        echo(f"Stage {st.stage}: {st.screened} / {st.total} screened "
                   f"({st.final} final, {st.pending} not yet seen)")
        echo(f"Includes found: {st.includes_found}")
        left = st.estimated_relevant_left
        echo("Estimated relevant records left: "
             + ("not estimated (add --estimate)" if not st.estimated
                else "unknown (no include yet)" if left is None else f"{left:.1f}"))
        for name, r in st.rules.items():
            mark = "in force" if name == st.rule_in_force else "also"
            echo(f"Stopping rule {name} ({mark}): {'MET' if r.met else 'not met'}: {r.explanation}")


@cli.command("stop")
@click.option("--rule", type=click.Choice(["hypergeometric", "consecutive"]), required=True,
              help="The stopping rule that justifies stopping.")
@click.option("--stage", type=click.Choice(STAGES), default=TITLE_ABSTRACT,
              show_default=True, help="The stage to stop screening at.")
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

    with store_for(db_path) as store:
        out = apply_stop(store, stage, rule, force, reviewer)
        if as_json:
            echo_json(out.to_dict())
            return
        echo(f"Marked {out.marked} unscreened records as excluded by the {out.rule} rule"
                   f"{' (forced)' if out.forced else ''}: {out.result.explanation}.")
        if out.batch:
            echo(f"To take them all back: cluster undo {out.batch}")


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
@click.option("--plot", "plot_paths", type=click.Path(dir_okay=False), multiple=True,
              help="Write the recall curve(s) to a .png or .svg file (repeatable: "
                   "--plot recall.png --plot recall.svg).")
@json_option
@quiet_option
@handle_errors
def simulate_cmd(dataset: str, model: str, seed: int, repeat: int, order_out: str | None,
                 plot_paths: tuple[str, ...], as_json: bool, quiet: bool) -> None:
    """Replay a labelled dataset as ASReview's simulate does: one prior include
    and one exclude chosen by the seed, then the model picks every next record.
    Prints WSS@95, WSS@100, RRF@10, recall at 10/20/50 % and time to discovery,
    as asreview-insights computes them (the prior records left out).

    DATASET is a CSV/TSV file with record_id, title, abstract and a 0/1
    label_included (or ASReview's included) column, or a RIS file whose every
    record is labelled by an ASReview_relevant or ASReview_irrelevant note, as
    ASReview exports them. The other formats cluster import reads (MEDLINE,
    BibTeX, EndNote XML, Web of Science) carry no labels and are refused.

    Example: cluster simulate data.ris --repeat 5 --plot recall.png --plot recall.svg
    --order-out order.txt
    """
    from base.output import check_output_path, write_file
    from db.files import store_files
    from screeners.prioritiser.simulation import check_plot_path, load_dataset, plot_recall, simulate

    # no store is opened, but the one the other commands would use must survive a typo
    protect: list[tuple[str | Path, str]] = [
        *store_files(os.environ.get("CLUSTER_DB") or DEFAULT_DB),
        (dataset, f"the dataset {dataset}")]
    for p in (*plot_paths, *([order_out] if order_out else [])):
        check_output_path(p, protect)  # before the simulation, not after it
    for p in plot_paths:
        check_plot_path(p)
    ds = load_dataset(dataset)
    for w in ds.warnings:
        echo(f"Warning: {w}", err=True)
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
        write_file(order_out, "".join(f"{r}\n" for r in summary.runs[0].prior
                                      + summary.runs[0].order),
                   protect)
    if plot_paths:
        plot_recall(summary.runs, plot_paths, protect)
    if as_json:
        echo_json(summary.to_dict())
        return
    agg = summary.aggregate()
    echo(f"{ds.name}: {len(ds.labels)} records, {ds.n_included} included; "
               f"model {summary.runs[0].model}; seeds {seeds[0]}-{seeds[-1]}")
    names = [("wss95", "WSS@95"), ("wss100", "WSS@100"), ("rrf10", "RRF@10"),
             ("recall10", "recall@10%"), ("recall20", "recall@20%"), ("recall50", "recall@50%"),
             ("td_mean", "time to discovery (mean)"), ("td_median", "time to discovery (median)"),
             ("seconds", "seconds per simulation")]
    for key, label in names:
        a = agg[key]
        if repeat == 1:
            echo(f"{label:28s} {a['mean']:.3f}")
        else:
            echo(f"{label:28s} {a['mean']:.3f}  (range {a['min']:.3f}-{a['max']:.3f})")


# === screening, conflicts, agreement, decisions ===========================


_SCREEN_STAGES = click.Choice(STAGES)


def screen_stage_option(fn: Callable) -> Callable:
    return click.option("--stage", type=_SCREEN_STAGES, default=TITLE_ABSTRACT,
                        show_default=True, help="The screening stage.")(fn)


def review_stage_option(fn: Callable) -> Callable:
    # the commands that also work on data extraction (agreement, conflicts, sample)
    return click.option("--stage", type=click.Choice(STAGES + ("extraction",)),
                        default=TITLE_ABSTRACT, show_default=True,
                        help="The screening stage, or extraction.")(fn)


def _screen_value(include: bool, exclude: bool, maybe: bool, allow_maybe: bool = True) -> str:
    chosen = [v for v, on in (("include", include), ("exclude", exclude), ("maybe", maybe)) if on]
    if len(chosen) != 1:
        flags = "--include, --exclude or --maybe" if allow_maybe else "--include or --exclude"
        raise UserError(f"Give exactly one of {flags}.")
    return chosen[0]


@cli.command("screen")
@click.option("--reviewer", required=True, help="Your reviewer name.")
@click.option("--order", type=click.Choice(["ranked", "id"]), default="ranked", show_default=True,
              help="ranked: most likely relevant first (the prioritiser); id: the store's order.")
@screen_stage_option
@db_option
@handle_errors
def screen_cmd(reviewer: str, order: str, stage: str, db_path: str) -> None:
    """Screen records interactively, one card at a time, blind to other reviewers.

    Keys: i include, e exclude, m maybe, s skip, u undo, n note, c criteria,
    r/g relevance/rigour scores, o open the full text in the system viewer, x not
    retrieved (full text), ? help, q quit. Every key press is
    saved at once, so quitting and restarting resumes where you stopped.

    Example: cluster screen --reviewer alice --stage title-abstract
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UserError("cluster screen needs an interactive terminal; in scripts use "
                        "`cluster decide RECORD --reviewer NAME --include|--exclude|--maybe`.")
    from screeners.screen import run_screen
    from screeners.session import ScreeningSession

    from screeners.session import id_order

    with store_for(db_path) as store:
        session = ScreeningSession(store, reviewer, stage,
                                   rank_fn=id_order if order == "id" else None)
        summary, interrupted = run_screen(session)
    echo(summary)
    if interrupted:
        # every key press is already saved; 130 tells a script the sitting was cut short
        sys.exit(Interrupted.exit_code)


@cli.command("decide")
@click.argument("record", type=int)
@click.option("--reviewer", required=True, help="Your reviewer name.")
@click.option("--include", is_flag=True, help="Include the record.")
@click.option("--exclude", is_flag=True, help="Exclude the record.")
@click.option("--maybe", is_flag=True, help="Advance the record, flagged as uncertain.")
@click.option("--reason", help="Exclusion reason from the protocol's list (required at full text).")
@click.option("--note", help="A note to keep with the decision.")
@screen_stage_option
@db_option
@json_option
@handle_errors
def decide_cmd(record: int, reviewer: str, include: bool, exclude: bool, maybe: bool,
           reason: str | None, note: str | None, stage: str, db_path: str, as_json: bool) -> None:
    """Record one screening decision without the interactive screen.

    Example: cluster decide 12 --reviewer alice --exclude --reason "wrong population" --stage full-text
    """
    from screeners.decisions import decide as decide_record

    value = _screen_value(include, exclude, maybe)
    with store_for(db_path) as store:
        result = decide_record(store, record, reviewer, stage, value,
                               reason, note)
        if as_json:
            echo_json(result.to_dict())
        else:
            echo(result.message)


@cli.command("undo")
@click.argument("event_id", required=False)
@click.option("--reviewer", help="Whose last event to take back; with EVENT_ID, who takes it back.")
@click.option("--kind", "kinds", multiple=True,
              help="Only the reviewer's last event of this kind (repeatable): decision, "
                   "resolution, automation, tag, note, appraisal, fulltext, merge, ...")
@click.option("--stage", type=_SCREEN_STAGES, default=None,
              help="Only the reviewer's last event at this stage.")
@db_option
@json_option
@handle_errors
def undo_cmd(event_id: str | None, reviewer: str | None, kinds: tuple[str, ...],
             stage: str | None, db_path: str, as_json: bool) -> None:
    """Take back the reviewer's last event that still stands, of any kind (a decision,
    a resolution, a stopping rule's exclusions, a study link, tags, a merge, a pair
    verdict, a note, scores, a full-text state), or the event EVENT_ID.

    Events one command wrote together (a stopping rule's exclusions, a study
    link, one search's tags) go back together. Each undo is a new event; undoing
    an undo (its id) redoes what it took back, except the split of a merge.

    Example: cluster undo --reviewer carol; cluster undo 3f2c9a41
    """
    from db.undo import undo_event, undo_last

    with store_for(db_path) as store:
        if event_id is not None:
            if kinds or stage:
                raise UserError("--kind and --stage choose the reviewer's last event: give "
                                "them without an EVENT_ID.")
            out = undo_event(store, event_id, reviewer)
        elif reviewer is None:
            raise UserError("Give --reviewer NAME to take back their last event, or the "
                            "EVENT_ID of the event to undo.")
        else:
            out = undo_last(store, reviewer, kinds or None, stage)
    if as_json:
        echo_json(out.to_dict())
    else:
        echo(out.message)


@cli.command("conflicts")
@click.argument("record", type=int, required=False)
@review_stage_option
@click.option("--resolver", help="Who resolves the conflict of RECORD.")
@click.option("--record", "record_option", type=int, hidden=True,
              help="RECORD given as an option, as earlier versions took it.")
@click.option("--include", is_flag=True, help="Resolve as include.")
@click.option("--exclude", is_flag=True, help="Resolve as exclude.")
@click.option("--reason", help="Exclusion reason from the protocol's list (required at full text).")
@click.option("--method", type=click.Choice(["arbiter", "consensus"]), default="arbiter",
              show_default=True,
              help="How the conflict was settled: arbiter (the resolver alone, who did not "
                   "screen the record) or consensus (the reviewers together; the resolver records it).")
@db_option
@json_option
@handle_errors
def conflicts_cmd(record: int | None, stage: str, resolver: str | None,
                  record_option: int | None, include: bool, exclude: bool, reason: str | None,
                  method: str, db_path: str, as_json: bool) -> None:
    """List records the reviewers disagree on (both decisions and notes), or resolve
    the conflict of RECORD.

    Without RECORD it lists the open conflicts; with RECORD, --resolver and
    --include/--exclude it records the resolution as an event.

    At full text, two exclusions for different reasons are a conflict too.

    At extraction it lists the fields the extractors disagree on; settle one with
    `cluster extraction settle`.

    Example: cluster conflicts 12 --resolver carol --exclude --reason "wrong outcome" --method arbiter
    """
    from screeners.decisions import conflicts as list_conflicts, resolve

    if record is not None and record_option is not None and record != record_option:
        raise UserError(f"Two records given ({record} and --record {record_option}): give one.")
    record = record if record is not None else record_option
    if stage == "extraction":
        return _extraction_conflicts(db_path, as_json, resolver is not None or record is not None)
    with store_for(db_path) as store:
        if resolver is not None or record is not None:
            if resolver is None or record is None:
                raise UserError("To resolve a conflict give the record and --resolver NAME, "
                                "e.g. cluster conflicts 12 --resolver carol --include.")
            value = _screen_value(include, exclude, False, allow_maybe=False)
            result = resolve(store, record, stage, value, resolver, method, reason)
            if as_json:
                echo_json(result.to_dict())
            else:
                why = f" ({result.reason})" if result.reason else ""
                echo(f"Record {result.record_id} resolved at {stage}: {value}{why} by "
                     f"{', '.join(result.decided_by)} ({result.method}).")
            return
        found = list_conflicts(store, stage)
        if as_json:
            echo_json([c.to_dict() for c in found])
            return
        if not found:
            echo(f"No open conflicts at {stage}.")
            return
        for c in found:
            echo(f"Record {c.record_id}: {c.title or '(no title)'}")
            for d in c.decisions:
                extra = "".join(f" ({x})" for x in (d["reason"],) if x)
                note = f" — note: {d['note']}" if d["note"] else ""
                echo(f"  {d['reviewer']}: {d['value']}{extra}{note}")
            for n in c.notes:
                echo(f"  note by {n['reviewer']}: {n['note']}")
        echo(f"{len(found)} open conflict(s) at {stage}.")


class _FulltextGroup(click.Group):
    """`cluster fulltext RECORD --retrieved ...` (the older spelling) runs `fulltext mark`."""

    def resolve_command(self, ctx: click.Context, args: list[str]
                        ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0].isdigit():
            return "mark", self.commands["mark"], args
        return super().resolve_command(ctx, args)


@cli.group("fulltext", cls=_FulltextGroup)
def fulltext_group() -> None:
    """Full texts: find open copies, fetch them, attach the rest, mark what could not be got.

    Files are kept in a folder beside the store (review.db.fulltext/), named by
    record id and SHA-256. Set CLUSTER_EMAIL to ask Unpaywall too.

    Example: cluster fulltext find && cluster fulltext fetch
    """


def _fulltext_folder(db_path: str) -> Path:
    from db.files import fulltext_dir

    return fulltext_dir(db_path)


@fulltext_group.command("mark")
@click.argument("record", type=int)
@click.option("--sought", "state", flag_value="sought", help="The report has been requested.")
@click.option("--retrieved", "state", flag_value="retrieved", help="The report is in hand.")
@click.option("--not-retrieved", "state", flag_value="not-retrieved",
              help="The report could not be obtained (give --reason).")
@click.option("--reason", help="Why the report could not be retrieved.")
@click.option("--reviewer", help="Who is recording this (optional).")
@db_option
@json_option
@handle_errors
def fulltext_cmd(record: int, state: str | None, reason: str | None, reviewer: str | None,
                 db_path: str, as_json: bool) -> None:
    """Mark a full-text report as sought, retrieved or not retrieved (for PRISMA).

    `cluster fulltext 12 --retrieved` works too.

    Example: cluster fulltext mark 12 --not-retrieved --reason "no library access, author did not reply"
    """
    from screeners.decisions import mark_fulltext

    if state is None:
        raise UserError("Give one of --sought, --retrieved or --not-retrieved.")
    with store_for(db_path) as store:
        mark_fulltext(store, record, state, reason, reviewer)
        rid = store.canonical_id(record)
    if as_json:
        echo_json({"record": rid, "state": state, "reason": reason})
        return
    said = state.replace("-", " ")
    echo(f"Record {rid}: full text {said}" + (f" ({reason})." if reason else "."))


@fulltext_group.command("find")
@click.option("--stage", type=click.Choice(["full-text"]), default="full-text", show_default=True,
              help="The records that need a full text: those at the full-text stage.")
@click.option("--refresh", is_flag=True, help="Look up again records looked up before.")
@click.option("--record", "records", type=int, multiple=True, help="Only this record (repeatable).")
@db_option
@json_option
@quiet_option
@handle_errors
def fulltext_find_cmd(stage: str, refresh: bool, records: tuple[int, ...], db_path: str,
                      as_json: bool, quiet: bool) -> None:
    """Look up open-access copies (Unpaywall, PubMed Central, OpenAlex, Crossref) of the
    records at full text, and log every candidate location.

    Records looked up before are skipped unless a service failed for them (or
    with --refresh); answers are cached beside the store.

    Example: cluster fulltext find --json
    """
    from cluster.fulltext import find
    from connectors.services import connect

    settings = connector_settings(db_path)
    with store_for(db_path) as store, connect(settings) as services, \
            Bar(quiet, "Finding") as progress:
        result = find(store, services, refresh=refresh, only=list(records) or None,
                      efetch_url=settings.base_url("pubmed") + "/efetch.fcgi", progress=progress)
    if as_json:
        echo_json(result.to_dict())
        return
    echo(f"Looked up {result.looked_up} record(s) ({result.already} done before): "
         f"{len(result.with_copy)} with an open PDF or XML, {len(result.landing_only)} with a "
         f"landing page only, {len(result.without)} with no open copy.")
    from base.services import SERVICE_NAMES

    found = ", ".join(f"{SERVICE_NAMES[k]} {v}" for k, v in result.by_service.items() if v)
    if found:
        echo(f"Locations per service: {found}.")
    if not result.looked_up:
        return
    for why in result.skipped.values():
        echo(f"  {why}.")
    for service, why in result.failed.items():
        echo(f"  {SERVICE_NAMES.get(service, service)} failed: {why}")
    if result.failed:
        echo("Run the command again to ask the failing services again.")


@fulltext_group.command("fetch")
@click.option("--max-mb", type=click.FloatRange(min=0, min_open=True), default=50.0,
              show_default=True, help="Largest file to download, in MB.")
@click.option("--timeout", "max_seconds", type=click.FloatRange(min=0, min_open=True),
              default=120.0, show_default=True, help="Longest a download may take, in seconds.")
@click.option("--workers", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Downloads at a time (each host is still asked at its own polite rate).")
@click.option("--retry", is_flag=True, help="Try again records marked not retrieved.")
@click.option("--record", "records", type=int, multiple=True, help="Only this record (repeatable).")
@db_option
@json_option
@quiet_option
@handle_errors
def fulltext_fetch_cmd(max_mb: float, max_seconds: float, workers: int, retry: bool,
                       records: tuple[int, ...], db_path: str, as_json: bool, quiet: bool) -> None:
    """Download the best open copy of each record found by `fulltext find`, check it is
    really a PDF (or PMC XML), and mark the record retrieved (or not retrieved, with why).

    Records with a copy in hand are skipped, so a rerun fetches nothing twice.

    Example: cluster fulltext fetch --max-mb 30
    """
    from cluster.fulltext import fetch
    from connectors.download import Downloader

    settings = connector_settings(db_path)
    downloader = Downloader(settings, max_bytes=int(max_mb * 1024 * 1024),
                            max_seconds=max_seconds)
    try:
        with store_for(db_path) as store, Bar(quiet, "Fetching") as progress:
            result = fetch(store, _fulltext_folder(db_path), downloader, retry=retry,
                           only=list(records) or None, workers=workers, progress=progress)
    finally:
        downloader.close()
    if as_json:
        echo_json(result.to_dict())
        return
    for o in result.outcomes:
        if o.status == "retrieved":
            echo(f"Record {o.record_id}: retrieved ({o.message})"
                 + (f"; {o.warning}" if o.warning else "") + ".")
        elif o.status == "not-retrieved":
            echo(f"Record {o.record_id}: not retrieved: {o.message}.")
        else:
            echo(f"Record {o.record_id}: not fetched this time: {o.message} (run again).")
    from base.services import SERVICE_NAMES

    by = ", ".join(f"{SERVICE_NAMES.get(k, k)} {v}" for k, v in sorted(result.by_source().items()))
    echo(f"Retrieved {result.count('retrieved')}" + (f" ({by})" if by else "")
         + f", not retrieved {result.count('not-retrieved')}, to try again "
         f"{result.count('failed')}; {result.already} done before.")
    if result.not_looked_up:
        echo(f"{len(result.not_looked_up)} record(s) have not been looked up yet: run "
             f"`cluster fulltext find` first.")


@fulltext_group.command("attach")
@click.argument("record", type=int, required=False)
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--folder", type=click.Path(file_okay=False, path_type=Path),
              help="Attach every PDF in this folder that matches a record by DOI, PMID or title.")
@click.option("--reviewer", help="Who obtained the copies (optional).")
@db_option
@json_option
@handle_errors
def fulltext_attach_cmd(record: int | None, file: Path | None, folder: Path | None,
                        reviewer: str | None, db_path: str, as_json: bool) -> None:
    """Attach full texts obtained by hand (a library, the author): one file to one record,
    or a folder of files matched to records by the DOI, PMID or title in their names, or
    in the PDF's metadata or first page.

    Example: cluster fulltext attach 12 smith2019.pdf; cluster fulltext attach --folder library/
    """
    from cluster.fulltext import attach_file, attach_folder

    if folder is not None and (record is not None or file is not None):
        raise UserError("Give either RECORD FILE or --folder DIR, not both.")
    if folder is None and (record is None or file is None):
        raise UserError("Give a record and a file (attach 12 report.pdf) or --folder DIR.")
    with store_for(db_path) as store:
        if folder is not None:
            result = attach_folder(store, _fulltext_folder(db_path), folder, reviewer=reviewer)
        else:
            assert record is not None and file is not None
            one = attach_file(store, _fulltext_folder(db_path), record, file, reviewer)
    if folder is None:
        if as_json:
            echo_json(one.to_dict())
        else:
            echo(f"Record {one.record_id}: full text attached as {one.file}"
                 + (f"; {one.warning}" if one.warning else "") + ".")
        return
    if as_json:
        echo_json(result.to_dict())
        return
    for a in result.attached:
        echo(f"Record {a.record_id}: {Path(a.source_file).name} attached ({a.matched_by})"
             + (f"; {a.warning}" if a.warning else "") + ".")
    for name, why in result.unmatched.items():
        echo(f"Not attached: {name}: {why}.")
    echo(f"Attached {len(result.attached)} file(s); {len(result.unmatched)} left alone.")


@fulltext_group.command("list")
@db_option
@json_option
@handle_errors
def fulltext_list_cmd(db_path: str, as_json: bool) -> None:
    """Where each record at full text stands: its retrieval state, source and file.

    Example: cluster fulltext list --json
    """
    from db.events import FULL_TEXT
    from db.state import Retrieval, retrievals, stage_records

    with store_for(db_path) as store:
        got = retrievals(store)
        rows = [got.get(rid, Retrieval(rid)) for rid in stage_records(store, FULL_TEXT)]
    if as_json:
        echo_json([r.to_dict() for r in rows])
        return
    for r in rows:
        where = r.file or (r.locations[0]["url"] if r.locations else "")
        echo(f"Record {r.record_id}: {r.state or 'not sought'}"
             + (f" ({r.source})" if r.source else "") + (f": {r.reason}" if r.reason else "")
             + (f" {where}" if where else ""))
    echo(f"{len(rows)} record(s) at full text.")


@cli.command("agreement")
@review_stage_option
@click.option("--maybe-as-include", is_flag=True, help="Count maybe as include (2x2 table).")
@db_option
@json_option
@handle_errors
def agreement_cmd(stage: str, maybe_as_include: bool, db_path: str, as_json: bool) -> None:
    """Agreement per reviewer pair: percent agreement, Cohen's kappa and the table.

    Percent agreement = agreements / (agreements + disagreements).

    At extraction: congruence per field, per reviewer pair and overall.

    Example: cluster agreement --stage title-abstract --json
    """
    if stage == "extraction":
        return _extraction_agreement(db_path, as_json)
    from screeners.agreement import agreement as pair_agreement

    with store_for(db_path) as store:
        pairs = pair_agreement(store, stage, maybe_as_include)
        if as_json:
            echo_json([p.to_dict() for p in pairs])
            return
        if not pairs:
            echo(f"No two reviewers have decided the same record at {stage} yet.")
            return
        for p in pairs:
            kappa = "n/a" if p.kappa is None else f"{p.kappa:.3f}"
            echo(f"{p.reviewer_a} / {p.reviewer_b} at {stage}: {p.n} records, "
                       f"{p.agreements} agreements, {p.disagreements} disagreements, "
                       f"{p.percent:.1f} % agreement, Cohen's kappa {kappa}")
            width = max(len(x) for x in p.labels) + 2
            echo(" " * (width + 2) + "".join(f"{b:>{width}}" for b in p.labels)
                       + f"   <- {p.reviewer_b}")
            for label, row in zip(p.labels, p.table):
                echo(f"  {label:<{width}}" + "".join(f"{v:>{width}}" for v in row))
            echo(f"  (rows: {p.reviewer_a})")


@cli.command("sample")
@click.option("--fraction", type=float, required=True, help="Share of the stage's records, e.g. 0.1.")
@click.option("--reviewer", required=True, help="The further reviewer who checks the sample.")
@click.option("--seed", type=int, default=None,
              help="Random seed: the same seed draws the same sample. Without it one is drawn "
                   "at random, printed and logged with the sample.")
@review_stage_option
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="Only records found with this source role (e.g. index: the index articles).")
@click.option("--source", default=None,
              help="Only records from this search source (a service, or an import's --source).")
@db_option
@json_option
@handle_errors
def sample_cmd(fraction: float, reviewer: str, seed: int | None, stage: str, role: str | None,
               source: str | None, db_path: str, as_json: bool) -> None:
    """Assign a random check subsample of a stage's records to a further reviewer,
    from every record or only those of a source role or search source.

    Example: cluster sample --fraction 0.1 --reviewer dan --seed 7 --role index
    """
    import secrets

    from screeners.decisions import sample as assign_sample

    if seed is None:
        seed = secrets.randbelow(1_000_000)
    with store_for(db_path) as store:
        result = assign_sample(store, fraction, reviewer, seed, stage, role=role, source=source)
        if as_json:
            echo_json(result.to_dict())
        else:
            echo(f"{reviewer} checks {len(result.chosen)} of {result.population} records at "
                       f"{stage} (seed {seed}; {len(result.newly_assigned)} newly assigned): "
                       + ", ".join(map(str, result.chosen)))


@cli.group("decisions")
def decisions_group() -> None:
    """Move decision logs between copies of a review (reviewers on separate machines).

    Example: cluster decisions export alice.jsonl
    """


@decisions_group.command("export")
@click.argument("file", type=OUTPUT_FILE)
@db_option
@json_option
@handle_errors
def decisions_export(file: str, db_path: str, as_json: bool) -> None:
    """Write this copy's screening events to a JSONL file (- for standard output).

    Example: cluster decisions export alice.jsonl
    """
    from screeners.decisions import decisions_jsonl, export_decisions

    with store_for(db_path) as store:
        if file == "-":
            echo_document(decisions_jsonl(store)[0])
            return
        n = export_decisions(store, file)
        if as_json:
            echo_json({"file": file, "events": n})
        else:
            echo(f"Wrote {n} event(s) to {file}.")


@decisions_group.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
@json_option
@handle_errors
def decisions_import(file: str, db_path: str, as_json: bool) -> None:
    """Merge a decisions file from another copy of this review (importing twice adds nothing).

    Example: cluster decisions import bob.jsonl
    """
    from screeners.decisions import import_decisions

    with store_for(db_path) as store:
        result = import_decisions(store, file)
        if as_json:
            echo_json({"file": file, "added": result.added,
                       "already_present": result.already_present,
                       "reviewers_added": list(result.reviewers_added)})
            return
        extra = (f"; new reviewers: {', '.join(result.reviewers_added)}"
                 if result.reviewers_added else "")
        echo(f"Imported {result.added} event(s) from {file} "
                   f"({result.already_present} already present){extra}.")


# === one record whole, the event log ======================================


def _when(ts: str | None) -> str:
    """An event's time as a reader scans it: date, hours and minutes (UTC)."""
    return (ts or "")[:16].replace("T", " ")


def _text_width() -> int:
    return max(40, min(100, shutil.get_terminal_size((80, 24)).columns))


def _wrapped(label: str, text: str, width: int, indent: int = 2) -> list[str]:
    """`label: text` wrapped to `width`, later lines indented by `indent`; a label of
    spaces alone indents the first line instead."""
    import textwrap

    if label.strip():
        text = f"{label.rstrip(':')}: {text}"
    return textwrap.wrap(text, width, initial_indent=label if not label.strip() else "",
                         subsequent_indent=" " * indent, break_on_hyphens=False) or [""]


def _show_text(view: Any, width: int) -> str:
    """`cluster show` laid out for a person, at most `width` columns."""
    d = view.to_dict()
    f = d["fields"]
    out = _wrapped(f"Record {d['record_id']}", f["title"] or "(no title)", width)
    if d["merged_into"] is not None:
        merge = f" (merge {d['merge_id']})" if d["merge_id"] else ""
        out += _wrapped("  ", f"A duplicate of record {d['merged_into']}, which stands for the "
                              f"work: its screening below is record {d['merged_into']}'s{merge}.",
                        width)
    if f["authors"]:
        out += _wrapped("Authors", "; ".join(f["authors"]), width)
    published = " · ".join(str(x) for x in (
        f["journal"], f["year"], f["volume"] and f"vol. {f['volume']}",
        f["issue"] and f"issue {f['issue']}", f["pages"] and f"pp. {f['pages']}") if x)
    if published:
        out += _wrapped("Published", published, width)
    for label, key in (("Language", "language"), ("Type", "pub_types"), ("Keywords", "keywords")):
        if f[key]:
            out += _wrapped(label, "; ".join(f[key]), width)
    if f["issn"]:
        out += _wrapped("ISSN", f["issn"], width)
    ids = " · ".join(f"{label} {v}" for label, v in view.identifiers.items())
    out += _wrapped("Ids", ids or "none", width)
    for label, url in d["links"].items():
        out.append(f"  {label:<9}{url}")
    out += _wrapped("Tags", ", ".join(d["tags"]) or "none", width)
    if d["study"]:
        out += _wrapped("Study", d["study"], width)
    if d["needs_metadata"]:
        out += _wrapped("Note", "imported as a bare identifier: cluster fetch --fill completes it",
                        width)
    out += ["", "Abstract:"]
    out += _wrapped("  ", f["abstract"], width, 2) if f["abstract"] else ["  (none)"]

    out += ["", f"Found ({len(d['sources'])} source{'s' if len(d['sources']) != 1 else ''}):"]
    for src in d["sources"]:
        where = f"search {src['search_id']}" if src["search_id"] is not None else "no search"
        on = f", as record {src['record_id']}" if src["record_id"] != d["record_id"] else ""
        out += _wrapped("  ", f"- {src['line']} [{where}, {(src['searched_at'] or '')[:10]}{on}]",
                        width, 4)
    if not d["sources"]:
        out.append("  (no provenance recorded)")
    if d["duplicates"]:
        out += ["", "Duplicates merged into it:"]
        for dup in d["duplicates"]:
            merge = f" (merge {dup['merge_id']})" if dup["merge_id"] else ""
            out += _wrapped("  ", f"- record {dup['record_id']}: {dup['title'] or '(no title)'}"
                                f"{merge}", width, 4)

    for stage, st in d["stages"].items():
        kind = "final" if st["final"] else "partial" if st["partial"] else "not final"
        state = st["state"] if st["state"] in ("undecided",) else f"{st['state']} ({kind})"
        out += ["", f"{STAGE_LABELS[stage]}: {state}"]
        for dec in st["decisions"]:
            marks = ("  [undone]" if dec["undone"] else
                     "" if dec["counts"] else "  [changed later]")
            why = f" ({dec['reason']})" if dec["reason"] else ""
            note = f"; note: {dec['note']}" if dec["note"] else ""
            out += _wrapped("  ", f"{_when(dec['ts'])}  {dec['reviewer']}: {dec['value']}{why}"
                                f"{note}{marks}", width, 4)
        for res in st["resolutions"]:
            why = f" ({res['reason']})" if res["reason"] else ""
            marks = "  [undone]" if res["undone"] else ""
            out += _wrapped("  ", f"{_when(res['ts'])}  resolved: {res['value']}{why} by "
                                f"{', '.join(res['decided_by']) or 'unknown'} ({res['method']})"
                                f"{marks}", width, 4)
        for auto in st["automation"]:
            forced = ", forced" if auto["forced"] else ""
            marks = "  [undone]" if auto["undone"] else ""
            out += _wrapped("  ", f"{_when(auto['ts'])}  excluded by the {auto['rule']} stopping "
                                f"rule{forced}{marks}", width, 4)
        if stage == "full-text":
            ft = d["fulltext"]
            state = (ft["state"] or "not marked").replace("-", " ")
            out += _wrapped("  Retrieval:", state + (f" ({ft['reason']})" if ft["reason"] else ""),
                            width, 4)
    if d["appraisals"]:
        out += ["", "Appraisal:"]
        for who, sc in d["appraisals"].items():
            out.append(f"  {who}: relevance {sc['relevance'] or '-'} · rigour "
                       f"{sc['rigour'] or '-'}")
    if d["notes"]:
        out += ["", "Notes:"]
        for n in d["notes"]:
            out += _wrapped("  ", f"{_when(n['ts'])}  {n['reviewer']}: {n['note']}", width, 4)
    if d["assigned"]:
        out += ["", "Check subsample:"]
        for a in d["assigned"]:
            out.append(f"  {a['reviewer']} at {a['stage']}")
    return "\n".join(out)


@cli.command("show")
@click.argument("record", type=int)
@db_option
@json_option
@handle_errors
def show_cmd(record: int, db_path: str, as_json: bool) -> None:
    """Show one record whole: fields, identifiers and links, where it was found, its
    duplicates, every decision by whom and when, full text, notes, tags, scores.

    Example: cluster show 12
    """
    from db.record_view import record_view

    with store_for(db_path) as store:
        view = record_view(store, record)
    if as_json:
        echo_json(view.to_dict())
    else:
        echo(_show_text(view, _text_width()))


@cli.command("log")
@click.option("--reviewer", help="Only this reviewer's events.")
@click.option("--kind", type=click.Choice(EVENT_KINDS), help="Only events of this kind.")
@click.option("--record", type=int, help="Only events on this record (and its duplicates).")
@click.option("--since", help="Only events from this date or time on (2026-12-01, "
                              "2026-12-01T14:30; UTC unless an offset is given).")
@click.option("--limit", type=click.IntRange(min=1), help="Show at most this many events.")
@db_option
@json_option
@handle_errors
def log_cmd(reviewer: str | None, kind: str | None, record: int | None, since: str | None,
            limit: int | None, db_path: str, as_json: bool) -> None:
    """The event log, newest first: every decision, undo, resolution, merge, tag and
    note, with who and when. Events taken back are marked [undone]; each shows
    its id, the name to give an undo.

    Example: cluster log --reviewer alice --since 2026-12-01 --limit 20
    """
    from itertools import chain

    from base.terminal import dumps_list
    from db.eventlog import iter_log

    with store_for(db_path) as store:
        # entries are written as they are read, so a long log is never held whole; the
        # first is read before anything is written, so an error leaves no half output
        entries = iter_log(store, reviewer=reviewer, kind=kind, record=record, since=since,
                           limit=limit)
        first = next(entries, None)
        if first is not None:
            entries = chain([first], entries)
        if as_json:
            for piece in dumps_list(e.to_dict() for e in entries):  # a few hundred entries
                click.echo(piece, nl=False)
            click.echo()
            return
        if first is None:
            echo("No events match.")
            return
        width = _text_width()
        for e in entries:
            who = e.reviewer or "-"
            on = f"record {e.record_id}  " if e.record_id is not None else ""
            mark = "[undone] " if e.undone else ""
            echo("\n".join(_wrapped("", f"{_when(e.ts)}  {mark}{e.kind}  {who}  {on}{e.summary}",
                                     width, 4)))
            echo(f"    id {e.event_id}")
            if e.undone:
                echo(f"    undone by {e.undone_by}")


# === data extraction =====================================================


@cli.group("form")
def form_group() -> None:
    """The data extraction form in the protocol (a TOML file, or a built-in form).

    Example: cluster form set realist && cluster form show
    """


@form_group.command("set")
@click.argument("file")
@click.option("--reviewer", help="Who sets the form (recorded with the protocol change).")
@db_option
@json_option
@handle_errors
def form_set(file: str, reviewer: str | None, db_path: str, as_json: bool) -> None:
    """Set the extraction form from a TOML FILE, or a built-in form: realist or general.

    The form's format is described in `screeners/extraction/form.py`. Setting a
    form again makes a new version; answers given under earlier versions stay.

    Example: cluster form set realist
    """
    from screeners.extraction.form import read_form, set_form

    form = read_form(file)
    with store_for(db_path, create=True) as store:
        new = set_form(store, form, reviewer)
    if as_json:
        echo_json(new.to_dict())
        return
    echo(f"Extraction form {new.title!r} set (version {new.version}, {len(new.fields)} fields).")


@form_group.command("show")
@db_option
@json_option
@handle_errors
def form_show(db_path: str, as_json: bool) -> None:
    """Show the extraction form in force: its fields, choices and scale anchors.

    Example: cluster form show --json
    """
    from screeners.extraction.form import current_form, describe

    with store_for(db_path, create=True) as store:
        form = current_form(store)
        assert form is not None
    if as_json:
        echo_json(form.to_dict())
    else:
        echo(describe(form))


@form_group.command("extractors")
@click.option("--per-record", type=int, help="Independent extractors per included record.")
@click.option("--index", "per_index", type=int,
              help="Independent extractors per index article (default: as --per-record).")
@db_option
@json_option
@handle_errors
def form_extractors(per_record: int | None, per_index: int | None, db_path: str,
                    as_json: bool) -> None:
    """Set how many reviewers extract each included record (a protocol setting).

    Example: cluster form extractors --per-record 2 --index 3
    """
    from screeners.extraction.form import set_extractors

    if per_record is None and per_index is None:
        raise UserError("Give --per-record N, --index N or both.")
    with store_for(db_path, create=True) as store:
        p = set_extractors(store, per_record, per_index)
    if as_json:
        echo_json({"per_record": p.extraction_reviewers,
                   "per_index_article": p.extraction_reviewers_index or p.extraction_reviewers})
        return
    echo(f"Extractors per record: {p.extraction_reviewers}; per index article: "
         f"{p.extraction_reviewers_index or p.extraction_reviewers}.")


@cli.command("extract")
@click.option("--reviewer", required=True, help="Your reviewer name.")
@click.option("--import", "import_file", type=click.Path(dir_okay=False),
              help="Take the answers from a CSV or JSON lines file instead (checked against the form).")
@db_option
@json_option
@handle_errors
def extract_cmd(reviewer: str, import_file: str | None, db_path: str, as_json: bool) -> None:
    """Extract data from the included records, field by field, blind to other reviewers.

    Each answer is saved as it is given (a kill loses at most the field being
    typed); running it again resumes at the first field not answered. Type the
    answer and Enter (an empty line leaves the field blank); :u undoes the last
    answer, :s skips the record, :? shows help, :q quits.

    Example: cluster extract --reviewer alice; cluster extract --reviewer bob --import bob.csv
    """
    with store_for(db_path) as store:
        if import_file is not None:
            from screeners.extraction.importing import import_answers

            result = import_answers(store, import_file, reviewer)
            if as_json:
                echo_json({"file": import_file, "reviewer": reviewer, "records": result.records,
                           "answers": result.answers})
                return
            echo(f"Imported {result.answers} answer(s) on {result.records} record(s) for "
                 f"{reviewer} from {import_file}.")
            return
        from screeners.extraction.session import ExtractionSession, run_walk

        if as_json:
            raise UserError("--json goes with --import: the extraction walk is a terminal "
                            "session.")

        width = min(120, shutil.get_terminal_size((80, 24)).columns)
        session = ExtractionSession(store, reviewer, width)

        def read(prompt: str) -> str:
            return input(prompt)

        summary, interrupted = run_walk(session, read, echo)
    if interrupted:
        echo()  # past the ^C the terminal shows
    echo(summary)
    if interrupted:
        sys.exit(Interrupted.exit_code)


def _extraction_agreement(db_path: str, as_json: bool) -> None:
    from screeners.extraction.congruence import RULES, congruence

    with store_for(db_path) as store:
        c = congruence(store)
    if as_json:
        echo_json(c.to_dict())
        return
    if not c.pairs:
        echo("No two reviewers have finished extracting the same record yet.")
        return
    echo(f"Congruence in data extraction ({c.form_title}, version {c.form_version}): "
         f"{c.congruence:.1f} % = {c.agreements} agreements / ({c.agreements} + "
         f"{c.disagreements} disagreements), {c.records} records extracted by two or more")
    rows = [{"field": f.key, "type": f.type, "agree": f.agreements, "disagree": f.disagreements,
             "congruence": "n/a" if f.congruence is None else f"{f.congruence:.1f} %",
             "kappa": "" if f.kappa is None else f"{f.kappa:.3f}"} for f in c.fields]
    echo(_table(rows, ["field", "type", "agree", "disagree", "congruence", "kappa"]))
    for p in c.pairs:
        echo(f"{p.reviewer_a} / {p.reviewer_b}: {p.records} records, {p.agreements} agreements, "
             f"{p.disagreements} disagreements, "
             + ("n/a" if p.congruence is None else f"{p.congruence:.1f} %")
             + "".join(f"; {f.key} kappa {f.kappa:.3f}" for f in p.fields if f.kappa is not None))
    echo("Rules: " + "; ".join(f"{t}: {r}" for t, r in RULES.items())
         + "; two blanks agree, a blank and an answer do not.")


def _extraction_conflicts(db_path: str, as_json: bool, resolving: bool) -> None:
    from screeners.extraction.consensus import conflicts

    if resolving:
        raise UserError("At extraction, settle a field with `cluster extraction settle RECORD "
                        "--field KEY --resolver NAME --value ANSWER` (or --take REVIEWER).")
    with store_for(db_path) as store:
        found = conflicts(store)
    if as_json:
        echo_json([c.to_dict() for c in found])
        return
    if not found:
        echo("No open conflicts at extraction.")
        return
    for c in found:
        echo(f"Record {c.record_id} · {c.key} ({c.label}): {c.title or '(no title)'}")
        for reviewer, answer in c.answers.items():
            echo(f"  {reviewer}: {dumps(answer) if isinstance(answer, list) else answer}")
    echo(f"{len(found)} field(s) in conflict at extraction; settle each with "
         "`cluster extraction settle`.")


@cli.group("extraction")
def extraction_group() -> None:
    """The extracted data: settle disagreements, undo an answer, export the evidence table.

    Example: cluster extraction export --format csv -o evidence.csv
    """


@extraction_group.command("settle")
@click.argument("record", type=int)
@click.option("--field", "key", required=True, help="The field's key (see `cluster form show`).")
@click.option("--resolver", required=True, help="Who records the answer that stands.")
@click.option("--value", help="The agreed answer (a group: a JSON list of items).")
@click.option("--take", help="Keep this reviewer's answer.")
@click.option("--method", type=click.Choice(["consensus", "arbiter"]), default="consensus",
              show_default=True, help="consensus: the extractors together; arbiter: the resolver "
                                      "alone, who did not extract the record.")
@db_option
@json_option
@handle_errors
def extraction_settle(record: int, key: str, resolver: str, value: str | None, take: str | None,
                      method: str, db_path: str, as_json: bool) -> None:
    """Set the answer that stands for a field the extractors disagree on (logged, with the method).

    Example: cluster extraction settle 12 --field kirkpatrick --value 2 --resolver carol --method arbiter
    """
    from screeners.extraction.consensus import settle

    with store_for(db_path) as store:
        result = settle(store, record, key, resolver, method, value, take)
    if as_json:
        echo_json(result.to_dict())
    else:
        echo(f"Record {result.record_id} · {result.key}: {dumps(result.value)} by "
             f"{', '.join(result.decided_by)} ({result.method}).")


@extraction_group.command("undo")
@click.option("--reviewer", required=True, help="Whose last extraction answer to take back.")
@db_option
@json_option
@handle_errors
def extraction_undo(reviewer: str, db_path: str, as_json: bool) -> None:
    """Take back your last extraction answer (logged as an undo).

    Example: cluster extraction undo --reviewer alice
    """
    from screeners.extraction.answers import undo_last_answer

    with store_for(db_path) as store:
        a = undo_last_answer(store, reviewer)
    if as_json:
        echo_json({"undone": a.event_id, "record_id": a.record_id, "field": a.key,
                   "answer": a.value, "reviewer": reviewer})
        return
    echo(f"Undid {reviewer}'s answer to {a.key} on record {a.record_id}.")


@extraction_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl", "markdown", "xlsx"]),
              required=True, help="Output format (xlsx: one worksheet; needs -o FILE).")
@click.option("--all", "all_reviewers", is_flag=True,
              help="Every reviewer's answers, one row per record and reviewer.")
@click.option("--by", type=click.Choice(["record", "item"]), default="record", show_default=True,
              help="One row per record, or per item of the repeatable group (e.g. per CMO).")
@click.option("-o", "--output", type=OUTPUT_FILE, default=None,
              help="Write to this file instead of standard output.")
@db_option
@handle_errors
def extraction_export(fmt: str, all_reviewers: bool, by: str, output: str | None,
                      db_path: str) -> None:
    """The evidence table: the answers that stand (consensus), or every reviewer's with --all.

    Example: cluster extraction export --format csv --by item -o cmo.csv
    """
    from base.output import write_file
    from db.files import store_files
    from screeners.extraction.export import export_table

    if fmt == "xlsx" and output in (None, "-"):
        raise UserError("An xlsx workbook is a binary file: give -o FILE.xlsx to write it.")
    with store_for(db_path) as store:
        table = export_table(store, fmt, all_reviewers, by)
    if output is None or output == "-":
        assert isinstance(table.text, str)  # only xlsx is bytes, refused above
        echo_document(table.text)
        return
    write_file(output, table.text, store_files(db_path))
    echo(f"Exported {table.rows} row(s) to {output} ({fmt}).", err=True)


# === flow and report =====================================================


LAYOUT_HELP = ("standard: PRISMA 2020 (other-methods records go straight to reports sought); "
               "screen-other: other-methods records are screened with database records. "
               "Default: screen-other when no records came from databases or registers, "
               "else standard.")


@cli.command("flow")
@click.option("--layout", type=click.Choice(["standard", "screen-other"]), help=LAYOUT_HELP)
@json_option
@click.option("--csv", "as_csv", is_flag=True,
              help="The PRISMA2020 R package's template (data,node,box,...,n) on stdout.")
@click.option("--with-titles", is_flag=True,
              help="With --csv: also the template's title and band rows (data NA, n 0).")
@click.option("--svg", "svg_path", type=OUTPUT_FILE, help="Write the diagram as SVG.")
@click.option("--png", "png_path", type=OUTPUT_FILE, help="Write the diagram as PNG.")
@db_option
@handle_errors
def flow_cmd(layout: str | None, as_json: bool, as_csv: bool, with_titles: bool, svg_path: str | None,
             png_path: str | None, db_path: str) -> None:
    """PRISMA 2020 flow numbers from the log, checked, as a table, JSON, CSV or a diagram.

    Every record must end in exactly one box; if the log does not add up, the
    command names the records involved instead of drawing a wrong diagram.

    Example: cluster flow --layout screen-other --csv > prisma.csv --svg prisma.svg
    """
    from db.flow import compute_flow, to_csv, to_table

    if as_json and as_csv:
        raise UserError("Choose one of --json and --csv.")
    if svg_path and png_path and Path(svg_path).resolve() == Path(png_path).resolve():
        raise UserError("--svg and --png name the same file: give each its own name.")
    with store_for(db_path) as store:
        result = compute_flow(store, layout)
        if svg_path or png_path:
            from db.diagram import layout as place, write_png, write_svg
            from db.files import store_files

            diagram = place(result)
            if svg_path:
                write_svg(diagram, svg_path, store_files(db_path))
            if png_path:
                write_png(diagram, png_path, protect=store_files(db_path))
        if as_json:
            echo_json(result.to_dict())
        elif as_csv:
            echo_document(to_csv(result, with_titles))
        else:
            echo(to_table(result))
            for path in (svg_path, png_path):
                if path:
                    echo(f"Diagram written to {path}", err=True)


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
    """Mark records as reports of one study (one event batch: `cluster undo` takes it back).

    Example: cluster study link 12 57 --key smith2019 --reviewer ann
    """
    from db.flow import link_study

    with store_for(db_path) as store:
        if reviewer:
            store.require_reviewer(reviewer)
        ids = link_study(store, record_ids, key, reviewer)
        echo(f"Records {', '.join(map(str, record_ids))} are now reports of study {key} "
             f"(undo: cluster undo {ids[0]}).")


@study.command("list")
@db_option
@json_option
@handle_errors
def study_list_cmd(db_path: str, as_json: bool) -> None:
    """The studies with more than a record's own name: each study's reports, who linked
    them and when (or "from import" when the imported file named the study).

    Example: cluster study list --json
    """
    from db.flow import study_list

    with store_for(db_path) as store:
        studies = study_list(store)
    if as_json:
        echo_json([{"key": k, "records": [r.to_dict() for r in reports]}
                   for k, reports in studies.items()])
        return
    if not studies:
        echo("No records are linked as reports of a study (cluster study link 12 57 --key KEY).")
        return
    for key, reports in studies.items():
        echo(f"{key}: {len(reports)} report{'s' if len(reports) != 1 else ''}")
        for r in reports:
            how = (f"linked by {r.linked_by or 'unnamed'} {r.linked_at[:16].replace('T', ' ')}, "
                   f"event {r.event_id[:8]}" if r.event_id and r.linked_at else "from import")
            echo(f"  #{r.record_id}  {r.title or '(no title)'}  ({how})")
    echo(f"{len(studies)} stud{'ies' if len(studies) != 1 else 'y'}.")


@study.command("unlink")
@click.argument("record_ids", nargs=-1, type=int)
@click.option("--key", help="Unlink every report of this study.")
@click.option("--reviewer", help="Who unlinks them (a reviewer name).")
@db_option
@json_option
@handle_errors
def study_unlink(record_ids: tuple[int, ...], key: str | None, reviewer: str | None,
                 db_path: str, as_json: bool) -> None:
    """Make records studies of their own again (one event batch; `cluster undo` links
    them again).

    Example: cluster study unlink 57; cluster study unlink --key smith2019
    """
    from db.flow import unlink_study

    with store_for(db_path) as store:
        if reviewer:
            store.require_reviewer(reviewer)
        left = unlink_study(store, record_ids, key, reviewer)
    if as_json:
        echo_json([{"record_id": r, "study": k} for r, k in left.items()])
        return
    for r, k in left.items():
        echo(f"Record {r} is no longer a report of study {k}.")


@cli.command("report")
@click.option("--output", "-o", "output", type=OUTPUT_FILE,
              help="Write the Markdown here, with the diagram beside it (same name, .svg and .png).")
@click.option("--layout", type=click.Choice(["standard", "screen-other"]), help=LAYOUT_HELP)
@click.option("--detail", is_flag=True,
              help="Also every search with its query or seed, limits and counts (an appendix).")
@db_option
@handle_errors
def report_cmd(output: str | None, layout: str | None, detail: bool, db_path: str) -> None:
    """Methods-section Markdown: PRISMA-S search log, deduplication, screening, flow.

    Limits are one line per strategy and service, with totals; --detail adds
    every search.

    Example: cluster report -o methods.md; cluster report --detail -o appendix.md
    """
    from db.report import write_report
    from screeners.agreement import agreement_by_stage
    from screeners.extraction.report import extraction_section

    with store_for(db_path) as store:
        text, written = write_report(store, agreement_by_stage(store), layout, output,
                                     detail, extraction=lambda: extraction_section(store))
        if output is None:
            echo_document(text)
        else:
            echo("Wrote " + ", ".join(str(p) for p in written))


# === demo ================================================================


DEMO_EMAIL = "demo@example.org"


@cli.command("demo")
@click.option("--seed", default=1, show_default=True, type=int,
              help="Seed of the generated world and of the simulated reviewers.")
@click.option("--dir", "directory", default="cluster-demo", show_default=True,
              type=click.Path(file_okay=False), help="Folder for the demo store, diagram and report.")
@click.option("--works", default=3000, show_default=True, type=int,
              help="Works in the generated world.")
@click.option("--fault-rate", default=0.0, show_default=True, type=float,
              help="Share of requests the world answers with a fault (429, 5xx, slow, truncated).")
@click.option("--fresh", is_flag=True, help="Replace an earlier demo in --dir.")
@json_option
@quiet_option
@handle_errors
def demo_cmd(seed: int, directory: str, works: int, fault_rate: float, fresh: bool,
             as_json: bool, quiet: bool) -> None:
    """Run a whole review offline on a generated world, in a few minutes.

    A world of works, authors and citations is served on 127.0.0.1 like
    PubMed, Crossref, OpenAlex and OpenCitations, and the review runs through
    the same code as yours: index articles imported and fetched, the CLUSTER
    expansion, deduplication, prioritised title/abstract screening by two
    simulated reviewers (alice, bob), conflicts resolved by carol, the
    full-text stage, then the PRISMA flow, diagram, agreement and methods
    report. The store it leaves works with every other command.

    Example: cluster demo --dir demo --seed 7 && cluster screen --db demo/review.db --reviewer carol
    """
    import dataclasses

    from cluster.demo.run import DemoOptions, run_demo

    options = DemoOptions(seed=seed, works=works, fault_rate=fault_rate)
    # the user's keys and address, if set, travel the real code path (and are never stored)
    settings = connector_settings(str(Path(directory) / "review.db"))
    if not settings.email:
        settings = dataclasses.replace(settings, email=DEMO_EMAIL)

    def progress(stage: str, message: str) -> None:
        if not quiet:
            echo(f"{stage:>14}  {message}", err=True)

    result = run_demo(directory, settings, options, fresh=fresh, progress=progress)
    if as_json:
        echo_json(result.to_dict())
    else:
        echo(_demo_summary(result))


def _demo_summary(result: Any) -> str:
    """The demo's numbers, read from the PRISMA flow of the store it leaves."""
    from db.flow import COLUMN_OF_ROLE

    flow = result.flow
    s = flow.screening
    width = max([len(x.label) + 2 for x in flow.sources] + [20])
    lines = [f"Demo review: {result.n_works} works, {result.n_index} index articles, seed "
             f"{result.seed}; finished in {result.seconds:.0f} s.", "",
             "Records identified (duplicates among them):"]
    for column, heading in (("databases", "Databases"), ("other", "Other methods"),
                            ("previous", "Previous studies")):
        index_column = "previous" if flow.review_type == "update" else "other"
        mine = [x for x in flow.sources
                if (index_column if x.role == "index" else COLUMN_OF_ROLE.get(x.role)) == column]
        if mine:
            lines.append(f"  {heading}:")
        for x in mine:
            lines.append(f"    {x.label:<{width - 2}} {x.identified:>6}   ({x.duplicates})")
    total = sum(x.identified for x in flow.sources)
    dups = sum(x.duplicates for x in flow.sources)
    lines.append(f"  {'Total':<{width}} {total:>6}   ({dups})")
    lines += [
        f"Duplicates removed: {dups} ({result.duplicates_merged} records merged by deduplication, "
        f"the rest found by more than one route)",
        f"Records screened (title/abstract): {s.screened}; excluded {s.screen_excluded}",
        f"Conflicts resolved by carol: {result.conflicts['title-abstract']} at title/abstract, "
        f"{result.conflicts['full-text']} at full text",
    ]
    for p in result.agreement:
        kappa = "n/a" if p.kappa is None else f"{p.kappa:.3f}"
        lines.append(f"Agreement {p.reviewer_a}/{p.reviewer_b} at {p.stage}: {p.percent:.1f} % "
                     f"of {p.n} records, Cohen's kappa {kappa}")
    ft = result.fulltexts
    if ft is not None:
        from base.services import SERVICE_NAMES

        per = ", ".join(f"{SERVICE_NAMES.get(k, k)} {v}" for k, v in sorted(ft.by_service.items()))
        bad = ", ".join(f"{v} {k}" for k, v in sorted(ft.failed_links.items()))
        lines.append(f"Full texts found open: {ft.found_open} of {ft.sought} sought ({per}); "
                     f"obtained by hand {ft.by_hand}; not retrieved {ft.not_retrieved}"
                     + (f"; not fetched: {bad}" if bad else ""))
    x = result.extraction
    if x is not None and x.congruence is not None:
        lines.append(f"Congruence in data extraction ({x.form_title} form, "
                     + ", ".join(f"{p.reviewer_a}/{p.reviewer_b}" for p in x.pairs)
                     + f"): {x.congruence:.1f} % ({x.agreements} agreements / "
                     f"{x.agreements + x.disagreements} comparisons over {x.records} records); "
                     f"{result.conflicts.get('extraction', 0)} fields settled by carol")
    lines += [
        f"Reports sought {s.sought}, not retrieved {s.not_retrieved}, assessed {s.assessed}, "
        f"excluded {s.excluded}",
        f"Included: {flow.total_studies} studies ({flow.total_reports} reports)",
    ]
    r = result.recall
    lines.append(
        f"Recall of the hidden relevant set: {r.included} of {r.relevant_in_world} relevant "
        f"works included ({r.overall:.0%}); the search found {r.found} ({r.search_recall:.0%}) "
        f"and screening kept {r.screening_recall:.0%} of those")
    if result.failed_searches:
        lines.append(f"Searches that failed: {result.failed_searches} (see `cluster searches`)")
    db = result.store_path
    lines += ["", f"Files in {result.directory}:"]
    for what, path in result.files.items():
        lines.append(f"  {what:<28} {path.name}")
    lines += ["", "Next:",
              f"  cluster flow --db {db} --layout screen-other --json   (these numbers)",
              f"  cluster screen --db {db} --reviewer carol",
              f"  cluster searches --db {db}"]
    return "\n".join(lines)


def main() -> None:
    guard_stdout()
    try:
        cli(prog_name="cluster")
    except OutputLost as exc:
        if not exc.reader_gone:
            with contextlib.suppress(OSError):
                click.echo(f"Error: {exc.sentence()}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
