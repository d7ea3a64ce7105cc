"""Structural validation: JSON → typed command, or every field error with its JSON path.

The fast path is one msgspec decode. Only when it fails do we walk the document field by
field, so a form can show all of its errors at once instead of the first one.
"""

from __future__ import annotations

import functools
import re
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TypeVar, Union, get_args, get_origin

import msgspec

from app.kernel.errors import ProblemError, ValidationFailed
from app.kernel.messages import FieldError

PLAIN_TEXT = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]*\Z"
"""A pattern for free text: one line, without control characters (C0, DEL, C1), line or
paragraph separators, or the marks, embeddings, overrides and isolates that reorder how the
text around them is shown."""
PLAIN_TEXT_RULE = "one line of text, without control or text-direction characters"
MAX_ERRORS = 50
TOO_DEEP = "The JSON is nested too deeply"
_echo = reprlib.Repr()
_echo.maxstring = 40
_echo.maxother = 40
_AT = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)


class MalformedJson(ProblemError):
    status = 400

    def __init__(self, detail: str) -> None:
        super().__init__("malformed_json", detail)


def parse_json(raw: bytes) -> Any:
    """Any JSON document, untyped; MalformedJson if it is not JSON or is nested too deeply."""
    try:
        return msgspec.json.decode(raw)
    except RecursionError:
        raise MalformedJson(TOO_DEEP) from None
    except msgspec.DecodeError as exc:
        raise MalformedJson(str(exc)) from None


class SelfValidating(Protocol):
    def validate(self) -> list[FieldError]:
        """Structural rules msgspec constraints cannot express (e.g. a Luhn check)."""
        ...


_PLAIN: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Expected `(int|float)` >= (\S+)$"), "Must be at least {1}"),
    (re.compile(r"^Expected `(int|float)` <= (\S+)$"), "Must be at most {1}"),
    (re.compile(r"^Expected `str` of length >= 1$"), "Required"),
    (re.compile(r"^Expected `str` of length >= (\d+)$"), "At least {0} characters"),
    (re.compile(r"^Expected `str` of length <= (\d+)$"), "At most {0} characters"),
    (re.compile(r"^Expected `array` of length >= (\d+)$"), "At least {0} item(s)"),
    (re.compile(r"^Expected `array` of length <= (\d+)$"), "At most {0} items"),
    (re.compile(r"^Expected `int`, got `.*`$"), "Must be a whole number"),
    (re.compile(r"^Expected `str`, got `.*`$"), "Must be text"),
    (re.compile(r"^Expected `array`, got `.*`$"), "Must be a list"),
    (re.compile(r"^Expected `object`, got `.*`$"), "Must be an object"),
    (re.compile(r"^Object missing required field `.*`$"), "Required"),
]


def plain(message: str, description: str | None = None) -> str:
    """msgspec's message in words a form can show; a pattern is described, not printed."""
    if "matching regex" in message:
        return f"Must be {description}" if description else "Not in the expected format"
    for pattern, text in _PLAIN:
        found = pattern.match(message)
        if found:
            return text.format(*found.groups())
    return message


def _description(tp: Any) -> str | None:
    for meta in getattr(tp, "__metadata__", ()):
        if isinstance(meta, msgspec.Meta) and meta.description:
            return meta.description
    return None


def _split(exc: msgspec.ValidationError, base: str, tp: Any = None) -> FieldError:
    match = _AT.match(str(exc))
    assert match is not None
    path = match.group("path") or "$"
    return FieldError(path=base + path[1:], message=plain(match.group("msg"), _description(tp)))


@functools.cache
def _fields_of(struct: type[msgspec.Struct]) -> tuple[msgspec.structs.FieldInfo, ...]:
    return msgspec.structs.fields(struct)


def _struct_of(tp: Any) -> type[msgspec.Struct] | None:
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return tp
    return None


def _strip_annotated(tp: Any) -> Any:
    while getattr(tp, "__metadata__", None) is not None:
        tp = get_args(tp)[0]
    return tp


T = TypeVar("T")


def decode_document(decoder: msgspec.json.Decoder[T], raw: bytes) -> T:
    """A JSON body as its type, or every field error at once (ValidationFailed), or
    MalformedJson."""
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError:
        raise ValidationFailed(collect_errors(parse_json(raw), decoder.type)) from None
    except RecursionError:
        raise MalformedJson(TOO_DEEP) from None
    except msgspec.DecodeError as exc:
        raise MalformedJson(str(exc)) from None


def collect_errors(
    value: Any, tp: Any, path: str = "$", *, strict: bool = True
) -> list[FieldError]:
    """Every structural error in `value` against type `tp`, each with its JSON path."""
    errors: list[FieldError] = []
    _collect(value, tp, path, strict, errors)
    return errors[:MAX_ERRORS]


def _collect(value: Any, tp: Any, path: str, strict: bool, out: list[FieldError]) -> None:
    if len(out) >= MAX_ERRORS:
        return
    bare = _strip_annotated(tp)
    struct = _struct_of(bare)
    if struct is not None and isinstance(value, Mapping):
        _collect_struct(value, struct, path, strict, out)
        return
    if get_origin(bare) is list and isinstance(value, list):
        (item_type,) = get_args(bare)
        try:
            msgspec.convert(value, tp, strict=strict)
        except msgspec.ValidationError as exc:
            first = _split(exc, path)
            if not first.path.startswith(path + "["):  # the list itself (e.g. its length)
                out.append(first)
            for index, item in enumerate(value):
                _collect(item, item_type, f"{path}[{index}]", strict, out)
        return
    try:
        msgspec.convert(value, tp, strict=strict)
    except msgspec.ValidationError as exc:
        out.append(_split(exc, path, tp))


def _collect_struct(
    value: Mapping[str, Any],
    struct: type[msgspec.Struct],
    path: str,
    strict: bool,
    out: list[FieldError],
) -> None:
    fields = _fields_of(struct)
    known = {f.encode_name for f in fields}
    tag_field = struct.__struct_config__.tag_field
    for name in value:
        if name not in known and name != tag_field:
            out.append(FieldError(path=f"{path}.{name}", message="Unknown field"))
    for field in fields:
        field_path = f"{path}.{field.encode_name}"
        if field.encode_name not in value:
            if field.required:
                out.append(FieldError(path=field_path, message="Required"))
            continue
        _collect(value[field.encode_name], field.type, field_path, strict, out)


def _self_checks(command: Any) -> list[FieldError]:
    validate: Callable[[], list[FieldError]] | None = getattr(command, "validate", None)
    return validate() if validate is not None else []


class CommandDecoder:
    """Decodes one tagged union of command Structs, built once per process."""

    def __init__(self, types: list[type[msgspec.Struct]]) -> None:
        self._by_tag: dict[str, type[msgspec.Struct]] = {}
        for tp in types:
            tag = tp.__struct_config__.tag
            assert isinstance(tag, str), f"{tp.__name__} needs a string tag"
            self._by_tag[tag] = tp
        self._union: Any = Union[tuple(types)]  # noqa: UP007 - a runtime union of classes
        self._decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(self._union)

    @property
    def tags(self) -> list[str]:
        return sorted(self._by_tag)

    def decode_json(self, raw: bytes) -> msgspec.Struct:
        try:
            command: msgspec.Struct = self._decoder.decode(raw)
        except msgspec.ValidationError:
            return self.convert(parse_json(raw), strict=True)
        except RecursionError:
            raise MalformedJson(TOO_DEEP) from None
        except msgspec.DecodeError as exc:
            raise MalformedJson(str(exc)) from None
        self._raise_on_self_checks(command)
        return command

    def convert(self, document: Any, *, strict: bool) -> msgspec.Struct:
        """From an already-parsed document (JSON, or a form when strict=False)."""
        if not isinstance(document, dict):
            raise ValidationFailed([FieldError("$", "Expected a JSON object")])
        tag = document.get("type")
        if not isinstance(tag, str) or tag not in self._by_tag:
            message = f"Unknown command {_echo.repr(tag)}" if tag is not None else "Required"
            raise ValidationFailed([FieldError("$.type", message)], code="unknown_command")
        struct = self._by_tag[tag]
        try:
            command: msgspec.Struct = msgspec.convert(document, struct, strict=strict)
        except msgspec.ValidationError as exc:
            errors = collect_errors(document, struct, strict=strict) or [_split(exc, "$")]
            raise ValidationFailed(errors) from None
        self._raise_on_self_checks(command)
        return command

    @staticmethod
    def _raise_on_self_checks(command: msgspec.Struct) -> None:
        errors = _self_checks(command)
        if errors:
            raise ValidationFailed(errors)
