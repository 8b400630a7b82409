"""`cluster simulate` on reference files with ASReview labels, and --plot given twice."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from base.record import Record
from db.formats.ris import write_ris
from screeners.prioritiser.simulation import DatasetError, load_dataset
from tests.conftest import shared_path
from clikit import invoke

RELEVANT, IRRELEVANT = "ASReview_relevant", "ASReview_irrelevant"

# (title, abstract, note); the first four are about one topic and the only includes
RECORDS = [
    ("Compassion training for hospital nurses", "Burnout fell after mindfulness and compassion "
     "training on the ward.", RELEVANT),
    ("Self-compassion and burnout in intensive care nurses", "Nurses in intensive care reported "
     "less burnout with higher self-compassion.", RELEVANT),
    ("Mindful compassion workshops for midwives", "A compassion workshop reduced emotional "
     "exhaustion in midwives.", RELEVANT),
    ("Compassion fatigue among oncology nurses", "Compassion fatigue and burnout were common in "
     "oncology nursing staff.", RELEVANT),
    ("Soil erosion on terraced hillsides", "Rainfall simulation plots measured sediment loss.",
     IRRELEVANT),
    ("Quantum error correcting codes on surface lattices", "Logical qubits were protected by "
     "stabiliser measurements.", IRRELEVANT),
    ("Chloride corrosion of reinforced concrete bridges", "Deck cores showed chloride ingress "
     "after de-icing.", IRRELEVANT),
    ("Coral reef bleaching after marine heatwaves", "Reef surveys found bleaching in shallow "
     "corals.", IRRELEVANT),
    ("Glacier retreat in the southern Alps", "Satellite images tracked ice loss over decades.",
     IRRELEVANT),
    ("Wheat yield under nitrogen fertiliser trials", "Field trials compared nitrogen doses.",
     IRRELEVANT),
    ("Traffic noise and property prices", "Hedonic models priced road noise in suburbs.",
     IRRELEVANT),
    ("Ant colony foraging on branching trails", "Pheromone trails guided foraging ants.",
     IRRELEVANT),
]


def ris_text(records=RECORDS, *, ids: bool = False, keywords_on: int | None = None) -> str:
    """RIS as ASReview exports it: the label as an N1 note (none when note is None)."""
    out = []
    for i, (title, abstract, note) in enumerate(records, 1):
        out += ["TY  - JOUR", f"TI  - {title}", "AU  - Smith, Anna", f"AB  - {abstract}",
                "PY  - 2020", f"DO  - 10.1000/sim.{i}"]
        if ids:
            out.append(f"ID  - rec{i:02d}")
        if i == keywords_on:
            out += ["KW  - empathy", "KW  - nursing"]
        if note:
            out.append(f"N1  - {note}")
        out += ["ER  - ", ""]
    return "\n".join(out)


@pytest.fixture
def ris_file(tmp_path: Path) -> Path:
    path = tmp_path / "asreview_export.ris"
    path.write_text(ris_text(keywords_on=2))
    return path


def one_error(result) -> str:
    """The one `Error:` line on stderr of a failed command."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    return err


def test_ris_with_asreview_notes_is_a_dataset(ris_file):
    ds = load_dataset(ris_file)
    assert ds.name == "asreview_export"
    assert (len(ds.labels), ds.n_included) == (12, 4)
    assert ds.labels == (1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
    # no ID tags and no PMIDs, so the DOIs (present and unique) are the ids
    assert ds.ids == tuple(f"10.1000/sim.{i}" for i in range(1, 13))
    assert ds.texts[1] == ("Self-compassion and burnout in intensive care nurses Nurses in "
                           "intensive care reported less burnout with higher self-compassion. "
                           "empathy nursing")
    assert ds.texts[4] == ("Soil erosion on terraced hillsides Rainfall simulation plots "
                           "measured sediment loss.")
    assert ds.warnings == ()


def test_ris_ids_the_file_own_else_numbers(tmp_path):
    own = tmp_path / "own.ris"
    own.write_text(ris_text(ids=True))
    assert load_dataset(own).ids == tuple(f"rec{i:02d}" for i in range(1, 13))
    shared_doi = tmp_path / "shared_doi.ris"
    shared_doi.write_text(ris_text().replace("10.1000/sim.12", "10.1000/sim.11"))
    assert load_dataset(shared_doi).ids == tuple(str(i) for i in range(1, 13))


def test_cli_simulate_ris_end_to_end(ris_file, tmp_path):
    order = tmp_path / "order.txt"
    res = invoke("simulate", str(ris_file), "--seed", "2", "--order-out", str(order), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["dataset"] == "asreview_export" and out["records"] == 12
    assert [r["seed"] for r in out["runs"]] == [2] and len(out["runs"][0]["prior"]) == 2
    ids = order.read_text().split()
    assert len(ids) == 12 and set(ids) == {f"10.1000/sim.{i}" for i in range(1, 13)}
    included = {f"10.1000/sim.{i}" for i in range(1, 5)}
    # the priors are one include then one exclude; the topic is easy, so every
    # include is found before the remaining excludes
    assert ids[0] in included and ids[1] not in included
    assert set(ids[2:5]) == included - {ids[0]}


def test_unlabelled_records_are_one_sentence(tmp_path):
    records = list(RECORDS)
    records[4] = (*records[4][:2], "ASReview_not_seen")
    records[8] = (*records[8][:2], None)
    path = tmp_path / "partly.ris"
    path.write_text(ris_text(records))
    err = one_error(invoke("simulate", str(path)))
    assert err == ('Error: partly.ris has 2 records without an ASReview_relevant or '
                   'ASReview_irrelevant note, the first being record 5 ("Soil erosion on '
                   'terraced hillsides"): a simulation needs every record labelled.')
    records[8] = RECORDS[8]
    path.write_text(ris_text(records))
    with pytest.raises(DatasetError) as exc:
        load_dataset(path)
    assert str(exc.value) == ('partly.ris has 1 record without an ASReview_relevant or '
                              'ASReview_irrelevant note, record 5 ("Soil erosion on terraced '
                              'hillsides"): a simulation needs every record labelled.')


BIBTEX = """@article{smith2020,
  title = {Compassion training for hospital nurses},
  author = {Smith, Anna},
  year = {2020},
  abstract = {Burnout fell after training.}
}
@article{jones2021,
  title = {Soil erosion on terraced hillsides},
  author = {Jones, Ben},
  year = {2021}
}
"""

MEDLINE = """PMID- 31000001
TI  - Compassion training for hospital nurses.
AB  - Burnout fell after training.
AU  - Smith A

PMID- 31000002
TI  - Soil erosion on terraced hillsides.
AU  - Jones B
"""

NO_LABELS = (": simulate needs every record labelled, as in ASReview's RIS export "
             "(ASReview_relevant or ASReview_irrelevant notes) or a CSV with a 0/1 "
             "label_included column.")


@pytest.mark.parametrize("name,body,kind", [
    ("refs.bib", BIBTEX, "BibTeX"),
    ("pubmed.txt", MEDLINE, "MEDLINE"),  # a .txt file is only read as CSV when it is one
    ("plain.ris", ris_text([(t, a, None) for t, a, _ in RECORDS]), "RIS"),
])
def test_files_without_labels_are_refused(tmp_path, name, body, kind):
    path = tmp_path / name
    path.write_text(body)
    err = one_error(invoke("simulate", str(path)))
    assert err == f"Error: {name} was read as {kind} but has no screening labels{NO_LABELS}"


def test_unreadable_file_is_the_importer_sentence(tmp_path):
    path = tmp_path / "page.ris"
    path.write_text("<html><body>Session expired</body></html>\n")
    err = one_error(invoke("simulate", str(path)))
    assert err.startswith("Error: page.ris looks like HTML or other markup, not a reference "
                          "export: export the records as RIS, BibTeX")


def test_txt_csv_still_read_as_csv_and_dropped_records_warned(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("record_id,title,abstract,label_included\n7,Compassion nurses,training,1\n"
                    "8,Soil,erosion,0\n9,Quantum,codes,0\n")
    ds = load_dataset(path)
    assert ds.ids == ("7", "8", "9") and ds.labels == (1, 0, 0)
    # a record with nothing to screen is dropped by the reader, with its label, and said so
    ris = tmp_path / "with_empty.ris"
    ris.write_text(ris_text() + "TY  - JOUR\nN1  - ASReview_relevant\nER  - \n")
    ds = load_dataset(ris)
    assert (len(ds.labels), ds.n_included) == (12, 4)
    assert ds.warnings == ("with_empty.ris: record(s) 13 have no title, author, abstract or "
                           "identifier and were not imported.",)
    res = invoke("simulate", str(ris), "--json")
    assert res.exit_code == 0
    assert res.stderr.strip() == f"Warning: {ds.warnings[0]}"


def test_plot_png_and_svg_in_one_run(ris_file, tmp_path):
    png, svg = tmp_path / "recall.png", tmp_path / "recall.svg"
    res = invoke("simulate", str(ris_file), "--plot", str(png), "--plot", str(svg), "--quiet")
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in svg.read_bytes()[:500]


def test_a_bad_plot_name_fails_before_anything_is_written(ris_file, tmp_path):
    png, pdf = tmp_path / "recall.png", tmp_path / "recall.pdf"
    res = invoke("simulate", str(ris_file), "--plot", str(png), "--plot", str(pdf))
    assert one_error(res) == "Error: Cannot write a plot to recall.pdf: use a .png or .svg file name."
    assert not png.exists()
    assert res.stdout == ""


@pytest.mark.shared
def test_shared_csv_as_asreview_ris_gives_the_same_dataset(tmp_path):
    src = shared_path("data", "screening", "Cohen_2006_OralHypoglycemics.csv")
    with open(src, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    ris = tmp_path / "Cohen_2006_OralHypoglycemics.ris"
    ris.write_text(write_ris(
        {"record": Record(title=r["title"] or None, abstract=r["abstract"] or None,
                          doi=r["doi"] or None, pmid=r["pmid"] or None),
         "record_id": r["record_id"],
         "notes": [RELEVANT if r["label_included"] == "1" else IRRELEVANT]} for r in rows))
    a, b = load_dataset(src), load_dataset(ris)
    assert (len(b.labels), b.n_included) == (len(a.labels), a.n_included) == (503, 136)
    assert b.ids == a.ids  # the RIS ID tags carry the CSV's record_id
    assert b.labels == a.labels
    assert b.texts == a.texts
    assert b.name == a.name and b.warnings == ()
