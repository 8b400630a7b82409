"""The tool's version, written once in setup.cfg and read from the installed metadata."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def version() -> str:
    """The installed distribution's version; in a source checkout that was never
    installed, the one setup.cfg declares. Read on first use: importing package
    metadata costs more than a command's start-up can spare."""
    from importlib import metadata

    try:
        return metadata.version("cluster-review-assistant")
    except metadata.PackageNotFoundError:
        import configparser
        from pathlib import Path

        cfg = configparser.ConfigParser()
        cfg.read(Path(__file__).resolve().parent.parent / "setup.cfg", encoding="utf-8")
        return cfg.get("metadata", "version", fallback="0+unknown")
