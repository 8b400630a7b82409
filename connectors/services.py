"""The four connectors assembled over one shared HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.crossref import Crossref
from connectors.http import HttpLayer, Settings
from connectors.openalex import OpenAlex
from connectors.opencitations import OpenCitations
from connectors.pubmed import PubMed


@dataclass(frozen=True)
class Services:
    pubmed: PubMed
    crossref: Crossref
    openalex: OpenAlex
    opencitations: OpenCitations
    http: HttpLayer | None = None

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def __enter__(self) -> "Services":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(settings: Settings) -> Services:
    """The four connectors over one shared HTTP layer (session, cache, limiters)."""
    layer = HttpLayer(settings)
    return Services(PubMed(layer), Crossref(layer), OpenAlex(layer), OpenCitations(layer), layer)
