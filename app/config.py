"""Settings from the environment, read once into one frozen Struct."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

DEV_SECRET = "dev-only-secret-do-not-use-in-production"


class ConfigError(RuntimeError):
    """The environment cannot run the app (e.g. production without a secret)."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    app_env: str = "development"
    redis_url: str = "redis://127.0.0.1:6390/0"
    read_redis_url: str = ""
    secret_key: str = DEV_SECRET
    partitions: int = 4
    port: int = 8000
    public_origin: str = ""
    status_ttl_seconds: int = 7 * 24 * 3600
    session_ttl_seconds: int = 12 * 3600
    low_stock_threshold: int = 5
    payment_latency_ms: int = 150
    payment_failure_rate: float = 0.05
    payment_timeout_ms: int = 2000
    payment_retries: int = 3
    ws_queue_size: int = 256
    consistency_wait_seconds: float = 5.0
    log_level: str = "INFO"

    @property
    def production(self) -> bool:
        return self.app_env == "production"

    @property
    def read_url(self) -> str:
        return self.read_redis_url or self.redis_url


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    app_env = env.get("APP_ENV", "development")
    secret = env.get("SECRET_KEY", "")
    if app_env == "production" and (not secret or secret == DEV_SECRET or len(secret) < 32):
        raise ConfigError(
            "APP_ENV=production needs SECRET_KEY set to a random string of 32+ characters"
        )
    partitions = _int(env, "PARTITIONS", 4)
    if not 1 <= partitions <= 64:
        raise ConfigError("PARTITIONS must be between 1 and 64")
    return Settings(
        app_env=app_env,
        redis_url=env.get("REDIS_URL") or "redis://127.0.0.1:6390/0",
        read_redis_url=env.get("READ_REDIS_URL", ""),
        secret_key=secret or DEV_SECRET,
        partitions=partitions,
        port=_int(env, "PORT", 8000),
        public_origin=env.get("PUBLIC_ORIGIN", "").rstrip("/"),
        status_ttl_seconds=_int(env, "STATUS_TTL_SECONDS", 7 * 24 * 3600),
        session_ttl_seconds=_int(env, "SESSION_TTL_SECONDS", 12 * 3600),
        low_stock_threshold=_int(env, "LOW_STOCK_THRESHOLD", 5),
        payment_latency_ms=_int(env, "PAYMENT_LATENCY_MS", 150),
        payment_failure_rate=_float(env, "PAYMENT_FAILURE_RATE", 0.05),
        payment_timeout_ms=_int(env, "PAYMENT_TIMEOUT_MS", 2000),
        payment_retries=_int(env, "PAYMENT_RETRIES", 3),
        ws_queue_size=_int(env, "WS_QUEUE_SIZE", 256),
        consistency_wait_seconds=_float(env, "CONSISTENCY_WAIT_SECONDS", 5.0),
        log_level=env.get("LOG_LEVEL", "INFO"),
    )
