"""What the storefront's projections are built from (see each read model's `Feed`)."""

from __future__ import annotations

from dataclasses import dataclass

from app.config import Settings
from app.observability.metrics import PipelineMetrics


@dataclass(frozen=True)
class ProjectorSetup:
    settings: Settings
    metrics: PipelineMetrics | None = None
    """The worker's metrics, when it has them (the command log counts finished commands)."""
