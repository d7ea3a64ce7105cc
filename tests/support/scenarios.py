"""What the app does, end to end, through its public surfaces: scenarios that tests run on a
stack of real processes (`tests.support.api_client.running_storefront`) to check something
about all of it (that Redis refused none of a user's commands; that every key has a bound).
"""

from __future__ import annotations

import json
import secrets
import time

import httpx
import redis

from app.kernel import keys
from app.kernel.partitions import partition_of
from app.kernel.projection import group_name
from tests.support.api_client import (
    DECLINED_CARD,
    Storefront,
    create_product,
    find_order,
    place_order,
    receive_until,
    send,
    wait_for_command,
)
from tests.support.polling import eventually, eventually_sync


async def end_to_end(storefront: Storefront) -> None:
    """Every worker kind's work, and the web's reads: an order through fulfilment, a declined
    one, an import, a cancel with refund, a shipment, notifications, the status page."""
    async with (
        storefront.client("admin") as admin,
        storefront.client("alice") as alice,
    ):
        sku, _ = await create_product(admin, stock=20)
        command_id = await place_order(alice, [(sku, 2)])
        assert (await wait_for_command(alice, command_id))["status"] == "succeeded"
        order = await find_order(alice, sku, status="confirmed")
        declined = await place_order(alice, [(sku, 1)], DECLINED_CARD)
        assert (await wait_for_command(alice, declined))["status"] == "failed"
        shipped = await send(admin, {"type": "ShipOrder", "order_id": order["order_id"]})
        assert shipped.status_code == 200, shipped.text
        other, _ = await create_product(admin, stock=5)
        second = await place_order(alice, [(other, 1)], idempotency_key="order-2")
        await wait_for_command(alice, second)
        again = await find_order(alice, other, status="confirmed")
        cancelled = await send(
            alice, {"type": "CancelOrder", "order_id": again["order_id"], "reason": "late"}
        )
        assert cancelled.status_code == 200, cancelled.text
        rows = [{"sku": f"{sku}-I{i}", "name": "Imported", "price_cents": 100} for i in range(3)]
        imported = await send(admin, {"type": "ImportCatalog", "products": rows})
        assert (await wait_for_command(admin, imported.json()["command_id"]))["status"] == (
            "succeeded"
        )

        async def notified() -> list[object]:
            inbox = (await alice.get("/api/notifications")).json()
            return list(inbox["items"])

        await eventually(notified, timeout=30, message="alice notified")
        assert (await alice.post("/api/notifications/read")).status_code == 204
        for path in ("/api/admin/status", "/api/admin/sales", "/metrics", "/api/products"):
            assert (await admin.get(path)).status_code == 200, path
        ready = await eventually(lambda: admin.get("/readyz"), until=lambda r: r.status_code == 200)
        assert ready.json()["status"] == "ready"


async def rebuild_and_audit(storefront: Storefront) -> None:
    """A shadow rebuild of the catalog, swapped in (the commands worker runs both), and the
    projector's audit of it (its rounds come every half second in this test)."""
    async with storefront.client("admin") as admin:
        for action in ("RebuildProjection", "SwapRebuild"):
            reply = await send(admin, {"type": action, "projection": "catalog"})
            assert reply.status_code == 202, reply.text
            done = await wait_for_command(admin, reply.json()["command_id"])
            assert done["status"] == "succeeded", done

        async def audited() -> int:
            status = (await admin.get("/api/admin/status")).json()
            return sum(a["checked"] for a in status["audits"] if a["projection"] == "catalog")

        await eventually(audited, timeout=30, message="the audit checked the catalog")


async def dead_letter_round_trip(storefront: Storefront, operator_url: str) -> None:
    """A poison event parks its product in the catalog projection (projector); an admin's
    DiscardDeadLetter (commands worker) has the partition's owner drop it and the rest flows."""
    async with storefront.client("admin") as admin:
        sku, _ = await create_product(admin)
        await eventually(lambda: admin.get(f"/api/products/{sku}"), until=lambda r: r.is_success)
        operator = redis.Redis.from_url(operator_url, decode_responses=True)
        try:
            operator.xadd(
                keys.events(partition_of(sku, 4)),
                {"t": "ProductRenamed", "a": f"product:{sku}", "v": "2", "e": "{not json"},
            )
            renamed = await send(admin, {"type": "RenameProduct", "sku": sku, "name": "Renamed"})
            assert renamed.status_code == 200, renamed.text
            dead = keys.dead_letters(group_name("catalog"))

            def letters() -> list[tuple[str, dict[str, str]]]:
                return list(operator.xrange(dead))

            parked = eventually_sync(letters, until=lambda found: len(found) == 2, timeout=30)
            discard = {
                "type": "DiscardDeadLetter",
                "consumer": "catalog",
                "letter_id": parked[0][0],
                "reason": "written by hand",
            }
            accepted = await send(admin, discard)
            assert accepted.status_code == 202, accepted.text
            done = await wait_for_command(admin, accepted.json()["command_id"])
            assert done["status"] == "succeeded", done
            await eventually(
                lambda: admin.get(f"/api/products/{sku}"),
                until=lambda r: r.json()["name"] == "Renamed",
                timeout=30,
                message="the waiting rename applied",
            )
        finally:
            operator.close()


async def refused_for_stock(storefront: Storefront) -> None:
    """An order for more than the shelf holds: rejected (insufficient_stock)."""
    async with storefront.client("admin") as admin, storefront.client("bob") as bob:
        sku, _ = await create_product(admin, stock=1)
        command_id = await place_order(bob, [(sku, 2)])
        done = await wait_for_command(bob, command_id)
        assert done["status"] == "failed" and done["error"]["code"] == "insufficient_stock", done


async def sessions_and_the_login_throttle(storefront: Storefront) -> None:
    """A session signed in and out (its revocation goes to every web process), and a
    password guessed until the throttle refuses an attempt (429)."""
    identity = storefront.login("bob")
    async with storefront.client(identity) as bob:
        assert (await bob.delete("/api/session")).status_code == 204
    async with httpx.AsyncClient(base_url=storefront.base_url, timeout=30) as guesser:
        for _ in range(20):  # each wait doubles: one soon outlasts the time between attempts
            reply = await guesser.post(
                "/api/session", json={"username": "mallory", "password": "guess"}
            )
            if reply.status_code == 429:
                break
        assert reply.status_code == 429, reply.text


async def a_cart(storefront: Storefront) -> None:
    async with storefront.client("alice") as alice:
        reply = await alice.post("/ui/cart", data={"sku": "MUG-BLUE", "quantity": "2"})
        assert reply.status_code == 200, reply.text


async def a_traced_command_and_its_pages(storefront: Storefront) -> None:
    """A command sent with a sampled traceparent, as the pages do (its spans go to the span
    store), the page's click-to-pixel report, the command's page with its waterfall, and the
    status page."""
    async with storefront.client("admin") as admin:
        sku, _ = await create_product(admin)
        trace_id, click = secrets.token_hex(16), secrets.token_hex(8)
        reply = await send(
            admin,
            {"type": "RestockProduct", "sku": sku, "quantity": 3},
            traceparent=f"00-{trace_id}-{click}-01",
        )
        assert reply.status_code == 200, reply.text
        command_id = reply.json()["command_id"]
        now = time.time() * 1000
        report = {"traceparent": f"00-{trace_id}-{click}-01", "pressed": now - 50,
                  "sent": now - 40, "answered": now - 10}  # fmt: skip
        timing = await admin.post(f"/ui/commands/{command_id}/timing", json=report)
        assert timing.status_code == 204, timing.text

        async def waterfall() -> str:
            return (await admin.get(f"/fragments/commands/{command_id}/waterfall")).text

        await eventually(waterfall, until=lambda html: "<svg" in html, message="a waterfall")
        for page in (f"/commands/{command_id}", "/admin/status"):
            assert (await admin.get(page)).status_code == 200, page


async def a_catalog_watcher(storefront: Storefront) -> None:
    """An anonymous /api/ws socket on the catalog sees a restock pushed."""
    async with storefront.client("admin") as admin, storefront.ws() as ws:
        await ws.send(json.dumps({"subscribe": ["catalog"]}))
        await receive_until(ws, lambda m: m.get("type") == "subscribed")
        sku, _ = await create_product(admin)
        await receive_until(ws, lambda m: m.get("view") == "catalog" and m.get("key") == sku)


async def dead_letter_retried_then_discarded(storefront: Storefront, operator_url: str) -> None:
    """A poison event: RetryDeadLetter fails again (the letter is written anew), then
    DiscardDeadLetter lets the events behind it through."""
    async with storefront.client("admin") as admin:
        sku, _ = await create_product(admin)
        await eventually(lambda: admin.get(f"/api/products/{sku}"), until=lambda r: r.is_success)
        operator = redis.Redis.from_url(operator_url, decode_responses=True)
        try:
            operator.xadd(
                keys.events(partition_of(sku, 4)),
                {"t": "ProductRenamed", "a": f"product:{sku}", "v": "2", "e": "{not json"},
            )
            dead = keys.dead_letters(group_name("catalog"))

            def letter() -> str | None:
                """The id of the product's failed letter (not one waiting behind it)."""
                for letter_id, fields in operator.xrange(dead):
                    found = json.loads(fields["e"])
                    if found["key"] == f"product:{sku}" and not found["behind"]:
                        return str(letter_id)
                return None

            first = eventually_sync(letter, timeout=30)
            for action, wanted in (
                ("RetryDeadLetter", "failed"),
                ("DiscardDeadLetter", "succeeded"),
            ):
                request = {"type": action, "consumer": "catalog", "letter_id": letter()}
                if action == "DiscardDeadLetter":
                    request["reason"] = "written by hand"
                accepted = await send(admin, request)
                assert accepted.status_code == 202, accepted.text
                done = await wait_for_command(admin, accepted.json()["command_id"])
                assert done["status"] == wanted, done
            assert letter() is None and first is not None
        finally:
            operator.close()
