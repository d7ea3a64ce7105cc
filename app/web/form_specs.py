"""An admin form for a command, read from its Struct's JSON schema (msgspec).

Labels, hints and examples are declared once, beside the fields in the domain (msgspec
`Meta(title=..., description=..., examples=...)`); a form only reads them:

* a string or a number is a text box (a numeric keyboard for numbers): its `title` is the
  label, its `description` (else its bounds) the hint, its first example the placeholder;
* an integer named `…_cents` is money: entered and shown in dollars ("12.99"), turned into
  whole cents at the form's edge (app/web/forms.py), so the command stays in cents;
* a bool is a checkbox: unchecked is false;
* a field with a default may be left empty: the command's default applies;
* a list of Structs is rows: CSV text whose columns are the row's fields (or a JSON list), or
  a file of either.

A field of any other type has no input: building its form raises, so a test over every
admin command finds it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from app.domain.money import dollars
from app.domain.rules import ADMIN
from app.kernel.registry import Registry

ROWS_TEXT = "csv"
ROWS_FILE = "file"
"""The form fields of a rows form: the pasted text, and the uploaded file."""
CHECKED = "true"
"""What a checked checkbox sends."""

Kind = Literal["text", "number", "money", "checkbox", "textarea", "file"]
CENTS = "_cents"
"""The suffix of a field in whole cents, which a form takes in dollars."""
_DESCRIBING = ("title", "description", "examples")
_WORD = re.compile(r"[A-Z][a-z0-9]*|[a-z0-9]+")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: Kind = "text"
    placeholder: str = ""
    hint: str = ""
    required: bool = False
    initial: str = ""
    """The value a fresh form shows (a checkbox whose default is true: CHECKED)."""


@dataclass(frozen=True)
class Rows:
    """A command field that is a list of Structs, entered as rows."""

    field: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class FormSpec:
    type: str
    title: str
    button: str
    fields: tuple[Field, ...]
    rows: Rows | None = None


def admin_forms(registry: Registry, elsewhere: Collection[str]) -> dict[str, FormSpec]:
    """A form for every public command an admin may send, unless another page offers it
    (`elsewhere`: e.g. the status page's console, an order's buttons); in registry order."""
    forms: dict[str, FormSpec] = {}
    for spec in registry.specs:
        if spec.public and ADMIN in spec.roles and spec.name not in elsewhere:
            noun = spec.kind.name if spec.kind is not None else None
            forms[spec.name] = form_spec(spec.wire_type or spec.command_type, noun)
    return forms


def form_spec(command: type[msgspec.Struct], noun: str | None = None) -> FormSpec:
    """The form of one command. `noun`: the aggregate it acts on, left out of the button
    (RestockProduct: title "Restock product", button "Restock")."""
    tag = command.__struct_config__.tag
    assert isinstance(tag, str), f"{command.__name__} needs a string tag"
    schema = msgspec.json.schema(command)
    defs: dict[str, Any] = schema["$defs"]
    body = _resolve(schema, defs)
    required = set(body.get("required", ()))
    fields: list[Field] = []
    rows: Rows | None = None
    for name, prop in body["properties"].items():
        if name == command.__struct_config__.tag_field:
            continue
        if prop.get("type") == "array" and "$ref" in prop.get("items", {}):
            assert rows is None, f"{tag}: one list of rows per form"
            row = _resolve(prop["items"], defs)
            rows = Rows(name, tuple(row["properties"]))
            fields.extend(_rows_fields(prop, row))
        else:
            fields.append(_field(tag, name, prop, name in required))
    words = _words(tag)
    action = [w for w in words if w.lower() != noun] or words
    return FormSpec(tag, _sentence(words), _sentence(action), tuple(fields), rows)


def _field(command: str, name: str, prop: dict[str, Any], required: bool) -> Field:
    value = {**_without_null(prop), **{k: v for k, v in prop.items() if k in _DESCRIBING}}
    label = value.get("title") or _sentence(_words(name))
    kind: Kind
    match value.get("type"):
        case "boolean":
            initial = CHECKED if prop.get("default") is True else ""
            return Field(name, label, "checkbox", hint=_hint(value), initial=initial)
        case "integer" | "number":
            kind = "number"
        case "string":
            kind = "text"
        case _:
            raise TypeError(f"{command}.{name}: no form input for {value}")
    if kind == "number" and name.endswith(CENTS):
        return _money(name, label, value, required)
    hint = _hint(value)
    if not required:
        default = prop.get("default")
        hint += f" (empty: {default})" if default not in (None, "") else " (optional)"
    return Field(name, label, kind, _example(value), hint.strip(), required)


def _money(name: str, label: str, value: dict[str, Any], required: bool) -> Field:
    """A field in cents, shown in dollars: its label, hint and example say dollars."""
    label = re.sub(r"\s*\(cents\)$", "", label) + " ($)"
    least, most = value.get("minimum"), value.get("maximum")
    hint = str(value.get("description", ""))
    if not hint and least is not None and most is not None:
        hint = f"{dollars(least)} to {dollars(most)}"
    example = value.get("examples") or [None]
    placeholder = dollars(example[0]).lstrip("$") if isinstance(example[0], int) else ""
    return Field(name, label, "money", placeholder, hint, required)


def _rows_fields(prop: dict[str, Any], row: dict[str, Any]) -> Iterator[Field]:
    columns = row["properties"]
    examples = [_example(column) for column in columns.values()]
    yield Field(
        ROWS_TEXT,
        f"Rows: {','.join(columns)} (CSV) or a JSON list",
        "textarea",
        placeholder=",".join(examples) if all(examples) else "",
        hint=_bounds(prop, "minItems", "maxItems", "rows"),
        required=True,
    )
    yield Field(ROWS_FILE, "…or a file", "file")


def _hint(value: dict[str, Any]) -> str:
    description = str(value.get("description", ""))
    if description:
        return description[:1].upper() + description[1:]
    if value.get("type") in ("integer", "number"):
        return _bounds(value, "minimum", "maximum")
    return ""


def _bounds(prop: dict[str, Any], low: str, high: str, unit: str = "") -> str:
    least, most = prop.get(low), prop.get(high)
    unit = f" {unit}" if unit else ""
    if least is not None and most is not None:
        return f"{least:,} to {most:,}{unit}"
    if least is not None:
        return f"At least {least:,}{unit}"
    if most is not None:
        return f"At most {most:,}{unit}"
    return ""


def _example(prop: dict[str, Any]) -> str:
    examples = prop.get("examples") or [""]
    return str(examples[0])


def _without_null(prop: dict[str, Any]) -> dict[str, Any]:
    """`X | None` is X that may be left empty."""
    options = [p for p in prop.get("anyOf", ()) if p.get("type") != "null"]
    return options[0] if len(options) == 1 else prop


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return defs[ref.rsplit("/", 1)[1]] if ref else schema


def _words(name: str) -> list[str]:
    return _WORD.findall(name)


def _sentence(words: list[str]) -> str:
    text = " ".join(w.lower() for w in words)
    return text[:1].upper() + text[1:]
