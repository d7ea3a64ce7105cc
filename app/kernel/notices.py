"""Change notices: the stream entries that tell the WebSocket hubs what changed.

Both kinds are declared here once, as Structs whose fields have short names on the stream:

* a **status notice** on a partition's `{pN}:notices`: a command's status changed. Written by
  the status scripts (enqueue.lua, advance.lua, commit.lua), which get the field names from
  `STATUS_NOTICE_FIELDS` through `load_script`;
* a **view notice** on a partition's `rm:notices:{pN}`: an item of a read model changed.
  Written by projections (kernel/projection.py) and by the inbox's read flag.

The hubs read both with `read_status_notice` and `read_view_notice` (web/live_views.py).
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from app.kernel import tracing
from app.kernel.views import View

T = TypeVar("T", bound=msgspec.Struct)


class StatusNotice(msgspec.Struct, frozen=True, omit_defaults=True):
    """A command's status changed; its sender is who may watch it ("" for nobody)."""

    command_id: str = msgspec.field(name="c")
    sender: str = msgspec.field(name="u")
    trace: str = msgspec.field(name=tracing.FIELD, default="")
    """The traceparent of the change, when it is traced."""


class ViewNotice(msgspec.Struct, frozen=True, omit_defaults=True):
    """An item of a live view changed, as of read position `position` ("" when unknown)."""

    view: View = msgspec.field(name="v")
    """A view's name (one nobody declared is read, and pushed to nobody)."""
    key: str = msgspec.field(name="k")
    position: str = msgspec.field(name="p")
    trace: str = msgspec.field(name=tracing.FIELD, default="")
    """The traceparents of the traced changes it stands for, space-separated."""


def stream_fields(notice_type: type[msgspec.Struct]) -> dict[str, str]:
    """Each field's name in Python → its name on the stream."""
    return dict(
        zip(notice_type.__struct_fields__, notice_type.__struct_encode_fields__, strict=True)
    )


STATUS_NOTICE_FIELDS = stream_fields(StatusNotice)


def notice_fields(notice: StatusNotice | ViewNotice) -> dict[Any, Any]:
    """The notice as its stream entry's fields (an untraced one without `tp`); typed for
    XADD, whose stubs' key type is an invariant union."""
    fields: dict[Any, Any] = msgspec.to_builtins(notice)
    return fields


def _read(notice_type: type[T], fields: dict[str, str]) -> T | None:
    try:
        return msgspec.convert(fields, notice_type)
    except msgspec.ValidationError:
        return None


def read_status_notice(fields: dict[str, str]) -> StatusNotice | None:
    """A status notice from its entry's fields; None if the entry is not one."""
    return _read(StatusNotice, fields)


def read_view_notice(fields: dict[str, str]) -> ViewNotice | None:
    """A view notice from its entry's fields; None if the entry is not one."""
    return _read(ViewNotice, fields)
