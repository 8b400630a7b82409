"""Large reference files for the scale benchmarks, made from ../shared's labelled sets.

The nine labelled screening sets hold about 19,000 distinct records. A file of
N records tiles them: the first copy of each record is the record itself, and
every further copy is made a distinct work, not a record with a suffix: a
share of the title's and the abstract's words are swapped for words drawn from
the whole collection, the abstract's sentences are shuffled, and the copy gets
other authors, another year, journal, DOI and PMID. On top of that a known
share of the rows are true duplicates of an earlier row as another database
would give it: the same DOI written another way, the title in other case and
punctuation, the abstract sometimes missing. Everything follows from the seed.

    from scale_data import write_csv
    summary = write_csv(Path("big.csv"), 50_000, dup_share=0.05, seed=1)
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCREENING = ROOT.parent / "shared" / "data" / "screening"
SETS = ("van_de_Schoot_2017", "Appenzeller-Herzog_2019", "Nagtegaal_2019", "Bannach-Brown_2019",
        "Kitchenham_2010", "Cohen_2006_ACEInhibitors", "Cohen_2006_ADHD",
        "Cohen_2006_OralHypoglycemics", "Cohen_2006_ProtonPumpInhibitors")

SURNAMES = ("Smith Jones Garcia Muller Rossi Novak Kim Tanaka Silva Nielsen Kowalski Dubois "
            "Okafor Haddad Petrov Larsen Costa Moreau Schmidt Fischer Weber Becker Hoffmann "
            "Yamamoto Chen Wang Li Zhang Liu Singh Patel Khan Ahmed Ali Hassan Ibrahim Cohen "
            "Levi Murphy Kelly Walsh Byrne Ryan Brennan Lopez Martinez Hernandez Gonzalez "
            "Perez Sanchez Ramirez Torres Flores Rivera Gomez Diaz Reyes Morales Ortiz").split()
JOURNALS = ("J Clin Epidemiol", "BMJ Open", "PLoS One", "Syst Rev", "Lancet", "JAMA",
            "Psychol Med", "BMC Public Health", "Health Policy", "Soc Sci Med",
            "Environ Health Perspect", "Int J Nurs Stud", "Implement Sci", "Trials")
COLUMNS = ("title", "abstract", "authors", "year", "journal", "doi", "pmid")

_WORD = re.compile(r"[A-Za-z]{4,}")


@dataclass(frozen=True)
class Base:
    title: str
    abstract: str
    year: str


@dataclass(frozen=True)
class Summary:
    rows: int
    distinct_works: int
    duplicates: int
    base_records: int


def base_records() -> list[Base]:
    """Every record of the labelled sets that has a title, in a fixed order."""
    out = []
    for name in SETS:
        with open(SCREENING / f"{name}.csv", newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if r["title"].strip():
                    out.append(Base(r["title"].strip(), r["abstract"].strip(), r["year"]))
    return out


def _swap_words(text: str, share: float, pool: list[str], rng: random.Random) -> str:
    def swap(m: re.Match) -> str:
        return rng.choice(pool) if rng.random() < share else m.group(0)
    return _WORD.sub(swap, text)


def _authors(rng: random.Random) -> str:
    n = rng.randint(1, 6)
    return "; ".join(f"{rng.choice(SURNAMES)}, {chr(65 + rng.randrange(26))}." for _ in range(n))


def _distinct(b: Base, copy: int, index: int, pool: list[str], rng: random.Random) -> dict:
    """Copy `copy` (0: the record itself) of a base record, as a row of its own work."""
    if copy == 0:
        title, abstract, year = b.title, b.abstract, b.year
    else:
        title = _swap_words(b.title, 0.5, pool, rng)
        sentences = re.split(r"(?<=\.)\s+", b.abstract) if b.abstract else []
        rng.shuffle(sentences)
        abstract = _swap_words(" ".join(sentences), 0.25, pool, rng)
        year = str(rng.randint(1980, 2025))
    return {"title": title, "abstract": abstract, "authors": _authors(rng), "year": year,
            "journal": rng.choice(JOURNALS), "doi": f"10.5555/scale.{index}",
            "pmid": str(40_000_000 + index)}


def _duplicate(row: dict, rng: random.Random) -> dict:
    """The same work as another database exports it."""
    title = row["title"]
    title = title.upper() if rng.random() < 0.3 else title.rstrip(".") + "."
    return {**row, "title": title, "doi": "https://doi.org/" + row["doi"].upper(),
            "abstract": "" if rng.random() < 0.3 else row["abstract"],
            "pmid": "" if rng.random() < 0.5 else row["pmid"]}


def write_csv(path: Path, n: int, dup_share: float = 0.05, seed: int = 1) -> Summary:
    """Write `n` rows to `path`: distinct works, and `dup_share` of the rows true duplicates."""
    bases = base_records()
    rng = random.Random(seed)
    pool = sorted({w for b in bases[:5000] for w in _WORD.findall(b.title + " " + b.abstract)})
    n_dup = int(round(n * dup_share))
    dup_at = set(rng.sample(range(1, n), n_dup)) if n_dup else set()
    recent: list[dict] = []  # works written so far that a duplicate may repeat (bounded)
    works = dups = 0
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        for i in range(n):
            if i in dup_at and recent:
                w.writerow(_duplicate(rng.choice(recent), rng))
                dups += 1
                continue
            copy, b = divmod(works, len(bases))
            row = _distinct(bases[b], copy, works, pool, rng)
            w.writerow(row)
            works += 1
            if len(recent) < 5000:
                recent.append(row)
            else:
                recent[rng.randrange(5000)] = row
    return Summary(n, works, dups, len(bases))
