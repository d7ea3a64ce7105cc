"""The Lua scripts that live beside the modules calling them, run by EVALSHA.

A script is sent by its SHA; only a server that does not know it yet (first use, a restart, a
new Cluster node) is sent the source. Pipelined calls never pay a SCRIPT EXISTS round trip:
the calls a server refused with NOSCRIPT are sent again, in order, once it has the script.

**Constants declared in Python.** A value that Python and a script must agree on (the final
statuses, a notice's field names) is declared once in Python and put into the script's source
when it is loaded: its header names them on one line, `-- Constants (from Python): A, B`, and
`load_script(__file__, "x.lua", A=..., B=...)` must pass exactly those (else it raises at
import). They become Lua locals on the script's first line (so the line numbers in Redis's
errors stay the file's): a string or integer as it is, a set of strings as a table whose keys
they are (`FINAL_STATUSES[status]`), a mapping of strings as a table (`STATUS_NOTICE.sender`).
Nothing travels per call, so a call stays one round trip with the arguments its header names.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError

from app.kernel.replication import NO_WAIT, Replication, add_waits, settle

Args = Sequence[str | int | float | bytes]
Constant = str | int | frozenset[str] | Mapping[str, str]

_DECLARED = re.compile(r"^-- Constants \(from Python\): *([A-Z_][A-Z0-9_, ]*)$", re.MULTILINE)


class Script:
    def __init__(self, source: str, path: Path | None = None) -> None:
        self.source = source
        self.path = path
        """The file it was loaded from."""
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


def load_script(module_file: str, name: str, **constants: Constant) -> Script:
    """`load_script(__file__, "commit.lua", FINAL_STATUSES=...)`: the script file beside the
    calling module, with the constants its header declares (see the module's docstring)."""
    path = Path(module_file).parent / name
    source = path.read_text()
    found = _DECLARED.search(source)
    declared = {n.strip() for n in found.group(1).split(",")} if found else set()
    if declared != set(constants):
        raise ValueError(f"{name} declares constants {sorted(declared)}, given {sorted(constants)}")
    if constants:
        names = ", ".join(constants)
        values = ", ".join(_lua(value) for value in constants.values())
        source = f"local {names} = {values} {source}"
    return Script(source, path)


def _lua(value: Constant) -> str:
    """A Lua expression of the value."""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _lua_string(value)
    if isinstance(value, frozenset):
        return "{" + ", ".join(f"[{_lua_string(item)}] = true" for item in sorted(value)) + "}"
    return "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in value.items()) + "}"


def _lua_string(text: str) -> str:
    """A Lua string literal: printable ASCII as it is, every other byte as `\\ddd`."""
    return "'" + "".join(_LUA_BYTES[byte] for byte in text.encode()) + "'"


_LUA_BYTES = [
    chr(byte) if 32 <= byte < 127 and chr(byte) not in "\\'\"" else f"\\{byte}"
    for byte in range(256)
]


async def run_calls(
    redis: Redis,
    script: Script,
    calls: Sequence[tuple[Sequence[str], Args]],
    replication: Replication = NO_WAIT,
) -> list[Any]:
    """Many calls of one script in one round trip; a reply is a value or the call's error.

    With `replication` on, the round trip ends with a WAIT per node written to, and raises
    ReplicationTimeout if the replicas did not confirm (kernel/replication.py)."""
    if not calls:
        return []
    replies = await _pipelined(redis, script, calls, replication)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        await redis.script_load(script.source)
        again = await _pipelined(redis, script, [calls[i] for i in missing], replication)
        for index, reply in zip(missing, again, strict=True):
            replies[index] = reply
    return replies


async def _pipelined(
    redis: Redis,
    script: Script,
    calls: Sequence[tuple[Sequence[str], Args]],
    replication: Replication,
) -> list[Any]:
    async with redis.pipeline(transaction=False) as pipe:
        for keys, args in calls:
            script.queue(pipe, keys, args)
        written = [keys[0] for keys, _ in calls if keys]
        waits = await add_waits(redis, pipe, replication, written)
        replies = list(await pipe.execute(raise_on_error=False))
    return settle(redis, replication, waits, replies)
