"""The console's search (admin): a command id, an order id or a SKU → that aggregate's
commands, events, statuses and dead letters.

A command id names its partition (its last `-N`); its aggregate is the one its events name.
An order id or a SKU names the aggregate directly. Events are read from the newest end of
the aggregate's partition stream, at most SCAN_ENTRIES of them (older ones are in the
archive: `storefront events`); the commands are those that wrote the events, or the one
asked for, with their statuses when they have a public one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import msgspec
from redis.asyncio import Redis

from app.kernel import keys
from app.kernel.command_status import CommandStatus
from app.kernel.command_status_store import CommandStatusStore
from app.kernel.event_entries import event_head, stored_event
from app.kernel.partitions import partition_of, partition_of_command
from app.kernel.positions import parse_stream_id
from app.kernel.read_side import ReadSide
from app.kernel.redis_types import stream_entries
from app.queries.catalog import ProductView, get_product
from app.queries.dead_letters import Consumer, DeadLetterView, dead_letters
from app.queries.orders import OrderView, get_order

SCAN_ENTRIES = 10_000
"""How far back (entries of the partition's stream) the search looks for events."""
LETTERS_PER_CONSUMER = 1_000
QUERY = re.compile(r"[0-9A-Za-z][0-9A-Za-z:._-]{0,200}")
SKU = re.compile(r"[A-Z0-9-]{3,32}")
ORDER_ID = re.compile(r"o[0-9a-f]{28}")


class FoundEvent(msgspec.Struct, frozen=True):
    entry_id: str
    aggregate: str
    type: str
    version: int
    at: float
    command_id: str


class FoundCommand(msgspec.Struct, frozen=True):
    command_id: str
    status: CommandStatus | None
    """None: an internal command (a process's step), which has no public status."""


class SearchResult(msgspec.Struct, frozen=True, kw_only=True):
    query: str
    aggregate: str = ""
    """`kind:id` of what was found ("" for nothing)."""
    order: OrderView | None = None
    product: ProductView | None = None
    commands: list[FoundCommand] = []
    events: list[FoundEvent] = []
    dead_letters: list[DeadLetterView] = []
    scanned: int = 0
    """Entries of the stream looked at for events."""


def valid_query(query: str) -> bool:
    return bool(QUERY.fullmatch(query))


async def _events_of(
    write: Redis, stream: str, aggregate: str = "", command_id: str = ""
) -> tuple[list[FoundEvent], int]:
    """The stream's newest SCAN_ENTRIES entries' events of `aggregate` (or written by
    `command_id`), oldest first; and how many entries were looked at."""
    reply = await write.xrevrange(stream, count=SCAN_ENTRIES)
    found = []
    entries = stream_entries([(stream, reply)])
    for _, entry_id, fields in entries:
        try:
            head = event_head(fields)
        except (msgspec.DecodeError, KeyError, ValueError):
            continue  # not an event this search can read
        if aggregate and head.aggregate != aggregate:
            continue
        try:
            stored = stored_event(fields)
        except (msgspec.DecodeError, KeyError):  # e.g. a poison entry: shown, unattributed
            if command_id:
                continue
            found.append(FoundEvent(entry_id, head.aggregate, head.type, head.version, 0.0, ""))
            continue
        if command_id and stored.command_id != command_id:
            continue
        found.append(
            FoundEvent(
                entry_id, head.aggregate, head.type, head.version, stored.at, stored.command_id
            )
        )
    found.sort(key=lambda e: parse_stream_id(e.entry_id))
    return found, len(entries)


async def search(
    write: Redis,
    read: ReadSide,
    statuses: CommandStatusStore,
    consumers: Sequence[Consumer],
    partitions: int,
    query: str,
) -> SearchResult:
    """What `query` names, if anything (assumed valid: `valid_query`)."""
    asked: FoundCommand | None = None
    aggregate = ""
    events: list[FoundEvent] = []
    scanned = 0
    command_partition = partition_of_command(query, partitions)
    if command_partition is not None:
        stored = await statuses.get(command_partition, query)
        if stored is not None:
            asked = FoundCommand(query, stored.view)
        by_command, scanned = await _events_of(
            write, keys.events(command_partition), command_id=query
        )
        if by_command:
            aggregate = by_command[0].aggregate
        elif asked is None:
            command_partition = None
    if not aggregate and command_partition is None:
        if ORDER_ID.fullmatch(query):
            aggregate = f"order:{query}"
        elif SKU.fullmatch(query):
            aggregate = f"product:{query}"
    if not aggregate:
        return SearchResult(query=query, commands=[asked] if asked else [], scanned=scanned)
    kind, _, aggregate_id = aggregate.partition(":")
    partition = partition_of(aggregate_id, partitions)
    events, scanned = await _events_of(write, keys.events(partition), aggregate=aggregate)
    order = await get_order(read, aggregate_id) if kind == "order" else None
    product = await get_product(read, aggregate_id) if kind == "product" else None
    if not events and order is None and product is None and asked is None:
        return SearchResult(query=query, scanned=scanned)
    written_by = (e.command_id for e in events if e.command_id)
    ids = list(dict.fromkeys([*([query] if asked else []), *written_by]))
    found = await statuses.read([(partition_of_command(i, partitions), i) for i in ids])
    commands = [
        FoundCommand(command_id, stored.view if stored else None)
        for command_id, stored in zip(ids, found, strict=True)
    ]
    letters, _ = await dead_letters(write, consumers, shown=LETTERS_PER_CONSUMER)
    return SearchResult(
        query=query,
        aggregate=aggregate,
        order=order,
        product=product,
        commands=commands,
        events=events,
        dead_letters=[d for d in letters if d.key == aggregate],
        scanned=scanned,
    )
