"""Command envelopes: a validated command wrapped with its ids, sender and trace context.

A command id ends in the partition of its command's aggregate (kernel/partitions.py), so
whoever holds an id knows where its status, its queue and its commit are.
"""

from __future__ import annotations

from typing import Any

import msgspec

from app.kernel import tracing
from app.kernel.clock import now
from app.kernel.messages import Actor, CommandEnvelope
from app.kernel.partitions import command_id_for, new_id, partition_of, partition_of_command
from app.kernel.registry import CommandSpec, Registry

PARTITION_TRIES = 256
"""How many fresh ids `new_envelope` may draw to land an assigned id in a wanted partition."""


def tag_of(struct: msgspec.Struct) -> str:
    """A command's or an event's type name: its Struct's tag."""
    tag = type(struct).__struct_config__.tag
    assert isinstance(tag, str), f"{type(struct).__name__} needs a string tag"
    return tag


def new_envelope(
    registry: Registry,
    partitions: int,
    command: msgspec.Struct,
    actor: Actor,
    *,
    base_id: str | None = None,
    internal: bool = False,
    partition: int | None = None,
    after: str = "",
) -> CommandEnvelope:
    """Wrap a validated command; its id ends in the partition of its aggregate.

    `base_id` makes the id deterministic, so a process repeating a step repeats nothing.
    `partition`: where a server-assigned aggregate id should land, if it can choose.
    """
    spec = registry.spec(tag_of(command))
    if spec.assign_id is not None:
        assert base_id is None, "a server-assigned id names its command"
        aggregate_id = _assigned(spec, partitions, partition)
        base_id = aggregate_id
    elif spec.kind is None:
        aggregate_id = base_id or new_id()
    else:
        aggregate_id = spec.aggregate_id(command)
    aggregate_partition = partition_of(aggregate_id, partitions)
    return CommandEnvelope(
        command_id=command_id_for(aggregate_partition, base_id),
        type=spec.name,
        body=msgspec.Raw(msgspec.json.encode(command)),
        aggregate_id=aggregate_id,
        sender=actor.username,
        roles=tuple(sorted(actor.roles)),
        accepted_at=now(),
        internal=internal,
        after=after,
        traceparent=tracing.current(),
    )


def _assigned(spec: CommandSpec[Any, Any], partitions: int, partition: int | None) -> str:
    assert spec.assign_id is not None
    aggregate_id = spec.assign_id()
    for _ in range(PARTITION_TRIES if partition is not None else 0):
        if partition_of(aggregate_id, partitions) == partition:
            break
        aggregate_id = spec.assign_id()
    return aggregate_id


def partition_of_envelope(envelope: CommandEnvelope, partitions: int) -> int:
    """The partition a command runs in (its id says; an id that does not is a bug)."""
    partition = partition_of_command(envelope.command_id, partitions)
    if partition is None:
        raise ValueError(f"command id {envelope.command_id!r} names no partition")
    return partition
