"""Loading the Lua scripts that live beside the modules calling them."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def load_script(redis: Redis, module_file: str, name: str) -> AsyncScript:
    """`load_script(redis, __file__, "commit.lua")`: EVALSHA, loading the script on first use."""
    source = (Path(module_file).parent / name).read_text()
    return redis.register_script(source)
