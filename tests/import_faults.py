"""Record makers that fail on purpose, for the imports whose records are made in a
second process: that process finds them by name ("import_faults:record_or_fail"), with
this folder on its PYTHONPATH."""

from __future__ import annotations

import os
import signal

from db.formats.common import Labelled
from db.formats.tabular import CsvRow, csv_record

#: set to the importing process's id: `record_or_die` kills any other process only
PARENT = "IMPORT_FAULTS_PARENT"


def record_or_fail(row: CsvRow) -> Labelled:
    """`csv_record`, raising for a row whose title starts with "FAIL"."""
    title = row[0].get("title", "")
    if title.startswith("FAIL"):
        raise ValueError(f"no record in {title!r}")
    return csv_record(row)


def record_or_die(row: CsvRow) -> Labelled:
    """`csv_record`; a row whose title starts with "DIE" kills the process making it,
    unless that is the importing process itself."""
    if row[0].get("title", "").startswith("DIE") and str(os.getpid()) != os.environ[PARENT]:
        os.kill(os.getpid(), signal.SIGKILL)
    return csv_record(row)
