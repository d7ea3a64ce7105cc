"""The projector's background audit, as an operator sees it: a read-model key corrupted by
hand shows on the status page (and its JSON) and in /metrics, with the key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from app.kernel.partitions import partition_of
from app.projections import keys as rm
from tests.support.api_client import Storefront, create_product, running_storefront
from tests.support.polling import eventually


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("audit"),
        workers=["projector"],
        AUDIT_SECONDS="0.2",
        AUDIT_SAMPLE="100",
    ) as made:
        yield made


async def _status(admin: httpx.AsyncClient) -> dict[str, Any]:
    response = await admin.get("/api/admin/status")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _mismatched(status: dict[str, Any]) -> set[str]:
    return {m["key"] for a in status["audits"] for m in a["mismatches"]}


async def test_a_corrupted_catalog_key_shows_on_the_status_page_and_in_metrics(
    storefront: Storefront, admin: httpx.AsyncClient
) -> None:
    sku, _ = await create_product(admin, stock=4)
    broken = rm.product(partition_of(sku, 4), sku)  # the storefront has 4 partitions
    await eventually(
        lambda: _status(admin),
        until=lambda s: any(a["projection"] == "catalog" and a["checked"] for a in s["audits"]),
        timeout=30,
        message="the audit has checked the catalog",
    )
    store = redis.Redis.from_url(storefront.redis.url, decode_responses=True)
    try:
        store.hset(broken, "available", 999)
        status = await eventually(
            lambda: _status(admin),
            until=lambda s: broken in _mismatched(s),
            timeout=30,
            message="the mismatch reported",
        )
        (mismatch,) = [m for a in status["audits"] for m in a["mismatches"] if m["key"] == broken]
        assert mismatch["aggregate"] == f"product:{sku}"
        assert mismatch["detail"] == "available: read model '999', events say '4'"

        page = await admin.get("/admin/status")
        assert f'data-audit-mismatch="{broken}"' in page.text
        metrics = await admin.get("/metrics")
        families = {f.name: f for f in text_string_to_metric_families(metrics.text)}
        wrong = {
            s.labels["projection"]: s.value for s in families["storefront_audit_mismatches"].samples
        }
        assert wrong["catalog"] >= 1, wrong

        store.hset(broken, "available", 4)  # mended: a later round clears it
        await eventually(
            lambda: _status(admin),
            until=lambda s: broken not in _mismatched(s),
            timeout=30,
            message="the mismatch cleared",
        )
    finally:
        store.close()
