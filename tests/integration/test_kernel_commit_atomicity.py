"""The commit is all-or-nothing: a stale, rejected or malformed commit writes nothing at all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import msgspec
import pytest
from redis.exceptions import ResponseError

import app.kernel.commit as commit_module
from app.aggregates import PRODUCT
from app.domain.products import CreateProduct, RenameProduct, RestockProduct
from app.kernel import keys
from app.kernel.bus import CommandBus
from app.kernel.clock import now
from app.kernel.commit import CommitRequest, CommitResult, CommitStore, StatusWrite
from app.kernel.decisions import event_fields
from app.kernel.messages import StoredEvent
from app.kernel.partitions import command_id_for, partition_of
from app.services import Services, build_services
from tests.integration.conftest import ADMIN
from tests.support.kernel_catalog import (
    changed_keys,
    dedup_record,
    event_counts,
    product_record,
    snapshot,
    status_of,
)

SKU = "MUG-ATOM"


async def _create(services: Services, sku: str = SKU, stock: int = 10) -> None:
    reply = await services.intake.submit(CreateProduct(sku, "Mug", 1200, stock), ADMIN)
    assert reply.status_code == 200, reply


def _event(sku: str, version: int, command_id: str) -> list[str]:
    return event_fields(
        StoredEvent(
            type="ProductRenamed",
            aggregate=PRODUCT.name,
            aggregate_id=sku,
            version=version,
            command_id=command_id,
            at=now(),
            data=msgspec.Raw(
                msgspec.json.encode({"type": "ProductRenamed", "sku": sku, "name": "Stale"})
            ),
        )
    )


async def test_a_commit_with_a_stale_expected_version_writes_nothing(services: Services) -> None:
    """CommitStore.commit with expected version 0 on a v1 aggregate: conflict, no key changes."""
    await _create(services)
    partitions = services.settings.partitions
    partition = partition_of(SKU, partitions)
    command_id = command_id_for(partition)
    before = await snapshot(services.write)
    store = CommitStore(services.write, 3600)

    result = await store.commit(
        CommitRequest(
            partition=partition,
            command_id=command_id,
            aggregate_key=keys.aggregate(partition, PRODUCT.name, SKU),
            expected_version=0,
            state_json=b'{"sku": "MUG-ATOM", "name": "Stale", "price_cents": 1, "on_hand": 0}',
            events=[_event(SKU, 1, command_id)],
            statuses=[
                StatusWrite(
                    id=command_id,
                    fields={"status": "succeeded", "position": "$position"},
                    steps=['{"name": "succeeded", "at": 1.0}'],
                    final=True,
                ),
            ],
            outcome_status="succeeded",
        )
    )

    assert result == CommitResult(None)
    after = await snapshot(services.write)
    assert changed_keys(before, after) == set()
    assert keys.command_status(partition, command_id) not in after
    assert keys.dedup(partition, command_id) not in after
    assert len(after[keys.events(partition)][1]) == len(before[keys.events(partition)][1])
    assert len(after[keys.journal(partition)][1]) == len(before[keys.journal(partition)][1])
    version, product = await product_record(services, SKU)
    assert version == 1 and product is not None and product.name == "Mug"


class _GatedCommits(CommitStore):
    """The real commit, held until `parties` callers have all decided on the same version."""

    def __init__(
        self, services: Services, barrier: asyncio.Barrier, results: list[tuple[str, CommitResult]]
    ) -> None:
        super().__init__(services.write, services.settings.status_ttl_seconds)
        self._barrier = barrier
        self._results = results
        self._first = True

    async def commit_many(
        self, requests: Sequence[CommitRequest]
    ) -> list[CommitResult | Exception]:
        if self._first:
            self._first = False
            await self._barrier.wait()
        results = await super().commit_many(requests)
        for request, result in zip(requests, results, strict=True):
            assert isinstance(result, CommitResult)
            self._results.append((request.command_id, result))
        return results


async def test_two_racing_executions_commit_once_each_and_the_stale_attempt_writes_nothing(
    services: Services,
) -> None:
    """Two web processes restock at once from the same version: one commit conflicts and
    writes nothing; the retry applies on top, so both restocks count once each."""
    await _create(services, stock=10)
    settings = services.settings
    barrier = asyncio.Barrier(2)
    results: list[tuple[str, CommitResult]] = []
    other = build_services(settings)
    try:
        buses = [
            CommandBus(
                s.write, s.bus.registry, settings.partitions, _GatedCommits(s, barrier, results)
            )
            for s in (services, other)
        ]
        envelopes = [buses[i].envelope(RestockProduct(SKU, q), ADMIN) for i, q in ((0, 3), (1, 5))]
        outcomes = await asyncio.gather(
            *(bus.execute(env, "inline") for bus, env in zip(buses, envelopes, strict=True))
        )
    finally:
        await other.close()

    assert [o.status for o in outcomes] == ["succeeded", "succeeded"]
    conflicts = [cid for cid, r in results if r.outcome is None]
    assert len(conflicts) == 1, results  # the first round: exactly one loser
    assert len(results) == 3  # the loser committed again, once
    version, product = await product_record(services, SKU)
    assert version == 3 and product is not None and product.on_hand == 18
    counts = await event_counts(services.write, settings.partitions)
    assert counts[("ProductRestocked", SKU)] == 2
    partition = partition_of(SKU, settings.partitions)
    events = [
        msgspec.json.decode(f["e"]) for _, f in await services.write.xrange(keys.events(partition))
    ]
    restocks = [e for e in events if e["type"] == "ProductRestocked"]
    assert sorted(e["command_id"] for e in restocks) == sorted(e.command_id for e in envelopes)
    assert [e["version"] for e in restocks] == [2, 3]
    journal = await services.write.xrange(keys.journal(partition))
    journaled = [msgspec.json.decode(f["e"])["command_id"] for _, f in journal]
    for envelope in envelopes:
        assert journaled.count(envelope.command_id) == 1
        status = await status_of(services, envelope.command_id)
        assert status is not None and status.status == "succeeded"
        assert [s.name for s in status.steps] == ["accepted", "succeeded"]


async def test_renaming_an_unknown_product_fails_with_no_event_and_no_state(
    services: Services,
) -> None:
    """A business rule says no: status `failed` with the problem, dedup holds the failure."""
    partitions = services.settings.partitions
    before = await snapshot(services.write)

    reply = await services.intake.submit(RenameProduct("NOPE-1", "Ghost"), ADMIN)

    assert reply.status_code == 409 and reply.status == "failed"
    assert reply.error.code == "unknown_product"
    partition = partition_of("NOPE-1", partitions)
    after = await snapshot(services.write)
    assert changed_keys(before, after) == {
        keys.command_status(partition, reply.command_id),
        keys.command_steps(partition, reply.command_id),
        keys.dedup(partition, reply.command_id),
        keys.journal(partition),
        keys.status_notices(partition),
    }
    assert await event_counts(services.write, partitions) == {}
    assert keys.aggregate(partition, PRODUCT.name, "NOPE-1") not in after
    status = await status_of(services, reply.command_id)
    assert status is not None and status.status == "failed"
    assert status.error == reply.error
    dedup = await dedup_record(services, reply.command_id)
    assert dedup["status"] == "failed" and dedup["position"] == ""
    assert msgspec.json.decode(dedup["error"])["code"] == "unknown_product"


async def test_creating_an_existing_sku_fails_and_leaves_the_product_as_it_was(
    services: Services,
) -> None:
    """CreateProduct of an existing sku: sku_exists, no event, the aggregate untouched."""
    await _create(services, stock=7)
    partitions = services.settings.partitions
    partition = partition_of(SKU, partitions)
    before = await snapshot(services.write)

    reply = await services.intake.submit(CreateProduct(SKU, "Other mug", 99, 1000), ADMIN)

    assert reply.status_code == 409 and reply.error.code == "sku_exists"
    after = await snapshot(services.write)
    assert changed_keys(before, after) == {
        keys.command_status(partition, reply.command_id),
        keys.command_steps(partition, reply.command_id),
        keys.dedup(partition, reply.command_id),
        keys.journal(partition),
        keys.status_notices(partition),
    }
    assert (await event_counts(services.write, partitions))[("ProductCreated", SKU)] == 1
    version, product = await product_record(services, SKU)
    assert version == 1 and product is not None
    assert (product.name, product.price_cents, product.on_hand) == ("Mug", 1200, 7)
    status = await status_of(services, reply.command_id)
    assert status is not None and status.status == "failed" and status.error == reply.error
    dedup = await dedup_record(services, reply.command_id)
    assert dedup["status"] == "failed"
    assert msgspec.json.decode(dedup["error"])["code"] == "sku_exists"


async def test_a_refusal_seen_on_an_outdated_state_is_decided_again(services: Services) -> None:
    """Web process A refuses to rename an unknown sku; web process B then creates it. A's
    next rename of that sku is decided on the current state and succeeds (no stale refusal)."""
    settings = services.settings
    first = await services.intake.submit(RenameProduct("LATE-1", "Renamed"), ADMIN)
    assert first.error is not None and first.error.code == "unknown_product"
    other = build_services(settings)
    try:
        created = await other.intake.submit(CreateProduct("LATE-1", "Lamp", 500), ADMIN)
        assert created.status_code == 200
    finally:
        await other.close()

    again = await services.intake.submit(RenameProduct("LATE-1", "Renamed"), ADMIN)

    assert (again.status_code, again.error) == (200, None)
    version, product = await product_record(services, "LATE-1")
    assert version == 2 and product is not None and product.name == "Renamed"


# --- malformed script input -------------------------------------------------------------------

_OK_EVENT = '[["t", "ProductRenamed", "e", "{}"]]'


def _update(command_id: str) -> str:
    update = {"id": command_id, "fields": {"status": "succeeded"}, "steps": [], "final": True}
    return json.dumps(update)


def _args(command_id: str, **overrides: str) -> list[str]:
    args = {
        "partition": "0",
        "expected": "1",
        "state": '{"sku": "MUG-ATOM"}',
        "outcome": "succeeded",
        "error": "",
        "ttl": "3600",
        "events": _OK_EVENT,
        "integration": "[]",
        "updates": f"[{_update(command_id)}]",
        "notices_max": "5000",
        "journal_max": "5000",
        "after": "",
        "writer": "",
        "command": command_id,
        "traceparent": "",
    }
    args.update(overrides)
    return list(args.values())


@pytest.mark.parametrize(
    ("overrides", "extra_updates"),
    [
        pytest.param({"events": '["{\\"type\\": '}, 0, id="events-not-json"),
        pytest.param({"events": '{"not": "an array"'}, 0, id="events-truncated-object"),
        pytest.param({"updates": "[{"}, 0, id="updates-not-json"),
        pytest.param({"integration": "[["}, 0, id="integration-not-json"),
        pytest.param({"expected": "one"}, 0, id="expected-version-not-a-number"),
        pytest.param({"events": '[["t", {"not": "a string"}]]'}, 0, id="event-not-a-string"),
        pytest.param({"events": '[["t", "x", "e"]]'}, 0, id="event-fields-not-in-pairs"),
        pytest.param({"events": '["{}"]'}, 0, id="event-not-a-field-list"),
        pytest.param({"events": '"{}"'}, 0, id="events-not-an-array"),
        pytest.param({"updates": '[{"id": "<id>", "steps": []}]'}, 0, id="update-without-fields"),
        pytest.param(
            {"updates": '[{"id": "<id>", "fields": {"status": 1}, "steps": []}]'},
            0,
            id="status-field-not-a-string",
        ),
        pytest.param(
            {"updates": '[{"id": "<id>", "fields": {}, "steps": [{"name": "x"}]}]'},
            0,
            id="step-not-a-string",
        ),
        pytest.param({"ttl": "soon"}, 0, id="ttl-not-a-number"),
        pytest.param({"notices_max": "many"}, 0, id="maxlen-not-a-number"),
        pytest.param({}, 1, id="more-status-updates-than-keys"),
    ],
)
async def test_a_commit_given_invalid_script_input_raises_and_changes_nothing(
    services: Services, overrides: dict[str, str], extra_updates: int
) -> None:
    """The commit script rejects input it cannot use before its first write."""
    await _create(services)
    partition = partition_of(SKU, services.settings.partitions)
    command_id = command_id_for(partition)
    overrides = {name: value.replace("<id>", command_id) for name, value in overrides.items()}
    if extra_updates:
        second = command_id_for(partition)
        overrides = {**overrides, "updates": f"[{_update(command_id)}, {_update(second)}]"}
    script = commit_module._SCRIPT
    script_keys = [
        keys.dedup(partition, command_id),
        keys.events(partition),
        keys.journal(partition),
        keys.integration(partition),
        keys.status_notices(partition),
        keys.aggregate(partition, PRODUCT.name, SKU),
        keys.queue_counters(partition),
        keys.command_status(partition, command_id),
        keys.command_steps(partition, command_id),
    ]
    args = _args(command_id, **overrides)
    args[0] = str(partition)
    before = await snapshot(services.write)

    with pytest.raises(ResponseError, match=r"^commit: "):
        await script(services.write, script_keys, args)

    after = await snapshot(services.write)
    assert changed_keys(before, after) == set()
