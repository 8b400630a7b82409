"""PubMed through NCBI E-utilities: esearch, efetch, elink and DOI -> PMID."""

from __future__ import annotations

from typing import Mapping, Sequence

from connectors.http import CallLog, Fetched, Found, HttpLayer, Links


class PubMed:
    def __init__(self, http: HttpLayer):
        self.http = http

    def fetch(self, pmids: Sequence[str]) -> Fetched:
        raise NotImplementedError

    def search(self, term: str, *, sort: str = "relevance", retmax: int = 20,
               mindate: str | None = None, maxdate: str | None = None) -> Found:
        raise NotImplementedError

    def links(self, pmids: Sequence[str], linkname: str) -> Links:
        raise NotImplementedError

    def pmids_for_dois(self, dois: Sequence[str]) -> tuple[Mapping[str, str], tuple[CallLog, ...]]:
        raise NotImplementedError
