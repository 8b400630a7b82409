"""Text from outside (files, services, people) shown on a terminal, and the
terminal's standard output itself.

A title, an author's name or a reviewer's note may hold escape sequences that a
terminal would obey: OSC 52 writes the clipboard, OSC 0 retitles the window,
CSI 2J clears the screen, and bidirectional overrides reorder what is shown.
`visible` shows every such character instead, in the notation the screening
screen uses (prompt_toolkit's): `^[` for ESC, `^?` for DEL, `<9b>` for a C1
control, `<U+202E>` for a bidirectional override or a lone surrogate. The store
keeps the text as it came; only what is shown changes.

`guard_stdout` makes a failing standard output (a full disk, a closed pipe) one
named exception, `OutputLost`, however deep the write that meets it.
"""

from __future__ import annotations

import errno
import io
import json
import os
import re
import sys
from itertools import islice
from typing import Any, Iterable, Iterator

#: bidirectional embeddings, overrides and isolates (the "Trojan Source" characters)
_BIDI = "\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}\ud800-\udfff]")
#: what JSON leaves raw with ensure_ascii=False but a terminal may obey or cannot print
_UNSAFE_IN_JSON = re.compile(f"[\x7f-\x9f{_BIDI}\ud800-\udfff]")


def _shown(ch: str) -> str:
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        return "^" + chr(code ^ 0x40)
    if code < 0xA0:
        return f"<{code:x}>"
    return f"<U+{code:04X}>"


def visible(text: str, keep: str = "\n\t") -> str:
    """`text` with every control character, escape sequence introducer and
    bidirectional override shown as printable characters; the characters in
    `keep` (line breaks and tabs by default) are left as they are."""
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _shown(m.group()), text)


def visible_json(text: str) -> str:
    """JSON text (from `json.dumps(..., ensure_ascii=False)`) with the characters
    `visible` would change written as `\\uXXXX` escapes: the same JSON value."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def dumps(obj: Any) -> str:
    """Indented JSON, readable on a terminal and safe on one."""
    return visible_json(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def dumps_list(items: Iterable[Any], batch: int = 256) -> Iterator[str]:
    """`dumps` of a list, a piece per `batch` items as the items come: the pieces joined
    are `dumps(list(items))`, without holding every item at once."""
    first = True
    it = iter(items)
    while chunk := list(islice(it, batch)):
        # a list's items, as the whole list's indentation writes them: "[\n" ... "\n]" cut
        yield ("[\n" if first else ",\n") + dumps(chunk)[2:-2]
        first = False
    yield "[]" if first else "\n]"


# --- standard output ------------------------------------------------------------


class OutputLost(Exception):
    """Standard output takes no more text: the disk is full, or the reader has gone."""

    def __init__(self, err: OSError):
        super().__init__(err.strerror or str(err))
        self.errno = err.errno
        self.strerror = err.strerror or str(err)

    @property
    def reader_gone(self) -> bool:
        """A closed pipe (`cluster status | head -1`): nothing to say, as Unix tools do."""
        return self.errno == errno.EPIPE

    def sentence(self) -> str:
        reason = self.strerror[:1].lower() + self.strerror[1:]
        return f"cannot write the output: {reason}."


class _Guarded(io.RawIOBase):
    """File descriptor 1, raising `OutputLost` on the first failed write and
    discarding everything after it (so the interpreter's last flush is quiet)."""

    def __init__(self, fd: int):
        super().__init__()
        self._fd = fd
        self.lost = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data: Any) -> int | None:
        if self.lost:
            return len(data)
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return None
        except OSError as exc:
            self.lost = True
            raise OutputLost(exc) from None


def guard_stdout() -> None:
    """Route `sys.stdout` through `_Guarded`, keeping its encoding and buffering."""
    out = sys.stdout
    try:
        fd = out.fileno()
        out.flush()
    except (AttributeError, OSError, ValueError):
        return  # no real file behind it (a test runner's capture): nothing to guard
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(_Guarded(fd)), encoding=out.encoding,
                                  errors=out.errors, line_buffering=bool(out.line_buffering))
