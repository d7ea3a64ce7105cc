"""The real registry, and a valid document of any command read from its msgspec JSON schema:
each field's declared
example (`Meta(examples=...)`), else a simple value its rules allow (a string matching its
pattern, the smallest number, one list item or the fewest allowed). Optional fields are left
out.

For tests that cover every command: a new command needs no hand-written list or document.
"""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from hypothesis import Phase, find, settings
from hypothesis import strategies as st

from app.kernel.messages import CommandEnvelope, Outcome
from app.kernel.registry import Registry
from app.wiring import build_registry


async def _never_tokenize(card_number: str) -> str:
    raise AssertionError("the registry's specs only")


async def _never_run(envelope: CommandEnvelope, bus: Any) -> Outcome:
    raise AssertionError("the registry's specs only")


REGISTRY: Registry = build_registry(_never_tokenize, _never_run, {})
"""The storefront's registry, as the web process has it but for the rebuild commands (whose
runner needs a projector)."""


def example_document(command: type[msgspec.Struct]) -> dict[str, Any]:
    schema = msgspec.json.schema(command)
    document = example(schema, schema["$defs"])
    assert isinstance(document, dict)
    return document


def example(schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return example(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    if schema.get("examples"):
        return schema["examples"][0]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return example(schema["anyOf"][0], defs)
    kind = schema.get("type")
    if kind == "object":
        required = schema.get("required", ())
        return {
            name: example(prop, defs)
            for name, prop in schema.get("properties", {}).items()
            if name in required
        }
    if kind == "array":
        return [example(schema["items"], defs) for _ in range(max(schema.get("minItems", 0), 1))]
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    if kind == "string":
        low, high = schema.get("minLength", 0), schema.get("maxLength", 10_000)
        return _simplest(schema.get("pattern", ""), low, high)
    raise TypeError(f"no example for {schema}")


_FIRST_FOUND = settings(database=None, derandomize=True, phases=[Phase.generate])
"""The same value on every run, and no time spent shrinking it."""


@functools.cache
def _simplest(pattern: str, low: int, high: int) -> str:
    """A string matching `pattern`, of `low` to `high` characters."""
    if not pattern:
        return "x" * low
    found: str = find(
        st.from_regex(pattern), lambda s: low <= len(s) <= high, settings=_FIRST_FOUND
    )
    return found
