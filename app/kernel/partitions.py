"""Which partition an aggregate (and everything one commit touches) lives in."""

from __future__ import annotations

import re
import secrets
import time
import zlib

_COMMAND_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z:._-]{0,200}-([0-9]{1,2})")


def partition_of(routing_key: str, partitions: int) -> int:
    return zlib.crc32(routing_key.encode()) % partitions


def tag(partition: int) -> str:
    """The hash tag shared by every key of one partition (one Redis Cluster slot)."""
    return f"{{p{partition}}}"


def tagged_partition(key: str) -> int:
    """The partition whose hash tag a key carries (the first `{pN}` in it)."""
    start = key.index("{p") + 2
    return int(key[start : key.index("}", start)])


def new_id(prefix: str = "") -> str:
    """A time-ordered, unguessable id: 12 hex digits of milliseconds, 16 of randomness."""
    return f"{prefix}{int(time.time() * 1000):012x}{secrets.token_hex(8)}"


def command_id_for(partition: int, base: str | None = None) -> str:
    """Command ids end in their partition so a status can be found from the id alone."""
    return f"{base or new_id()}-{partition}"


def base_of_command(command_id: str) -> str:
    """What `command_id_for` made the id from (a followed command's: its aggregate's id)."""
    return command_id.rsplit("-", 1)[0]


def partition_of_command(command_id: str, partitions: int) -> int | None:
    match = _COMMAND_ID.fullmatch(command_id)
    if match is None:
        return None
    partition = int(match.group(1))
    return partition if partition < partitions else None
