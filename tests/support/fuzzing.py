"""Hypothesis strategies for fuzzing the HTTP surfaces: documents drawn from the commands' own
msgspec JSON schemas, and hostile mutations of them (deep nesting, huge numbers, non-ASCII
digits, control and bidi characters, wrong types, duplicate keys, broken JSON).

Documents are plain values, except two wrappers that the JSON writer here understands and
ordinary encoders cannot produce: `Raw` (JSON text put in as is, e.g. a 5,000-digit number or
nesting 20,000 deep) and `Pairs` (an object whose keys may repeat).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest
from hypothesis import strategies as st

from tests.support.examples import REGISTRY

FUZZ_COUNTS = pytest.StashKey[Counter[str]]()
"""Cases run per surface, for the terminal summary (tests/conftest.py)."""
MAX_LIST = 3
"""Lists drawn from a schema (1-10,000 import rows) stay short: the shape matters, not size."""


@dataclass(frozen=True)
class Raw:
    text: str


@dataclass(frozen=True)
class Pairs:
    items: tuple[tuple[str, Any], ...]


def to_json(value: Any, *, ascii_only: bool = False) -> str:
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Pairs):
        inner = ",".join(
            f"{json.dumps(k, ensure_ascii=ascii_only)}:{to_json(v, ascii_only=ascii_only)}"
            for k, v in value.items
        )
        return "{" + inner + "}"
    if isinstance(value, dict):
        return to_json(Pairs(tuple(value.items())), ascii_only=ascii_only)
    if isinstance(value, list | tuple):
        return "[" + ",".join(to_json(v, ascii_only=ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


# --- the commands' own schemas ----------------------------------------------------------------


def public_command_types() -> list[type[msgspec.Struct]]:
    """What clients may send: each public command's wire Struct, from the real registry."""
    return [spec.wire_type or spec.command_type for spec in REGISTRY.specs if spec.public]


def command_schemas() -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(schema of each public command by its `type`, the shared $defs)."""
    types = public_command_types()
    schemas, defs = msgspec.json.schema_components(types, ref_template="#/$defs/{name}")
    by_type = {}
    for schema in schemas:
        component = defs[schema["$ref"].rsplit("/", 1)[1]]
        (tag,) = component["properties"]["type"]["enum"]
        by_type[tag] = component
    return by_type, defs


def from_schema(schema: dict[str, Any], defs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for a (msgspec-made) JSON schema."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return st.deferred(lambda: from_schema(defs[name], defs))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(s, defs) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs) for k, v in properties.items() if k in required},
            optional={k: from_schema(v, defs) for k, v in properties.items() if k not in required},
        )
    if kind == "array":
        low = schema.get("minItems", 0)
        high = min(schema.get("maxItems", low + MAX_LIST), low + MAX_LIST)
        return st.lists(from_schema(schema["items"], defs), min_size=low, max_size=high)
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 200)
        if "pattern" in schema:
            return st.from_regex(schema["pattern"]).filter(lambda s: low <= len(s) <= high)
        return st.text(min_size=low, max_size=high)
    if kind == "boolean":
        return st.booleans()
    return st.none()


_SCHEMAS, _DEFS = command_schemas()
COMMAND_TYPES = sorted(_SCHEMAS)


command_names: st.SearchStrategy[str] = st.sampled_from(
    [spelling for name in REGISTRY.names for spelling in (name, name.lower())]
)
"""Every command's name (internal ones too), and misspelt in lower case."""


def valid_commands() -> st.SearchStrategy[dict[str, Any]]:
    """Structurally valid documents of every public command."""
    return st.sampled_from(COMMAND_TYPES).flatmap(lambda tag: from_schema(_SCHEMAS[tag], _DEFS))


# --- hostile values -------------------------------------------------------------------------

SPECIAL_TEXT = [
    "",
    " ",
    "²",
    "١٢٣",
    "\U0001d7d7",
    "\u0663.\u0665",
    "9" * 5000,
    "-0",
    "1e309",
    "NaN",
    "Infinity",
    "0x10",
    "1_000",
    "\x00",
    "\u202egnp.exe",
    "a\u2066b\u2069",
    "\ufeff",
    "\r\n\r\n",
    "%00",
    "%zz",
    "../../../../etc/passwd",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "' OR 1=1 --",
    "\ud7ff\ue000\uffff",
    "o" + "f" * 28,
    "MUG-BLUE",
    "x" * 300,
]

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(max_size=30),
    st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp", "Zs"]), min_size=1, max_size=6),
    st.text(st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6),
    st.from_regex(r"-?[0-9]{19,400}", fullmatch=True),
)
"""Strings a careless or hostile client sends: non-ASCII digits, controls, huge numbers."""

NUMBER_LOOKALIKES = ["²", "\u2460", "\u0663", "\U0001d7d7", "1e3", "0x1f", "+7", " 7", "1.5", "-0"]
numberish: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(NUMBER_LOOKALIKES),
    st.text(st.characters(categories=["No"]), min_size=1, max_size=3),  # ², ③, ½ …
    st.text(st.characters(categories=["Nd"]), min_size=1, max_size=3),  # other scripts
    st.integers(4290, 4310).map(lambda digits: "7" * digits),  # int()'s digit limit is 4300
    st.integers(-5, 1000).map(str),
)
"""Text where a number is expected: what `str.isdigit()` accepts but `int()` may not."""

huge_numbers: st.SearchStrategy[Raw] = st.one_of(
    st.from_regex(r"-?[1-9][0-9]{18,5000}", fullmatch=True).map(Raw),
    st.sampled_from(["1e309", "-1e309", "1E+99999", "0.0000000001", "-0", "1.0", "5e-324"]).map(
        Raw
    ),
    st.integers(min_value=-(2**63) - 10, max_value=2**64 + 10).map(lambda n: Raw(str(n))),
)

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
    huge_numbers,
)
json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def deep_nesting(draw: st.DrawFn) -> Raw:
    depth = draw(st.sampled_from([64, 500, 1000, 1500, 5000, 20000]))
    if draw(st.booleans()):
        return Raw("[" * depth + "]" * depth)
    key = draw(st.sampled_from(['"a"', '""', '"type"']))
    return Raw(("{" + key + ":") * depth + "1" + "}" * depth)


@st.composite
def mutated(draw: st.DrawFn, value: Any) -> Any:
    """`value` with one hostile change somewhere inside it (or of it)."""
    if isinstance(value, dict) and value and draw(st.integers(0, 3)):
        key = draw(st.sampled_from(sorted(value)))
        changed = dict(value)
        how = draw(st.sampled_from(["inside", "inside", "drop", "duplicate", "extra"]))
        if how == "drop":
            del changed[key]
            return changed
        if how == "duplicate":  # the same key twice, the second value hostile
            return Pairs((*changed.items(), (key, draw(mutated(value[key])))))
        if how == "extra":
            changed[draw(hostile_text)] = draw(json_values)
            return changed
        changed[key] = draw(mutated(value[key]))
        return changed
    if isinstance(value, list) and value and draw(st.integers(0, 3)):
        index = draw(st.integers(0, len(value) - 1))
        return [*value[:index], draw(mutated(value[index])), *value[index + 1 :]]
    return draw(
        st.one_of(
            deep_nesting(),
            huge_numbers,
            hostile_text,
            json_values,  # wrong types
            command_names,
        )
    )


broken_json: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"{",
            b"\xef\xbb\xbf{}",
            b'{"type": "CreateProduct", "name": "\xff\xfe"}',
            b'{"type": "CreateProduct"}\x00',
            b'{"type": "CreateProduct",}',
            b"[]",
            b"null",
            b'"\\ud800"',
            b'{"type": "\\ud800"}',
        ]
    ),
    valid_commands().map(lambda d: to_json(d).encode()[: max(1, len(to_json(d)) // 2)]),
)


@st.composite
def json_bodies(draw: st.DrawFn, documents: st.SearchStrategy[Any]) -> bytes:
    """A body from `documents`: as is, mutated, or broken JSON."""
    how = draw(st.sampled_from(["valid", "mutated", "mutated", "mutated", "broken"]))
    if how == "broken":
        return draw(broken_json)
    document = draw(documents)
    if how == "mutated":
        document = draw(mutated(document))
    return to_json(document, ascii_only=draw(st.booleans())).encode()


header_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(["respond-async", "x" * 200, "²", "\u00e9t\u00e9", "a" * 129, "-", "*"]),
    st.text(
        st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"),
        min_size=1,
        max_size=140,
    ).filter(lambda s: not any(0x80 <= ord(c) <= 0x9F for c in s)),
)
"""Header values HTTP/1.1 can carry (visible Latin-1); control characters cannot be sent."""
