"""Outside services (PubMed, Crossref, OpenAlex, OpenCitations) over one HTTP layer.

`connectors.http` is the layer (session, cache, limits, retries) and imports no
service; each service module builds on it; `connectors.services` assembles them.
"""
