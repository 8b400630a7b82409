"""The flow, the report's merge figures and the log as a large store reads them: sources
counted column-wise, studies found through their index, the log written as it is read."""

from __future__ import annotations

import gc
import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import db.diagram as diagram_module

from base.record import Record
from base.terminal import dumps, dumps_list
from db.diagram import layout, overflows, write_png
from db.eventlog import LogError, iter_log, read_log
from db.flow import FlowError, compute_flow
from db.report import dedup_section

TA = "title-abstract"


def _add(store, role="database", service="MEDLINE", strategy=None, title="r", extra=None):
    rid = store.add_record(Record(title=title, extra=extra or {}))
    store.add_source(rid, None, role=role, service=service, strategy=strategy)
    return rid


def test_a_line_spelled_two_ways_takes_the_label_of_its_first_retrieval(store):
    # a citation route named by its strategy and the same route named only by its service
    # share the identification line ("citation", "cited-by") but not its label
    a = _add(store, role="citation", service="cited-by")
    _add(store, role="citation", service="OpenAlex", strategy="cited-by")
    c = _add(store, role="citation", service="OpenAlex", strategy="cited-by")
    store.add_source(a, None, role="citation", service="OpenAlex", strategy="cited-by")
    (line,) = compute_flow(store).sources
    assert (line.key, line.label, line.identified, line.duplicates) == ("cited-by", "cited-by", 4, 1)
    store.db["records"].update(a, {"duplicate_of": c})
    (line,) = compute_flow(store).sources
    # a's retrievals now count for c, the last record: the first retrieval is record 2's
    assert (line.label, line.identified, line.duplicates) == (
        "Citation searching, forward (cited by)", 4, 2)


def test_a_source_row_with_an_unknown_role_or_record_is_named(store):
    a = _add(store)
    store.db["sources"].insert({"record_id": a, "role": "newsletter", "service": "X"})
    with pytest.raises(FlowError, match=rf"Source row 2 of record {a} has role 'newsletter'"):
        compute_flow(store)
    store.conn.execute("PRAGMA foreign_keys = OFF")
    store.db["sources"].update(2, {"role": "database", "record_id": 77})
    with pytest.raises(FlowError, match="Source row 2 points to record 77, which is not in this"):
        compute_flow(store)


def test_study_keys_from_imports_are_read_through_their_index(store):
    a = _add(store, extra={"study": "S1"})
    b = _add(store, extra={"study": "S1"})
    _add(store)
    for rid in (a, b):
        for stage in (TA, "full-text"):
            for who in ("ann", "bob"):
                store.log_event("decision", record_id=rid, reviewer=who, stage=stage,
                                value="include")
    fl = compute_flow(store)
    assert (fl.new_reports, fl.new_studies) == (2, 1)
    plan = " ".join(r[-1] for r in store.conn.execute(
        "EXPLAIN QUERY PLAN SELECT id, extra FROM records WHERE instr(extra, 'study') "
        "AND +duplicate_of IS NULL"))
    assert "idx_records_study" in plan


def test_study_of_names_every_counted_record_and_no_other(store):
    a, b = _add(store, extra={"study": "S1"}), _add(store)
    fl = compute_flow(store)
    assert dict(fl.study_of) == {a: "S1", b: f"record:{b}"}
    assert (len(fl.study_of), 999 in fl.study_of) == (2, False)
    with pytest.raises(KeyError):
        fl.study_of[999]


def test_the_collector_is_paused_only_while_counting(store):
    _add(store)
    compute_flow(store)
    assert gc.isenabled()
    gc.disable()
    try:
        compute_flow(store)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_merge_figures_count_standing_merges_their_rules_and_scores(store):
    a, b, c, d = (_add(store) for _ in range(4))
    store.log_event("merge", record_id=a, data={"rule": "doi", "score": 0.5, "merge_id": 1})
    store.log_event("merge", record_id=a, data={"rule": "fuzzy", "score": 0.93, "merge_id": 2})
    store.log_event("merge", record_id=c, data={"rule": True, "merge_id": 3})
    gone = store.log_event("merge", record_id=d, data={"rule": "doi", "score": 0.1,
                                                       "merge_id": 4})
    store.log_event("undo", reviewer=None, undoes=gone)
    lines = dedup_section(store, compute_flow(store))
    assert "0 records were marked as duplicates in 3 logged merges." in lines[2]
    assert lines[4:9] == ["| rule | merges |", "| --- | --- |", "| True | 1 |", "| doi | 1 |",
                          "| fuzzy | 1 |"]
    assert lines[10] == "Match scores of merged records ranged from 0.5 to 0.93."


@pytest.mark.parametrize("items", [[], [{"a": 1}], [{"a": [1, {"b": "x\ny"}]}, "\u0085é", 3]])
def test_dumps_list_is_dumps_of_the_list(items):
    assert "".join(dumps_list(iter(items))) == dumps(items)
    assert "".join(dumps_list(iter(items), batch=2)) == dumps(items)


def test_iter_log_checks_its_filters_before_reading(store):
    with pytest.raises(LogError, match="Unknown event kind 'x'"):
        iter_log(store, kind="x")
    a = _add(store)
    for i in range(5):
        store.log_event("tag", record_id=a, value=f"t{i}")
    entries = iter_log(store, kind="tag", limit=3)
    assert next(entries).value == "t4"
    assert [e.value for e in entries] == ["t3", "t2"]
    assert [e.value for e in read_log(store, kind="tag")] == ["t4", "t3", "t2", "t1", "t0"]


def test_log_json_streamed_reads_back_whole(run, store, db_path):
    a = _add(store)
    for i in range(3):
        store.log_event("tag", record_id=a, value=f"t{i}")
    store.close()
    data = json.loads(run("log", "--json").stdout)
    assert [e["value"] for e in data] == ["t2", "t1", "t0"]
    assert json.loads(run("log", "--json", "--kind", "note").stdout) == []
    out = run("log", "--json", "--record", "99", expect=1)
    assert out.stdout == "" and "Error: Record 99 is not in this store." in out.output


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_png_is_drawn_without_loading_matplotlib(store, db_path, tmp_path):
    _add(store)
    height = int(layout(compute_flow(store)).height * 200 / 72)
    store.close()
    png = tmp_path / "flow.png"
    code = ("import sys; from db.store import open_store; from db.flow import compute_flow; "
            "from db.diagram import layout, write_png; "
            f"write_png(layout(compute_flow(open_store({str(db_path)!r}))), {str(png)!r}); "
            "print(sorted(m for m in sys.modules if m.startswith('matplotlib.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"
    assert _png_size(png) == (3527, height)


def test_without_the_fonts_matplotlib_draws_the_same_size(store, tmp_path, monkeypatch):
    _add(store)
    diagram = layout(compute_flow(store))
    write_png(diagram, tmp_path / "a.png")
    monkeypatch.setattr(diagram_module, "_font_files", lambda: None)
    write_png(diagram, tmp_path / "b.png")
    assert _png_size(tmp_path / "a.png") == _png_size(tmp_path / "b.png")
    assert overflows(diagram) == []
