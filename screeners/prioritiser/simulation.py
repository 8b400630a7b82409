"""Replay a labelled screening dataset to measure how fast the prioritiser finds
the relevant records, the way ASReview's `simulate` does.

Prior knowledge is one include and one exclude drawn with the seed; from then
on the model chooses every next record. Retraining follows a fixed schedule
(`Schedule`): after every max(1, floor(growth * labelled * records / 750)) new
labels, taking the model's top records as one batch in between. A fit costs
about in proportion to the records it scores, so a small set retrains after
every label and a large one in larger batches: with growth 0.015, 503 records
(OralHypo) retrain after every label until 198 are labelled, 2,008 (Nagtegaal)
until 49, 5,782 (PTSD) until 17, then every 20th label at 173 and every 46th at
400. The schedule depends on counts only, so a run is reproducible from its
settings and seed. Scaled by the records this way (was: growth * labelled
alone), per 1,500 records, the nine benchmark sets gave a mean WSS@95 of .6319
against .6305 (seeds 1-5), .6273 against .6259 (seeds 6-10) and .6201 against
.6202 (seeds 11-15) with the one-SVM model of the time, with less CPU time over
the nine sets (14.1 against 16.5 s for one seed of each in
bench/bench_simulate.py). Per 750 records came with the default's second SVM,
which doubles the cost of a fit: half as many fits keep a simulation's time
where it was (figures in bench/RESULTS.md). The live prioritiser
(`screeners.prioritise`) batches by labels alone. The
loop stops once every relevant record is found (ASReview's default stop); the
rest follow in the last model's order.
"""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Sequence

import numpy as np

from base.errors import ClusterError
from base.output import Protected, write_file
from screeners.prioritiser import metrics
from screeners.prioritiser.components import Model, Views, textless_due, textless_rows
from screeners.prioritiser.presets import resolve_model


class DatasetError(ClusterError):
    pass


LABEL_COLUMNS = ("label_included", "included", "label_abstract_screening", "label")
CSV_SUFFIXES = (".csv", ".tsv")
# identifiers tried, in order, as record ids of a reference file: the first that every
# record has and no two share (else the records are numbered 1..n)
RECORD_ID_FIELDS = ("source_id", "pmid", "doi")


@dataclass(frozen=True)
class Dataset:
    name: str
    ids: tuple[str, ...]
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    warnings: tuple[str, ...] = ()  # what the file reader could not recover
    titles: tuple[str, ...] | None = None  # the titles alone, where the texts start with them

    @property
    def n_included(self) -> int:
        return sum(self.labels)


@dataclass(frozen=True)
class Schedule:
    """Retrain after every max(1, floor(growth * labelled * records / per_records))
    new labels: the larger the collection, the dearer a fit and the larger the batch."""

    growth: float = 0.015
    per_records: int = 750

    def batch(self, n_labelled: int, n_records: int) -> int:
        return max(1, int(self.growth * n_records / self.per_records * n_labelled))

    def describe(self) -> dict[str, Any]:
        return {"growth": self.growth, "per_records": self.per_records,
                "rule": "retrain after max(1, floor(growth * labelled * records / "
                        "per_records)) new labels"}


@dataclass(frozen=True)
class SimulationResult:
    dataset: str
    seed: int
    model: str
    prior: tuple[str, ...]
    order: tuple[str, ...]  # record ids after the priors, in screening order
    labels: tuple[int, ...]  # their labels
    n_fits: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self, with_order: bool = False) -> dict[str, Any]:
        d = {"dataset": self.dataset, "seed": self.seed, "model": self.model,
             "prior": list(self.prior), "n_fits": self.n_fits,
             "seconds": round(self.seconds, 3), **self.metrics}
        if with_order:
            d["order"] = list(self.order)
        return d


# --- reading a labelled dataset ------------------------------------------------


def _label(value: str, row_no: int, column: str) -> int:
    v = (value or "").strip().lower()
    if v in ("1", "1.0", "true", "yes", "y", "include", "included"):
        return 1
    if v in ("0", "0.0", "false", "no", "n", "exclude", "excluded"):
        return 0
    raise DatasetError(
        f"Row {row_no} has label {value!r} in column {column!r}: labels must be 1 or 0.")


def load_dataset(path: str | Path) -> Dataset:
    """A labelled dataset: a CSV/TSV file, or a reference file the importer reads
    (`db.formats.read_file`) whose records all carry an include or exclude label.

    CSV/TSV: record_id (or id), title, abstract, optional keywords, and a 0/1 label
    column (label_included, or ASReview's included); the texts are cleaned as an
    import cleans them (markup tags dropped, "&amp;" and the like decoded), so a
    simulation ranks what the prioritiser would see. Any other file is read by the
    importer, its format detected from the content; today only RIS carries labels
    (ASReview's ASReview_relevant and ASReview_irrelevant notes), so MEDLINE,
    BibTeX, EndNote XML and Web of Science files are refused as unlabelled. A
    `.txt` file is read as CSV unless its content is another reference format.
    Record ids are the file's own (RIS ID, BibTeX key...), else the PMIDs, else the
    DOIs, the first that every record has and no two share; else 1..n."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"No dataset file at {p}.")
    if _is_csv(p):
        return _load_csv(p)
    return _load_references(p)


def _is_csv(p: Path) -> bool:
    suffix = p.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return True
    from db.formats import detect_format
    from db.formats.common import FileFormatError, decode

    try:
        return detect_format(decode(p.read_bytes(), p.name), p.name) == "csv"
    except FileFormatError:
        if suffix == ".txt":
            return True  # as before: a .txt file of no known format is read as CSV
        raise


def _load_csv(p: Path) -> Dataset:
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            sample = fh.read(65536)
            fh.seek(0)
            delim = "\t" if p.suffix.lower() == ".tsv" or ("\t" in sample.split("\n")[0]
                                                             and "," not in sample.split("\n")[0]) else ","
            reader = csv.DictReader(fh, delimiter=delim)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            rows = list(reader)
    except UnicodeDecodeError:
        raise DatasetError(f"{p.name} is not UTF-8 text: save it as UTF-8 CSV.") from None
    except csv.Error as exc:
        raise DatasetError(f"{p.name} is not a readable CSV file ({exc}).") from None
    keys = {h.strip().lower(): h for h in (reader.fieldnames or [])}
    label_col = next((keys[c] for c in LABEL_COLUMNS if c in keys), None)
    if label_col is None:
        raise DatasetError(
            f"{p.name} has no label column: add label_included (or included) with 1/0.")
    if "title" not in header and "abstract" not in header:
        raise DatasetError(f"{p.name} has no title or abstract column.")
    if not rows:
        raise DatasetError(f"{p.name} has no records.")
    id_col = next((keys[c] for c in ("record_id", "id") if c in keys), None)
    from db.formats.common import clean_markup

    ids, texts, labels, titles = [], [], [], []
    for i, row in enumerate(rows, start=1):
        ids.append((row.get(id_col) or "").strip() if id_col else str(i))
        parts = [clean_markup(row.get(keys.get(c, ""), "")) or ""
                 for c in ("title", "abstract", "keywords")]
        texts.append(_join(parts))
        titles.append(parts[0].strip())
        labels.append(_label(row.get(label_col, ""), i + 1, label_col))
    if id_col and len(set(ids)) != len(ids):
        ids = [str(i) for i in range(1, len(rows) + 1)]
    ds = Dataset(p.stem, tuple(ids), tuple(texts), tuple(labels), titles=tuple(titles))
    check_dataset(ds)
    return ds


def _join(parts: Iterable[str | None]) -> str:
    return " ".join(t.strip() for t in parts if t and t.strip())


def _load_references(p: Path) -> Dataset:
    """A reference file read by the importer; every record must carry a label."""
    from db.formats import read_file

    res = read_file(p).result  # a FileFormatError is one sentence naming the file
    records = res.records
    note = ("an ASReview_relevant or ASReview_irrelevant note" if res.format == "ris"
            else "an include or exclude label")
    if not res.labels:
        kind = _FORMAT_NAMES.get(res.format, res.format)
        raise DatasetError(
            f"{p.name} was read as {kind} but has no screening labels: simulate needs every "
            "record labelled, as in ASReview's RIS export (ASReview_relevant or "
            "ASReview_irrelevant notes) or a CSV with a 0/1 label_included column.")
    missing = [i for i, lab in enumerate(res.labels) if lab not in ("include", "exclude")]
    if missing:
        first = missing[0]
        title = records[first].title
        shown = f"record {first + 1}" + (f' ("{_short(title)}")' if title else "")
        if len(missing) == 1:
            what = f"1 record without {note}, {shown}"
        else:
            what = f"{len(missing)} records without {note}, the first being {shown}"
        raise DatasetError(f"{p.name} has {what}: a simulation needs every record labelled.")
    ids = [str(i) for i in range(1, len(records) + 1)]
    for attr in RECORD_ID_FIELDS:
        values = [getattr(r, attr) for r in records]
        if all(values) and len(set(values)) == len(values):
            ids = [str(v) for v in values]
            break
    texts = [_join([r.title, r.abstract, " ".join(r.keywords)]) for r in records]
    labels = [1 if lab == "include" else 0 for lab in res.labels]
    ds = Dataset(p.stem, tuple(ids), tuple(texts), tuple(labels), tuple(res.warnings),
                 tuple((r.title or "").strip() for r in records))
    check_dataset(ds)
    return ds


_FORMAT_NAMES = {"ris": "RIS", "medline": "MEDLINE", "bibtex": "BibTeX",
                 "endnote-xml": "EndNote XML", "wos": "Web of Science text",
                 "id-list": "a list of identifiers"}


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[:width - 3].rstrip() + "..."


def check_dataset(ds: Dataset) -> None:
    n1 = ds.n_included
    if n1 == 0:
        raise DatasetError(f"{ds.name} has no included records: a simulation needs at least one.")
    if n1 == len(ds.labels):
        raise DatasetError(f"{ds.name} has only included records: a simulation needs excludes too.")
    if not any(t.strip() for t in ds.texts):
        raise DatasetError(f"{ds.name} has empty titles and abstracts: there is no text to rank by.")
    if len(ds.labels) < 3:
        raise DatasetError(f"{ds.name} has fewer than 3 records: there is nothing to simulate.")


# --- the replay ------------------------------------------------------------------


def choose_prior(labels: np.ndarray, seed: int) -> tuple[int, int]:
    """One include and one exclude, drawn with `seed`."""
    rng = np.random.default_rng(seed)
    inc = np.flatnonzero(labels == 1)
    exc = np.flatnonzero(labels == 0)
    return int(rng.choice(inc)), int(rng.choice(exc))


def replay(X: Views, labels: np.ndarray, model: Model, seed: int,
           schedule: Schedule = Schedule(),
           progress: Callable[[int, int], None] | None = None) -> tuple[list[int], list[int], int]:
    """The screening order (row positions, priors first) and the number of fits."""
    n = len(labels)
    n_pos = int(labels.sum())
    rng = np.random.default_rng(seed)
    prior = list(choose_prior(labels, seed))
    order: list[int] = list(prior)
    labelled = np.zeros(n, dtype=bool)
    labelled[prior] = True
    found = int(labels[prior].sum())
    fits = 0
    scores = np.zeros(n)
    # records without text wait until the ranking stops finding includes
    held = np.zeros(n, dtype=bool)
    held[textless_rows(X)] = True
    held[prior] = False
    run = 0

    def take(i: int) -> None:
        nonlocal found, run
        order.append(i)
        labelled[i] = True
        found += int(labels[i])
        run = 0 if labels[i] else run + 1

    while len(order) < n and found < n_pos:
        if held.any() and textless_due(run):
            for i in np.flatnonzero(held).tolist():
                take(i)
            held[:] = False
            continue
        train = np.asarray(order)
        y = labels[train]
        w = model.balance.weights(y)
        scores = model.classifier.fit_scores(X, train, y, w, seed)
        fits += 1
        pool = np.flatnonzero(~labelled & ~held)
        if not len(pool):
            pool = np.flatnonzero(~labelled)
            held[:] = False
        batch = model.query.select(scores, pool, min(schedule.batch(len(order), n), len(pool)), rng)
        for i in batch.tolist():
            take(i)
            if found >= n_pos:
                break
        if progress is not None:
            progress(len(order), n)
    pool = np.flatnonzero(~labelled)
    if len(pool):
        order.extend(pool[np.lexsort((pool, -scores[pool]))].tolist())
    return order, prior, fits


def run_simulation(ds: Dataset, model: Model | str = "default", seed: int = 1,
                   schedule: Schedule = Schedule(), features: Views | None = None,
                   progress: Callable[[int, int], None] | None = None) -> SimulationResult:
    """One simulation of `ds` with `model` and `seed` (features may be passed in to
    reuse them across seeds: they depend on the texts only)."""
    check_dataset(ds)
    m = resolve_model(model) if isinstance(model, str) else model
    t0 = time.perf_counter()
    X = features if features is not None else m.feature.fit_transform(ds.texts, ds.titles)
    labels = np.asarray(ds.labels, dtype=np.int64)
    order, prior, fits = replay(X, labels, m, seed, schedule, progress)
    seconds = time.perf_counter() - t0
    rest = order[len(prior):]
    lab = labels[rest]
    return SimulationResult(
        dataset=ds.name, seed=seed, model=m.label,
        prior=tuple(ds.ids[i] for i in prior), order=tuple(ds.ids[i] for i in rest),
        labels=tuple(int(v) for v in lab), n_fits=fits, seconds=seconds,
        metrics=metrics.summary(lab),
    )


@dataclass(frozen=True)
class SimulationSummary:
    runs: tuple[SimulationResult, ...]
    model: dict[str, Any]
    schedule: dict[str, Any]

    def aggregate(self) -> dict[str, dict[str, float]]:
        keys = self.runs[0].metrics.keys()
        out = {}
        for k in list(keys) + ["seconds"]:
            vals = [r.seconds if k == "seconds" else r.metrics[k] for r in self.runs]
            out[k] = {"mean": float(np.mean(vals)), "min": float(np.min(vals)),
                      "max": float(np.max(vals))}
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.runs[0].dataset, "records": len(self.runs[0].order) + 2,
                "model": self.model, "schedule": self.schedule,
                "runs": [r.to_dict() for r in self.runs], "aggregate": self.aggregate()}


def simulate(ds: Dataset, model: str = "default", seeds: Sequence[int] = (1,),
             schedule: Schedule = Schedule(),
             progress: Callable[[int, int], None] | None = None) -> SimulationSummary:
    """Run one simulation per seed (features fitted once: they do not depend on labels)."""
    check_dataset(ds)
    m = resolve_model(model)
    t0 = time.perf_counter()
    X = m.feature.fit_transform(ds.texts, ds.titles)
    feat_s = time.perf_counter() - t0
    runs = []
    for s in seeds:
        r = run_simulation(ds, m, s, schedule, X, progress)
        # each run owns its share of the one feature fit, so per-run time is honest
        runs.append(SimulationResult(**{**r.__dict__, "seconds": r.seconds + feat_s}))
    return SimulationSummary(tuple(runs), m.describe(), schedule.describe())


def check_plot_path(path: str | Path) -> Path:
    """A plot file name cluster can write: a .png or .svg file in an existing folder."""
    p = Path(path)
    if p.suffix.lower() not in (".png", ".svg"):
        raise DatasetError(f"Cannot write a plot to {p.name}: use a .png or .svg file name.")
    if not p.parent.exists():
        raise DatasetError(f"Cannot write {p}: the folder {p.parent} does not exist.")
    return p


def plot_recall(results: Sequence[SimulationResult],
                paths: str | Path | Iterable[str | Path], protect: Protected = ()) -> None:
    """Recall curves (records screened vs relevant found) with the random diagonal,
    drawn once and written to each of `paths` (.png or .svg, by the suffix), never
    over one of the files in `protect`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [check_plot_path(p) for p in
               ([paths] if isinstance(paths, (str, Path)) else paths)]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for r in results:
        x, y = metrics.recall_curve(r.labels)
        ax.step(x, y, where="post", lw=1.2, label=f"seed {r.seed}")
    n, p_ = len(results[0].labels), sum(results[0].labels)
    ax.plot([0, n], [0, p_], "k--", lw=1, label="random screening")
    ax.set_xlabel("records screened")
    ax.set_ylabel("relevant records found")
    ax.set_title(f"{results[0].dataset}: {results[0].model}")
    ax.set_xlim(0, n)
    ax.set_ylim(0, p_ * 1.03)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    protect = list(protect)

    def save(path: Path) -> Callable[[BinaryIO], None]:
        return lambda fh: fig.savefig(fh, format=path.suffix.lower()[1:])

    try:
        for p in targets:
            write_file(p, save(p), protect)
    finally:
        plt.close(fig)
