"""Robustness benchmark of `cluster.dedup`: the labelled sets as messy database exports write them.

Each labelled set in ../shared/data/dedup is deduplicated twice: as it is, and
after a transformation that writes its fields the way Embase via Ovid and other
exports do (fixed seeds, so every run transforms the same records alike):

- for a share of records, volume, issue and pages move into a citation string in
  the journal field ("Journal.30 (27) ()(pp 9103-9116) 2010.Date of Publication: ...");
- for a share, authors run together ("SmithJ.A.JonesB.C.");
- for a share of records with a DOI, the DOI is decorated (a resolver URL, a PII
  before it, a PMID after it, "[doi]" tags);
- for a share, the volume is dropped;
- for a share of the duplicates (one record per true cluster at most), the pages
  are the online-first pagination (1-17 for 566-582), half of them without their
  DOI and half of them dated a year earlier.

Precision and recall before and after are printed per set; the transformation
must cost at most 0.005 of recall and keep precision at or above 0.999.

Usage: python bench/bench_dedup_messy.py [--sets a,b] [--seed N]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_dedup import DATA, SETS, evaluate, load  # noqa: E402

CITATION = 0.20      # journal field holds the whole citation, volume/issue/pages empty
RUN_TOGETHER = 0.30  # authors without separators
DECORATED = 0.30     # of the records with a DOI
NO_VOLUME = 0.10
ONLINE_FIRST = 0.10  # of the true clusters with two or more records: one member each
MAX_RECALL_DROP = 0.005
MIN_PRECISION = 0.999
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _full_range(pages: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", pages)
    if not m:
        return None
    first, last = m.group(1), m.group(2)
    if len(last) < len(first):
        last = first[: len(first) - len(last)] + last
    a, b = int(first), int(last)
    return (a, b) if b >= a else None


def _citation(r: dict, rng: random.Random) -> None:
    rng_pages = _full_range(r["pages"])
    pages = f"{rng_pages[0]}-{rng_pages[1]}" if rng_pages else r["pages"]
    year = r["year"]
    date = f"{rng.randint(1, 28):02d} {rng.choice(_MONTHS)} {year}" if year else ""
    r["journal"] = (f"{r['journal']}.{r['volume']} ({r['issue']}) ()(pp {pages}) {year}."
                    f"Date of Publication: {date}")
    r["volume"] = r["issue"] = r["pages"] = ""


def _names(authors: str) -> list[tuple[str, str]]:
    """(surname, initials) from "Smith, J. A.; Jones, B" or ASySD's "Smith J. A.Jones B."."""
    if ";" in authors or ", " in authors and authors.count(",") > 1:
        out = []
        for part in re.split(r";|\band\b", authors):
            surname, _, given = part.partition(",")
            initials = "".join(f"{w[0]}." for w in re.split(r"[\s.]+", given) if w)
            if surname.strip():
                out.append((surname.strip(), initials))
        return out
    return [(m.group(1).strip(), m.group(2).replace(" ", ""))
            for m in re.finditer(r"([^.]+?)\s((?:[A-Z]\.\s?)+)", authors)]


def _run_together(r: dict) -> None:
    names = _names(r["authors"])
    if names:
        r["authors"] = "".join(s.replace(" ", "") + i for s, i in names)


def _decorate(r: dict, rng: random.Random) -> None:
    doi = r["doi"]
    style = rng.randrange(4)
    if style == 0:
        r["doi"] = f"http://dx.doi.org/{doi}"
    elif style == 1:
        pii = f"S{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}({rng.randint(10, 99)})" \
              f"{rng.randint(10000, 99999)}-{rng.randint(0, 9)}"
        r["doi"] = f"{pii} [pii];{doi} [doi]"
    elif style == 2:
        r["doi"] = f"{doi} {r['pmid']}" if r["pmid"] else f"{doi} [doi]"
    else:
        r["doi"] = f"https://doi.org/{doi.upper()}"


def _online_first(r: dict, rng: random.Random) -> bool:
    span = _full_range(r["pages"])
    if not span or span[0] == 1:
        return False
    r["pages"] = f"1-{span[1] - span[0] + 1}"
    if rng.random() < 0.5:
        r["doi"] = ""
    if rng.random() < 0.5 and r["year"].isdigit():
        r["year"] = str(int(r["year"]) - 1)
    return True


def messy(rows: list[dict], seed: str) -> list[dict]:
    """A copy of `rows` written as messy exports write them; the same seed, the same copy."""
    rng = random.Random(seed)
    out = [dict(r) for r in rows]
    by_cluster: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(out):
        by_cluster[r["cluster_id"]].append(i)
    for members in by_cluster.values():
        if len(members) > 1 and rng.random() < ONLINE_FIRST:
            for i in rng.sample(members, len(members)):
                if _online_first(out[i], rng):
                    break
    for r in out:
        if r["doi"] and rng.random() < DECORATED:
            _decorate(r, rng)
        if rng.random() < RUN_TOGETHER:
            _run_together(r)
        if rng.random() < NO_VOLUME:
            r["volume"] = ""
        if r["journal"] and rng.random() < CITATION:
            _citation(r, rng)
    return out


def run(rows: list[dict]) -> dict:
    from cluster.dedup import deduplicate

    t0 = time.perf_counter()
    result = deduplicate(rows)
    out = evaluate(rows, [list(c.members) for c in result.clusters])
    out.update(time=time.perf_counter() - t0, review=len(result.review))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seed", default="1")
    args = ap.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} not found (the labelled sets live in ../shared/data/dedup)")
        return
    print(f"{'set':<20} {'export':<7} {'precision':>9} {'recall':>7} {'lost':>5} {'FN':>5} {'FP':>5} "
          f"{'review':>6} {'time s':>7}  verdict")
    failed = 0
    for name in args.sets.split(","):
        rows = load(name)
        before = run(rows)
        after = run(messy(rows, f"{name}:{args.seed}"))
        for label, m in (("as is", before), ("messy", after)):
            verdict = ""
            if label == "messy":
                ok = (before["recall"] - m["recall"] <= MAX_RECALL_DROP
                      and m["precision"] >= MIN_PRECISION)
                failed += not ok
                verdict = f"{'ok' if ok else 'FAIL'} (recall {m['recall'] - before['recall']:+.4f})"
            print(f"{name:<20} {label:<7} {m['precision']:>9.4f} {m['recall']:>7.4f} "
                  f"{m['false_merges']:>5} {m['fn_pairs']:>5} {m['fp_pairs']:>5} {m['review']:>6} "
                  f"{m['time']:>7.1f}  {verdict}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
