"""Faults injected by tests: a store write that fails half-way through, a machine without
network (no host name resolves), a service whose address refuses connections."""

from __future__ import annotations


def fail_on_event(store, monkeypatch, n: int = 2, message: str = "disk full") -> None:
    """Make the store's `n`th event from now (logged alone by `log_event` or among others by
    `log_events`) raise RuntimeError(message)."""
    real, real_many = store.log_event, store.log_events
    calls = {"n": 0}

    def failing(kind, **kw):
        calls["n"] += 1
        if calls["n"] == n:
            raise RuntimeError(message)
        return real(kind, **kw)

    def failing_many(kind, events):
        events = list(events)
        before, calls["n"] = calls["n"], calls["n"] + len(events)
        if before < n <= calls["n"]:
            raise RuntimeError(message)
        return real_many(kind, events)

    monkeypatch.setattr(store, "log_event", failing)
    monkeypatch.setattr(store, "log_events", failing_many)


def closed_port_url(path: str = "") -> str:
    """A loopback URL where nothing listens: every connection to it is refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def no_name_lookups(monkeypatch) -> list[str]:
    """Make every host name lookup fail as it does on a machine without network.

    Returns the list of names that were looked up, to show that a service
    found unreachable is not asked again.
    """
    import socket

    looked_up: list[str] = []

    def fail(host, *args, **kwargs):
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    return looked_up


def offline_env(monkeypatch, *, slow_retries: bool = True) -> None:
    """Point the four services at their real hosts on a machine where no name resolves.

    With `slow_retries` the retry settings are the defaults a user has (five
    retries, backoff from one second): a failure that were retried would take
    far longer than the tests allow.
    """
    for var in ("CLUSTER_PUBMED_URL", "CLUSTER_CROSSREF_URL", "CLUSTER_OPENALEX_URL",
                "CLUSTER_OPENCITATIONS_URL", "CLUSTER_HTTP_RETRIES", "CLUSTER_HTTP_BACKOFF",
                "CLUSTER_RATE_LIMITS"):
        monkeypatch.delenv(var, raising=False)
    if not slow_retries:
        monkeypatch.setenv("CLUSTER_HTTP_RETRIES", "0")
    no_name_lookups(monkeypatch)
