"""The part of PubMed's query syntax the generated world's esearch answers:
parentheses, OR, AND and `value[tag]` clauses.
"""

from __future__ import annotations

import functools
import re

from cluster.demo.world import Work, World, WorldAuthor, bare_doi

#: PubMed's three-letter language codes of the world's languages
PUBMED_LANGUAGES = {"en": "eng", "de": "ger", "fr": "fre", "es": "spa"}


def matches(world: World, w: Work, clause: str) -> bool:
    """Whether `w` matches a PubMed query: parentheses, then OR, then AND, then
    `value[tag]` clauses; a bare phrase searches the title and abstract."""
    parsed = _parse_clause(clause)
    if parsed[0] in ("OR", "AND"):
        test = any if parsed[0] == "OR" else all
        return test(matches(world, w, p) for p in parsed[1])
    if parsed[0] == "text":
        return any(parsed[1] in t for t in (w.title.lower(), w.abstract.lower()))
    value, tag = parsed[1], parsed[2]
    if tag in ("au", "author", "1au", "lastau"):
        keys = w.author_keys
        if tag == "1au":
            keys = keys[:1]
        elif tag == "lastau":
            keys = keys[-1:]
        return any(_author_matches(world.authors[k], value) for k in keys)
    if tag == "auid":
        return any(world.authors[k].orcid == value.upper() or world.authors[k].orcid == value
                   for k in w.author_keys)
    if tag in ("doi", "aid", "lid"):
        return bool(w.doi and not w.pubmed_no_doi and w.doi.lower() == bare_doi(value))
    if tag == "pt":
        return {"journal article": w.kind in ("journal-article", "review"),
                "editorial": w.kind == "editorial", "review": w.kind == "review"}.get(value, False)
    if tag == "la":
        return PUBMED_LANGUAGES.get(w.language or "", "und") == value[:3] or (w.language or "") == value
    if tag in ("dp", "pdat"):
        return str(w.year) == value[:4]
    if tag in ("tiab", "tw", "all"):
        return value in (w.title + " " + w.abstract).lower()
    return False


def _author_matches(a: WorldAuthor, query: str) -> bool:
    """PubMed's author matching: surname, then initials that may be truncated."""
    parts = query.replace(",", " ").split()
    if not parts:
        return False
    if len(parts) == 1:
        return _fold(a.family) == _fold(parts[0])
    surname, initials = " ".join(parts[:-1]), parts[-1]
    return _fold(a.family) == _fold(surname) and a.initials.lower().startswith(initials.lower())


@functools.lru_cache(maxsize=4096)
def _parse_clause(clause: str) -> tuple:
    clause = clause.strip()
    while clause.startswith("(") and _closing(clause, 0) == len(clause) - 1:
        clause = clause[1:-1].strip()
    for op in ("OR", "AND"):
        parts = _split_top(clause, op)
        if len(parts) > 1:
            return (op, tuple(parts))
    m = re.fullmatch(r'"?(.+?)"?\s*\[(\w+)\]', clause)
    if not m:
        return ("text", clause.lower())
    return ("field", m.group(1).strip().lower(), m.group(2).lower())


def _closing(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[i], 0)
        if depth == 0:
            return i
    return -1


def _split_top(text: str, op: str) -> list[str]:
    """Split on ` OP ` outside parentheses and quotes."""
    parts, depth, quoted, last = [], 0, False, 0
    token = f" {op} "
    i = 0
    while i < len(text):
        c = text[i]
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
        elif not quoted and depth == 0 and text[i:i + len(token)].upper() == token:
            parts.append(text[last:i])
            i += len(token)
            last = i
            continue
        i += 1
    parts.append(text[last:])
    return [p for p in parts if p.strip()]


def _fold(s: str) -> str:
    return re.sub(r"[^a-z]", "", s.lower())


