"""A full card number is never stored, logged, streamed or served — only its last four digits.

The real stack runs as processes (web + every worker, LOG_LEVEL=DEBUG, access log on, JSON
log lines, every span exported to an OTLP receiver and kept in the span store), orders go in
over HTTP (JSON API, Idempotency-Key replay, the HTML checkout form, a refused request), then
every Redis key of every type, every process log and every span received is searched for every
number used.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.adapters.embedded_redis import free_port
from app.kernel.command_status import FINAL
from app.services import build_services
from tests.integration.conftest import make_settings
from tests.support.orders_helpers import (
    APPROVED_CARD,
    DECLINED_CARD,
    luhn_complete,
    pipeline_groups,
    scan_values,
    wait_idle,
)
from tests.support.otlp_receiver import OtlpReceiver, otlp_receiver_thread
from tests.support.polling import eventually
from tests.support.processes import ProcessGroup
from tests.support.stores import store_env

WORKERS = ("commands", "projector", "process", "notifier", "archiver")
OTHER_CARDS = {
    "visa13": "4222222222222",
    "amex15": "378282246310005",
    "mastercard": "5555555555554444",
    "discover": "6011111111111117",
    "nineteen": luhn_complete("621234567890123456"),
    "refused": luhn_complete("356600202036050"),
}
ALL_CARDS = (APPROVED_CARD, DECLINED_CARD, *OTHER_CARDS.values())
STICKER = [{"sku": "STICKER-1", "quantity": 1}]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver_thread() as made:
        yield made


@pytest.fixture
def stack(
    log_dir: Path, redis_url: str, receiver: OtlpReceiver
) -> Iterator[tuple[str, ProcessGroup]]:
    port = free_port()
    group = ProcessGroup(
        log_dir,
        {
            **store_env(redis_url),
            "PORT": str(port),
            "APP_ENV": "development",
            "PARTITIONS": "4",
            "PAYMENT_LATENCY_MS": "0",
            "PAYMENT_FAILURE_RATE": "0.3",  # retries and lost answers: more paths that log
            "PAYMENT_TIMEOUT_MS": "200",
            "LOG_LEVEL": "DEBUG",
            "ACCESS_LOG": "1",
            "LOG_FORMAT": "json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    try:
        group.start("web", "app.web.serve")
        for kind in WORKERS:
            group.start(kind, f"workers.{kind}")
        yield f"http://127.0.0.1:{port}", group
    finally:
        group.stop_all()


@pytest.fixture
async def alice(stack: tuple[str, ProcessGroup]) -> AsyncIterator[httpx.AsyncClient]:
    base_url, _group = stack
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:

        async def ready() -> bool:
            try:
                ready = (await client.get("/readyz")).status_code == 200
                seeded = (await client.get("/api/products/STICKER-1")).status_code == 200
            except httpx.TransportError:
                return False
            return ready and seeded

        await eventually(ready, timeout=60, interval=0.2, message="stack ready and seeded")
        login = await client.post(
            "/api/session", json={"username": "alice", "password": "alice-pass"}
        )
        assert login.status_code == 200, login.text
        client.headers["X-CSRF-Token"] = login.json()["csrf_token"]
        yield client


async def api_order(client: httpx.AsyncClient, card: str, **extra: Any) -> httpx.Response:
    document = {"type": "PlaceOrder", "lines": extra.pop("lines", STICKER), "card_number": card}
    return await client.post("/api/commands", json=document, **extra)


async def final_status(client: httpx.AsyncClient, command_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        reply = await client.get(f"/api/commands/{command_id}")
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    return await eventually(
        probe,
        until=lambda body: body["status"] in FINAL,
        timeout=60,
        interval=0.1,
        message=f"{command_id} final",
    )


def leaks(text: str) -> list[str]:
    return [card for card in ALL_CARDS if card in text]


async def test_no_full_card_number_is_stored_logged_or_served(
    alice: httpx.AsyncClient,
    stack: tuple[str, ProcessGroup],
    redis_url: str,
    receiver: OtlpReceiver,
) -> None:
    """Orders paid with seven Luhn-valid numbers (13-19 digits, the approved and declined test
    cards among them): afterwards no Redis key, no stream entry, no log line, no API or page
    response holds any of them; the orders show their last four digits."""
    base_url, group = stack
    accepted: dict[str, str] = {}
    for card in (APPROVED_CARD, DECLINED_CARD, OTHER_CARDS["visa13"], OTHER_CARDS["nineteen"]):
        reply = await api_order(alice, card)
        assert reply.status_code == 202, reply.text
        accepted[reply.json()["command_id"]] = card
    unknown = await api_order(
        alice, OTHER_CARDS["amex15"], lines=[{"sku": "NO-SUCH-SKU", "quantity": 1}]
    )
    assert unknown.status_code == 202, unknown.text
    accepted[unknown.json()["command_id"]] = OTHER_CARDS["amex15"]
    keyed = [  # the replay answers the first response and places nothing new
        await api_order(alice, OTHER_CARDS["mastercard"], headers={"Idempotency-Key": "privacy-1"})
        for _attempt in range(2)
    ]
    assert [r.status_code for r in keyed] == [202, 202], keyed[0].text
    assert keyed[0].json()["command_id"] == keyed[1].json()["command_id"]
    accepted[keyed[0].json()["command_id"]] = OTHER_CARDS["mastercard"]
    refused = await api_order(
        alice, OTHER_CARDS["refused"], lines=[{"sku": "STICKER-1", "quantity": 0}]
    )
    assert refused.status_code == 422, refused.text
    form = await alice.post(
        "/ui/orders",
        data={"qty-STICKER-1": "2", "card_number": OTHER_CARDS["discover"]},
        headers={"Origin": base_url},
    )
    assert form.status_code == 202, form.text
    found = re.search(r'data-command-id="([^"]+)"', form.text)
    assert found is not None, form.text
    accepted[found.group(1)] = OTHER_CARDS["discover"]

    served: list[str] = [refused.text, form.text]
    outcomes = {}
    for command_id in accepted:
        body = await final_status(alice, command_id)
        outcomes[command_id] = body["status"], (body["error"] or {}).get("code")
        served.append((await alice.get(f"/api/commands/{command_id}")).text)
    assert outcomes[unknown.json()["command_id"]] == ("failed", "unknown_product")

    settings = make_settings(redis_url)
    services = build_services(settings)
    try:
        await wait_idle(services, pipeline_groups(settings), within=60)
        stored = await scan_values(services.write)
        if services.read is not services.write:  # read models (and the span store)
            stored.update(await scan_values(services.read))
    finally:
        await services.close()

    listed = await alice.get("/api/orders")
    assert listed.status_code == 200
    served.append(listed.text)
    orders = listed.json()
    placed = [card for cid, card in accepted.items() if cid != unknown.json()["command_id"]]
    assert sorted(o["card_last4"] for o in orders) == sorted(card[-4:] for card in placed)
    for order in orders:
        served.append((await alice.get(f"/api/orders/{order['order_id']}")).text)
        served.append((await alice.get(f"/orders/{order['order_id']}")).text)
    for command_id in accepted:
        served.append((await alice.get(f"/commands/{command_id}")).text)
    assert [text for text in served if leaks(text)] == []

    everything = "\n".join(v for values in stored.values() for v in values)
    assert "tok_" in everything and any(k.endswith(":events") for k in stored), "scan saw data"
    leaked = {key: leaks("\n".join(values)) for key, values in stored.items()}
    assert {key: cards for key, cards in leaked.items() if cards} == {}

    group.stop_all()  # SIGTERM: every process flushes its spans and closes its log
    assert receiver.spans, "spans were exported"
    assert leaks(repr(receiver.spans)) == []
    assert any(k.startswith("traces:") for k in stored), "the span store was scanned"
    logs = {proc.log.name: proc.output() for proc in group.procs}
    assert all(logs.values()), "every process wrote its log"
    assert "POST /api/commands" in logs["web-0.log"], "the access log was on"
    logged = {name: leaks(text) for name, text in logs.items()}
    assert {name: cards for name, cards in logged.items() if cards} == {}
