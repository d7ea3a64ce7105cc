"""The status page's rebuild buttons: each posts an admin command (RebuildProjection,
SwapRebuild, AbandonRebuild) that the command worker runs; the page shows the rebuild's
progress and diff, and the command's status its outcome."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.api_client import Storefront, create_product, running_storefront
from tests.support.polling import eventually

HTMX = {"HX-Request": "true"}


@pytest.fixture(scope="module")
def storefront(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("rebuild-console"),
        workers=["commands", "projector"],
        LEASE_MS="2000",
    ) as made:
        yield made


async def press(admin: httpx.AsyncClient, action: str, projection: str, key: str) -> str:
    """Post a rebuild button's form; the command id of the status fragment it answers with."""
    reply = await admin.post(
        f"/ui/operator/{action}",
        data={"projection": projection, "idempotency_key": key},
        headers=HTMX,
    )
    assert reply.status_code == 202, reply.text
    found = re.search(r'data-command-id="([^"]+)"', reply.text)
    assert found is not None, reply.text
    return found.group(1)


async def outcome(admin: httpx.AsyncClient, command_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        body: dict[str, Any] = (await admin.get(f"/api/commands/{command_id}")).json()
        return body

    return await eventually(
        probe, until=lambda s: s["status"] in ("succeeded", "failed"), timeout=60
    )


async def rebuilds(admin: httpx.AsyncClient) -> dict[str, Any]:
    status: dict[str, Any] = (await admin.get("/api/admin/status")).json()
    found: dict[str, Any] = status["rebuilds"]
    return found


async def test_rebuild_swap_and_abandon_from_the_status_page(
    storefront: Storefront, admin: httpx.AsyncClient
) -> None:
    for _ in range(5):
        sku, created = await create_product(admin, stock=3)
    shown = await admin.get(f"/api/products/{sku}", params={"min_position": created["position"]})
    assert shown.headers.get("X-Consistency") != "stale"  # projected: a rebuild has work
    page = await admin.get("/admin/status")
    assert 'data-rebuild="catalog" data-phase="none"' in page.text
    assert 'data-rebuild="notifications"' not in page.text  # its inbox is not rebuilt

    built = await press(admin, "RebuildProjection", "catalog", "rebuild-1")
    assert (await outcome(admin, built))["status"] == "succeeded"
    state = (await rebuilds(admin))["catalog"]
    assert state["phase"] == "ready" and state["done"] > 0 and state["by"] == "admin"
    assert state["diff"]["differing"] == state["diff"]["only_live"] == 0
    page = await admin.get("/admin/status")
    assert 'data-rebuild="catalog" data-phase="ready"' in page.text
    assert 'data-diff="same"' in page.text and 'data-action="SwapRebuild"' in page.text
    again = await press(admin, "RebuildProjection", "catalog", "rebuild-1")
    assert again == built  # the same form pressed twice: one command

    swapped = await press(admin, "SwapRebuild", "catalog", "swap-1")
    assert (await outcome(admin, swapped))["status"] == "succeeded"
    assert (await rebuilds(admin))["catalog"]["phase"] == "swapped"
    nothing = await press(admin, "SwapRebuild", "catalog", "swap-2")
    failed = await outcome(admin, nothing)
    assert failed["status"] == "failed" and failed["error"]["code"] == "rebuild_failed"

    built = await press(admin, "RebuildProjection", "orders", "rebuild-2")
    assert (await outcome(admin, built))["status"] == "succeeded"
    dropped = await press(admin, "AbandonRebuild", "orders", "abandon-1")
    assert (await outcome(admin, dropped))["status"] == "succeeded"
    assert (await rebuilds(admin))["orders"]["phase"] == "abandoned"

    refused = await press(admin, "RebuildProjection", "notifications", "rebuild-3")
    assert (await outcome(admin, refused))["error"]["code"] == "unknown_projection"


async def test_the_buttons_are_for_admins(storefront: Storefront, alice: httpx.AsyncClient) -> None:
    reply = await alice.post(
        "/ui/operator/RebuildProjection", data={"projection": "catalog"}, headers=HTMX
    )
    assert reply.status_code == 403
