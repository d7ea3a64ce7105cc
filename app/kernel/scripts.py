"""The Lua scripts that live beside the modules calling them, run by EVALSHA.

A script is sent by its SHA; only a server that does not know it yet (first use, a restart, a
new Cluster node) is sent the source. Pipelined calls never pay a SCRIPT EXISTS round trip:
the calls a server refused with NOSCRIPT are sent again, in order, once it has the script.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

Args = Sequence[str | int | float | bytes]


class Script:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Args) -> Any:
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)

    def queue(self, pipe: Pipeline, keys: Sequence[str], args: Args) -> None:
        # by name, not pipe.evalsha(): redis-py's Cluster pipeline blocks that method, but
        # routes an EVALSHA by its keys like any command
        pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)


def load_script(module_file: str, name: str) -> Script:
    """`load_script(__file__, "commit.lua")`: the script file beside the calling module."""
    return Script((Path(module_file).parent / name).read_text())


async def run_calls(
    redis: Redis, script: Script, calls: Sequence[tuple[Sequence[str], Args]]
) -> list[Any]:
    """Many calls of one script in one round trip; a reply is a value or the call's error."""
    if not calls:
        return []
    replies = await _pipelined(redis, script, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        await redis.script_load(script.source)
        again = await _pipelined(redis, script, [calls[i] for i in missing])
        for index, reply in zip(missing, again, strict=True):
            replies[index] = reply
    return replies


async def _pipelined(
    redis: Redis, script: Script, calls: Sequence[tuple[Sequence[str], Args]]
) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            script.queue(pipe, keys, args)
        return list(await pipe.execute(raise_on_error=False))
