"""Where a reader can open a record: its identifiers as web addresses.

One place for the addresses, so `cluster show` and the screening card link a
record the same way.
"""

from __future__ import annotations

from urllib.parse import quote

from base.record import Record, normalize_doi, normalize_openalex, normalize_pmcid, normalize_pmid


def doi_url(doi: str) -> str | None:
    """https://doi.org/ + the DOI (characters a URL cannot carry escaped); None when
    the value is not a DOI."""
    bare = normalize_doi(doi)
    return None if bare is None else "https://doi.org/" + quote(bare, safe="/:;()._-")


def pubmed_url(pmid: str) -> str | None:
    bare = normalize_pmid(pmid)
    return None if bare is None else f"https://pubmed.ncbi.nlm.nih.gov/{bare}/"


def pmc_url(pmcid: str) -> str | None:
    bare = normalize_pmcid(pmcid)
    return None if bare is None else f"https://www.ncbi.nlm.nih.gov/pmc/articles/{bare}/"


def openalex_url(openalex: str) -> str | None:
    bare = normalize_openalex(openalex)
    return None if bare is None else f"https://openalex.org/{bare}"


def record_links(record: Record) -> dict[str, str]:
    """label -> address, for each identifier the record has (PubMed first: it holds the
    abstract), then its own URL."""
    out: dict[str, str] = {}
    for label, value, make in (("PubMed", record.pmid, pubmed_url),
                               ("PMC", record.pmcid, pmc_url),
                               ("doi.org", record.doi, doi_url),
                               ("OpenAlex", record.openalex, openalex_url)):
        url = make(value) if value else None
        if url:
            out[label] = url
    if record.url and record.url.startswith(("http://", "https://")) \
            and record.url not in out.values():
        out["URL"] = record.url
    return out
