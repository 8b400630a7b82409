"""Open a full text (a file in the store's full-text folder, or a link) in the system's
viewer, without waiting for it: the screening screen stays responsive.

The viewer is `open` on macOS, `xdg-open` where it is installed, else the first
command in `$BROWSER` (a colon-separated list, as Python's webbrowser reads it).
It runs in its own session with no terminal, so its messages never draw over
the screen and closing the screen does not close it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from typing import Callable, Mapping

from base.errors import ClusterError


class ViewerError(ClusterError):
    """No viewer could be started; the message says what to install or set."""


def viewer_command(target: str, *, platform: str = sys.platform,
                   environ: Mapping[str, str] = os.environ,
                   which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The command that opens `target`, or a `ViewerError` saying how to get one."""
    if platform == "darwin":
        return ["open", target]
    if which("xdg-open"):
        return ["xdg-open", target]
    for entry in (environ.get("BROWSER") or "").split(os.pathsep):
        if entry.strip():
            words = shlex.split(entry)
            # webbrowser's convention: %s marks where the address goes
            return ([w.replace("%s", target) for w in words] if "%s" in entry
                    else [*words, target])
    raise ViewerError("No viewer to open the full text with: install xdg-utils (xdg-open) or "
                      "set BROWSER to a program that opens files and links.")


def open_in_viewer(target: str, **kwargs: object) -> list[str]:
    """Start the viewer on `target` and return at once; returns the command started."""
    command = viewer_command(target, **kwargs)  # type: ignore[arg-type]
    try:
        subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    except OSError as exc:
        raise ViewerError(f"The viewer {command[0]} could not be started ({exc.strerror}): "
                          f"install it or set BROWSER to another program.") from None
    return command
