"""Author contacts (CLUSTER "U", unpublished material): who to write to for
each index article, and the log of contacts made.

The lead author is the first; the corresponding author is taken to be the
last, the usual convention where the source does not say. E-mail addresses
come from the author data (PubMed puts them at the end of an affiliation).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from base.errors import ClusterError
from base.output import Protected, csv_text, write_file
from base.record import Author
from db.store import Store

STATUSES = ("sent", "replied", "no-reply")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


class ContactError(ClusterError):
    """A contact-log mistake a user can fix; one sentence."""


@dataclass(frozen=True)
class Contact:
    record_id: int
    title: str
    year: int | None
    role: str                      # "lead" | "corresponding (last)" | "lead and corresponding"
    name: str
    orcid: str | None
    affiliation: str | None
    email: str | None
    status: str | None             # the latest logged contact, if any

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _email(a: Author) -> str | None:
    if a.email:
        return a.email
    for aff in a.affiliations:
        m = _EMAIL.search(aff)
        if m:
            return m.group(0).rstrip(".")
    return None


def _affiliation(a: Author) -> str | None:
    for aff in a.affiliations:
        text = _EMAIL.sub("", aff).strip().rstrip(".").strip()
        if text:
            return text
    return None


def contacts(store: Store) -> list[Contact]:
    """Lead and corresponding authors of every index article, with their latest contact status."""
    from cluster.expand import index_record_ids

    status = latest_status(store)
    out: list[Contact] = []
    for rid in index_record_ids(store):
        rec = store.get_record(rid)
        people = list(rec.author_details) or [Author(n) for n in rec.authors]
        people = [p for p in people if not p.collective]
        if not people:
            continue
        roles = [(people[0], "lead")]
        if len(people) > 1:
            roles.append((people[-1], "corresponding (last)"))
        else:
            roles = [(people[0], "lead and corresponding")]
        for a, role in roles:
            orcid = a.orcid.rsplit("/", 1)[-1] if a.orcid else None
            out.append(Contact(rid, rec.title or "", rec.year, role, a.name, orcid, _affiliation(a),
                               _email(a), status.get(a.name)))
    return out


def write_csv(rows: Sequence[Contact], path: str | Path, protect: Protected = ()) -> None:
    """The contacts as CSV at `path`, never over one of the files in `protect`."""
    write_file(path, csv_text(list(Contact.__dataclass_fields__), (asdict(c) for c in rows)),
               protect)


def latest_status(store: Store) -> dict[str, str]:
    out: dict[str, str] = {}
    for e in store.events("kind = 'contact'"):
        author = e["data"].get("author")
        status = e["data"].get("status") or e.get("value")
        if author and status:
            out[author] = status
    return out


def log_contact(store: Store, name: str, status: str, *, email: str | None = None,
                note: str | None = None, reviewer: str | None = None) -> dict[str, Any]:
    """Append a `contact` event for an author of an index article."""
    if status not in STATUSES:
        raise ContactError(f"Unknown contact status {status!r}: use one of {', '.join(STATUSES)}.")
    known = {c.name: c for c in contacts(store)}
    match = known.get(name) or next((c for c in known.values() if c.name.lower() == name.strip().lower()), None)
    if match is None:
        names = ", ".join(sorted(known)) or "none (add index articles first)"
        raise ContactError(f"{name!r} is not a lead or corresponding author of an index article "
                           f"(known: {names}).")
    data = {"author": match.name, "email": email or match.email, "status": status,
            "record_id": match.record_id, "role": match.role}
    with store.transaction():
        store.log_event("contact", record_id=match.record_id, reviewer=reviewer, value=status,
                        note=note, data=data)
    return data
