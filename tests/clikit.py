"""Running the CLI in-process from a test, and reading the one error sentence a user sees."""

from __future__ import annotations

from click.testing import CliRunner, Result

from cli import cli


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """`cluster ARGS` in this process; exceptions propagate so a traceback fails the test."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=env)


def one_sentence(result: Result) -> str:
    """The error line; fails unless the whole of stderr is that one line."""
    err = result.stderr.strip()
    assert "Traceback" not in result.output, result.output
    assert len(err.splitlines()) == 1, err
    assert err.startswith("Error: "), err
    return err
