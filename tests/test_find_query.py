"""`cluster find` reads queries as people type them; only malformed input is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from clikit import invoke, one_sentence

from base.record import Record
from cluster.find import find, parse_query

TITLES = (
    "Self-compassion training for nurses",        # 1
    "Compassion fatigue in health staff",          # 2
    "Self compassion and burnout in students",     # 3
    "O'Brien's model of empathy in nursing",       # 4
    "Mindfulness for teachers",                    # 5
)


@pytest.fixture
def found(store):
    with store.transaction():
        for t in TITLES:
            store.add_record(Record(title=t, abstract="A study of care."))

    def ids(query: str) -> list[int]:
        return sorted(h.record_id for h in find(store, query))

    return ids


@pytest.mark.parametrize("query, expected", [
    ("self-compassion", [1, 3]),                       # a hyphen joins, as the index splits it
    ('"self compassion"', [1, 3]),
    ("compassion NOT self", [2]),
    ("compassion AND NOT self-compassion", [2]),       # "AND NOT" as several databases write it
    ("(nurses OR teachers) AND care", [1, 5]),
    ("compassion (staff OR students)", [2, 3]),        # side by side: both must match
    ("nurs*", [1, 4]),
    ("O'Brien", [4]),
    ("title:mindfulness", [5]),
    ("self-compassion - burnout", [3]),                # a lone dash is no word
    ("self-compassion and burnout", [3]),              # lower-case "and" is a word to find
])
def test_queries_as_typed(found, query: str, expected: list[int]) -> None:
    assert found(query) == expected


def test_the_index_syntax_written_out() -> None:
    q = parse_query('self-compassion AND (nurses OR "health staff") NOT students*')
    assert q.match == ('"self-compassion" AND ( "nurses" OR "health staff" ) NOT "students" *')
    assert q.operands == ('"self-compassion"', '"nurses"', '"health staff"', '"students" *')


@pytest.mark.parametrize("query, why", [
    ('"self compassion', "a double quote is not closed"),
    ("(nurses OR staff", "a parenthesis is not closed"),
    ("nurses) OR staff", "a closing parenthesis has no opening one"),
    ("nurses AND", "AND has nothing after it"),
    ("OR nurses", "OR has nothing before it"),
    ("NOT nurses", "NOT has nothing before it"),
    ("nurses OR AND staff", "AND follows OR"),
    ("nurses ()", "a pair of parentheses holds nothing"),
])
def test_malformed_queries_are_one_sentence(store, tmp_path: Path, query: str, why: str) -> None:
    store.add_record(Record(title="Nurses"))
    store.close()
    result = invoke("find", query, "--db", str(tmp_path / "review.db"))
    assert result.exit_code == 1
    assert one_sentence(result) == (
        f"Error: Cannot search for {query!r}: {why} (e.g. self-compassion AND (nurses OR "
        f"\"health staff\") NOT students).")


def test_a_query_of_no_words_is_refused(store, tmp_path: Path) -> None:
    store.close()
    result = invoke("find", "& ,", "--db", str(tmp_path / "review.db"))
    assert one_sentence(result) == ("Error: The search query has no words to look for: give a "
                                    "word or a phrase, e.g. \"realist\".")


def test_find_through_the_cli_with_a_hyphen(store, tmp_path: Path) -> None:
    store.add_record(Record(title="Self-compassion training for nurses"))
    store.close()
    result = invoke("find", "self-compassion", "--db", str(tmp_path / "review.db"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "#1    Self-compassion training for nurses",
        "    [Self-compassion] training for nurses",
        "1 record(s).",
    ]
