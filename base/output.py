"""Files cluster writes where a user tells it to, and the CSV they may hold.

Every output path goes through `write_file`: a path that is, or leads to, a
file the caller protects (the review store and the files beside it, as
`db.files.store_files` names them; an input being read) is refused before
anything is opened, because a typo such as `-o review.db` would otherwise
destroy the review. A regular file
is replaced whole through a temporary file in its folder, so a reader or a
crash sees the old file or the new one; a device, a FIFO or a symbolic link is
written to as it is, so `/dev/null` stays a device and a link stays a link.

Every CSV goes through `csv_text`, which neutralises cells a spreadsheet would
run as a formula (the OWASP rule: a leading `=`, `+`, `-`, `@`, tab or carriage
return gets a `'` in front); `unneutralise` takes the mark off again where
cluster reads its own CSV back.
"""

from __future__ import annotations

import csv
import io
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

from base.errors import ClusterError

#: what a file holds: text (written as UTF-8), bytes, or a function writing to a binary file
Content = str | bytes | Callable[[BinaryIO], Any]
#: files an output must not replace, each with what it is ("the review store review.db")
Protected = Iterable[tuple[str | Path, str]]


class OutputError(ClusterError):
    """An output path cluster will not or cannot write; the message is one sentence."""


def _same(a: Path, b: Path) -> bool:
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:  # a hard link, or a name a case-insensitive file system folds together
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(path: str | Path, protect: Protected = ()) -> Path:
    """`path` as a file cluster may write, or an `OutputError` saying why not: it is,
    or leads to, one of `protect`, a folder, or in a folder that does not exist."""
    p = Path(path)
    how = "leads to" if os.path.islink(p) else "is"
    for f, what in protect:
        if _same(p, Path(f)):
            raise OutputError(f"{p} {how} {what}: choose another file for the output.")
        if Path(f).is_dir() and Path(os.path.realpath(p)).is_relative_to(os.path.realpath(f)):
            raise OutputError(f"{p} is in {what}: choose a file outside it for the output.")
    if p.is_dir():
        raise OutputError(f"Cannot write {p}: it is a folder; give a file name.")
    if not Path(os.path.realpath(p)).parent.exists():
        raise OutputError(f"Cannot write {p}: the folder {p.parent} does not exist.")
    return p


def _in_place(p: Path) -> bool:
    """Whether `p` must be written as it is rather than replaced: a link or a special file."""
    if os.path.islink(p):
        return True
    try:
        return not stat.S_ISREG(os.stat(p).st_mode)
    except FileNotFoundError:
        return False


def _replace(p: Path, write: Callable[[BinaryIO], Any]) -> None:
    """Write a new file beside `p` and rename it over `p` (a regular file or no file)."""
    try:
        mode: int | None = stat.S_IMODE(os.stat(p).st_mode)
    except FileNotFoundError:
        mode = None
    while True:
        tmp = p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp")
        try:
            # 0o666 less the umask, as a plain open() would create it
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as fh:
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_file(path: str | Path, content: Content, protect: Protected = ()) -> Path:
    """Write `content` to `path`, refusing the files in `protect` (see
    `check_output_path`); returns the path written."""
    p = check_output_path(path, list(protect))
    if callable(content):
        write = content
    else:
        data = content.encode("utf-8") if isinstance(content, str) else content

        def write(fh: BinaryIO) -> None:
            fh.write(data)
    try:
        if _in_place(p):
            with open(p, "wb") as fh:
                write(fh)
        else:
            _replace(p, write)
    except OSError as exc:
        raise OutputError(f"Cannot write {p} ({exc.strerror or exc}).") from None
    return p


# --- CSV ---------------------------------------------------------------------------

_FORMULA_START = "=+-@\t\r"
#: a cell that is only a number ("-5", "+1.5e3") is shown as that number, never run
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
#: a neutralised cell: quotes, then what a spreadsheet would run
_MARKED = re.compile(r"'+[=+\-@\t\r]")


def neutralise(cell: Any) -> str:
    """A CSV cell a spreadsheet shows as text, never runs as a formula.

    A cell that already starts with quotes before a formula character gets one
    more, so `unneutralise` gives back exactly what was written.
    """
    text = "" if cell is None else str(cell)
    if not text:
        return text
    if (text[0] in _FORMULA_START and not _NUMBER.fullmatch(text)) or _MARKED.match(text):
        return "'" + text
    return text


def unneutralise(cell: str) -> str:
    """A cell as it was before `neutralise` (cells it left alone come back unchanged)."""
    return cell[1:] if _MARKED.match(cell) else cell


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]],
             *, header_row: bool = True) -> str:
    """CSV with a header row (without, for the rows that follow an earlier piece's);
    mappings are read by the header's names. Every cell, the header's included, is
    neutralised."""
    buf = io.StringIO()
    # lines end in CRLF (RFC 4180): with "\n" alone, a cell holding a bare carriage return
    # would go unquoted and break its row in two when read back
    w = csv.writer(buf, lineterminator="\r\n")
    if header_row:
        w.writerow([neutralise(c) for c in header])
    for row in rows:
        cells = [row.get(c) for c in header] if isinstance(row, Mapping) else row
        w.writerow([neutralise(c) for c in cells])
    return buf.getvalue()
