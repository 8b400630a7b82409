"""`cluster simulate`: replay of labelled data, outputs, bad input, a real-data smoke run."""

import json
from pathlib import Path

import pytest

from screeners.prioritiser.simulation import DatasetError, Schedule, load_dataset, run_simulation, simulate
from tests.conftest import shared_path

DATA = Path(__file__).parent / "data" / "screening_small.csv"
HEADER = "record_id,title,abstract,label_included\n"


def test_load_small_dataset():
    ds = load_dataset(DATA)
    assert (len(ds.labels), ds.n_included) == (40, 8)
    assert ds.ids[2] == "102" and ds.labels[2] == 1
    assert ds.texts[0].startswith("Soil erosion on terraced hillsides Rainfall simulation")


def test_same_seed_same_order_and_seed_picks_the_prior():
    ds = load_dataset(DATA)
    a = run_simulation(ds, "default", seed=3)
    b = run_simulation(ds, "default", seed=3)
    c = run_simulation(ds, "default", seed=4)
    assert a.order == b.order and a.prior == b.prior
    assert c.prior != a.prior
    labels = dict(zip(ds.ids, ds.labels))
    assert [labels[i] for i in a.prior] == [1, 0]
    assert len(a.order) == 38 and set(a.order) | set(a.prior) == set(ds.ids)
    # clearly separable topics: every include comes before any exclude
    assert list(a.labels) == sorted(a.labels, reverse=True)
    assert a.metrics["wss100"] == pytest.approx((37 - 7) / 38 - 0, abs=0.05)


def test_cli_simulate_outputs(run, tmp_path):
    order = tmp_path / "order.txt"
    png, svg = tmp_path / "curve.png", tmp_path / "curve.svg"
    out = run("simulate", str(DATA), "--seed", "2", "--order-out", str(order), "--plot", str(png),
              "--quiet").output
    assert "screening_small: 40 records, 8 included; model tfidf+svm-nb+balanced+max; seeds 2-2" in out
    assert "WSS@95" in out and "RRF@10" in out and "time to discovery (median)" in out
    ids = order.read_text().split()
    assert len(ids) == 40 and len(set(ids)) == 40
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads(run("simulate", str(DATA), "--repeat", "3", "--plot", str(svg), "--json").output)
    assert [r["seed"] for r in res["runs"]] == [1, 2, 3]
    agg = res["aggregate"]["wss95"]
    assert agg["min"] <= agg["mean"] <= agg["max"]
    assert res["records"] == 40 and res["model"]["classifier"] == {
        "name": "svm-nb", "C": 0.08, "alpha": 1.0, "nb_share": 0.15, "knn_share": 0.15, "view_share": 0.35}
    assert b"<svg" in svg.read_bytes()[:500]


@pytest.mark.parametrize("body,message", [
    ("1,a b,c d,0\n2,e f,g h,0\n3,i j,k l,0\n",
     "Error: bad has no included records: a simulation needs at least one."),
    ("1,a b,c d,1\n2,e f,g h,1\n3,i j,k l,1\n",
     "Error: bad has only included records: a simulation needs excludes too."),
    ("1,,,1\n2,,,0\n3,,,0\n",
     "Error: bad has empty titles and abstracts: there is no text to rank by."),
    ("1,a b,c d,1\n2,e f,g h,2\n3,i j,k l,0\n",
     "Error: Row 3 has label '2' in column 'label_included': labels must be 1 or 0."),
])
def test_bad_datasets_are_one_sentence(run, tmp_path, body, message):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + body)
    res = run("simulate", str(path), expect=1)
    assert res.output.strip() == message


def test_texts_without_a_countable_word_are_one_sentence(run, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + "1,2010,95,1\n2,1999,300 x,0\n3,12,,0\n")
    res = run("simulate", str(path), expect=1)
    # after the progress label, which starts before the features are fitted
    assert res.output.strip().splitlines() == [
        "Simulating", "Error: No record has a word to rank by: the titles and abstracts hold "
        "only numbers, single letters or stop words."]


def test_asreview_label_column_and_missing_file(run, tmp_path):
    path = tmp_path / "asr.csv"
    path.write_text("title,abstract,included\nCompassion nurses,training,1\nSoil,erosion,0\n"
                    "Quantum,codes,0\n")
    ds = load_dataset(path)
    assert ds.labels == (1, 0, 0) and ds.ids == ("1", "2", "3")
    res = run("simulate", str(tmp_path / "none.csv"), expect=1)
    assert res.output.strip() == f"Error: No dataset file at {tmp_path / 'none.csv'}."
    with pytest.raises(DatasetError, match="has no label column"):
        (tmp_path / "nolabel.csv").write_text("title,abstract\na,b\n")
        load_dataset(tmp_path / "nolabel.csv")


def test_smoke_simulation_on_real_data():
    ds = load_dataset(shared_path("data", "screening", "Cohen_2006_ADHD.csv"))
    assert (len(ds.labels), ds.n_included) == (851, 20)
    summary = simulate(ds, "default", seeds=[1])
    # ASReview's default reaches .538 here; a floor far below it cannot flake
    assert summary.runs[0].metrics["wss95"] > 0.25


def test_retraining_batches_grow_with_the_labels_and_the_records():
    s = Schedule()  # growth 0.015 per 750 records
    # 503 records: every label until 198 are labelled (0.015 * 503 / 750 * 198 = 1.992)
    assert [s.batch(k, 503) for k in (1, 198, 199, 600)] == [1, 1, 2, 6]
    # 5,782 records: every label until 17, then every 20th at 173 (20.006), 46th at 400
    assert [s.batch(k, 5782) for k in (17, 18, 173, 400)] == [1, 2, 20, 46]
    assert Schedule(growth=0.01, per_records=1000).batch(1000, 2000) == 20
    assert s.describe()["per_records"] == 750
