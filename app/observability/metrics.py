"""This process's pipeline metrics (Prometheus), one registry per process.

Every process has one (in its Services): the kernel reports into it through `Instruments`
(stage timings, entries applied), the command log counts finished commands as it applies the
journal, the gateway client counts its requests. A worker serves it on METRICS_PORT
(metrics_server.py); the web process serves it beside its own on /metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector

from app.kernel.outcomes import OUTCOME_KINDS

PREFIX = "storefront"
STAGES = ("queued", "decide", "commit", "end_to_end")
OUTCOMES = OUTCOME_KINDS
GATEWAY_OUTCOMES = ("approved", "declined", "refunded", "voided", "error", "timeout")
DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
REPLAYED_AFTER_SECONDS = 60.0
"""A finished command applied this long after it finished is a replay (a rebuild of the
command log), not news: it is not counted again."""


class PipelineMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(namespace=PREFIX, registry=self.registry)
        self.commands = Counter(
            f"{PREFIX}_commands",
            "Finished commands by type and outcome kind: succeeded, rejected (a business rule "
            "said no), failed (an error, a timeout); counted once each as the command log "
            "applies the journal",
            ["type", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{PREFIX}_command_duration_seconds",
            "Time commands spent per stage: queued (accepted → taken by a worker), decide, "
            "commit (its batch's), end_to_end (accepted → finished)",
            ["type", "stage"],
            registry=self.registry,
            buckets=DURATION_BUCKETS,
        )
        self.events_applied = Counter(
            f"{PREFIX}_events_applied",
            "Stream entries applied to a read model (not skipped)",
            ["projection"],
            registry=self.registry,
        )
        self.gateway_requests = Counter(
            f"{PREFIX}_gateway_requests",
            "Payment gateway requests by outcome: approved, declined, refunded, voided, "
            "error, timeout",
            ["outcome"],
            registry=self.registry,
        )
        self._stages: dict[tuple[str, str], Histogram] = {}
        self._counts: dict[tuple[str, ...], Counter] = {}

    def _count(self, metric: Counter, *labels: str) -> Counter:
        key = (metric._name, *labels)
        child = self._counts.get(key)
        if child is None:
            child = self._counts[key] = metric.labels(*labels)
        return child

    def expect_commands(self, command_types: Iterable[str]) -> None:
        """Series at 0 for each command type and outcome, so a first increase is a rate."""
        for command_type in command_types:
            for outcome in OUTCOMES:
                self._count(self.commands, command_type, outcome)

    def expect_gateway(self) -> None:
        for outcome in GATEWAY_OUTCOMES:
            self._count(self.gateway_requests, outcome)

    # --- the kernel's Instruments ------------------------------------------------------------

    def stage(self, command_type: str, stage: str, seconds: float) -> None:
        child = self._stages.get((command_type, stage))
        if child is None:
            child = self._stages[(command_type, stage)] = self.duration.labels(command_type, stage)
        child.observe(seconds)

    def applied(self, consumer: str, count: int) -> None:
        self._count(self.events_applied, consumer).inc(count)

    # --- the app's ---------------------------------------------------------------------------

    def finished(
        self, command_type: str, outcome: str, accepted_at: float, completed_at: float
    ) -> None:
        """A command finished (from the journal); replays of old entries are not counted."""
        if time.time() - completed_at > REPLAYED_AFTER_SECONDS:
            return
        self._count(self.commands, command_type, outcome).inc()
        self.stage(command_type, "end_to_end", max(0.0, completed_at - accepted_at))

    def gateway_request(self, outcome: str) -> None:
        self._count(self.gateway_requests, outcome).inc()
