"""Batched consumption on a real Redis, traced: commands queued together are taken in one
batch, which is one span linked to each command's context; each command's own span continues
the trace of whoever queued it, links back to the batch, and holds its decide and commit."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from app.config import Settings
from app.domain.products import CreateProduct, RestockProduct
from app.kernel import tracing
from app.kernel.partitions import partition_of
from app.services import Services
from tests.integration.conftest import ADMIN, running_workers
from tests.support.kernel_catalog import final_status
from tests.support.spans import spans_in_memory


@pytest.fixture
def exported() -> Iterator[InMemorySpanExporter]:
    with spans_in_memory(starts_traces=True) as exporter:
        yield exporter


def _skus(partitions: int, count: int) -> list[str]:
    """Skus of one partition, so their commands share a queue (and a batch)."""
    candidates = (f"TRACED-{i}" for i in range(1000))
    return [s for s in candidates if partition_of(s, partitions) == 0][:count]


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_a_batch_of_traced_commands_is_one_span_linked_to_each_of_them(
    services: Services, settings: Settings, exported: InMemorySpanExporter
) -> None:
    skus = _skus(settings.partitions, 3)
    for sku in skus:
        await services.intake.submit(CreateProduct(sku, "Traced", 100), ADMIN)
    accepted = []
    for sku in skus:  # queued before any worker runs: the first read takes all three
        request = tracing.incoming("POST", "")
        with tracing.current_span(request):
            reply = await services.intake.submit(RestockProduct(sku, 1), ADMIN, prefer_async=True)
        tracing.end(request)
        accepted.append(reply.command_id)

    async with running_workers(settings, ["commands"]):
        for command_id in accepted:
            assert (await final_status(services, command_id)).status == "succeeded"

    spans = exported.get_finished_spans()
    sends = {s.attributes[tracing.COMMAND_ID]: s for s in spans if s.name.startswith("send ")}
    assert set(sends) == set(accepted)
    [batch] = [s for s in _named(spans, "process {p0}:commands") if s.parent is None]
    assert batch.attributes["messaging.batch.message_count"] == 3
    assert {link.context.span_id for link in batch.links} == {
        s.context.span_id for s in sends.values()
    }
    for command_id, sent in sends.items():
        [worker] = [
            s
            for s in _named(spans, "process {p0}:commands")
            if s.attributes.get("messaging.message.id") == command_id
        ]
        assert worker.parent.span_id == sent.context.span_id  # type: ignore[union-attr]
        assert worker.context.trace_id == sent.context.trace_id
        assert [link.context.span_id for link in worker.links] == [batch.context.span_id]
        children = {
            s.name for s in spans if s.parent and s.parent.span_id == worker.context.span_id
        }
        assert {"decide RestockProduct", "commit RestockProduct"} <= children
