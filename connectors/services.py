"""The connectors assembled over one shared HTTP layer."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.crossref import Crossref
from connectors.http import HttpLayer, OnWait, Settings
from connectors.openalex import OpenAlex
from connectors.opencitations import OpenCitations
from connectors.pmc import PubMedCentral
from connectors.pubmed import PubMed
from connectors.unpaywall import Unpaywall


@dataclass(frozen=True)
class Services:
    pubmed: PubMed
    crossref: Crossref
    openalex: OpenAlex
    opencitations: OpenCitations
    http: HttpLayer | None = None
    unpaywall: Unpaywall | None = None
    pmc: PubMedCentral | None = None

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def __enter__(self) -> "Services":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(settings: Settings, *, on_wait: OnWait | None = None) -> Services:
    """The connectors over one shared HTTP layer (session, cache, limiters).

    `on_wait` hears of every wait before a retry that lasts more than a few
    seconds, once a second (the CLI shows it as a countdown).
    """
    layer = HttpLayer(settings, on_wait=on_wait)
    return Services(PubMed(layer), Crossref(layer), OpenAlex(layer), OpenCitations(layer), layer,
                    Unpaywall(layer), PubMedCentral(layer))
