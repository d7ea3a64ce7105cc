"""Settings from the environment, decoded once into one frozen Struct.

Every setting is a field of `Settings` with its default; its environment variable is the
field's name in capitals (`partitions` ← `PARTITIONS`). An empty variable counts as unset.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Annotated, Literal

import msgspec
import msgspec.inspect

DEV_SECRET = "dev-only-secret-do-not-use-in-production"
PRODUCTION_COMMAND_RATE = 600
"""Commands per client per minute in production when COMMAND_RATE_PER_MINUTE is unset."""
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")

Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Fraction = Annotated[float, msgspec.Meta(ge=0, le=1)]


class ConfigError(RuntimeError):
    """The environment cannot run the app (e.g. production without a secret)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, rename="upper"):
    app_env: str = "development"
    redis_url: str = "redis://127.0.0.1:6390/0"
    read_redis_url: str = ""
    secret_key: str = DEV_SECRET
    partitions: Annotated[int, msgspec.Meta(ge=1, le=64)] = 4
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    public_origin: str = ""
    status_ttl_seconds: Positive = 7 * 24 * 3600
    integration_retention_seconds: NonNegative = 24 * 3600
    """How long the integration streams keep an event once the notifier acknowledged it (for
    readers outside its group); unacknowledged events are kept however old."""
    session_ttl_seconds: Positive = 12 * 3600
    cart_ttl_seconds: Positive = 7 * 24 * 3600
    """A shopper's cart is kept this long after its last addition."""
    low_stock_threshold: NonNegative = 5
    payment_latency_ms: NonNegative = 150
    payment_failure_rate: Fraction = 0.05
    payment_timeout_ms: Positive = 2000
    payment_retries: NonNegative = 3
    ws_stall_seconds: Annotated[float, msgspec.Meta(gt=0)] = 5.0
    """A socket whose send does not complete in this time stopped reading: closed with 1013."""
    ws_max_pending: Positive = 4096
    """Distinct views one socket may have waiting to be sent; past it, 1013 (re-fetch)."""
    ws_max_per_client: Positive = 20
    """Open sockets per user (or per address when anonymous) in one web process; past it, 1008."""
    consistency_wait_seconds: Annotated[float, msgspec.Meta(ge=0)] = 5.0
    log_level: str = "INFO"
    lease_ms: Positive = 10_000
    """How long a consumer's partition lease lasts without renewal (takeover time)."""
    stall_seconds: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    """A consumer partition with work and no progress for this long is reported stalled."""
    give_up_seconds: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    """... and after this long its owner gives the partition's lease up."""
    redis_cluster: bool = False
    """REDIS_URL names a node of a Redis Cluster (as does a `redis+cluster://` URL). The
    read models may be on one too: READ_REDIS_URL `redis+cluster://...`, or unset."""
    redis_wait_replicas: Annotated[int, msgspec.Meta(ge=0, le=16)] = 0
    """Replicas every acknowledgement waits for (one WAIT per batch and node written to):
    an accepted command, a commit, a step of a process, an applied batch. 0: none."""
    redis_wait_timeout_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 1000
    """How long such a WAIT may take; fewer replicas by then is `503 replication_timeout`
    (a worker reads its entries again instead of acknowledging them)."""
    read_redis_wait_replicas: Annotated[int, msgspec.Meta(ge=0, le=16)] | None = None
    """The same for the read models' server (READ_REDIS_URL); unset: REDIS_WAIT_REPLICAS."""
    sweep_after_seconds: Annotated[float, msgspec.Meta(gt=0, le=24 * 3600)] = 30.0
    """A long-running command (PlaceOrder) with no change for this long is looked at by its
    process from its aggregates' state: driven on if stuck, its effects checked if it ended."""
    backlog_limit: NonNegative = 0
    """Queued commands past which new PlaceOrders are refused with 503 overloaded (0: off)."""
    metrics_token: str = ""
    """The bearer token /metrics asks for; without one, /metrics is open in development and
    absent (404) in production."""
    command_rate_per_minute: NonNegative | None = None
    """POST /api/commands per client (user, or address when anonymous) per minute; 0 is no
    limit. Unset: no limit in development, PRODUCTION_COMMAND_RATE in production."""
    audit_seconds: Annotated[float, msgspec.Meta(ge=0)] = 10.0
    """Between two rounds of the projector's audit of its read models (0: no audit)."""
    audit_sample: Positive = 20
    """Aggregates an audit round re-derives from their events and compares."""
    audit_entries_per_second: Positive = 20_000
    """How fast an audit round may read a stream (it reads one partition's, up to the
    read model's checkpoint)."""
    heartbeat_seconds: Annotated[float, msgspec.Meta(gt=0)] = 2.0
    """Between two heartbeats of a process; one missing for three of these is dead (its
    partitions are shared out among the others then)."""
    payment_gate: bool = False
    """Charges wait until the gateway's gate key says `open` (tests hold orders mid-charge
    with it, instead of relying on a latency window)."""
    metrics_port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 0
    """A worker's /metrics port (0: none). The web process serves /metrics on its own port."""
    metrics_host: str = "127.0.0.1"
    """Where a worker's /metrics listens: loopback unless a scraper elsewhere needs it."""
    trace_store_traces: NonNegative = 500
    """Recent command traces kept in Redis for the command pages' waterfall (0: none)."""
    trace_store_ttl_seconds: Positive = 3600
    trace_ui_url: str = ""
    """A trace in the external trace UI, `{trace_id}` replaced: e.g.
    http://localhost:16686/trace/{trace_id} (Jaeger). Unset: no link."""
    log_format: Literal["text", "json"] = "text"
    archive_url: str = "var/archive"
    """Where acknowledged events are archived as Parquet segments: a directory (a plain path
    or `file://`), or `s3://bucket/prefix` (endpoint, region and credentials from the AWS
    variables, `AWS_ENDPOINT_URL` for an S3-compatible server)."""
    event_retention_seconds: Annotated[int, msgspec.Meta(ge=0, le=10 * 366 * 24 * 3600)] = 24 * 3600
    """How long an archived event stays in its Redis stream too (0: streams are never trimmed)."""
    archive_segment_events: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 50_000
    """A segment is written once this many acknowledged entries wait..."""
    archive_segment_seconds: Annotated[float, msgspec.Meta(gt=0, le=24 * 3600)] = 600.0
    """... or once the oldest of them is this old, whichever comes first."""

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def read_url(self) -> str:
        return self.read_redis_url or self.redis_url

    @property
    def cluster(self) -> bool:
        return self.redis_cluster or _names_cluster(self.redis_url)

    @property
    def read_cluster(self) -> bool:
        """The read models are on a Redis Cluster: READ_REDIS_URL names one, or is unset
        (then they share the write side's Redis, a Cluster or not)."""
        return _names_cluster(self.read_redis_url) if self.read_redis_url else self.cluster

    @property
    def read_wait_replicas(self) -> int:
        if self.read_redis_wait_replicas is not None:
            return self.read_redis_wait_replicas
        return self.redis_wait_replicas

    @property
    def command_budget(self) -> int:
        """Commands per client per minute (0: no limit)."""
        if self.command_rate_per_minute is not None:
            return self.command_rate_per_minute
        return PRODUCTION_COMMAND_RATE if self.production else 0


def _names_cluster(url: str) -> bool:
    return url.split("://")[0].endswith("+cluster")


def _whole(info: msgspec.inspect.Type) -> bool:
    if isinstance(info, msgspec.inspect.UnionType):
        return any(_whole(member) for member in info.types)
    return isinstance(info, msgspec.inspect.IntType)


_WHOLE = {
    f.encode_name: _whole(msgspec.inspect.type_info(f.type))
    for f in msgspec.structs.fields(Settings)
}


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    given: dict[str, str] = {}
    for name, whole in _WHOLE.items():
        raw = env.get(name, "").strip()
        if not raw:
            continue
        if whole and not _WHOLE_NUMBER.fullmatch(raw):
            raise ConfigError(f"{name} must be a whole number, got {raw!r}")
        given[name] = raw
    try:
        settings = msgspec.convert(given, Settings, strict=False)
    except msgspec.ValidationError as exc:
        name = str(exc).rpartition("$.")[2].rstrip("`")
        raise ConfigError(f"{name}: {exc}".replace(f" - at `$.{name}`", "")) from None
    if settings.production and (settings.secret_key == DEV_SECRET or len(settings.secret_key) < 32):
        raise ConfigError(
            "APP_ENV=production needs SECRET_KEY set to a random string of 32+ characters"
        )
    return msgspec.structs.replace(settings, public_origin=settings.public_origin.rstrip("/"))
