"""OpenAlex: works by DOI/W-id/PMID, cited-by, references, related works, author works."""

from __future__ import annotations

from typing import Sequence

from connectors.http import Fetched, HttpLayer, Links


class OpenAlex:
    def __init__(self, http: HttpLayer):
        self.http = http

    def works(self, ids: Sequence[str]) -> Fetched:
        raise NotImplementedError

    def cited_by(self, work_ids: Sequence[str], *, per_seed: int = 200) -> Links:
        raise NotImplementedError

    def referenced_works(self, work_ids: Sequence[str]) -> Links:
        raise NotImplementedError

    def related_works(self, work_ids: Sequence[str]) -> Links:
        raise NotImplementedError

    def author_works(self, author_id: str, *, per_page: int = 50) -> Fetched:
        raise NotImplementedError
