"""A projection's read-model writes, recorded first and then sent (or compared).

Projections queue their writes on a `ReadModelWrites` instead of a Redis pipeline. Recording
first lets the runtime

* combine the writes of one key within a batch (a product restocked ten times in a batch is
  one HSET; a capped list pushed to ten times is one LPUSH and one LTRIM),
* send them to other keys (a rebuild writes a shadow copy), and
* compare them with what the read model holds (the audit) without writing at all.

Writes to one key keep their order; writes to different keys are independent (a projection
never has one command touch two keys), so a write may join an earlier one of its key as long
as nothing else was written to that key in between.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from redis.asyncio.client import Pipeline

Value = str | int | float | bytes
Kind = Literal["hset", "hincrby", "members", "zincrby", "incrby", "lpush", "rpush", "ltrim"]


@dataclass
class Write:
    """One command (or several combined) on one key."""

    kind: Kind
    key: str
    fields: dict[str, Value] = field(default_factory=dict)
    """hset: field → value; hincrby: field → increment."""
    members: dict[str, float | None] = field(default_factory=dict)
    """members: member → score (None: removed); zincrby: member → increment."""
    values: list[Value] = field(default_factory=list)
    """lpush / rpush: the values, in the order they were pushed."""
    amount: int = 0
    """incrby"""
    trim: tuple[int, int] | None = None
    """ltrim (start, end); lpush: an LTRIM 0..end that follows the push..."""
    untrimmed: int = 0
    """lpush: ... except for this many values, pushed after that LTRIM."""


def redis_text(value: Value | None) -> str | None:
    """A value as Redis stores it (how redis-py encodes it)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, float):
        return repr(value)
    return str(value)


class ReadModelWrites:
    def __init__(self, partition: int = 0) -> None:
        self.partition = partition
        """The partition of the entry being applied: every key a projection writes for it
        carries that partition's tag (so one batch's writes share a slot)."""
        self.writes: list[Write] = []
        self._last: dict[str, Write] = {}
        self.expiries: dict[str, int] = {}
        """Key → seconds to live, set after its writes (none of the writes clears a TTL)."""
        self.deadlines: dict[str, int] = {}
        """Key → when it expires (epoch seconds), set after its writes: an expiry that derives
        from the events (a rebuild of old events writes keys that are gone at once)."""

    def __len__(self) -> int:
        return len(self.writes)

    def _join(self, kind: Kind, key: str) -> Write:
        """The key's last write if it is of this kind (to combine with), else a new one."""
        last = self._last.get(key)
        if last is not None and last.kind == kind:
            return last
        write = Write(kind, key)
        self.writes.append(write)
        self._last[key] = write
        return write

    # --- the commands projections use (redis-py's names and arguments) ------------------------

    def hset(
        self,
        name: str,
        key: str | None = None,
        value: Value | None = None,
        mapping: Mapping[str, Value] | None = None,
    ) -> None:
        write = self._join("hset", name)
        if key is not None and value is not None:
            write.fields[key] = value
        if mapping:
            write.fields.update(mapping)

    def hincrby(self, name: str, key: str, amount: int = 1) -> None:
        write = self._join("hincrby", name)
        write.fields[key] = int(write.fields.get(key, 0)) + amount

    def zadd(self, name: str, mapping: Mapping[str, float]) -> None:
        write = self._join("members", name)
        for member, score in mapping.items():
            write.members[member] = float(score)

    def zrem(self, name: str, *values: str) -> None:
        write = self._join("members", name)
        for member in values:
            write.members[member] = None

    def zincrby(self, name: str, amount: float, value: str) -> None:
        write = self._join("zincrby", name)
        write.members[value] = (write.members.get(value) or 0.0) + amount

    def incr(self, name: str, amount: int = 1) -> None:
        self._join("incrby", name).amount += amount

    def rpush(self, name: str, *values: Value) -> None:
        self._join("rpush", name).values.extend(values)

    def lpush(self, name: str, *values: Value) -> None:
        write = self._join("lpush", name)
        write.values.extend(values)
        if write.trim is not None:
            write.untrimmed += len(values)

    def ltrim(self, name: str, start: int, end: int) -> None:
        last = self._last.get(name)
        if (
            last is not None
            and last.kind == "lpush"
            and start == 0
            and last.trim in (None, (0, end))
        ):
            # LPUSH a; LTRIM 0 n; LPUSH b; LTRIM 0 n  ==  LPUSH a b; LTRIM 0 n
            last.trim = (0, end)
            last.untrimmed = 0
            return
        write = Write("ltrim", name, trim=(start, end))
        self.writes.append(write)
        self._last[name] = write

    def expire(self, name: str, seconds: int) -> None:
        self.expiries[name] = seconds

    def expire_at(self, name: str, epoch_seconds: int) -> None:
        self.deadlines[name] = epoch_seconds

    # --- sending ------------------------------------------------------------------------------

    def send(self, pipe: Pipeline, rename: Callable[[str], str] | None = None) -> None:
        """Queue every write on a pipeline (or transaction), each key through `rename`."""
        for write in self.writes:
            key = rename(write.key) if rename is not None else write.key
            match write.kind:
                case "hset":
                    pipe.hset(key, mapping=write.fields)  # type: ignore[arg-type]
                case "hincrby":
                    for name, by in write.fields.items():
                        pipe.hincrby(key, name, int(by))
                case "members":
                    added = {m: s for m, s in write.members.items() if s is not None}
                    removed = [m for m, s in write.members.items() if s is None]
                    if added:
                        pipe.zadd(key, added)
                    if removed:
                        pipe.zrem(key, *removed)
                case "zincrby":
                    for member, step in write.members.items():
                        pipe.zincrby(key, step or 0.0, member)
                case "incrby":
                    pipe.incrby(key, write.amount)
                case "rpush":
                    pipe.rpush(key, *write.values)
                case "lpush":
                    split = len(write.values) - write.untrimmed
                    pipe.lpush(key, *write.values[:split])
                    if write.trim is not None:
                        pipe.ltrim(key, *write.trim)
                    if write.untrimmed:
                        pipe.lpush(key, *write.values[split:])
                case "ltrim":
                    assert write.trim is not None
                    pipe.ltrim(key, *write.trim)
        for name, seconds in self.expiries.items():
            pipe.expire(rename(name) if rename is not None else name, seconds)
        for name, at in self.deadlines.items():
            pipe.expireat(rename(name) if rename is not None else name, at)
