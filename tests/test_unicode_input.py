"""Text from outside with lone surrogates is stored as valid Unicode (U+FFFD in their place).

A JSON `\\ud800` escape (a service answer, a decisions file) and surrogate
bytes in a reference file used to reach SQLite, which refuses them, and end
in a traceback; an answer that could not be read is never kept in the HTTP
cache, so the command works once the service is fixed.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from conftest import shared_path
from cluster.demo.loopback import Request, Response
from base.record import Record, valid_text
from db.store import open_store
from replay import Replay, load_index

DOI = "10.1371/journal.pone.0033693"
TITLE = ("Methylphenidate Exposure Induces Dopamine Neuron Loss and Activation of Microglia in "
         "the Basal Ganglia of Mice")


def test_valid_text_replaces_lone_surrogates_and_joins_pairs():
    assert valid_text("a\ud800b") == "a\ufffdb"
    assert valid_text("\udcff") == "\ufffd"
    assert valid_text("smile \ud83d\ude00") == "smile \U0001F600"
    assert valid_text({"t": ["x\udc00", ("y", 3)], "n": None}) == {"t": ["x\ufffd", ("y", 3)],
                                                                   "n": None}
    text = "Café ≥18"
    assert valid_text(text) is text
#: PubMed's answer to "which PMID has this DOI": none
NO_PMID = (b'<?xml version="1.0" encoding="UTF-8" ?>\n<eSearchResult><Count>0</Count>'
           b"<RetMax>0</RetMax><RetStart>0</RetStart><IdList></IdList></eSearchResult>")


class Crossref:
    """A Crossref that answers one work; what it answers can be changed between runs."""

    def __init__(self) -> None:
        work = json.loads(shared_path("fixtures", "http", "crossref",
                                      "works_10.1371_journal.pone.0033693_70refs.json").read_bytes())
        self.good = json.dumps(work).encode()
        self.body = self.good
        # the other services replay their recordings; Crossref answers from here
        self.replay = Replay(load_index(shared_path("fixtures", "http")))
        self.replay.server.route("/crossref", self.answer)
        self.replay.server.route("/ncbi", lambda req: Response(200, NO_PMID, content_type="text/xml"))
        self.hits = 0

    def answer(self, req: Request) -> Response:
        self.hits += 1
        return Response(200, self.body)

    def serve(self, *, title: str | None = None, **fields: object) -> None:
        work = json.loads(self.good)
        work["message"].update(fields)
        body = json.dumps(work)
        if title is not None:  # written as JSON text: the escape itself is the point
            body = body.replace(json.dumps(TITLE), f'"{title}"')
        self.body = body.encode()


@pytest.fixture
def crossref(monkeypatch):
    service = Crossref()
    service.replay.start()
    for name, url in service.replay.base_urls().items():
        monkeypatch.setenv(f"CLUSTER_{name.upper()}_URL", url)
    monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "0")
    yield service
    service.replay.stop()


def _titles(db_path: Path) -> list[str]:
    store = open_store(db_path)
    try:
        return [r.title for _, r in store.records()]
    finally:
        store.close()


def test_crossref_title_with_a_lone_surrogate_is_stored_replaced(run, crossref, db_path):
    crossref.serve(title="Loss of \\ud800 neurons in mice")
    assert "Loss of \ufffd neurons in mice" in run("fetch", "--doi", DOI, "-q").stdout
    run("add", "--doi", DOI)
    assert _titles(db_path) == ["Loss of \ufffd neurons in mice"]
    # the service is fixed: the answer kept in the cache is readable, the command still works
    crossref.serve()
    run("fetch", "--doi", DOI, "-q")
    assert crossref.hits == 1


def test_an_unreadable_answer_is_not_cached_and_the_fixed_service_is_asked_again(
        run, crossref, db_path):
    crossref.serve(issued="not a date")
    result = run("add", "--doi", DOI, expect=1)
    assert result.output.strip() == (
        "Error: Crossref sent an answer that cluster cannot read (AttributeError): try again "
        "later, and report it if it keeps happening.")
    assert _titles(db_path) == []
    crossref.serve()
    run("add", "--doi", DOI)
    assert crossref.hits == 2
    assert _titles(db_path) == [TITLE]


def test_csv_cell_with_a_lone_surrogate_is_imported_replaced(run, tmp_path, db_path):
    csv = tmp_path / "refs.csv"
    # UTF-8 as Python writes a lone surrogate with errors="surrogatepass" (also CESU-8)
    csv.write_bytes("title,year\nLoss of \ud800 neurons in Café mice,2020\n"
                    "Joined \ud83d\ude00 pair,2021\n".encode("utf-8", "surrogatepass"))
    run("import", str(csv))
    assert sorted(_titles(db_path)) == ["Joined \U0001F600 pair",
                                        "Loss of \ufffd neurons in Café mice"]


def test_decisions_note_with_a_lone_surrogate_is_imported_replaced(run, tmp_path, db_path):
    store = open_store(db_path)
    with store.transaction():
        rid = store.add_record(Record(title="A record", year=2020))
    review_id = store.review_id
    store.close()
    event = {"id": uuid.uuid4().hex, "kind": "decision", "review_id": review_id,
             "ts": "2026-01-05T10:00:00Z", "record_id": rid, "reviewer": "bob\udcff",
             "stage": "title-abstract", "value": "include", "note": "unsure \ud800 about it",
             "data": {}}
    path = tmp_path / "bob.jsonl"
    path.write_text(json.dumps(event) + "\n", encoding="utf-8")  # ensure_ascii: "\ud800" escapes
    assert "\\ud800" in path.read_text()
    run("decisions", "import", str(path))
    store = open_store(db_path)
    try:
        rows = store.db.execute("SELECT reviewer, note FROM events WHERE kind = 'decision'").fetchall()
    finally:
        store.close()
    assert rows == [("bob\ufffd", "unsure \ufffd about it")]


def test_a_note_typed_on_a_non_utf8_terminal_is_stored_replaced(store):
    # undecodable bytes of a command line arrive as lone surrogates (surrogateescape)
    with store.transaction():
        rid = store.add_record(Record(title="A record"))
        store.log_event("note", record_id=rid, reviewer="alice", note="caf\udce9")
    assert store.db.execute("SELECT note FROM events").fetchall() == [("caf\ufffd",)]
