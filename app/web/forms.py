"""An admin form's state (values, errors, outcome), and its posted data → command document.

Which fields a form has comes from its command's schema (app/web/form_specs.py).
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.datastructures import FormData, UploadFile

from app.kernel.errors import ValidationFailed
from app.kernel.messages import FieldError, Problem
from app.web.form_specs import CHECKED, ROWS_FILE, ROWS_TEXT, FormSpec

MAX_IMPORT_BYTES = 1024 * 1024


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
        name = error.path.removeprefix("$.")
        if name in names:
            state.errors.setdefault(name, error.message)
        elif state.spec.rows is not None:
            state.errors.setdefault(ROWS_TEXT, "Some rows are not valid (see below)")
            state.other_errors.append(error)
        else:
            state.other_errors.append(error)
    return state


async def document_from_form(
    spec: FormSpec, form: FormData
) -> tuple[dict[str, Any], dict[str, str]]:
    """The command document for the intake (strings are converted there), and the values to
    show again. An empty field is left out (the command's default applies); an unchecked
    checkbox is false."""
    values = {
        f.name: str(form.get(f.name, ""))
        for f in spec.fields
        if f.kind != "file" and isinstance(form.get(f.name, ""), str)
    }
    document: dict[str, Any] = {"type": spec.type}
    if spec.rows is not None:
        text = values.get(ROWS_TEXT, "")
        upload = form.get(ROWS_FILE)
        if isinstance(upload, UploadFile) and upload.filename:
            content = await upload.read(MAX_IMPORT_BYTES + 1)
            if len(content) > MAX_IMPORT_BYTES:
                raise ValidationFailed([FieldError(f"$.{ROWS_FILE}", "The file is over 1 MiB")])
            text = content.decode("utf-8", errors="replace")
        document[spec.rows.field] = parse_rows(text, spec.rows.columns)
    for f in spec.fields:
        value = values.get(f.name, "").strip()
        if f.kind == "checkbox":
            values[f.name] = CHECKED if value in (CHECKED, "on") else ""
            document[f.name] = bool(values[f.name])
        elif f.kind in ("text", "number") and value != "":
            document[f.name] = value
    return document, values


def parse_rows(text: str, columns: Sequence[str]) -> list[Any]:
    """CSV rows of these columns (an optional header line), or a JSON list of objects."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped[0] in "[{":
        try:
            parsed = msgspec.json.decode(stripped.encode())
        except RecursionError:
            raise ValidationFailed(
                [FieldError(f"$.{ROWS_TEXT}", "Not valid JSON: nested too deeply")]
            ) from None
        except msgspec.DecodeError as exc:
            raise ValidationFailed(
                [FieldError(f"$.{ROWS_TEXT}", f"Not valid JSON: {exc}")]
            ) from None
        return parsed if isinstance(parsed, list) else [parsed]
    rows: list[Any] = []
    for index, record in enumerate(csv.reader(io.StringIO(stripped))):
        if not record or all(not cell.strip() for cell in record):
            continue
        if index == 0 and [cell.strip().lower() for cell in record] == list(columns[: len(record)]):
            continue  # a header line: exactly the column names
        row: dict[str, Any] = {}
        for name, cell in zip(columns, record, strict=False):
            if cell.strip() != "":
                row[name] = cell.strip()
        if len(record) > len(columns):
            row["extra"] = record[len(columns) :]
        rows.append(row)
    return rows
