"""The base of every error a user can cause or fix.

Each module raises a subclass with a message that is one sentence saying what
went wrong and what to do; the CLI prints it and exits non-zero. It lives at
the bottom layer (connectors) because every other package imports from here.
"""


class ClusterError(Exception):
    """An error whose message is meant for the user."""
