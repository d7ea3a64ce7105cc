"""JSON and problem+json responses, encoded with msgspec."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
from starlette.responses import Response

from app.kernel.messages import Problem

_encoder = msgspec.json.Encoder()


def json_response(
    content: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        _encoder.encode(content),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


def problem_response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        _encoder.encode(problem),
        status_code=problem.status,
        headers=headers,
        media_type="application/problem+json",
    )
