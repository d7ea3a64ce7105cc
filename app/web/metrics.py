"""Prometheus metrics of the web process: HTTP, commands run here, sockets and pushes, the
process's pipeline metrics (app/observability/metrics.py), and gauges of the whole pipeline
read from Redis at scrape time (lag per consumer and partition, dead letters, workers)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Receive, Scope, Send

from app.kernel.messages import Outcome
from app.observability.metrics import PipelineMetrics
from app.queries.admin_status import AdminStatus
from app.web.middleware import ResponseStatus

PREFIX = "storefront"


class _Snapshot(Collector):
    """Families computed from the last AdminStatus, gathered at scrape time."""

    def __init__(self) -> None:
        self.status: AdminStatus | None = None

    def collect(self) -> Iterable[Metric]:
        status = self.status
        if status is None:
            return []
        finished = CounterMetricFamily(
            f"{PREFIX}_commands_finished",
            "Finished commands, all processes, by type and outcome kind (succeeded, rejected, "
            "failed)",
            labels=["type", "outcome"],
        )
        for command_type, counts in status.commands.by_type.items():
            for outcome, count in counts.items():
                finished.add_metric([command_type, outcome], count)
        rate = GaugeMetricFamily(
            f"{PREFIX}_command_success_ratio",
            "Succeeded / (succeeded + failed) commands; rejections apart",
        )
        rate.add_metric([], status.commands.success_rate or 0.0)
        latency = GaugeMetricFamily(
            f"{PREFIX}_command_latency_ms",
            "Accepted→finished latency of recent commands",
            labels=["quantile"],
        )
        for quantile, value in (
            ("0.5", status.commands.latency_ms.p50),
            ("0.95", status.commands.latency_ms.p95),
            ("0.99", status.commands.latency_ms.p99),
        ):
            latency.add_metric([quantile], value)
        lag = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag_events", "Entries not yet applied", labels=["consumer", "kind"]
        )
        lag_s = GaugeMetricFamily(
            f"{PREFIX}_consumer_lag_seconds",
            "Age of the oldest unapplied entry",
            labels=["consumer", "kind"],
        )
        dead = GaugeMetricFamily(
            f"{PREFIX}_dead_letters", "Entries given up on", labels=["consumer", "kind"]
        )
        healthy = GaugeMetricFamily(
            f"{PREFIX}_consumer_healthy", "1 if status is ok", labels=["consumer", "kind"]
        )
        paused = GaugeMetricFamily(
            f"{PREFIX}_consumer_paused",
            "1 while an operator has paused the consumer (it reads nothing), else 0",
            labels=["consumer", "kind"],
        )
        by_partition = GaugeMetricFamily(
            f"{PREFIX}_projection_lag_events",
            "Entries a consumer (projection, process, command queue) has not applied, "
            "per partition",
            labels=["projection", "partition"],
        )
        by_partition_s = GaugeMetricFamily(
            f"{PREFIX}_projection_lag_seconds",
            "Age of the newest entry a consumer has not applied, per partition",
            labels=["projection", "partition"],
        )
        for c in status.projections:
            lag.add_metric([c.name, c.kind], c.lag_events)
            lag_s.add_metric([c.name, c.kind], c.lag_seconds)
            dead.add_metric([c.name, c.kind], c.dead_letters)
            healthy.add_metric([c.name, c.kind], 1.0 if c.status == "ok" else 0.0)
            paused.add_metric([c.name, c.kind], 1.0 if c.paused else 0.0)
            for p in c.partitions:
                by_partition.add_metric([c.name, str(p.partition)], p.lag_events)
                by_partition_s.add_metric([c.name, str(p.partition)], p.lag_seconds)
        workers = GaugeMetricFamily(f"{PREFIX}_workers", "Live processes by kind", labels=["kind"])
        kinds: dict[str, int] = {}
        for w in status.workers:
            kinds[w.kind] = kinds.get(w.kind, 0) + 1
        for kind, count in kinds.items():
            workers.add_metric([kind], count)
        sockets = GaugeMetricFamily(f"{PREFIX}_ws_connections_all", "WebSockets, all web processes")
        sockets.add_metric([], status.websocket_connections)
        wrong = GaugeMetricFamily(
            f"{PREFIX}_audit_mismatches",
            "Read-model keys the audit found differing from their events",
            labels=["projection"],
        )
        audited = CounterMetricFamily(
            f"{PREFIX}_audit_checked_aggregates",
            "Aggregates the audit re-derived from their events and compared",
            labels=["projection"],
        )
        for report in status.audits:
            wrong.add_metric([report.projection], len(report.mismatches))
            audited.add_metric([report.projection], report.checked)
        waiting = GaugeMetricFamily(
            f"{PREFIX}_dead_letters_waiting", "Dead letters now waiting", labels=["consumer"]
        )
        for letters in status.dead_letter_counts:
            waiting.add_metric([letters.consumer], letters.total)
        return [
            finished, rate, latency, lag, lag_s, by_partition, by_partition_s, dead, healthy,
            paused, workers, sockets, wrong, audited, waiting,
        ]  # fmt: skip


class WebMetrics:
    def __init__(self, pipeline: PipelineMetrics | None = None) -> None:
        self.pipeline = pipeline or PipelineMetrics()
        self.registry = CollectorRegistry()
        self.requests = Counter(
            f"{PREFIX}_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_http_request_duration_seconds",
            "HTTP request duration",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.commands = Counter(
            f"{PREFIX}_commands_executed",
            "Commands run to completion in this process",
            ["type", "status"],
            registry=self.registry,
        )
        self.ws_connections = Gauge(
            f"{PREFIX}_ws_connections",
            "Open WebSockets in this process",
            ["endpoint"],
            registry=self.registry,
        )
        for endpoint in ("html", "json"):
            self.ws_connections.labels(endpoint)
        self.push_latency = Histogram(
            f"{PREFIX}_push_latency_seconds",
            "From the commit a pushed item reflects (Redis's clock) to its publication to the "
            "sockets watching it",
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.ws_dropped = Counter(
            f"{PREFIX}_ws_slow_disconnects",
            "Sockets closed for not reading: stalled send, or too many views waiting",
            ["reason"],
            registry=self.registry,
        )
        self.ws_refused = Counter(
            f"{PREFIX}_ws_refused",
            "Sockets closed on opening, e.g. over the per-client cap",
            ["reason"],
            registry=self.registry,
        )
        self.pushes = Counter(
            f"{PREFIX}_ws_messages",
            "Messages published, by topic",
            ["topic"],
            registry=self.registry,
        )
        self._snapshot = _Snapshot()
        self.registry.register(self._snapshot)

    def observe_command(self, command_type: str, outcome: Outcome, seconds: float) -> None:
        self.commands.labels(command_type, outcome.status).inc()

    def render(self, status: AdminStatus | None) -> bytes:
        self._snapshot.status = status
        return generate_latest(self.registry) + generate_latest(self.pipeline.registry)


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: WebMetrics, skip: Sequence[str] = ("/static",)):
        self.app = app
        self.metrics = metrics
        self.skip = tuple(skip)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.skip):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "other")
            self.metrics.requests.labels(scope["method"], name, str(status.code)).inc()
            self.metrics.duration.labels(name).observe(time.perf_counter() - started)
