"""Every Lua script checks all its input before its first write: bad input writes nothing.

The scripts under test are found by glob (every `.lua` beside the code), so a new script
without cases here fails. Each has a good call, which writes, and per kind of bad input a
near miss of it (for the half-writes that checking prevents: one that would have failed
only after writing). Each bad call must come back as the script's own error, with every key
as it was, byte for byte (DUMP) and expiry (PEXPIRETIME).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import get_args

import msgspec
import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

import app
from app.adapters import login_throttle, payment_gateway
from app.kernel import command_status_store, commit, leases, projection, running, stream_trim
from app.kernel.archive import holds, trim
from app.kernel.commit import StatusWrite
from app.kernel.read_model_writes import Kind, ReadModelWrites, redis_text
from app.kernel.scripts import Script

ROOT = Path(app.__file__).resolve().parents[1]
CODE = ("app", "workers")
CID = "cmd-1-0"
Keyspace = dict[str, tuple[bytes | None, int]]


@dataclass(frozen=True)
class Call:
    keys: list[str]
    args: list[str]

    def arg(self, number: int, value: str) -> Call:
        """With ARGV[number] replaced."""
        args = list(self.args)
        args[number - 1] = value
        return Call(self.keys, args)


@dataclass(frozen=True)
class Stream:
    """A stream of entries with these ids, and a consumer group `g` delivered up to its last
    one (all acknowledged) if `grouped`."""

    ids: tuple[str, ...]
    grouped: bool = False


@dataclass(frozen=True)
class Ranked:
    """A sorted set of these members, by score."""

    scores: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Cases:
    script: Script
    good: Call
    bad: dict[str, Call]
    setup: dict[str, dict[str, str] | str | Stream | Ranked] = field(default_factory=dict)
    """Keys there before each call: a hash (a dict), a string, a stream or a sorted set."""


async def keyspace(redis: Redis) -> Keyspace:
    """Every key as DUMP serializes it, with its expiry (-1: none)."""
    found: Keyspace = {}
    async for key in redis.scan_iter(count=1000):
        found[key] = (await redis.dump(key), await redis.execute_command("PEXPIRETIME", key))
    return found


# --- apply_batch.lua: the commands a projection batch sends -----------------------------------


def _batch_commands() -> list[list[str]]:
    """One write of every kind ReadModelWrites records, and the runtime's notice XADD."""
    writes = ReadModelWrites()
    writes.hset("rm:t:h", mapping={"name": "Mug", "price": 12.5})
    writes.hincrby("rm:t:counts", "sold", 2)
    writes.zadd("rm:t:z", {"a": 1.0, "b": 2.5})
    writes.zrem("rm:t:z", "c")
    writes.zincrby("rm:t:top", 3.0, "a")
    writes.incr("rm:t:n", 4)
    writes.rpush("rm:t:timeline", "x")
    writes.lpush("rm:t:recent", "y")
    writes.ltrim("rm:t:recent", 0, 99)
    writes.ltrim("rm:t:old", 1, -1)
    writes.expire("rm:t:h", 3600)
    writes.expire_at("rm:t:counts", 4_000_000_000)
    assert {write.kind for write in writes.writes} == set(get_args(Kind))  # every kind
    tx = Redis().pipeline(transaction=False)
    writes.send(tx)
    tx.xadd("rm:notices", {"v": "t", "k": "1", "p": "0:1-0"}, maxlen=5000, approximate=True)
    return [[redis_text(arg) or "" for arg in args] for args, _options in tx.command_stack]


def _batch(*bad: object) -> Call:
    """The good batch with `bad` after it (a half-write, had nothing checked it)."""
    return Call(["cp:t:0"], ["5-0", "6-0", json.dumps([*_batch_commands(), *bad])])


APPLY_BATCH = Cases(
    projection._APPLY,
    _batch(),
    {
        "no-key": Call([], _batch().args),
        "two-arguments": Call(["cp:t:0"], _batch().args[:2]),
        "checkpoint-not-an-entry-id": _batch().arg(2, "later"),
        "commands-not-json": _batch().arg(3, "[["),
        "commands-an-object": _batch().arg(3, '{"HSET": ["k", "f", "v"]}'),
        "command-not-a-list": _batch("HSET"),
        "command-empty": _batch([]),
        "command-not-allowed": _batch(["DEL", "rm:t:h"]),
        "argument-a-boolean": _batch(["HSET", "rm:t:h", "sold", True]),
        "argument-null": _batch(["RPUSH", "rm:t:timeline", None]),
        "argument-a-list": _batch(["LPUSH", "rm:t:recent", ["x"]]),
        "increment-a-json-number": _batch(["INCRBY", "rm:t:n", 1.5]),
        "too-few-arguments": _batch(["HINCRBY", "rm:t:counts", "sold"]),
        "too-many-arguments": _batch(["INCRBY", "rm:t:n", "1", "2"]),
        "fields-not-in-pairs": _batch(["HSET", "rm:t:h", "a", "1", "b"]),
        "increment-not-an-integer": _batch(["HINCRBY", "rm:t:counts", "sold", "1.5"]),
        "increment-with-a-leading-zero": _batch(["INCRBY", "rm:t:n", "01"]),
        "score-not-a-number": _batch(["ZADD", "rm:t:z", "high", "a"]),
        "score-nan": _batch(["ZINCRBY", "rm:t:top", "nan", "a"]),
        "score-overflowing": _batch(["ZADD", "rm:t:z", "1e400", "a"]),
        "score-underflowing-to-zero": _batch(["ZADD", "rm:t:z", "1e-400", "a"]),
        "ltrim-index-not-an-integer": _batch(["LTRIM", "rm:t:recent", "0", "end"]),
        "expire-past-the-clock": _batch(["EXPIRE", "rm:t:h", "99999999999999999"]),
        "expireat-not-an-integer": _batch(["EXPIREAT", "rm:t:h", "soon"]),
        "xadd-explicit-id": _batch(["XADD", "rm:notices", "1-1", "v", "t"]),
        "xadd-negative-maxlen": _batch(["XADD", "rm:notices", "MAXLEN", "~", "-1", "*", "v", "t"]),
        "xadd-fields-not-in-pairs": _batch(["XADD", "rm:notices", "*", "v", "t", "k"]),
        "too-long-to-unpack": _batch(["RPUSH", "rm:t:timeline", *["v"] * 7000]),
    },
    {"cp:t:0": "5-0", "rm:t:counts": {"sold": "1"}, "rm:t:h": {"name": "Cup"}},
)


# --- the status scripts --------------------------------------------------------------------

STATUS = ["{p0}:status:" + CID, "{p0}:steps:" + CID, "{p0}:notices"]
STEP = '{"name": "processing", "at": 1.0}'
_advance = Call(STATUS, [CID, '{"status": "processing"}', STEP, "accepted", "5000"])

ADVANCE = Cases(
    command_status_store._ADVANCE,
    _advance,
    {
        "two-keys": Call(STATUS[:2], _advance.args),
        "four-arguments": Call(STATUS, _advance.args[:4]),
        "fields-not-json": _advance.arg(2, '{"status": '),
        "fields-a-list": _advance.arg(2, '["status"]'),
        "field-not-a-string": _advance.arg(2, '{"progress_done": 3}'),
        "maxlen-not-a-number": _advance.arg(5, "many"),
        "maxlen-negative": _advance.arg(5, "-1"),
        "maxlen-not-an-integer": _advance.arg(5, "1.5"),
    },
    {STATUS[0]: {"status": "accepted", "sender": "alice", "type": "PlaceOrder"}},
)

QUEUE = [
    *STATUS[:2],
    "{p0}:commands",
    "{p0}:notices",
    "{p0}:dedup:" + CID,
    "{p0}:queue",
    "{p0}:idem:alice:k1",
]
_fields = {"type": "PlaceOrder", "sender": "alice", "status": "accepted", "queued": "1"}
_enqueue = Call(
    QUEUE,
    [CID, json.dumps(_fields), STEP, '{"command_id": "c"}', "3600", "5000", "", '{"r": 1}', "60"],
)

ENQUEUE = Cases(
    command_status_store._ENQUEUE,
    _enqueue,
    {
        "five-keys": Call(QUEUE[:5], _enqueue.args[:7]),
        "claim-without-its-record": Call(QUEUE, _enqueue.args[:7]),
        "record-without-its-claim": Call(QUEUE[:6], _enqueue.args),
        "fields-not-json": _enqueue.arg(2, "{"),
        "fields-empty": _enqueue.arg(2, "{}"),
        "field-not-a-string": _enqueue.arg(2, '{"queued": 1}'),
        "too-many-fields": _enqueue.arg(2, json.dumps({f"f{i}": "x" for i in range(3001)})),
        "ttl-zero": _enqueue.arg(5, "0"),
        "ttl-not-an-integer": _enqueue.arg(5, "1.5"),
        "maxlen-negative": _enqueue.arg(6, "-1"),
        "claim-ttl-not-a-number": _enqueue.arg(9, "soon"),
    },
    {"{p0}:queue": {"accepted": "3", "finished": "2"}},
)

AGGREGATE = "{p0}:agg:product:MUG"
_update = StatusWrite(CID, {"status": "succeeded", "position": "$position"}, ["{}"], final=True)
_commit = Call(
    [
        "{p0}:dedup:" + CID,
        "{p0}:events",
        "{p0}:journal",
        "{p0}:integration",
        "{p0}:notices",
        AGGREGATE,
        "{p0}:queue",
        "{p0}:running",
        *STATUS[:2],
    ],
    [
        "0",
        "1",
        '{"sku": "MUG"}',
        "succeeded",
        "",
        "3600",
        '[["t", "ProductRenamed", "e", "{}"]]',
        '["{}"]',
        msgspec.json.encode([_update]).decode(),
        "5000",
        "5000",
        "",
        "",
        CID,
        "",
        "1700000000000",  # tracked: ms since the epoch (13 digits)
    ],
)


def _commit_update(**changed: object) -> str:
    return json.dumps([{**msgspec.to_builtins(_update), **changed}])


COMMIT = Cases(
    commit._SCRIPT,
    _commit,
    {
        "fifteen-arguments": Call(_commit.keys, _commit.args[:15]),
        "running-score-negative": _commit.arg(16, "-1"),
        "running-score-not-a-number": _commit.arg(16, "now"),
        "running-score-too-long": _commit.arg(16, "1" * 16),
        "keys-for-two-updates": Call([*_commit.keys, *STATUS[:2]], _commit.args),
        "partition-negative": _commit.arg(1, "-1"),
        "expected-version-not-an-integer": _commit.arg(2, "1.0"),
        "outcome-unknown": _commit.arg(4, "done"),
        "ttl-not-an-integer": _commit.arg(6, "1.5"),
        "ttl-zero": _commit.arg(6, "0"),
        "events-an-object": _commit.arg(7, '{"t": "x"}'),
        "event-too-long-to-unpack": _commit.arg(7, json.dumps([["f", "v"] * 3001])),
        "update-final-not-a-boolean": _commit.arg(9, _commit_update(final="yes")),
        "update-track-not-a-number": _commit.arg(9, _commit_update(track="now")),
        "update-track-negative": _commit.arg(9, _commit_update(track=-1)),
        "update-track-not-an-integer": _commit.arg(9, _commit_update(track=1.5)),
        "update-field-not-a-string": _commit.arg(9, _commit_update(fields={"status": 1})),
        "notices-maxlen-negative": _commit.arg(10, "-5"),
        "journal-maxlen-not-a-number": _commit.arg(11, "x"),
    },
    {AGGREGATE: {"v": "1", "s": '{"sku": "MUG"}', "w": ""}},
)
# (more malformed commits: test_kernel_commit_atomicity.py)


# --- leases and adapters ---------------------------------------------------------------------

_lease = Call(["lease:g:0"], ["acquire", "worker-1", "10000"])

LEASE = Cases(
    leases._SCRIPT,
    _lease,
    {
        "two-keys": Call(["lease:g:0", "lease:g:1"], _lease.args),
        "two-arguments": Call(_lease.keys, _lease.args[:2]),
        "action-unknown": _lease.arg(1, "grab"),
        "ttl-zero": _lease.arg(3, "0"),
        "ttl-not-an-integer": _lease.arg(3, "1e4"),
    },
    {"lease:g:1": "worker-2"},
)

THROTTLE_KEYS = ["lt:user", "lt:user:wait", "lt:address", "lt:address:wait"]
_throttle = Call(THROTTLE_KEYS, ["attempt", "1000", "900000", "3600", "0", "20"])

LOGIN_THROTTLE = Cases(
    login_throttle._SCRIPT,
    _throttle,
    {
        "keys-not-in-pairs": Call(THROTTLE_KEYS[:3], _throttle.args),
        "free-count-missing": Call(THROTTLE_KEYS, _throttle.args[:5]),
        "action-unknown": _throttle.arg(1, "locked"),
        "first-wait-zero": _throttle.arg(2, "0"),
        "longest-wait-not-a-number": _throttle.arg(3, "long"),
        "forget-not-an-integer": _throttle.arg(4, "1.5"),
        "free-count-negative": _throttle.arg(5, "-1"),
        "free-count-not-a-number": _throttle.arg(6, "many"),
    },
    {"lt:address": "3"},
)

GATEWAY = ["ext:{gateway}:ledger:charge:o1", "ext:{gateway}:vault:tok_1"]
_charge = Call(GATEWAY, ["ch_1", "1200", "3600"])

GATEWAY_CHARGE = Cases(
    payment_gateway._CHARGE,
    _charge,
    {
        "one-key": Call(GATEWAY[:1], _charge.args),
        "two-arguments": Call(GATEWAY, _charge.args[:2]),
        "no-charge-id": _charge.arg(1, ""),
        "amount-not-an-integer": _charge.arg(2, "12.00"),
        "amount-negative": _charge.arg(2, "-1"),
        "amount-empty": _charge.arg(2, ""),
        "ttl-zero": _charge.arg(3, "0"),
        "ttl-negative": _charge.arg(3, "-5"),
        "ttl-not-an-integer": _charge.arg(3, "1.5"),
    },
    {"ext:{gateway}:vault:tok_1": "approve"},
)

_hold = Call(["{p0}:holds"], ["hold", "rebuild.catalog", "5-0", "60000"])

ARCHIVE_HOLD = Cases(
    holds._SCRIPT,
    _hold,
    {
        "two-keys": Call(["{p0}:holds", "{p0}:other"], _hold.args),
        "action-unknown": _hold.arg(1, "keep"),
        "holder-empty": _hold.arg(2, ""),
        "ttl-missing": Call(_hold.keys, _hold.args[:3]),
        "position-not-an-id": _hold.arg(3, "five"),
        "ttl-zero": _hold.arg(4, "0"),
        "ttl-not-an-integer": _hold.arg(4, "1.5"),
        "release-without-holder": Call(_hold.keys, ["release"]),
    },
    {"{p0}:holds": {"audit": "99999999999999 1-0"}},
)

_trim = Call(["{p0}:events", "{p0}:holds"], ["3-0", "0"])

ARCHIVE_TRIM = Cases(
    trim._SCRIPT,
    _trim,
    {
        "one-key": Call(_trim.keys[:1], _trim.args),
        "one-argument": Call(_trim.keys, _trim.args[:1]),
        "first-kept-not-an-id": _trim.arg(1, "3"),
        "retention-negative": _trim.arg(2, "-1"),
        "retention-not-an-integer": _trim.arg(2, "1e3"),
    },
    {"{p0}:holds": {"gone": "1 1-0"}, "{p0}:events": Stream(("1-0", "2-0", "3-0"))},
)

_consumed = Call(["{p0}:commands"], [""])

TRIM_CONSUMED = Cases(
    stream_trim._TRIM,
    _consumed,
    {
        "two-keys": Call(["{p0}:commands", "{p0}:other"], _consumed.args),
        "no-argument": Call(_consumed.keys, []),
        "kept-not-an-id": _consumed.arg(1, "yesterday"),
    },
    {"{p0}:commands": Stream(("1-0", "2-0", "3-0"), grouped=True)},
)

_RUNNING = ["{p0}:running", "{p0}:dedup:o1.commit.MUG-1", "{p0}:cmd:o1-0"]
_settle = Call(
    _RUNNING, ["5000", '["o2-0"]', '[["o1.reserve.MUG-1", [2]], ["o1-0", [3]]]', "[false, true]"]
)

SETTLE_RUNNING = Cases(
    running._SETTLE,
    _settle,
    {
        "no-keys": Call([], _settle.args),
        "three-arguments": Call(_RUNNING, _settle.args[:3]),
        "score-negative": _settle.arg(1, "-1"),
        "score-not-an-integer": _settle.arg(1, "5e3"),
        "again-not-an-array": _settle.arg(2, '{"o2-0": 1}'),
        "again-not-ids": _settle.arg(2, "[2]"),
        "settled-not-json": _settle.arg(3, "[["),
        "settled-without-proofs": _settle.arg(3, '[["o1-0"]]'),
        "proof-the-index": _settle.arg(3, '[["o1-0", [1]]]'),
        "proof-past-the-keys": _settle.arg(3, '[["o1-0", [4]]]'),
        "proof-not-an-integer": _settle.arg(3, '[["o1-0", [2.5]]]'),
        "kinds-fewer-than-keys": _settle.arg(4, "[false]"),
        "kind-not-a-boolean": _settle.arg(4, '[false, "final"]'),
    },
    {
        "{p0}:running": Ranked((("o1.reserve.MUG-1", 1000), ("o1-0", 2000), ("o2-0", 3000))),
        "{p0}:dedup:o1.commit.MUG-1": {"status": "succeeded"},
        "{p0}:cmd:o1-0": {"status": "succeeded"},
    },
)

SCRIPTS = {
    "app/kernel/apply_batch.lua": APPLY_BATCH,
    "app/kernel/advance.lua": ADVANCE,
    "app/kernel/enqueue.lua": ENQUEUE,
    "app/kernel/commit.lua": COMMIT,
    "app/kernel/lease.lua": LEASE,
    "app/adapters/login_throttle.lua": LOGIN_THROTTLE,
    "app/adapters/gateway_charge.lua": GATEWAY_CHARGE,
    "app/kernel/archive/hold.lua": ARCHIVE_HOLD,
    "app/kernel/archive/trim.lua": ARCHIVE_TRIM,
    "app/kernel/trim_consumed.lua": TRIM_CONSUMED,
    "app/kernel/settle_running.lua": SETTLE_RUNNING,
}


# --- the tests -------------------------------------------------------------------------------


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def _set_up(redis: Redis, cases: Cases) -> None:
    for key, value in cases.setup.items():
        if isinstance(value, dict):
            await redis.hset(key, mapping=value)
        elif isinstance(value, Stream):
            for entry_id in value.ids:
                await redis.xadd(key, {"f": "v"}, id=entry_id)
            if value.grouped:
                await redis.xgroup_create(key, "g", id="$")
        elif isinstance(value, Ranked):
            await redis.zadd(key, dict(value.scores))
        else:
            await redis.set(key, value)
    await redis.expire(next(iter(cases.setup)), 3600)  # an expiry that must stay as it is


def test_every_script_beside_the_code_has_its_cases() -> None:
    found = {p.relative_to(ROOT).as_posix() for top in CODE for p in (ROOT / top).rglob("*.lua")}
    assert found == set(SCRIPTS), "a script without bad-input cases here, or cases of none"
    for path, cases in SCRIPTS.items():
        assert cases.script.path is not None and cases.script.path.resolve() == ROOT / path
        assert cases.bad and cases.setup


@pytest.mark.parametrize("path", SCRIPTS)
async def test_the_good_call_writes(redis: Redis, path: str) -> None:
    """So each bad call below is a near miss of a call that writes."""
    cases = SCRIPTS[path]
    await _set_up(redis, cases)
    before = await keyspace(redis)

    await cases.script(redis, cases.good.keys, cases.good.args)

    assert await keyspace(redis) != before


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        pytest.param(path, kind, id=f"{path}:{kind}")
        for path in SCRIPTS
        for kind in SCRIPTS[path].bad
    ],
)
async def test_bad_input_is_refused_and_writes_nothing(redis: Redis, path: str, kind: str) -> None:
    cases = SCRIPTS[path]
    call = cases.bad[kind]
    await _set_up(redis, cases)
    before = await keyspace(redis)

    with pytest.raises(ResponseError) as refused:
        await cases.script(redis, call.keys, call.args)

    assert str(refused.value).startswith(Path(path).stem + ": "), refused.value
    assert await keyspace(redis) == before
