"""The admin's command forms: which fields each has, and form data → command document."""

from __future__ import annotations

import csv
import io
import secrets
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.datastructures import FormData, UploadFile

from app.kernel.errors import ValidationFailed
from app.kernel.messages import FieldError, Problem

MAX_IMPORT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"
    placeholder: str = ""


@dataclass(frozen=True)
class FormSpec:
    type: str
    title: str
    button: str
    fields: tuple[Field, ...]


SKU = Field("sku", "SKU", placeholder="MUG-001")
FORMS: dict[str, FormSpec] = {
    spec.type: spec
    for spec in (
        FormSpec(
            "CreateProduct",
            "Create a product",
            "Create",
            (
                SKU,
                Field("name", "Name"),
                Field("price_cents", "Price (cents)", "number"),
                Field("initial_stock", "Initial stock", "number"),
            ),
        ),
        FormSpec("RenameProduct", "Rename", "Rename", (SKU, Field("name", "New name"))),
        FormSpec(
            "ChangePrice",
            "Change price",
            "Change price",
            (
                SKU,
                Field("price_cents", "New price (cents)", "number"),
            ),
        ),
        FormSpec(
            "RestockProduct",
            "Restock",
            "Restock",
            (
                SKU,
                Field("quantity", "Quantity", "number"),
            ),
        ),
        FormSpec("DiscontinueProduct", "Discontinue", "Discontinue", (SKU,)),
        FormSpec(
            "ImportCatalog",
            "Import a catalog",
            "Import",
            (
                Field(
                    "csv",
                    "Rows: sku,name,price_cents,initial_stock (CSV) or a JSON list",
                    "textarea",
                    "MUG-001,Blue mug,1200,40",
                ),
                Field("file", "…or a file", "file"),
            ),
        ),
    )
}


@dataclass
class FormState:
    """What a form shows: its values, its errors by field, and the outcome of the last try."""

    spec: FormSpec
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    other_errors: list[FieldError] = field(default_factory=list)
    problem: Problem | None = None
    status: Any = None
    idempotency_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))


def with_errors(state: FormState, errors: list[FieldError]) -> FormState:
    names = {f.name for f in state.spec.fields}
    for error in errors:
        name = error.path.removeprefix("$.").split("[")[0].split(".")[0]
        if name in names and name == error.path.removeprefix("$."):
            state.errors.setdefault(name, error.message)
        elif state.spec.type == "ImportCatalog":
            state.errors.setdefault("csv", "Some rows are not valid (see below)")
            state.other_errors.append(error)
        else:
            state.other_errors.append(error)
    return state


async def document_from_form(
    spec: FormSpec, form: FormData
) -> tuple[dict[str, Any], dict[str, str]]:
    """The command document for the intake (strings are converted there), and the raw values."""
    values = {
        f.name: str(form.get(f.name, ""))
        for f in spec.fields
        if f.kind != "file" and isinstance(form.get(f.name, ""), str)
    }
    if spec.type == "ImportCatalog":
        text = values.get("csv", "")
        upload = form.get("file")
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read(MAX_IMPORT_BYTES + 1)
            if len(content) > MAX_IMPORT_BYTES:
                raise ValidationFailed([FieldError("$.file", "The file is over 1 MiB")])
            text = content.decode("utf-8", errors="replace")
        return {"type": spec.type, "products": parse_rows(text)}, values
    document: dict[str, Any] = {"type": spec.type}
    for name, value in values.items():
        if value.strip() != "":
            document[name] = value.strip()
    return document, values


ROW_FIELDS = ("sku", "name", "price_cents", "initial_stock")


def parse_rows(text: str) -> list[Any]:
    """CSV rows (an optional header line) or a JSON list of objects."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            parsed = msgspec.json.decode(stripped.encode())
        except RecursionError:
            raise ValidationFailed(
                [FieldError("$.csv", "Not valid JSON: nested too deeply")]
            ) from None
        except msgspec.DecodeError as exc:
            raise ValidationFailed([FieldError("$.csv", f"Not valid JSON: {exc}")]) from None
        return parsed if isinstance(parsed, list) else [parsed]
    rows: list[Any] = []
    for index, record in enumerate(csv.reader(io.StringIO(stripped))):
        if not record or all(not cell.strip() for cell in record):
            continue
        if index == 0 and [cell.strip().lower() for cell in record] == list(
            ROW_FIELDS[: len(record)]
        ):
            continue  # a header line: exactly the column names
        row: dict[str, Any] = {}
        for name, cell in zip(ROW_FIELDS, record, strict=False):
            if cell.strip() != "":
                row[name] = cell.strip()
        if len(record) > len(ROW_FIELDS):
            row["extra"] = record[len(ROW_FIELDS) :]
        rows.append(row)
    return rows
