"""Reading an events-stream entry: its head (type, aggregate, version) without decoding it.

The commit writes each event as `t` (type), `a` (aggregate kind:id), `v` (version) and `e`
(the StoredEvent JSON), so consumers skip and count the events they do not handle for the
price of a dict lookup. Entries written before these fields existed are decoded instead.
A traced command's events also carry `tp`, the W3C traceparent a consumer continues
(kernel/tracing.py).
"""

from __future__ import annotations

import msgspec

from app.kernel.messages import StoredEvent
from app.kernel.tracing import FIELD as TRACE_FIELD

_stored = msgspec.json.Decoder(StoredEvent)


class EventHead(msgspec.Struct, frozen=True, gc=False):
    type: str
    aggregate: str
    """`kind:id`, e.g. `product:MUG-1`."""
    version: int

    @property
    def aggregate_id(self) -> str:
        return self.aggregate.partition(":")[2]


def event_head(fields: dict[str, str]) -> EventHead:
    if "t" in fields:
        return EventHead(fields["t"], fields["a"], int(fields["v"]))
    stored = stored_event(fields)
    return EventHead(stored.type, f"{stored.aggregate}:{stored.aggregate_id}", stored.version)


def stored_event(fields: dict[str, str]) -> StoredEvent:
    return _stored.decode(fields["e"])


def traceparent(fields: dict[str, str]) -> str:
    """The trace context the entry was written in ("" when it is not traced)."""
    return fields.get(TRACE_FIELD, "")
