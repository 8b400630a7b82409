"""The shortcuts an import takes for values already in their normal form give exactly what
the full normalisers give: every record of a large import goes through them."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

import base.record as record_module
import db.formats.common as common
import db.formats.convert as convert
from base.record import (Author, Record, clean_text, normalize_doi, normalize_pmid,
                         normalize_year)
from db.formats.common import Text
from db.store import RECORD_COLUMNS, record_to_row, record_values

#: every character Python counts as whitespace
WHITESPACE = [chr(i) for i in range(0x110000) if chr(i).isspace()]


def test_collapse_spaces_is_split_and_join_for_every_kind_of_whitespace() -> None:
    texts = ["", " ", "a", "a b", "a  b", " a", "a ", "word\u00e9 word", "x\u200by"]
    for ws in WHITESPACE:
        texts += [f"a{ws}b", f"{ws}a", f"a{ws}", f"a {ws}b", ws, f"caf\u00e9{ws}au lait"]
    for text in texts:
        assert common.collapse_spaces(text) == " ".join(text.split()), repr(text)


@pytest.mark.parametrize("raw", [
    None, "", "  ", "Trial of care", " Trial  of\tcare ", "p &lt; 0.05", "<i>TERT</i> gene",
    "Caf\u00e9\u00a0au lait", "â‰¥18 years", "IFN<U+03B3>", "na", "NULL", "n/a", 2015, 3.5,
    "line one\nline two", "\u3000wide\u3000space",
])
def test_value_and_clean_text_are_unchanged(raw: object) -> None:
    # the full path, as it was: mojibake undone, markup dropped, whitespace collapsed
    full = None if raw is None else " ".join(
        common.without_markup(common.fix_mojibake(str(raw))).split()) or None
    expected = None if full is None or full.lower() in {"na", "nan", "none", "null", "n/a"} \
        else full
    assert common.value(raw) == expected
    assert common._clean_text(raw) == clean_text(raw)


@pytest.mark.parametrize("raw, fixed", [
    ("\u00e2\u2030\u00a518 years", "\u226518 years"),
    ("Caf\u00c3\u00a9", "Caf\u00e9"),
    ("\u00c2\u00b5g", "\u00b5g"),
    ("\u00c3 la carte", "\u00c3 la carte"),  # an "Ã" alone is left
    ("na\u00efve \u201cquoted\u201d", "na\u00efve \u201cquoted\u201d"),
    ("plain", "plain"),
])
def test_mojibake_is_undone_where_it_is_and_only_there(raw: str, fixed: str) -> None:
    assert common.fix_mojibake(raw) == fixed


@pytest.mark.parametrize("raw", [
    " Liu,\tR. ;  Adler\u00a0D.G. ", "Liu R.\n and  Adler D.", "a\u3000 b", "Liu, R.",
])
def test_author_cells_have_their_whitespace_collapsed(raw: str) -> None:
    from db.formats.tabular import parse_authors

    text = " ".join(raw.strip().split())
    assert parse_authors(raw) == parse_authors(text)
    assert all(" ".join(a.split()) == a for a in parse_authors(raw))


@pytest.mark.parametrize("raw", [
    "10.1234/abc", "10.1234/ABC", "10.1234/abc.", "10.1234/abc)", "10.1234/abc\n",
    "10.1234/abc def", "10.1234/a%20b", "10.12/abc", "10.1234/", "10.1234/ab\u00e9",
    "10.1234/AB\u00c9", "10.1234/a\u00a0b", "10.\u0661\u0662\u0663\u0664/abc",
    "https://doi.org/10.1234/abc", "doi:10.1234/abc", None, "", 12345,
])
def test_a_bare_doi_is_taken_as_normalize_doi_would_take_it(raw: object) -> None:
    assert normalize_doi(raw) == record_module._doi_of_text(raw)  # type: ignore[arg-type]


@pytest.mark.parametrize("raw", [
    "123", "0", "000", "0012", "12.0", "PMID: 12", " 12 ", "\u0661\u0662", "\u00b2", "",
    "12 34", 42, None,
])
def test_a_pmid_of_digits_is_taken_as_normalize_pmid_would_take_it(raw: object) -> None:
    try:
        expected = record_module._pmid_of_text(raw)
    except ValueError:  # a digit int() cannot read ("²"): the shortcut must not take it
        with pytest.raises(ValueError):
            normalize_pmid(raw)
        return
    assert normalize_pmid(raw) == expected


@pytest.mark.parametrize("raw", [
    "1499", "1500", "1999", "2000", "2099", "2100", "0999", "\u0662\u0660\u0661\u0665",
    "2015a", "c. 2015", "15", None,
])
def test_a_four_digit_year_is_read_as_normalize_year_reads_it(raw: str | None) -> None:
    assert normalize_year(raw) == record_module._year_in_text(raw)


def _text(tmp_path: Path, data: bytes) -> Text:
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    return Text(path, path.name, common.scan(path, path.name))


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
@pytest.mark.parametrize("data", [
    b"", b"\n", b"a", b"a\n", b"a\nb", b"a\n\nb\n\n", b"one\r\ntwo\rthree\n",
    b"\xef\xbb\xbfhead\nlong line " + b"x" * 50 + b"\nend",
    "caf\u00e9\n\u2028not a break\n".encode("utf-8"),
])
def test_lines_are_those_of_the_whole_text(tmp_path: Path, monkeypatch, chunk: int,
                                           data: bytes) -> None:
    monkeypatch.setattr(common, "CHUNK", chunk)
    text = _text(tmp_path, data)
    whole = "".join(text.pieces())
    expected = [line + "\n" for line in whole.split("\n")]
    expected[-1] = expected[-1][:-1]
    assert list(text.lines()) == [line for line in expected if line]


def test_a_surrogate_pair_split_by_a_chunk_is_joined(tmp_path: Path, monkeypatch) -> None:
    assert common._high_surrogate_end("x\ud83d")
    assert common._high_surrogate_end("x\ud83d\n")
    assert not common._high_surrogate_end("x\ude00")
    assert not common._high_surrogate_end("")
    # CESU-8: a character outside the BMP written as two surrogates of three bytes each
    pair = "\U0001F600".encode("utf-16-le").decode("utf-16-le", "surrogatepass")
    data = b"a" + pair.encode("utf-8", "surrogatepass") + b"\nb\n"
    for chunk in range(1, 10):
        monkeypatch.setattr(common, "CHUNK", chunk)
        assert list(_text(tmp_path, data).lines()) == ["a\U0001F600\n", "b\n"]


def _json_row(record: Record) -> dict[str, object]:
    """A record's row as `json.dumps` writes it (the way rows were always written)."""
    row: dict[str, object] = {f: getattr(record, f) for f in RECORD_COLUMNS[:13]}
    for f in ("authors", "language", "pub_types", "keywords"):
        items = getattr(record, f)
        row[f] = json.dumps(list(items), ensure_ascii=False) if items else "[]"
    row["author_details"] = (json.dumps([asdict(a) for a in record.author_details],
                                        ensure_ascii=False) if record.author_details else "[]")
    row["needs_metadata"] = int(record.needs_metadata)
    extra = dict(record.extra)
    if record.source_id is not None:
        extra.setdefault("source_id", record.source_id)
    row["extra"] = json.dumps(extra, ensure_ascii=False, sort_keys=True, default=str)
    return row


@pytest.mark.parametrize("record", [
    Record(),
    Record(title="T", authors=("Liu, R.", 'O"Brien, \\ T.', "Caf\u00e9, A.\u2028\x01"),
           keywords=("a", "b"), language=("en",), pub_types=("Journal Article",)),
    Record(title="T", source_id="row 7 \"quoted\" \u00e9"),
    Record(title="T", source_id="7", extra={"notes": "n", "rayyan": {"x": 1}}),
    Record(title="T", source_id="7", extra={"source_id": "kept"}),
    Record(title="T", extra={"when": Path("x")}),
    Record(title="T", authors=(1, 2)),  # type: ignore[arg-type]
    Record(title="T", keywords=("a", 2)),  # type: ignore[arg-type]
    Record(title="T", author_details=(Author("Liu, R.", orcid="0000"),)),
])
def test_record_values_are_the_rows_json_dumps_gave(record: Record) -> None:
    assert record_to_row(record) == _json_row(record)
    assert record_values(record) == tuple(_json_row(record).values())


def test_a_lone_surrogate_is_replaced_in_the_row() -> None:
    values = record_values(Record(title="a\ud800b", authors=("c\udc00",)))
    assert values[0] == "a\ufffdb"
    assert values[RECORD_COLUMNS.index("authors")] == '["c\ufffd"]'


def test_the_caps_shortcut_knows_every_text_field_of_a_record() -> None:
    # a field of text the shortcut did not check could come in over its cap
    assert set(convert._TEXT_FIELDS) | set(convert._LIST_FIELDS) | {"abstract"} == {
        f for f, t in Record.__dataclass_fields__.items()
        if t.type in ("str | None", "tuple[str, ...]")}
    assert set(Record.__dataclass_fields__) - set(convert._TEXT_FIELDS) - set(
        convert._LIST_FIELDS) == {"abstract", "year", "needs_metadata", "author_details", "extra"}


@pytest.mark.parametrize("changes, cut", [
    ({}, False),
    ({"title": "x" * 10_000}, False),
    ({"title": "x" * 10_001}, True),
    ({"journal": "x" * 6_000, "url": "y" * 6_000}, False),  # long together, each under its cap
    ({"abstract": "x" * 1_000_000}, False),
    ({"abstract": "x" * 1_000_001}, True),
    ({"authors": ("a",) * 10_000}, False),
    ({"authors": ("a",) * 10_001}, True),
    ({"keywords": ("k" * 10_001,)}, True),
    ({"keywords": ("k" * 6_000, "k" * 6_000)}, False),
])
def test_fields_over_their_cap_are_cut_and_no_others(changes: dict, cut: bool) -> None:
    record = Record(title="T", authors=("Liu, R.",)).replace(**changes)
    cuts: list[str] = []
    capped, n_cut = convert.capped(record, 1, cuts)
    assert (capped != record) is cut
    assert (n_cut, len(cuts)) == (int(cut), int(cut))
