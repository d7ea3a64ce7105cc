"""Request bodies, capped before anything parses them: JSON bytes and forms alike."""

from __future__ import annotations

import re

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.types import Message

from app.kernel.errors import ProblemError

MAX_BODY = 1024 * 1024
MAX_FORM = 64 * 1024
"""A form without an upload: a few fields (checkout's lines and card, an admin form)."""
_LENGTH = re.compile(r"[0-9]+")


class PayloadTooLarge(ProblemError):
    status = 413

    def __init__(self, limit: int = MAX_BODY) -> None:
        super().__init__("payload_too_large", f"The body is over {limit} bytes")


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """At most `limit` bytes: a larger declared Content-Length is refused before reading."""
    declared = request.headers.get("content-length")
    if (
        declared is not None
        and _LENGTH.fullmatch(declared)
        and (len(declared) > 12 or int(declared) > limit)
    ):
        raise PayloadTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, limit: int = MAX_FORM, *, max_files: int = 0) -> FormData:
    """The form (urlencoded or multipart), parsed only once its body is read within `limit`.

    Starlette's own `request.form()` streams an upload of any size to disk first.
    Check who is asking before calling this.
    """
    body = await read_body(request, limit)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return await Request(request.scope, replay).form(max_files=max_files, max_fields=200)
