"""Crossref REST API: works by DOI, their reference lists, author/bibliographic queries."""

from __future__ import annotations

from typing import Sequence

from connectors.http import Fetched, HttpLayer, ReferenceLists


class Crossref:
    def __init__(self, http: HttpLayer):
        self.http = http

    def works(self, dois: Sequence[str]) -> Fetched:
        raise NotImplementedError

    def references(self, dois: Sequence[str]) -> ReferenceLists:
        raise NotImplementedError

    def search(self, *, author: str | None = None, bibliographic: str | None = None,
               orcid: str | None = None, journal_articles: bool = True, rows: int = 20) -> Fetched:
        raise NotImplementedError
