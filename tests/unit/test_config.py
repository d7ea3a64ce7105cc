"""Settings from the environment: defaults, production safety, bad values."""

from __future__ import annotations

import pytest

from app.config import DEV_SECRET, PRODUCTION_COMMAND_RATE, ConfigError, Settings, load_settings

STRONG = "k" * 32


def test_defaults_for_development() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.app_env == "development"
    assert settings.production is False
    assert settings.secret_key == DEV_SECRET
    assert settings.partitions == 4
    assert settings.port == 8000
    assert settings.redis_url == "redis://127.0.0.1:6390/0"
    assert settings.read_url == settings.redis_url
    assert settings.consistency_wait_seconds == 5.0
    assert settings.payment_failure_rate == 0.05


def test_values_come_from_the_environment() -> None:
    settings = load_settings(
        {
            "REDIS_URL": "redis://db:6379/1",
            "READ_REDIS_URL": "redis://replica:6379/1",
            "PARTITIONS": "8",
            "PORT": "9000",
            "PUBLIC_ORIGIN": "https://shop.example/",
            "PAYMENT_FAILURE_RATE": "0.5",
            "LOW_STOCK_THRESHOLD": "",
        }
    )
    assert settings.redis_url == "redis://db:6379/1"
    assert settings.read_url == "redis://replica:6379/1"
    assert (settings.partitions, settings.port) == (8, 9000)
    assert settings.public_origin == "https://shop.example"
    assert settings.payment_failure_rate == 0.5
    assert settings.low_stock_threshold == 5


def test_an_empty_redis_url_falls_back_to_the_default() -> None:
    assert load_settings({"REDIS_URL": ""}).redis_url == "redis://127.0.0.1:6390/0"


def test_production_with_a_strong_secret_starts() -> None:
    settings = load_settings({"APP_ENV": "production", "SECRET_KEY": STRONG})
    assert settings.production is True
    assert settings.secret_key == STRONG


@pytest.mark.parametrize(
    "env",
    [
        {"APP_ENV": "production"},
        {"APP_ENV": "production", "SECRET_KEY": ""},
        {"APP_ENV": "production", "SECRET_KEY": DEV_SECRET},
        {"APP_ENV": "production", "SECRET_KEY": "k" * 31},
    ],
    ids=["missing", "empty", "dev-secret", "short"],
)
def test_production_refuses_a_missing_or_weak_secret(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        load_settings(env)


def test_development_uses_a_given_secret() -> None:
    assert load_settings({"SECRET_KEY": "short"}).secret_key == "short"


@pytest.mark.parametrize(
    "name, value",
    [
        ("PARTITIONS", "four"),
        ("PORT", "80a"),
        ("PORT", "8000.0"),
        ("STATUS_TTL_SECONDS", "1e3"),
        ("SESSION_TTL_SECONDS", "x"),
        ("PAYMENT_LATENCY_MS", "fast"),
        ("PAYMENT_TIMEOUT_MS", "2s"),
        ("PAYMENT_RETRIES", "three"),
        ("WS_MAX_PENDING", "big"),
        ("WS_STALL_SECONDS", "0"),
        ("PAYMENT_FAILURE_RATE", "often"),
        ("CONSISTENCY_WAIT_SECONDS", "5s"),
    ],
)
def test_bad_numbers_are_config_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings({name: value})


@pytest.mark.parametrize("value, expected", [("1", 1), ("64", 64), (" 16 ", 16)])
def test_partitions_within_bounds(value: str, expected: int) -> None:
    assert load_settings({"PARTITIONS": value}).partitions == expected


@pytest.mark.parametrize("value", ["0", "-1", "65", "1000"])
def test_partitions_out_of_bounds(value: str) -> None:
    with pytest.raises(ConfigError, match="PARTITIONS"):
        load_settings({"PARTITIONS": value})


def test_the_command_budget_is_off_in_development_and_on_in_production() -> None:
    assert load_settings({}).command_budget == 0
    production = load_settings({"APP_ENV": "production", "SECRET_KEY": STRONG})
    assert production.command_budget == PRODUCTION_COMMAND_RATE > 0
    off = load_settings(
        {"APP_ENV": "production", "SECRET_KEY": STRONG, "COMMAND_RATE_PER_MINUTE": "0"}
    )
    assert off.command_budget == 0
    assert load_settings({"COMMAND_RATE_PER_MINUTE": "30"}).command_budget == 30


@pytest.mark.parametrize("value", ["-1", "1.5", "²", "lots"])
def test_a_command_budget_must_be_a_whole_number(value: str) -> None:
    with pytest.raises(ConfigError, match="COMMAND_RATE_PER_MINUTE"):
        load_settings({"COMMAND_RATE_PER_MINUTE": value})


def test_the_metrics_token_comes_from_the_environment() -> None:
    assert load_settings({}).metrics_token == ""
    assert load_settings({"METRICS_TOKEN": "t0ken"}).metrics_token == "t0ken"
