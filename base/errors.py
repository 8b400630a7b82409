"""The errors a user can cause or fix, for every package to raise and catch.

Each module raises a subclass with a message that is one sentence saying what
went wrong and what to do; the CLI prints it and exits non-zero.
"""

from __future__ import annotations

from typing import Any


class ClusterError(Exception):
    """An error whose message is meant for the user."""


class ServiceError(ClusterError):
    """An outside service failed; the message names the service and what to do."""

    def __init__(self, service: str, message: str):
        super().__init__(message)
        self.service = service


class NotFound(ServiceError):
    """The service does not know the DOI/PMID/work asked for."""

    #: the call that found nothing (a `connectors.http.CallLog`), for the search log
    call: Any = None


class RateLimited(ServiceError):
    """The service kept answering 429 after every retry."""


class ServiceDown(ServiceError):
    """5xx, connection errors or unusable bodies after every retry."""


class Unreachable(ServiceDown):
    """No connection to the service could be made at all (no network, an unknown host name,
    a refused connection): asking again at once would not help, so it is not retried."""


class InvalidInput(ServiceError):
    """An identifier or query that cannot be sent (malformed DOI, non-numeric PMID)."""


class RequestRejected(ServiceError):
    """The service understood the request and refused it (HTTP 400, NCBI <ERROR>)."""

    def __init__(self, service: str, message: str, status: int | None = None):
        super().__init__(service, message)
        self.status = status


class UnreadableAnswer(ServiceError):
    """An answer that arrived whole but cannot be read (an unknown format or DTD)."""
