"""Tracing and metrics of the real processes: one trace from the web through the streams to
the push, spans received by an OTLP/HTTP receiver that decodes what the exporter sends; every
process scraped by Debian's Prometheus, every dashboard panel's PromQL answered.

One stack for the module: Redis, the web process and every worker (each with /metrics on a
port of its own, behind a bearer token), exporting spans to an in-process receiver.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.adapters.embedded_redis import free_port
from tests.support.api_client import (
    ALL_WORKERS,
    GOOD_CARD,
    WORKER_MODULES,
    Storefront,
    running_storefront,
)
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan, otlp_receiver_thread
from tests.support.polling import eventually, eventually_sync
from tests.support.prometheus import Prometheus, Target, require_prometheus, running_prometheus

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "storefront.json"
TOKEN = "metrics-token-for-tests"
SKU = "STICKER-1"
RATE_INTERVAL = "30s"


@dataclass
class Observed:
    storefront: Storefront
    receiver: OtlpReceiver
    prometheus: Prometheus
    metrics_ports: dict[str, int]


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    require_prometheus()
    root = tmp_path_factory.mktemp("observed")
    with (
        otlp_receiver_thread() as receiver,
        running_storefront(
            root,
            PAYMENT_LATENCY_MS="5",
            LOG_LEVEL="INFO",
            LOG_FORMAT="json",
            ACCESS_LOG="1",
            METRICS_TOKEN=TOKEN,
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_BSP_SCHEDULE_DELAY="100",
        ) as storefront,
    ):
        ports = {kind: free_port() for kind in ALL_WORKERS}
        for kind in ALL_WORKERS:
            storefront.workers[kind] = storefront.group.start(
                kind, WORKER_MODULES[kind], extra_env={"METRICS_PORT": str(ports[kind])}
            )
        targets = [Target("storefront-web", f"127.0.0.1:{storefront.port}", TOKEN)] + [
            Target("storefront-workers", f"127.0.0.1:{port}", TOKEN) for port in ports.values()
        ]
        eventually_sync(
            lambda: _ready(storefront), timeout=60, message="workers ready, seed projected"
        )
        with running_prometheus(root / "prometheus", targets) as prometheus:
            eventually_sync(  # its first scrapes come a few seconds after it is ready
                lambda: prometheus.query("up == 1"),
                until=lambda up: len(up) == len(targets),
                timeout=60,
                message="every target scraped",
            )
            yield Observed(storefront, receiver, prometheus, ports)


def _ready(storefront: Storefront) -> bool:
    try:
        ready = httpx.get(f"{storefront.base_url}/readyz", timeout=5).status_code == 200
        seeded = httpx.get(f"{storefront.base_url}/api/products/{SKU}", timeout=5)
    except httpx.TransportError:
        return False
    return ready and seeded.status_code == 200


def traceparent() -> tuple[str, str]:
    trace_id = secrets.token_hex(16)
    return trace_id, f"00-{trace_id}-{secrets.token_hex(8)}-01"


async def send(
    client: httpx.AsyncClient, document: dict[str, Any], parent: str, **headers: str
) -> dict[str, Any]:
    reply = await client.post(
        "/api/commands", json=document, headers={"traceparent": parent, **headers}
    )
    assert reply.status_code in (200, 202), reply.text
    body: dict[str, Any] = reply.json()
    return body


async def finished(client: httpx.AsyncClient, command_id: str) -> dict[str, Any]:
    async def status() -> dict[str, Any]:
        body: dict[str, Any] = (await client.get(f"/api/commands/{command_id}")).json()
        return body

    return await eventually(status, until=lambda s: s["status"] in ("succeeded", "failed"))


def one(spans: list[ReceivedSpan], service: str, name: str, **attributes: Any) -> ReceivedSpan:
    found = [
        s
        for s in spans
        if s.service == f"storefront-{service}"
        and s.name.startswith(name)
        and all(s.attributes.get(k) == v for k, v in attributes.items())
    ]
    assert found, (
        f"no {service} span {name!r} {attributes} among {[(s.service, s.name) for s in spans]}"
    )
    return found[0]


async def received(
    receiver: OtlpReceiver, trace_id: str, wanted: list[tuple[str, str, dict[str, Any]]]
) -> list[ReceivedSpan]:
    """The trace's spans once it holds each (service, name prefix, attributes) wanted."""

    async def trace() -> list[ReceivedSpan]:
        return receiver.trace(trace_id)

    def complete(spans: list[ReceivedSpan]) -> bool:
        return all(
            any(
                s.service == f"storefront-{service}"
                and s.name.startswith(name)
                and all(s.attributes.get(k) == v for k, v in attributes.items())
                for s in spans
            )
            for service, name, attributes in wanted
        )

    return await eventually(trace, until=complete, timeout=30, message=f"trace {trace_id}")


async def orders(client: httpx.AsyncClient, count: int) -> None:
    for _ in range(count):
        reply = await send(
            client,
            {
                "type": "PlaceOrder",
                "lines": [{"sku": SKU, "quantity": 1}],
                "card_number": GOOD_CARD,
            },
            traceparent()[1],
        )
        await finished(client, reply["command_id"])


def ancestors(spans: list[ReceivedSpan], span: ReceivedSpan) -> list[ReceivedSpan]:
    by_id = {s.span_id: s for s in spans}
    chain = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        chain.append(span)
    return chain


async def test_a_product_command_is_one_trace_from_the_web_to_the_push(
    observed: Observed,
) -> None:
    """RestockProduct, run inline (web → projector → hub) and queued with Prefer:
    respond-async (web → command worker → projector → hub): each one trace, every hop a child
    of the one before, with the OTel HTTP and messaging attributes."""
    storefront = observed.storefront
    async with storefront.client("admin") as admin, storefront.ws("/api/ws", "admin") as socket:
        await socket.send(json.dumps({"subscribe": ["catalog"]}))
        await socket.recv()
        inline_trace, inline_parent = traceparent()
        await send(admin, {"type": "RestockProduct", "sku": SKU, "quantity": 1}, inline_parent)
        queued_trace, queued_parent = traceparent()
        reply = await send(
            admin,
            {"type": "RestockProduct", "sku": SKU, "quantity": 1},
            queued_parent,
            prefer="respond-async",
        )
        await finished(admin, reply["command_id"])
        # the socket stays open until the push is traced: a push needs a watcher
        inline = await received(
            observed.receiver,
            inline_trace,
            [
                ("web", "POST /api/commands", {"http.route": "/api/commands"}),
                ("web", "commit RestockProduct", {}),
                ("projector", "process", {"messaging.consumer.group.name": "projection.catalog"}),
                ("web", "push catalog", {}),
            ],
        )
        server = one(inline, "web", "POST /api/commands")
        assert server.kind == "server"
        assert server.attributes["http.response.status_code"] == 200
        assert server.attributes["http.request.method"] == "POST"
        projected = one(
            inline,
            "projector",
            "process",
            **{"messaging.consumer.group.name": "projection.catalog"},
        )
        assert projected.attributes["messaging.system"] == "redis"
        assert projected.attributes["messaging.operation.type"] == "process"
        assert projected.attributes["messaging.destination.name"].endswith(":events")
        push = one(inline, "web", "push catalog")
        assert [s.name for s in ancestors(inline, push)][:1] == [projected.name]
        assert server in ancestors(inline, push)

        queued = await received(
            observed.receiver,
            queued_trace,
            [
                ("web", "send", {"messaging.operation.type": "send"}),
                ("commands", "process", {"messaging.consumer.group.name": "commands"}),
                ("commands", "decide RestockProduct", {}),
                ("commands", "commit RestockProduct", {}),
                ("projector", "process", {"messaging.consumer.group.name": "projection.catalog"}),
                ("web", "push catalog", {}),
            ],
        )
        sent = one(queued, "web", "send")
        assert sent.kind == "producer"
        assert sent.attributes["messaging.destination.name"].endswith(":commands")
        worker = one(queued, "commands", "process")
        assert worker.kind == "consumer" and worker.parent_id == sent.span_id
        assert one(queued, "commands", "commit").parent_id == worker.span_id
        push = one(queued, "web", "push catalog")
        chain = [s.service for s in ancestors(queued, push)]
        assert chain == [
            "storefront-projector",
            "storefront-commands",
            "storefront-web",
            "storefront-web",
        ], chain


async def test_place_order_is_one_trace_through_the_process_manager_and_the_gateway_to_the_push(
    observed: Observed,
) -> None:
    """PlaceOrder: web → command worker → process manager (its steps and the gateway's
    charge) → projections → the push of the order's final status to its sender's socket."""
    storefront = observed.storefront
    async with storefront.client("alice") as alice, storefront.ws("/api/ws", "alice") as socket:
        await socket.send(json.dumps({"subscribe": ["commands", "orders"]}))
        await socket.recv()
        trace_id, parent = traceparent()
        reply = await send(
            alice,
            {
                "type": "PlaceOrder",
                "lines": [{"sku": SKU, "quantity": 1}],
                "card_number": GOOD_CARD,
            },
            parent,
        )
        assert (await finished(alice, reply["command_id"]))["status"] == "succeeded"
        # the socket stays open until the push is traced: a push needs a watcher
        spans = await received(
            observed.receiver,
            trace_id,
            [
                ("web", "send", {"cqrs.command.type": "PlaceOrder"}),
                ("commands", "commit PlaceOrder", {}),
                ("process", "process", {"messaging.consumer.group.name": "process.fulfilment"}),
                ("process", "fulfilment reserve", {}),
                ("process", "gateway charge", {"gateway.outcome": "approved"}),
                ("process", "commit ConfirmOrder", {}),
                ("projector", "process", {"messaging.consumer.group.name": "projection.orders"}),
                ("web", "push commands", {}),
            ],
        )
        fulfilment = one(
            spans, "process", "process", **{"messaging.consumer.group.name": "process.fulfilment"}
        )
        assert fulfilment.attributes["cqrs.event.type"] == "OrderPlaced"
        charge = one(spans, "process", "gateway charge")
        assert charge.kind == "client" and fulfilment in ancestors(spans, charge)
        services = {s.service for s in spans}
        assert {
            "storefront-web",
            "storefront-commands",
            "storefront-process",
            "storefront-projector",
        } <= services

        def final_push(found: list[ReceivedSpan]) -> bool:  # its steps' spans may come later
            return any(
                fulfilment in ancestors(found, s) for s in found if s.name == "push commands"
            )

        async def trace() -> list[ReceivedSpan]:
            return observed.receiver.trace(trace_id)

        spans = await eventually(trace, until=final_push, message="the final status's push")
        assert all(s.trace_id == trace_id for s in spans)


async def test_every_process_is_scraped_and_every_dashboard_panel_has_data(
    observed: Observed,
) -> None:
    """Prometheus scrapes the web process and each worker (with the bearer token); after some
    traffic, every panel's PromQL in deploy/grafana returns data through its HTTP API."""
    storefront = observed.storefront
    for port in observed.metrics_ports.values():
        async with httpx.AsyncClient() as client:
            refused = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert refused.status_code == 401
            allowed = await client.get(
                f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert allowed.status_code == 200 and "storefront_" in allowed.text
    async with storefront.client("alice") as alice, storefront.ws("/api/ws", "alice") as socket:
        await socket.send(json.dumps({"subscribe": ["commands", "catalog"]}))
        await socket.recv()
        await orders(alice, 1)  # a histogram's series appear with its first observation...

        async def scraped() -> list[dict[str, Any]]:
            return observed.prometheus.query(
                "storefront_push_latency_seconds_count > 0 and on() "
                'count(storefront_command_duration_seconds_count{type="PlaceOrder"}) >= 3'
            )

        await eventually(scraped, timeout=30, message="first observations scraped")
        await orders(alice, 2)  # ... and the next ones make rates of them
    prometheus = observed.prometheus
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)

            async def answer(expr: str = expr) -> list[dict[str, Any]]:
                return prometheus.query(expr)

            result = await eventually(
                answer,
                until=lambda r: any(sample["value"][1] not in ("NaN", "+Inf") for sample in r),
                timeout=30,
                interval=0.5,
                message=f"data for {panel['title']!r}: {expr}",
            )
            assert result


async def test_every_log_line_is_json_and_a_traced_request_s_line_has_its_trace(
    observed: Observed,
) -> None:
    """LOG_FORMAT=json: every line of every process is a JSON object with its level, process
    and message; the access log line of a traced request names the trace."""
    storefront = observed.storefront
    trace_id, parent = traceparent()
    async with storefront.client("admin") as admin:
        await send(admin, {"type": "RestockProduct", "sku": SKU, "quantity": 1}, parent)

    async def lines() -> list[dict[str, Any]]:
        return [
            json.loads(line)
            for proc in storefront.group.procs
            for line in proc.output().splitlines()
            if line.strip()
        ]

    logged = await eventually(
        lines,
        until=lambda found: any(line.get("trace_id") == trace_id for line in found),
        message="the traced request's access log line",
    )
    assert all({"level", "process", "message", "time"} <= set(line) for line in logged)
    assert {line["process"] for line in logged} >= {"web", *ALL_WORKERS}
    access = next(line for line in logged if line.get("trace_id") == trace_id)
    assert "POST /api/commands" in access["message"]
