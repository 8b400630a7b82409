"""The data extraction form: a documented TOML file, checked line by line, kept in the protocol.

A form is a title and a list of fields, each written as a `[[field]]` table
(a repeatable group's parts as `[[field.fields]]` tables right after it):

    title = "Realist synthesis"

    [[field]]
    key = "level"                 # letters, digits, _ and -; unique in the form
    label = "Kirkpatrick level"   # what the reviewer reads (default: the key)
    type = "choice"               # see TYPES
    choices = ["1 Reaction", "2 Learning", "3 Behaviour", "4 Results"]
    help = "The highest level the outcomes reach."

    [[field]]
    key = "rigour"
    type = "scale"
    min = 1
    max = 5
    anchors = { 1 = "no rigour", 5 = "exceptionally rigorous" }

    [[field]]
    key = "cmo"
    type = "group"                # a repeatable group: a record may hold several items
    [[field.fields]]
    key = "context"
    type = "long_text"

Types: `text` (a short answer), `long_text`, `number` (optional `min`, `max`),
`choice` (one of `choices`), `multi_choice` (any of `choices`), `scale` (a whole
number from `min` to `max`, with optional `anchors`) and `group` (its `fields`,
none of them a group). Any field may be left blank.

Setting a form logs a new protocol version; the form's `version` counts the
forms set in this review, and every answer records the version it was given
under, so changing the form never removes an answer.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from base.errors import ClusterError
from db.protocol import Protocol, get_protocol, set_protocol
from db.store import Store

TYPES = ("text", "long_text", "number", "choice", "multi_choice", "scale", "group")
CHOICE_TYPES = ("choice", "multi_choice")
BUILT_IN = ("realist", "general")
FORMS_DIR = Path(__file__).with_name("forms")
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_FIELD_KEYS = {"key", "label", "type", "help", "choices", "min", "max", "anchors", "fields"}


class FormError(ClusterError):
    """A form that cannot be used, or an answer the form does not allow; one sentence."""


@dataclass(frozen=True)
class Field:
    key: str
    type: str
    label: str = ""
    help: str = ""
    choices: tuple[str, ...] = ()
    min: float | None = None
    max: float | None = None
    anchors: Mapping[int, str] = field(default_factory=dict)
    fields: tuple["Field", ...] = ()  # a group's parts

    @property
    def title(self) -> str:
        return self.label or self.key

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "type": self.type}
        if self.label:
            out["label"] = self.label
        if self.help:
            out["help"] = self.help
        if self.choices:
            out["choices"] = list(self.choices)
        for k in ("min", "max"):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        if self.anchors:
            out["anchors"] = {str(k): v for k, v in sorted(self.anchors.items())}
        if self.fields:
            out["fields"] = [f.to_dict() for f in self.fields]
        return out


@dataclass(frozen=True)
class Form:
    title: str
    fields: tuple[Field, ...]
    version: int = 0

    def field(self, key: str) -> Field:
        for f in self.fields:
            if f.key == key:
                return f
        raise FormError(f"The form has no field {key!r}: its fields are "
                        f"{', '.join(f.key for f in self.fields)}.")

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "version": self.version,
                "fields": [f.to_dict() for f in self.fields]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Form":
        """A form as the protocol keeps it (already checked when it was set)."""
        return cls(str(data.get("title") or ""),
                   tuple(_field_from(d) for d in data.get("fields") or ()),
                   int(data.get("version") or 0))


def _field_from(d: Mapping[str, Any]) -> Field:
    return Field(key=d["key"], type=d["type"], label=d.get("label", ""), help=d.get("help", ""),
                 choices=tuple(d.get("choices") or ()), min=d.get("min"), max=d.get("max"),
                 anchors={int(k): v for k, v in (d.get("anchors") or {}).items()},
                 fields=tuple(_field_from(x) for x in d.get("fields") or ()))


# --- reading a form file ----------------------------------------------------------------


class _Lines:
    """Where each `[[field]]` table starts in the source, so an error names its line."""

    _HEADER = re.compile(r"^\s*\[\[\s*field(\s*\.\s*fields)?\s*\]\]")

    def __init__(self, text: str):
        self.lines = text.split("\n")
        self.starts = [i for i, line in enumerate(self.lines) if self._HEADER.match(line)]

    def of(self, n: int, key: str | None = None) -> int:
        """The line (1-based) of the n-th field table (0-based, in file order), or of
        its `key = ...` line when there is one."""
        if n >= len(self.starts):
            return 1
        start = self.starts[n]
        end = self.starts[n + 1] if n + 1 < len(self.starts) else len(self.lines)
        if key is not None:
            pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
            for i in range(start + 1, end):
                if pattern.match(self.lines[i]):
                    return i + 1
        return start + 1


def read_form(path: str | Path) -> Form:
    """A form file, or a built-in form by name (realist, general); every problem is one
    sentence naming the file and the line."""
    p = Path(path)
    if str(path) in BUILT_IN and not p.exists():
        p = FORMS_DIR / f"{path}.toml"
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormError(f"No form file at {path}: give a TOML form or one of the built-in "
                        f"forms ({', '.join(BUILT_IN)}).") from None
    except (UnicodeDecodeError, IsADirectoryError):
        raise FormError(f"{p.name} is not a TOML form (UTF-8 text).") from None
    return parse_form(text, p.name)


def parse_form(text: str, name: str = "the form") -> Form:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FormError(f"{name} is not valid TOML: {exc}.") from None
    lines = _Lines(text)
    raw = data.get("field")
    if not isinstance(raw, list) or not raw:
        raise FormError(f"{name} has no fields: write each field as a [[field]] table with a "
                        "key and a type.")
    counter = [0]
    fields = tuple(_check_field(d, name, lines, counter, in_group=False) for d in raw)
    _no_duplicates(fields, name, lines)
    title = data.get("title", "")
    if not isinstance(title, str):
        raise FormError(f"{name}: the title must be text.")
    return Form(title.strip() or name, fields)


def _check_field(d: Any, name: str, lines: _Lines, counter: list[int], in_group: bool) -> Field:
    n = counter[0]
    counter[0] += 1

    def fail(message: str, key: str | None = None) -> FormError:
        return FormError(f"{name}, line {lines.of(n, key)}: {message}.")

    if not isinstance(d, dict):
        raise fail("a field must be a [[field]] table")
    unknown = sorted(set(d) - _FIELD_KEYS)
    if unknown:
        raise fail(f"unknown setting {unknown[0]!r} (a field has "
                   f"{', '.join(sorted(_FIELD_KEYS))})", unknown[0])
    key = d.get("key")
    if not isinstance(key, str) or not _KEY.match(key):
        raise fail(f"the field key {key!r} must start with a letter and hold only letters, "
                   "digits, _ and -", "key")
    ftype = d.get("type")
    if ftype is None:
        raise fail(f"field {key!r} has no type: give one of {', '.join(TYPES)}")
    if ftype not in TYPES:
        raise fail(f"field {key!r} has the unknown type {ftype!r}: use one of "
                   f"{', '.join(TYPES)}", "type")
    for text_key in ("label", "help"):
        if not isinstance(d.get(text_key, ""), str):
            raise fail(f"the {text_key} of field {key!r} must be text", text_key)
    choices: tuple[str, ...] = ()
    if ftype in CHOICE_TYPES:
        raw = d.get("choices")
        if not isinstance(raw, list) or not raw:
            raise fail(f"field {key!r} is a {ftype} with an empty list of choices: give at least "
                       "one", "choices")
        if not all(isinstance(c, str) and c.strip() for c in raw):
            raise fail(f"the choices of field {key!r} must be non-empty text", "choices")
        choices = tuple(c.strip() for c in raw)
        folded = [c.casefold() for c in choices]
        if len(set(folded)) != len(folded):
            twice = next(c for c in choices if folded.count(c.casefold()) > 1)
            raise fail(f"field {key!r} lists the choice {twice!r} twice", "choices")
    elif "choices" in d:
        raise fail(f"field {key!r} is {ftype}: only choice and multi_choice fields have choices",
                   "choices")
    lo, hi = d.get("min"), d.get("max")
    for bound, val in (("min", lo), ("max", hi)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, (int, float))):
            raise fail(f"the {bound} of field {key!r} must be a number", bound)
    if ftype == "scale":
        if not isinstance(lo, int) or not isinstance(hi, int) or lo >= hi:
            raise fail(f"scale {key!r} needs whole-number min and max with min below max", "min")
    elif ftype != "number" and (lo is not None or hi is not None):
        raise fail(f"field {key!r} is {ftype}: only number and scale fields have min and max",
                   "min" if lo is not None else "max")
    if lo is not None and hi is not None and lo > hi:
        raise fail(f"field {key!r} has min above max", "min")
    anchors: dict[int, str] = {}
    if "anchors" in d:
        if ftype != "scale" or not isinstance(d["anchors"], dict):
            raise fail("anchors belong to a scale, as a table such as { 1 = \"none\" }",
                       "anchors")
        for k, v in d["anchors"].items():
            assert isinstance(lo, int) and isinstance(hi, int)  # a scale's bounds, checked above
            if not re.fullmatch(r"-?\d+", k) or not lo <= int(k) <= hi or not isinstance(v, str):
                raise fail(f"anchor {k!r} of scale {key!r} is not a point of its scale "
                           f"{lo}-{hi} with a text", "anchors")
            anchors[int(k)] = v
    parts: tuple[Field, ...] = ()
    if ftype == "group":
        if in_group:
            raise fail(f"group {key!r} is inside another group: groups do not nest", "type")
        raw_parts = d.get("fields")
        if not isinstance(raw_parts, list) or not raw_parts:
            raise fail(f"group {key!r} has no fields: add [[field.fields]] tables after it")
        parts = tuple(_check_field(x, name, lines, counter, in_group=True) for x in raw_parts)
        _no_duplicates(parts, name, lines, group=key)
    elif "fields" in d:
        raise fail(f"field {key!r} is {ftype}: only a group has fields", "fields")
    return Field(key, ftype, d.get("label", "").strip(), d.get("help", "").strip(), choices,
                 lo, hi, anchors, parts)


def _no_duplicates(fields: tuple[Field, ...], name: str, lines: _Lines,
                   group: str | None = None) -> None:
    seen: set[str] = set()
    for f in fields:
        if f.key.casefold() in seen:
            # the second table with this key, counting tables in file order
            line = _key_line(lines, f.key, nth=2)
            where = f" in group {group!r}" if group else ""
            raise FormError(f"{name}, line {line}: the field key {f.key!r} is used twice{where}; "
                            "each field needs its own key.")
        seen.add(f.key.casefold())


def _key_line(lines: _Lines, key: str, nth: int) -> int:
    pattern = re.compile(rf"""^\s*key\s*=\s*["']{re.escape(key)}["']\s*(#.*)?$""", re.IGNORECASE)
    hits = [i + 1 for i, line in enumerate(lines.lines) if pattern.match(line)]
    return hits[nth - 1] if len(hits) >= nth else (hits[-1] if hits else 1)


# --- answers ------------------------------------------------------------------------------


def check_answer(f: Field, raw: Any) -> Any:
    """The answer to `f` as stored (None: left blank), from what a reviewer typed or a file
    held; a one-sentence FormError when the form does not allow it."""
    if raw is None or (isinstance(raw, str) and not raw.strip()) or raw == []:
        return None
    where = f"The answer {_show(raw)} to {f.title}"
    if f.type in ("text", "long_text"):
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            raise FormError(f"{where} is not text.")
        return " ".join(str(raw).split()) if f.type == "text" else str(raw).strip()
    if f.type in ("number", "scale"):
        value = _number(raw)
        if value is None:
            kind = "a whole number" if f.type == "scale" else "a number"
            raise FormError(f"{where} is not {kind}.")
        if f.type == "scale":
            if value != int(value):
                raise FormError(f"{where} is not a whole number.")
            value = int(value)
        if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
            span = f"{_fmt(f.min)}-{_fmt(f.max)}" if f.min is not None and f.max is not None else (
                f"at least {_fmt(f.min)}" if f.min is not None else f"at most {_fmt(f.max)}")
            what = "its scale" if f.type == "scale" else "its range"
            raise FormError(f"{where} is outside {what} {span}.")
        return value
    if f.type == "choice":
        return _choose(f, raw, where)
    if f.type == "multi_choice":
        items = raw if isinstance(raw, list) else re.split(r"[;,]", str(raw))
        picked = {_choose(f, x, f"The answer {_show(x)} to {f.title}") for x in items
                  if str(x).strip()}
        return [c for c in f.choices if c in picked] or None
    raise FormError(f"{f.title} is a group: answer its parts one item at a time.")


def _choose(f: Field, raw: Any, where: str) -> str:
    text = str(raw).strip()
    for c in f.choices:
        if c.casefold() == text.casefold():
            return c
    if re.fullmatch(r"\d+", text) and 1 <= int(text) <= len(f.choices):
        return f.choices[int(text) - 1]  # typed by its number in the list
    raise FormError(f"{where} is not one of its choices: "
                    + "; ".join(f"{i} {c}" for i, c in enumerate(f.choices, 1)) + ".")


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        try:
            value = float(str(raw).strip().replace(",", ""))
        except ValueError:
            return None
    if not math.isfinite(value):
        return None
    return int(value) if value == int(value) else value


def _fmt(x: float | None) -> str:
    return "" if x is None else (str(int(x)) if x == int(x) else str(x))


def _show(raw: Any) -> str:
    text = str(raw)
    return repr(text if len(text) <= 40 else text[:37] + "...")


# --- the form in the protocol --------------------------------------------------------------


def current_form(store: Store, required: bool = True) -> Form | None:
    """The form in force (the latest protocol's); without one, a FormError when `required`."""
    data = get_protocol(store).extraction_form
    if data:
        return Form.from_dict(data)
    if required:
        raise FormError("No extraction form is set: run `cluster form set realist` (or general, "
                        "or a TOML file of your own) first.")
    return None


def set_form(store: Store, form: Form, reviewer: str | None = None) -> Form:
    """Put `form` in the protocol as the next version (a protocol event); answers given
    under earlier versions stay in the log."""
    with store.transaction():
        if reviewer is not None:
            store.require_reviewer(reviewer)
        before = current_form(store, required=False)
        versioned = Form(form.title, form.fields, (before.version if before else 0) + 1)
        set_protocol(store, reviewer=reviewer, extraction_form=versioned.to_dict())
    return versioned


def set_extractors(store: Store, per_record: int | None = None, per_index: int | None = None
                   ) -> Protocol:
    """How many reviewers extract each included record, and each index article."""
    return set_protocol(store, extraction_reviewers=per_record,
                        extraction_reviewers_index=per_index)


def describe(form: Form) -> str:
    """The form as a reviewer reads it: each field with its type, choices and anchors."""
    lines = [f"{form.title} (version {form.version})" if form.version else form.title]
    for f in form.fields:
        lines += _describe_field(f, "  ")
        for part in f.fields:
            lines += _describe_field(part, "      ")
    return "\n".join(lines)


def _describe_field(f: Field, indent: str) -> list[str]:
    kind = {"scale": f"scale {_fmt(f.min)}-{_fmt(f.max)}", "group": "repeatable group",
            "long_text": "long text", "multi_choice": "several choices"}.get(f.type, f.type)
    if f.type == "number" and (f.min is not None or f.max is not None):
        kind += f" {_fmt(f.min)}..{_fmt(f.max)}"
    out = [f"{indent}{f.key}: {f.title} ({kind})"]
    if f.help:
        out.append(f"{indent}    {f.help}")
    out += [f"{indent}    {i} {c}" for i, c in enumerate(f.choices, 1)]
    out += [f"{indent}    {k} = {v}" for k, v in sorted(f.anchors.items())]
    return out
