"""The review protocol: question, criteria terms, exclusion reasons, team rules.

Stored as `protocol` events (the latest is in force), so every change to the
protocol is itself on the record with its date.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from base.errors import ClusterError
from db.store import Store

DEFAULT_REASONS = (
    "wrong population",
    "wrong intervention",
    "wrong comparator",
    "wrong outcome",
    "wrong study design",
    "wrong publication type",
    "not in English",
    "duplicate report",
    "full text not available",
)


#: what the index articles are: "new" - included studies identified another way than the
#: searches (a new review; they count with other methods); "update" - the studies of the
#: previous version of the review (PRISMA's previous-studies column)
REVIEW_TYPES = ("new", "update")


class ProtocolError(ClusterError):
    pass


@dataclass(frozen=True)
class Protocol:
    question: str = ""
    include_terms: tuple[str, ...] = ()
    exclude_terms: tuple[str, ...] = ()
    exclusion_reasons: tuple[str, ...] = DEFAULT_REASONS
    reviewers_per_record: int = 2
    stopping_rule: str = "hypergeometric"
    target_recall: float = 0.95
    consecutive_excludes: int = 100
    review_type: str = "new"
    #: the data extraction form (as `screeners.extraction.form` writes it: title, version,
    #: fields), None until one is set
    extraction_form: dict[str, Any] | None = None
    #: independent extractors per included record, and per index article (None: the same)
    extraction_reviewers: int = 2
    extraction_reviewers_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Protocol":
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for k, v in data.items():
            if k not in known:
                continue
            kwargs[k] = tuple(v) if isinstance(v, list) else v
        return cls(**kwargs)

    def check_reason(self, reason: str) -> str:
        """The protocol's spelling of `reason`, or a one-sentence error."""
        for r in self.exclusion_reasons:
            if r.lower() == reason.strip().lower():
                return r
        raise ProtocolError(
            f"Reason {reason!r} is not in the protocol's list: "
            + "; ".join(self.exclusion_reasons) + "."
        )


def get_protocol(store: Store) -> Protocol:
    rows = store.events("kind = 'protocol'")
    return Protocol.from_dict(rows[-1]["data"]) if rows else Protocol()


def set_protocol(store: Store, reviewer: str | None = None, **changes: Any) -> Protocol:
    """Log a new protocol version with `changes` applied to the current one."""
    current = get_protocol(store)
    clean = {k: v for k, v in changes.items() if v is not None}
    if "reviewers_per_record" in clean and int(clean["reviewers_per_record"]) < 1:
        raise ProtocolError("Reviewers per record must be at least 1.")
    if "target_recall" in clean and not 0 < float(clean["target_recall"]) <= 1:
        raise ProtocolError(f"The target recall is a share above 0 and at most 1 (e.g. 0.95), "
                            f"not {clean['target_recall']}.")
    if "consecutive_excludes" in clean and int(clean["consecutive_excludes"]) < 1:
        raise ProtocolError(f"The number of consecutive excludes must be at least 1, not "
                            f"{clean['consecutive_excludes']}.")
    for k in ("extraction_reviewers", "extraction_reviewers_index"):
        if k in clean and int(clean[k]) < 1:
            raise ProtocolError(f"Extractors per record must be at least 1, not {clean[k]}.")
    if "review_type" in clean and clean["review_type"] not in REVIEW_TYPES:
        raise ProtocolError(f"The review type is one of {', '.join(REVIEW_TYPES)}, not "
                            f"{clean['review_type']!r}.")
    for k in ("include_terms", "exclude_terms", "exclusion_reasons"):
        if k in clean:
            clean[k] = tuple(t.strip() for t in clean[k] if t and t.strip())
    if "exclusion_reasons" in clean and not clean["exclusion_reasons"]:
        # full-text exclusions need a reason from the list, so an empty list blocks them all
        raise ProtocolError("The list of exclusion reasons is empty: give at least one reason "
                            "(several separated by semicolons).")
    new = dataclasses.replace(current, **clean)
    with store.transaction():
        store.log_event("protocol", reviewer=reviewer, data=new.to_dict())
    return new
