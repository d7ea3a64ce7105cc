"""Stream ids, and consistency positions: which stream entries a read model has applied.

`parse_stream_id` is the one reader of a stream id (`<ms>-<seq>`, the ms being the server's
clock when the entry was added); whatever needs an entry's time or order derives it here.
A token is `partition:stream-id` pairs joined by commas, e.g. `0:1732600000000-0,3:1732600000012-1`.
A command's position names the entries its commit wrote; a read's position names the
checkpoint of every partition its read model has reached.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

StreamId = tuple[int, int]
_PAIR = re.compile(r"([0-9]{1,2}):([0-9]{1,20})-([0-9]{1,20})")
ZERO: StreamId = (0, 0)


def parse_stream_id(raw: str) -> StreamId:
    """Raises ValueError on what is not a stream id."""
    ms, _, seq = raw.partition("-")
    return int(ms), int(seq or 0)


def entry_ms(entry_id: str) -> int | None:
    """When an entry was added (ms since the epoch, the server's clock); None for what is
    not a stream id."""
    try:
        return parse_stream_id(entry_id)[0]
    except ValueError:
        return None


def entry_time(entry_id: str) -> float:
    """When an entry was added (s since the epoch, the server's clock); 0.0 for what is not
    a stream id."""
    ms = entry_ms(entry_id)
    return ms / 1000 if ms is not None else 0.0


def format_stream_id(stream_id: StreamId) -> str:
    return f"{stream_id[0]}-{stream_id[1]}"


def parse(token: str) -> dict[int, StreamId]:
    """Raises ValueError on anything that is not a token we issued."""
    result: dict[int, StreamId] = {}
    if not token or len(token) > 8192:
        raise ValueError("empty or oversized position")
    for part in token.split(","):
        match = _PAIR.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"bad position part {part!r}")
        partition = int(match.group(1))
        stream_id = (int(match.group(2)), int(match.group(3)))
        result[partition] = max(result.get(partition, ZERO), stream_id)
    return result


def format_position(positions: Mapping[int, StreamId]) -> str:
    return ",".join(
        f"{partition}:{format_stream_id(sid)}" for partition, sid in sorted(positions.items())
    )


def single(partition: int, stream_id: str) -> str:
    return f"{partition}:{stream_id}"


def reached(checkpoints: Mapping[int, StreamId], wanted: Mapping[int, StreamId]) -> bool:
    return all(checkpoints.get(partition, ZERO) >= sid for partition, sid in wanted.items())


def covering(tokens: Iterable[str | None]) -> str:
    """One token that covers every given one (the latest entry of each partition)."""
    latest: dict[int, StreamId] = {}
    for token in tokens:
        if token:
            for partition, stream_id in parse(token).items():
                latest[partition] = max(latest.get(partition, ZERO), stream_id)
    return format_position(latest)


def merge(*positions: Mapping[int, StreamId]) -> dict[int, StreamId]:
    """The earliest of several reads' checkpoints: what all of them have reached."""
    partitions = {partition for position in positions for partition in position}
    return {p: min(position.get(p, ZERO) for position in positions) for p in partitions}
