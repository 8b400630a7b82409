"""Stage 2 of deduplication: candidate pairs from several complementary blocking rules.

Comparing all pairs of 50,000 records is 1.25 billion comparisons; instead each
rule maps a record to a key and only records sharing a key are compared. The
rules are data (`BLOCKING_RULES`), and they overlap on purpose: a duplicate
whose DOI is missing is still caught by its title, one whose title was
translated or truncated by its author, volume and pages. A key shared by too
many records (a supplement DOI, a title such as "Editorial") is not expanded
into all its pairs: its records are sorted by title and each is compared with
its nearest neighbours only.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Collection, Iterator, Sequence

from cluster.dedup.prepare import Prepared

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BlockingRule:
    """Records whose `key` agree (and is not None) are compared."""

    name: str
    key: Callable[[Prepared], str | None]


def _doi(p: Prepared) -> str | None:
    return p.doi_key or None


def _pmid(p: Prepared) -> str | None:
    return p.pmid


def _title_head(p: Prepared) -> str | None:
    return p.title_key[:32] if len(p.title_key) >= 16 else None


def _title_tail(p: Prepared) -> str | None:
    return p.title_key[-32:] if len(p.title_key) >= 24 else None


def _author_page(p: Prepared) -> str | None:
    if p.first_author and p.page_first:
        return f"{p.first_author}|{p.page_first}"
    return None


def _volume_page(p: Prepared) -> str | None:
    if p.volume and p.page_first and len(p.page_first) >= 2:
        return f"{p.volume}|{p.page_first}"
    return None


def _author_year_title(p: Prepared) -> str | None:
    if p.first_author and p.year:
        words = p.title.split()
        if words:
            # the longest word survives reordering and truncation of the rest of the title
            return f"{p.first_author}|{p.year}|{max(words, key=len)}"
    return None


def _sorted_words(p: Prepared) -> str | None:
    long_words = {w for w in p.title.split() if len(w) > 3}
    if len(long_words) < 4:
        return None
    return " ".join(sorted(sorted(long_words, key=_longest_first)[:4]))


def _longest_first(word: str) -> tuple[int, str]:
    return -len(word), word


def _review(p: Prepared) -> str | None:
    # versions of one review years apart, whose short titles ("Head lice") no title rule keys
    return p.chapter or None


BLOCKING_RULES: tuple[BlockingRule, ...] = (
    BlockingRule("doi", _doi),
    BlockingRule("pmid", _pmid),
    BlockingRule("title_head", _title_head),
    BlockingRule("title_tail", _title_tail),
    BlockingRule("author_page", _author_page),
    BlockingRule("volume_page", _volume_page),
    BlockingRule("author_year_title", _author_year_title),
    BlockingRule("title_long_words", _sorted_words),
    BlockingRule("review_versions", _review),
)

#: a block larger than this is compared by sorted neighbourhood, not all pairs
MAX_BLOCK = 60
#: how many sorted neighbours each record of an oversized block is compared with
WINDOW = 8


def _block_pairs(members: list[int], prepared: Sequence[Prepared]) -> Iterator[tuple[int, int]]:
    if len(members) <= MAX_BLOCK:
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                yield members[x], members[y]
        return
    ordered = sorted(members, key=lambda i: (prepared[i].title_key, prepared[i].authors))
    for x in range(len(ordered)):
        for y in range(x + 1, min(x + 1 + WINDOW, len(ordered))):
            yield ordered[x], ordered[y]


def candidate_pairs(prepared: Sequence[Prepared], *, new: Collection[int] | None = None,
                    rules: Sequence[BlockingRule] = BLOCKING_RULES,
                    progress: Progress | None = None) -> list[tuple[int, int]]:
    """Index pairs (i < j) worth comparing.

    With `new` (indices of records added since the last run), only pairs that
    involve at least one new record are returned, so an incremental run costs
    what the new records cost, not what the store costs.
    """
    new_set = None if new is None else set(new)
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int]] = []
    for step, rule in enumerate(rules):
        blocks: dict[str, list[int]] = defaultdict(list)
        for i, k in enumerate(map(rule.key, prepared)):
            if k:
                blocks[k].append(i)
        for members in blocks.values():
            if len(members) < 2:
                continue
            if new_set is not None and not any(m in new_set for m in members):
                continue
            for a, b in _block_pairs(members, prepared):
                if a > b:
                    a, b = b, a
                if new_set is not None and a not in new_set and b not in new_set:
                    continue
                if (a, b) not in seen:
                    seen.add((a, b))
                    out.append((a, b))
        if progress:
            progress("block", step + 1, len(rules))
    return out
