"""How each outside service is named to a reader (here, so naming one needs no HTTP stack)."""

SERVICE_NAMES = {"pubmed": "PubMed", "crossref": "Crossref", "openalex": "OpenAlex",
                 "opencitations": "OpenCitations", "unpaywall": "Unpaywall",
                 "pmc": "PubMed Central"}
