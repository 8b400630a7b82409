"""Inputs with limits: long search queries, special files, huge files and fields.

Each is refused at once with one sentence, or cut with a warning, instead of
running for minutes, blocking for ever or filling the store.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from db.formats import FileFormatError, read_file
from db.store import open_store
from clikit import invoke, one_sentence


@pytest.fixture
def wordy(tmp_path: Path) -> Path:
    """A store of 300 records whose abstracts repeat one word 60 times."""
    db = tmp_path / "review.db"
    ris = tmp_path / "wordy.ris"
    ris.write_text("".join(f"TY  - JOUR\nTI  - Record {i} on care\nAB  - {'word care nurse ' * 60}"
                           f"{i}\nER  - \n" for i in range(300)))
    assert invoke("import", str(ris), "--db", str(db)).exit_code == 0
    return db


# --- cluster find -------------------------------------------------------------------------------


def test_a_long_query_repeating_a_word_runs_in_linear_time(wordy: Path) -> None:
    from cluster.find import find

    store = open_store(wordy)
    once = find(store, "word", limit=10)
    start = time.perf_counter()
    many = find(store, " ".join(["word"] * 380), limit=10)  # 1,899 characters
    elapsed = time.perf_counter() - start
    store.close()
    # ranked as written, 380 copies of a word cost 380 * 380 per occurrence: over a minute here
    assert elapsed < 5, elapsed
    assert [h.record_id for h in many] == [h.record_id for h in once]
    assert many[0].snippet == once[0].snippet


def test_a_repeated_word_does_not_widen_or_narrow_what_matches(wordy: Path) -> None:
    from cluster.find import find

    store = open_store(wordy)
    assert [h.record_id for h in find(store, "Record AND 7 AND 7 NOT care")] == []
    assert [h.record_id for h in find(store, "7 7 Record")] == [8]
    assert [h.record_id for h in find(store, '"Record 7" OR "Record 7" OR "record 8"')] == [8, 9]
    store.close()


@pytest.mark.parametrize("query, message", [
    ("x" * 2001, "Error: The search query is 2,001 characters long (at most 2,000): search for "
                 "fewer words or phrases at a time."),
    (" OR ".join(f"w{i}" for i in range(101)),
     "Error: The search query has 101 different words or phrases (at most 100): search for "
     "fewer at a time."),
])
def test_a_query_over_the_caps_is_refused(wordy: Path, query: str, message: str) -> None:
    result = invoke("find", query, "--db", str(wordy))
    assert result.exit_code == 1
    assert one_sentence(result) == message


# --- cluster import of what is not a file, or too much of one -----------------------------------


def test_a_device_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(FileFormatError, match=r"^/dev/zero is not a regular file \(a pipe, device "
                                              r"or socket\): save the export as a file and import "
                                              r"that\.$"):
        read_file("/dev/zero")


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.ris"
    os.mkfifo(fifo)
    start = time.perf_counter()
    result = invoke("import", str(fifo), "--db", str(tmp_path / "review.db"))
    assert time.perf_counter() - start < 5
    assert result.exit_code == 1
    assert one_sentence(result) == (f"Error: {fifo} is not a regular file (a pipe, device or "
                                    "socket): save the export as a file and import that.")


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "huge.ris"
    with open(big, "wb") as fh:
        fh.truncate(2 * 2**30 + 300 * 2**20)  # sparse: takes no space
    with pytest.raises(FileFormatError) as info:
        read_file(big)
    assert str(info.value) == (f"{big} is 2.3 GB, more than the 2 GB one import can take: split "
                               "the export into smaller files.")


def test_overlong_fields_are_cut_with_a_warning(tmp_path: Path) -> None:
    f = tmp_path / "long.csv"
    f.write_text("title,abstract,journal\n"
                 f"Short title,{'a' * 1_500_000},{'J' * 20_000}\n"
                 f"{'T' * 12_000},fine,Journal\n")
    res = read_file(f).result
    first, second = res.records
    assert (len(first.abstract), len(first.journal), len(second.title)) == (1_000_000, 10_000, 10_000)
    assert first.title == "Short title" and second.abstract == "fine"
    assert res.warnings == (
        "long.csv: fields too long for a reference were cut: record 1's abstract (1,500,000 "
        "characters, 1,000,000 kept); record 1's journal (20,000 characters, 10,000 kept); "
        "record 2's title (12,000 characters, 10,000 kept).",)
