"""Outside services (PubMed, Crossref, OpenAlex, OpenCitations) over one HTTP layer."""
