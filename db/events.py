"""The vocabulary of the decision log.

Every change a review team makes is an event: a row in `events`, never updated
or deleted (triggers enforce it), with a UUID so that logs from several
machines merge without double counting. Counts, agreement statistics and
training labels are derived from these rows; nothing is counted by hand.

Kinds and the columns they use (`data` is a JSON object):

- `decision`: record_id, reviewer, stage, value in DECISIONS, reason (an
  exclusion reason from the protocol's list), note.
- `undo`: undoes = id of the event taken back; reviewer = who took it back
  (optional, as for the merges and stopping rules it may take back). An undo of
  an undo redoes (`db.state.undone_ids`). See `UNDOABLE` for what can be undone.
- `resolution`: record_id, stage, value (include/exclude), reviewer = resolver,
  reason, data {"method": "arbiter" | "consensus", "decided_by": [names]}
  (older logs say "third-reviewer" for an arbiter; `db.state.resolution_method`).
- `fulltext`: record_id, value in FULLTEXT_STATES, reason (why not retrieved),
  reviewer (who, when a person logged it); for a copy in hand, data {"source": a
  service name or "hand", "file": its name in the store's full-text folder,
  "sha256", "bytes", "kind": "pdf" | "xml", "url" (where it came from, for a
  service)}.
- `locations`: record_id, data {"locations": [{service, url, kind, version,
  licence, host_type, best}], "services": the services asked, "failed": {service:
  why}, "unknown": the services that do not know the record's DOI or PMID}: the
  candidate full-text locations found for a record (provenance: the latest
  standing one is what `fulltext fetch` tries).
- `appraisal`: record_id, reviewer, stage, data {"relevance": 1-5, "rigour": 1-5}.
- `note`: record_id, reviewer, note.
- `assign`: record_id, reviewer, stage (a check subsample for a further reviewer),
  data {"fraction", "seed", and "role"/"source" where the sample was limited to them}.
- `automation`: record_id, stage, value "exclude", data {"rule": ..., figures}:
  records marked ineligible by a stopping rule.
- `merge`: data {"merge_id", "canonical", "members", "score", "rule"} (plus
  "filled" and "before": the canonical's fields as they were, for undo);
  `unmerge`: data {"merge_id"}; record_id = canonical.
- `pair_decision`: record_id = a, reviewer, value "same" | "different",
  data {"a", "b"}: a person's verdict on a grey-zone duplicate pair.
- `tag`: record_id, value = the tag (theories, frameworks), reviewer; a value
  `study:KEY` links reports of one study (`study:` alone unlinks the record).
- `protocol`: data = the protocol (question, include/exclude terms, reasons,
  reviewers per record, stopping rule); the latest one is in force.
- `contact`: data {"author", "email", "status", ...} (author contact log).
- `answer`: record_id, reviewer, stage "extraction", value = the field's key in the
  extraction form ("level"; "cmo[2].context" for a part of a repeatable group's second
  item; "cmo" alone for the number of items once the group is finished), data
  {"answer": the answer (null: left blank), "form": the form's version, "source"
  where it was imported}: one per field answered, so a kill loses at most the field
  being typed; answers are never removed when the form changes.
- `consensus`: record_id, reviewer = who records it, stage "extraction", value = the
  field's key, data {"answer", "method": "consensus" | "arbiter", "decided_by": [names],
  "form"}: the answer that stands for a field the extractors disagreed on.
- `search`: value in SEARCH_CHANGES, data {"search": the search's uuid, "search_id"}
  and what changes: `relabel` {"role", "source"} moves the search's records to
  another PRISMA row; `remove` takes the search out of the flow (records it alone
  found leave it; decisions about them stay in the log); `edit` {"platform",
  "searched", "query", "limits"} corrects its PRISMA-S details. Undone like any
  event (`db.state.search_changes`).

Events one action writes together (a stopping rule's exclusions, a study link,
a tag given by one search, a merge decided by a person with its verdict) carry
data {"batch": id of the first of them}: one undo takes the whole batch back.
"""

from dataclasses import dataclass

TITLE_ABSTRACT, FULL_TEXT = "title-abstract", "full-text"
STAGES = (TITLE_ABSTRACT, FULL_TEXT)
#: data extraction from the included records (not a screening stage: no decisions)
EXTRACTION = "extraction"
#: how a report names each stage
STAGE_LABELS = {TITLE_ABSTRACT: "Title and abstract", FULL_TEXT: "Full text"}
DECISIONS = ("include", "exclude", "maybe")
FULLTEXT_STATES = ("sought", "retrieved", "not-retrieved")
#: why a report could not be obtained, offered as a list where a person picks one
NOT_RETRIEVED_REASONS = (
    "no open copy and no library access",
    "author contacted, no reply",
    "interlibrary loan refused or too slow",
    "only an abstract or a conference poster exists",
    "in a language the team cannot read",
    "other",
)
#: the `source` of a full text a person attached rather than a service found
BY_HAND = "hand"
KINDS = (
    "decision", "undo", "resolution", "fulltext", "appraisal", "note", "assign",
    "automation", "merge", "unmerge", "pair_decision", "tag", "protocol", "contact",
    "answer", "consensus", "search", "locations",
)
#: what a `search` event changes about a logged search
SEARCH_CHANGES = ("relabel", "remove", "edit")
#: the PRISMA-S details a search carries beside its source: `edit` may set each
SEARCH_DETAILS = ("platform", "searched", "query", "limits")

#: source roles, as PRISMA's identification boxes see them: index articles, databases,
#: registers, and the other-methods rows of the PRISMA 2020 template (websites,
#: organisations, citation searching); `other` is named by its strategy or source
ROLES = ("index", "database", "register", "website", "organisation", "citation", "other")

PAIR_VERDICTS = ("same", "different")

# what each kind must carry; everything else is optional
_NEEDS: dict[str, tuple[str, ...]] = {
    "decision": ("record_id", "reviewer", "stage", "value"),
    "undo": ("undoes",),
    "resolution": ("record_id", "stage", "value"),
    "fulltext": ("record_id", "value"),
    "appraisal": ("record_id", "reviewer", "stage"),
    "note": ("record_id", "reviewer", "note"),
    "assign": ("record_id", "reviewer", "stage"),
    "automation": ("record_id", "stage", "value"),
    "merge": ("record_id",),
    "unmerge": ("record_id",),
    "pair_decision": ("record_id", "value"),
    "tag": ("record_id", "value"),
    "protocol": (),
    "contact": (),
    "answer": ("record_id", "reviewer", "stage", "value"),
    "consensus": ("record_id", "reviewer", "stage", "value"),
    "search": ("value",),
    "locations": ("record_id",),
}
# the stages each kind may name (default: the screening stages)
_STAGES_OF: dict[str, tuple[str, ...]] = {
    "answer": (EXTRACTION,), "consensus": (EXTRACTION,),
    "assign": STAGES + (EXTRACTION,), "undo": STAGES + (EXTRACTION,),
    "note": STAGES + (EXTRACTION,),
}
_VALUES: dict[str, tuple[str, ...]] = {
    "decision": DECISIONS, "resolution": ("include", "exclude"), "fulltext": FULLTEXT_STATES,
    "automation": ("exclude",), "pair_decision": PAIR_VERDICTS, "search": SEARCH_CHANGES,
}


def event_problem(kind: object, fields: dict[str, object]) -> str | None:
    """Why an event may not enter the log (one clause), or None when it may.

    The log is append-only, so this is the one gate every event passes: an
    event missing its reviewer or record, or with a stage or value outside the
    vocabulary, would be counted wrongly for ever after.
    """
    if kind not in KINDS:
        return f"its kind {kind!r} is not one of {', '.join(KINDS)}"
    for key, val in fields.items():
        if val is not None and not isinstance(val, int if key == "record_id" else str):
            return f"its {key} {val!r} is not {'a record number' if key == 'record_id' else 'text'}"
    for key in _NEEDS[kind]:
        val = fields.get(key)
        if val is None or (isinstance(val, str) and not val.strip()):
            return f"a {kind} event needs a {key.replace('_', ' ')}"
    stage = fields.get("stage")
    stages = _STAGES_OF.get(kind, STAGES)
    if stage is not None and stage not in stages:
        return f"its stage {stage!r} is not one of {', '.join(stages)}"
    allowed = _VALUES.get(kind)
    if allowed and fields.get("value") not in allowed:
        return f"its value {fields.get('value')!r} is not one of {', '.join(allowed)}"
    return None


@dataclass(frozen=True)
class Undoable:
    """An event kind a person can take back with `cluster undo`.

    `amends` says what its events change, so a reader knows where an undo shows:
    "screening" (a record's state at a stage), "record" (notes, tags, scores,
    studies, retrieval), "duplicates" (which records stand for one work: an undo
    also restores the records' links and fields), "extraction" (a field's answer)
    or "search" (the search log).
    `label` names one event in a message.
    """

    kind: str
    amends: str
    label: str


#: kind -> how it is undone; every reader of the log goes through
#: `db.state.standing_events`, so a registered kind's undo shows in every count
UNDOABLE: dict[str, Undoable] = {}
AMENDS = ("screening", "record", "duplicates", "extraction", "search")


def register_undoable(kind: str, amends: str, label: str) -> Undoable:
    """Make `kind` (one of KINDS) undoable; returns its entry."""
    if kind not in KINDS or kind == "undo":
        raise ValueError(f"{kind!r} is not an event kind that can be undone")
    if amends not in AMENDS:
        raise ValueError(f"amends must be one of {', '.join(AMENDS)}, not {amends!r}")
    UNDOABLE[kind] = Undoable(kind, amends, label)
    return UNDOABLE[kind]


for _kind, _amends, _label in (
        ("decision", "screening", "decision"),
        ("resolution", "screening", "resolution"),
        ("automation", "screening", "automated exclusion"),
        ("assign", "screening", "check-sample assignment"),
        ("fulltext", "record", "full-text state"),
        ("appraisal", "record", "appraisal"),
        ("note", "record", "note"),
        ("tag", "record", "tag"),
        ("merge", "duplicates", "merge"),
        ("pair_decision", "duplicates", "pair verdict"),
        ("answer", "extraction", "extraction answer"),
        ("consensus", "extraction", "extraction consensus"),
        ("search", "search", "search change")):
    register_undoable(_kind, _amends, _label)
