"""Real import files, damaged at random: each import ends in one `Error:` sentence, or reads
every record the file's markers show, or says in a warning how many it could not read."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings, strategies as st

from cli import cli
from conftest import shared_path

KINDS = ("truncate", "flip", "insert", "damage-marker")
MARKERS = (b"TY  -", b"PMID-", b"@article", b"<record>")


def _files() -> list[Path]:
    root = shared_path("fixtures", "files")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.parent != root)


def _mutate(data: bytes, kind: str, at: float, byte: int) -> bytes:
    pos = int(at * max(len(data) - 1, 1))
    if kind == "truncate":
        return data[:max(pos, 1)]
    if kind == "flip":
        return data[:pos] + bytes([byte]) + data[pos + 1:]
    if kind == "insert":
        return data[:pos] + bytes([byte, byte ^ 0x22]) + data[pos:]
    for marker in MARKERS:
        hits = [i for i in range(len(data)) if data.startswith(marker, i)]
        if hits:
            i = hits[int(at * (len(hits) - 1))]
            return data[:i] + b"X" + data[i + 1:]
    return data


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(index=st.integers(0, 10_000), kind=st.sampled_from(KINDS), at=st.floats(0, 1),
       byte=st.integers(0, 255))
def test_damaged_real_files_fail_cleanly_or_say_what_they_lost(tmp_path_factory, index, kind, at,
                                                               byte) -> None:
    files = _files()
    source = files[index % len(files)]
    tmp = tmp_path_factory.mktemp("fuzz")
    damaged = tmp / source.name
    damaged.write_bytes(_mutate(source.read_bytes(), kind, at, byte))
    result = CliRunner().invoke(cli, ["import", str(damaged), "--db", str(tmp / "r.db"), "--json",
                                      "--quiet"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    if result.exit_code != 0:
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 1 and len(lines) == 1 and lines[0].startswith("Error: "), lines
        return
    (imported,) = json.loads(result.stdout)
    assert imported["n_in_file"] >= imported["n_read"]
    if imported["n_read"] < imported["n_in_file"]:
        assert any(f"holds {imported['n_in_file']} records" in w or "not imported" in w
                   for w in imported["warnings"]), imported["warnings"]
