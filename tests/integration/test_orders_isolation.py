"""Per-user isolation over real HTTP and WebSockets: a customer reads, cancels and hears
about only their own orders and commands; admins see everyone's."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import httpx

from app.config import Settings
from tests.integration.conftest import running_workers
from tests.support.orders_helpers import APPROVED_CARD
from tests.support.orders_web import User, push_socket, running_web, sign_in
from tests.support.polling import eventually

ORDER = {
    "type": "PlaceOrder",
    "lines": [{"sku": "STICKER-1", "quantity": 2}],
    "card_number": APPROVED_CARD,
}


async def place(user: User) -> str:
    reply = await user.http.post("/api/commands", json=ORDER)
    assert reply.status_code == 202, reply.text
    command_id: str = reply.json()["command_id"]
    return command_id


async def final(user: User, command_id: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any]:
        reply = await user.http.get(f"/api/commands/{command_id}")
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return body

    return await eventually(
        probe,
        until=lambda b: b["status"] in ("succeeded", "failed"),
        timeout=30,
        interval=0.05,
        message=f"{command_id} final",
    )


async def own_orders(user: User, position: str) -> list[dict[str, Any]]:
    """GET /api/orders reading its own write: it waits for the position of the confirmation."""
    reply = await user.http.get("/api/orders", params={"min_position": position})
    assert reply.status_code == 200, reply.text
    assert "X-Consistency" not in reply.headers, "the read caught up with the write"
    found: list[dict[str, Any]] = reply.json()
    return found


def succeeded(command_id: str, message: dict[str, Any]) -> bool:
    return (message.get("type"), message.get("command_id"), message.get("status")) == (
        "command",
        command_id,
        "succeeded",
    )


def code(reply: httpx.Response) -> tuple[int, str]:
    return reply.status_code, reply.json().get("code", "")


async def test_customers_read_and_cancel_only_their_own_orders(settings: Settings) -> None:
    """Bob gets 404 for Alice's command and order, never sees them listed or notified, and his
    CancelOrder of her order is 403; Alice and the admin see it; anonymous gets 401/404; an
    admin may not place orders."""
    async with (
        running_workers(settings),
        running_web(settings) as base_url,
        contextlib.AsyncExitStack() as stack,
    ):
        alice, bob, admin = [await sign_in(stack, base_url, n) for n in ("alice", "bob", "admin")]
        anonymous = await stack.enter_async_context(httpx.AsyncClient(base_url=base_url))

        alice_command, bob_command = await place(alice), await place(bob)
        alice_status, bob_status = await final(alice, alice_command), await final(bob, bob_command)
        assert (alice_status["status"], bob_status["status"]) == ("succeeded", "succeeded")
        [alice_order] = await own_orders(alice, alice_status["position"])
        [bob_order] = await own_orders(bob, bob_status["position"])
        assert (alice_order["customer"], bob_order["customer"]) == ("alice", "bob")
        order_id = alice_order["order_id"]

        command_path = f"/api/commands/{alice_command}"
        assert code(await bob.http.get(command_path)) == (404, "not_found")
        assert code(await anonymous.get(command_path)) == (404, "not_found")
        assert (await admin.http.get(command_path)).json()["status"] == "succeeded"

        order_path = f"/api/orders/{order_id}"
        assert code(await bob.http.get(order_path)) == (404, "not_found")
        assert code(await anonymous.get(order_path)) == (401, "unauthenticated")
        assert (await alice.http.get(order_path)).json()["status"] == "confirmed"
        assert (await admin.http.get(order_path)).json()["customer"] == "alice"
        assert (await bob.http.get(f"/orders/{order_id}")).status_code == 404
        everyone = await own_orders(admin, alice_status["position"])
        assert sorted(o["customer"] for o in everyone) == ["alice", "bob"]

        async def inbox(user: User) -> dict[str, Any]:
            body: dict[str, Any] = (await user.http.get("/api/notifications")).json()
            return body

        alice_inbox = await eventually(lambda: inbox(alice), until=lambda b: b["unread"] == 1)
        bob_inbox = await eventually(lambda: inbox(bob), until=lambda b: b["unread"] == 1)
        assert [n["order_id"] for n in alice_inbox["items"]] == [order_id]
        assert [n["order_id"] for n in bob_inbox["items"]] == [bob_order["order_id"]]

        cancel = {"type": "CancelOrder", "order_id": order_id}
        assert code(await bob.http.post("/api/commands", json=cancel)) == (403, "forbidden")
        assert (await alice.http.get(order_path)).json()["status"] == "confirmed"
        assert code(await admin.http.post("/api/commands", json=ORDER)) == (403, "forbidden")
        assert code(await anonymous.post("/api/commands", json=ORDER)) == (401, "unauthenticated")
        bob_without_csrf = {"X-CSRF-Token": ""}
        refused = await bob.http.post("/api/commands", json=ORDER, headers=bob_without_csrf)
        assert code(refused) == (403, "csrf_failed")
        assert len(await own_orders(bob, bob_status["position"])) == 1


async def test_pushes_reach_only_the_customer_they_are_about(settings: Settings) -> None:
    """Alice's and Bob's sockets each hear their own command steps, order changes and
    notifications, and nothing about the other's; topics a customer may not see are refused."""
    async with (
        running_workers(settings),
        running_web(settings) as base_url,
        contextlib.AsyncExitStack() as stack,
    ):
        alice, bob = [await sign_in(stack, base_url, n) for n in ("alice", "bob")]
        alice_socket = await stack.enter_async_context(push_socket(base_url, alice))
        bob_socket = await stack.enter_async_context(push_socket(base_url, bob))
        topics = ["commands", "orders", "notifications"]
        assert (await alice_socket.subscribe(topics))["topics"] == topics
        refused = await bob_socket.subscribe([*topics, "admin"])
        assert refused["topics"] == topics
        assert {"type": "error", "code": "forbidden", "topic": "admin"} in bob_socket.received

        commands = {alice.name: await place(alice), bob.name: await place(bob)}
        order_ids: dict[str, str] = {}
        for user, socket in ((alice, alice_socket), (bob, bob_socket)):
            done = await socket.until(functools.partial(succeeded, commands[user.name]))
            assert done["error"] is None
            confirmed = await socket.until(
                lambda m: m.get("view") == "orders" and m["data"]["status"] == "confirmed"
            )
            order_ids[user.name] = confirmed["key"]
            await socket.until(
                lambda m: m.get("view") == "notifications" and m["data"]["unread"] == 1
            )
        # both have heard the last push of both orders: whatever else was queued for a socket
        # is delivered before its answer to a new subscribe
        await alice_socket.subscribe(topics)
        await bob_socket.subscribe(topics)

        for user, socket, other in ((alice, alice_socket, bob), (bob, bob_socket, alice)):
            texts = [str(m) for m in socket.received]
            assert not [
                t
                for t in texts
                if commands[other.name] in t or order_ids[other.name] in t or f"'{other.name}'" in t
            ], user.name
            own = [m for m in socket.received if m.get("type") == "command"]
            assert {m["command_id"] for m in own} == {commands[user.name]}
            assert "succeeded" in [m["status"] for m in own]
