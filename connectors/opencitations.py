"""OpenCitations Index API v2: citing and cited DOIs."""

from __future__ import annotations

from typing import Sequence

from connectors.http import HttpLayer, Links


class OpenCitations:
    def __init__(self, http: HttpLayer):
        self.http = http

    def citations(self, dois: Sequence[str]) -> Links:
        raise NotImplementedError

    def references(self, dois: Sequence[str]) -> Links:
        raise NotImplementedError
