"""API.md "Push": /api/ws JSON messages by topic and who may see them; /ws handshake and HTML."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from app.kernel.positions import parse
from tests.support.api_client import (
    Storefront,
    create_product,
    find_order,
    place_order,
    receive_json,
    receive_until,
    running_storefront,
    send,
    unique_sku,
)
from tests.support.redis_cluster import RedisCluster

FOREIGN = "https://evil.example"
COMMAND_FIELDS = {"type", "command_id", "status", "step", "progress", "error", "position"}
VIEW_FIELDS = {"type", "view", "key", "position", "data"}
AVAILABLE_5 = re.compile(r'data-field="available"[^>]*>\s*5\s*<')


@pytest.fixture(scope="module")
def storefront(
    tmp_path_factory: pytest.TempPathFactory, stack_cluster: RedisCluster | None
) -> Iterator[Storefront]:
    with running_storefront(
        tmp_path_factory.mktemp("ws"),
        workers=("commands", "projector", "process"),
        cluster=stack_cluster,
    ) as made:
        yield made


async def subscribe(
    ws: ClientConnection, topics: list[str], seen: list[Any] | None = None
) -> list[Any]:
    """Ask for `topics`; return what came until the server confirmed the subscription."""
    seen = [] if seen is None else seen
    await ws.send(json.dumps({"subscribe": topics}))
    await receive_until(ws, lambda m: m.get("type") == "subscribed", seen=seen)
    return seen


def forbidden_topics(messages: list[Any]) -> set[str]:
    return {
        m["topic"] for m in messages if m.get("type") == "error" and m.get("code") == "forbidden"
    }


# --- who may watch what -----------------------------------------------------------------------


async def test_anonymous_clients_may_watch_the_catalog_only(storefront: Storefront) -> None:
    """Anonymous: catalog granted; orders, commands and admin each get a forbidden error."""
    async with storefront.ws() as ws:
        seen = await subscribe(ws, ["catalog", "orders", "commands", "admin"])
    assert forbidden_topics(seen) == {"orders", "commands", "admin"}
    assert seen[-1] == {"type": "subscribed", "topics": ["catalog"]}


async def test_customers_may_not_watch_the_admin_topic(storefront: Storefront) -> None:
    """A customer: catalog, orders and commands granted; admin forbidden."""
    async with storefront.ws(who="alice") as ws:
        seen = await subscribe(ws, ["catalog", "orders", "commands", "admin"])
    assert forbidden_topics(seen) == {"admin"}
    assert seen[-1]["topics"] == ["catalog", "orders", "commands"]


async def test_a_restock_is_pushed_to_catalog_watchers(storefront: Storefront) -> None:
    """After subscribing to catalog, an admin's restock arrives as a catalog view of the sku."""
    async with storefront.client("admin") as admin:
        sku, _ = await create_product(admin, stock=4)
        async with storefront.ws() as ws:
            await subscribe(ws, ["catalog"])
            restock = await send(admin, {"type": "RestockProduct", "sku": sku, "quantity": 6})
            assert restock.status_code == 200, restock.text
            view = await receive_until(
                ws,
                lambda m: (
                    m.get("type") == "view" and m.get("key") == sku and m["data"]["available"] == 10
                ),
            )
    assert set(view) == VIEW_FIELDS
    assert view["view"] == "catalog"
    assert parse(view["position"])
    assert view["data"] == {
        "sku": sku,
        "name": f"Product {sku}",
        "price_cents": 1000,
        "available": 10,
        "sold": 0,
        "status": "active",
    }


async def test_command_and_order_messages_reach_their_owner_and_admins_only(
    storefront: Storefront,
) -> None:
    """Alice gets her command and order messages; Bob never sees hers; an admin sees all orders."""
    async with (
        storefront.client("admin") as admin,
        storefront.client("alice") as alice,
        storefront.client("bob") as bob,
        storefront.ws(who="alice") as alice_ws,
        storefront.ws(who="bob") as bob_ws,
        storefront.ws(who="admin") as admin_ws,
    ):
        alice_seen: list[Any] = []
        bob_seen: list[Any] = []
        admin_seen: list[Any] = []
        await subscribe(alice_ws, ["commands", "orders"], alice_seen)
        await subscribe(bob_ws, ["commands", "orders"], bob_seen)
        await subscribe(admin_ws, ["orders"], admin_seen)

        alice_sku, _ = await create_product(admin, stock=5)
        alice_command = await place_order(alice, [(alice_sku, 1)])
        final = await receive_until(
            alice_ws,
            lambda m: (
                m.get("type") == "command"
                and m["command_id"] == alice_command
                and m["status"] == "succeeded"
            ),
            seen=alice_seen,
            look_back=True,
        )
        assert set(final) == COMMAND_FIELDS
        assert final["step"] == "succeeded"
        assert final["error"] is None
        assert parse(final["position"])
        alice_order = (await find_order(alice, alice_sku, status="confirmed"))["order_id"]
        alice_view = await receive_until(
            alice_ws,
            lambda m: (
                m.get("view") == "orders"
                and m["key"] == alice_order
                and m["data"]["status"] == "confirmed"
            ),
            seen=alice_seen,
            look_back=True,
        )
        assert set(alice_view) == VIEW_FIELDS
        assert alice_view["key"] == alice_order
        assert alice_view["data"]["customer"] == "alice"
        await receive_until(
            admin_ws,
            lambda m: m.get("key") == alice_order and m["data"]["status"] == "confirmed",
            seen=admin_seen,
            look_back=True,
        )

        # Bob's own order, after Alice's: once its messages reached him, Alice's would have too.
        bob_sku, _ = await create_product(admin, stock=5)
        bob_command = await place_order(bob, [(bob_sku, 1)])
        await receive_until(
            bob_ws,
            lambda m: m.get("command_id") == bob_command and m["status"] == "succeeded",
            seen=bob_seen,
            look_back=True,
        )
        bob_order = (await find_order(bob, bob_sku, status="confirmed"))["order_id"]
        await receive_until(
            bob_ws,
            lambda m: m.get("key") == bob_order and m["data"]["status"] == "confirmed",
            seen=bob_seen,
            look_back=True,
        )
        await receive_until(
            admin_ws,
            lambda m: m.get("key") == bob_order and m["data"]["status"] == "confirmed",
            seen=admin_seen,
            look_back=True,
        )

    bob_text = json.dumps(bob_seen)
    assert alice_command not in bob_text and alice_order not in bob_text, bob_seen
    assert all(m.get("data", {}).get("customer") in (None, "bob") for m in bob_seen), bob_seen
    alice_text = json.dumps(alice_seen)
    assert bob_command not in alice_text and bob_order not in alice_text, alice_seen
    commands_alice_saw = {m["command_id"] for m in alice_seen if m.get("type") == "command"}
    assert commands_alice_saw == {alice_command}
    assert {m["data"]["customer"] for m in admin_seen if m.get("view") == "orders"} == {
        "alice",
        "bob",
    }


# --- robustness ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "this is not json",
        '{"subscribe": "catalog"}',
        '{"subscribe": ["catalog"], "extra": true}',
        "[1, 2, 3]",
    ],
)
async def test_a_malformed_message_gets_an_error_and_the_socket_stays_open(
    storefront: Storefront, text: str
) -> None:
    """Malformed input on /api/ws: an error message, and the connection keeps working."""
    async with storefront.ws() as ws:
        await ws.send(text)
        error = await receive_json(ws)
        assert error["type"] == "error"
        assert error["code"] == "malformed_json"
        seen = await subscribe(ws, ["catalog"])
    assert seen[-1] == {"type": "subscribed", "topics": ["catalog"]}


# --- handshakes -------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/ws", "/api/ws"])
async def test_a_handshake_from_a_foreign_origin_is_refused(
    storefront: Storefront, path: str
) -> None:
    """Cross-site WebSocket hijacking: a foreign Origin is refused on both sockets (403)."""
    with pytest.raises(InvalidStatus) as refused:
        async with storefront.ws(path, who="alice", origin=FOREIGN):
            pass
    assert refused.value.response.status_code == 403


async def test_the_html_socket_without_an_origin_is_refused(storefront: Storefront) -> None:
    """/ws is for the app's pages: no Origin at all is refused (403)."""
    with pytest.raises(InvalidStatus) as refused:
        async with storefront.ws("/ws", who="alice"):
            pass
    assert refused.value.response.status_code == 403


async def test_the_json_socket_accepts_the_apps_own_origin(storefront: Storefront) -> None:
    """A script on the app's own pages (same Origin) may use /api/ws."""
    async with storefront.ws(who="alice", origin=storefront.origin) as ws:
        seen = await subscribe(ws, ["catalog"])
    assert seen[-1]["topics"] == ["catalog"]


async def test_the_html_socket_pushes_fragments_with_the_html_hooks(
    storefront: Storefront,
) -> None:
    """/ws with own Origin and a session: product rows (data-sku) and command statuses."""
    sku = unique_sku()
    async with storefront.client("admin") as admin:
        await create_product(admin, sku, stock=3)
        path = "/ws?topics=catalog,commands"
        async with storefront.ws(path, who="admin", origin=storefront.origin) as ws:
            fragments: list[str] = []
            restock = await send(admin, {"type": "RestockProduct", "sku": sku, "quantity": 2})
            assert restock.status_code == 200, restock.text
            command_id = restock.json()["command_id"]
            row = await receive_until(  # the creation's row may come first: wait for 3 + 2
                ws,
                lambda text: f'data-sku="{sku}"' in text and bool(AVAILABLE_5.search(text)),
                seen=fragments,
                decode=False,
            )
            await receive_until(
                ws,
                lambda text: f'data-command-id="{command_id}"' in text,
                seen=fragments,
                decode=False,
                look_back=True,
            )
    assert f'id="product-{sku}"' in row
    status = next(text for text in fragments if f'data-command-id="{command_id}"' in text)
    assert 'data-status="succeeded"' in status
