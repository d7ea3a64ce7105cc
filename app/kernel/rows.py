"""A read model's hash, typed by one row Struct that its projection writes and its query reads.

The row is declared once, beside the projection (`class ProductRow(msgspec.Struct)`), and
`HashRow(ProductRow)` is the only way either side touches the hash's fields:

* the projection writes a whole row (`PRODUCT.whole(ProductRow(...))`: mypy checks every
  field) or some of its fields (`PRODUCT.some(name=event.name)`: a name that is not one of the
  row's fields raises, so the projection's unit tests fail);
* the query reads the hash back through the same row, or through a Struct whose fields are a
  subset of the row's (`PRODUCT.reader(ProductView)`: checked when the query module is
  imported), with msgspec converting the text Redis stores back to each field's type.

Values are stored as Redis stores them: text, numbers as text, a bool as 1 or 0, anything
else (a list, a Struct) as JSON; a None is not stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

import msgspec

from app.kernel.read_model_writes import Value

R = TypeVar("R", bound=msgspec.Struct)
V = TypeVar("V", bound=msgspec.Struct)
_SCALARS = (msgspec.inspect.StrType, msgspec.inspect.IntType, msgspec.inspect.FloatType)
_BOOL = msgspec.inspect.BoolType


def _kind(info: msgspec.inspect.Type) -> str:
    """How a field of this type is stored: "json", "bool" or as it is ("plain")."""
    if isinstance(info, msgspec.inspect.UnionType):  # e.g. `str | None`
        kinds = {_kind(t) for t in info.types if t != msgspec.inspect.NoneType()}
        return kinds.pop() if len(kinds) == 1 else "json"
    if isinstance(info, _BOOL):
        return "bool"
    if isinstance(info, (*_SCALARS, msgspec.inspect.LiteralType)):
        return "plain"
    return "json"


def _field_types(row: type[msgspec.Struct]) -> dict[str, msgspec.inspect.Type]:
    info = msgspec.inspect.type_info(row)
    assert isinstance(info, msgspec.inspect.StructType)
    return {f.name: f.type for f in info.fields}


class HashRow(Generic[R]):
    """The fields of a hash, as the fields of row type `R`."""

    def __init__(self, row: type[R]) -> None:
        self.row = row
        types = _field_types(row)
        self.fields = frozenset(types)
        self._json = frozenset(name for name, info in types.items() if _kind(info) == "json")
        self._bool = frozenset(name for name, info in types.items() if _kind(info) == "bool")
        self._plain = self.fields - self._json - self._bool
        omit = row.__struct_config__.omit_defaults
        self._omitted: dict[str, object] = {
            f.name: f.default
            for f in msgspec.structs.fields(row)
            if omit and f.default is not msgspec.NODEFAULT
        }
        self._read = self.reader(row)

    def _stored(self, name: str, value: Any) -> Value:
        if name in self._json:
            return msgspec.json.encode(value)
        if name in self._bool:
            return 1 if value else 0
        return value  # type: ignore[no-any-return]  # a str, int or float field

    def whole(self, row: R) -> dict[str, Value]:
        """Every field of a row, as HSET's mapping. A None is left out (it reads back as the
        field's default), and so is a field at its default when the row is declared with
        `omit_defaults=True`: a field added to such a row later changes no stored row that
        never set it (the audit compares them with what the events re-derive)."""
        return {
            name: self._stored(name, value)
            for name in self.row.__struct_fields__
            if (value := getattr(row, name)) is not None and self._omitted.get(name) != value
        }

    def some(self, **values: Any) -> dict[str, Value]:
        """Some fields of the row, as HSET's mapping; a name the row lacks raises KeyError."""
        if not self.fields.issuperset(values):
            unknown = sorted(values.keys() - self.fields)
            raise KeyError(f"{self.row.__name__} has no field {unknown}")
        if self._plain.issuperset(values):  # the usual case: nothing to encode
            return values
        return {name: self._stored(name, value) for name, value in values.items()}

    def field(self, name: str) -> str:
        """One field's name, checked (for HINCRBY); a name the row lacks raises KeyError."""
        if name not in self.fields:
            raise KeyError(f"{self.row.__name__} has no field {name!r}")
        return name

    def read(self, record: Mapping[str, str]) -> R:
        """A stored hash (HGETALL's reply) as the row."""
        return self._read(record)

    def reader(self, view: type[V]) -> Callable[[Mapping[str, str]], V]:
        """Read a stored hash as `view`, a Struct made of some of the row's fields, each of
        the same type; any other field is a TypeError now, not a silent miss later."""
        row_types = _field_types(self.row)
        for name, info in _field_types(view).items():
            if row_types.get(name) != info:
                raise TypeError(f"{view.__name__}.{name} is not a field of {self.row.__name__}")
        json_fields = self._json & row_types.keys() & _field_types(view).keys()

        def read(record: Mapping[str, str]) -> V:
            if not json_fields:
                return msgspec.convert(record, view, strict=False)
            found: dict[str, Any] = dict(record)
            for name in json_fields & found.keys():
                found[name] = msgspec.json.decode(found[name])
            return msgspec.convert(found, view, strict=False)

        return read
