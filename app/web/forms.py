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

from app.domain.money import cents_of, dollars
from app.kernel.errors import ValidationFailed
from app.kernel.messages import FieldError, Problem
from app.web.form_specs import CHECKED, ROWS_FILE, ROWS_TEXT, FormSpec

PROBLEM_FIELDS = {
    "sku_exists": "sku",
    "unknown_product": "sku",
    "product_discontinued": "sku",
}
"""A business refusal that is about one field: its message goes beside that field."""

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
    done: str = ""
    """What the command changed, in a sentence ("Created MUG-001 'Blue mug'")."""
    idempotency_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))


def with_errors(state: FormState, errors: list[FieldError]) -> FormState:
    fields = {f.name: f for f in state.spec.fields}
    for error in errors:
        name = error.path.removeprefix("$.")
        if name in fields:
            message = error.message
            if fields[name].kind == "money":
                message = money_error(state.values.get(name, ""), fields[name].hint)
            state.errors.setdefault(name, message)
        elif state.spec.rows is not None:
            state.errors.setdefault(ROWS_TEXT, "Some rows are not valid (see below)")
            state.other_errors.append(error)
        else:
            state.other_errors.append(error)
    return state


def with_problem(state: FormState, problem: Problem) -> FormState:
    """A refusal: beside its field when it is about one the form shows."""
    state.problem = problem
    field = PROBLEM_FIELDS.get(problem.code)
    if field is not None and any(f.name == field for f in state.spec.fields):
        state.errors.setdefault(field, problem.detail or problem.title)
    return state


def money_error(typed: str, bounds: str) -> str:
    """Why an amount in dollars was refused: not an amount, past the cent, or out of bounds."""
    try:
        cents_of(typed)
    except ValueError as exc:
        return str(exc)
    return f"From {bounds}" if bounds else "Not an allowed amount"


def summary(spec: FormSpec, document: dict[str, Any]) -> str:
    """What a command sent from this form changed: its verb, its subject (the first field),
    a name in quotes, the rest by label ("Created MUG-001 'Blue mug' (price $12.00)")."""
    verb, *rest = spec.button.split(" ")
    past = verb + ("d" if verb.endswith("e") else "ed")
    head = " ".join([past, *rest]) + (" of" if rest else "")
    shown = [f for f in spec.fields if f.kind not in ("file", "textarea")]
    if not shown or shown[0].name not in document:
        return head.removesuffix(" of")
    subject, *others = shown
    quoted, details = [], []
    for f in others:
        value = document.get(f.name)
        if value is None or value == "":
            continue
        if f.kind == "money" and isinstance(value, int):
            details.append(f"{f.label.removesuffix(' ($)').lower()} {dollars(value)}")
        elif f.kind == "text":
            quoted.append(f"'{value}'")
        elif f.kind == "number":
            details.append(f"{f.label.lower()} {value}")
    text = " ".join([head, str(document[subject.name]), *quoted])
    return f"{text} ({', '.join(details)})" if details else text


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
        elif f.kind == "money" and value != "":
            try:
                document[f.name] = cents_of(value)
            except ValueError:
                document[f.name] = None  # refused at its path; with_errors says why
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
