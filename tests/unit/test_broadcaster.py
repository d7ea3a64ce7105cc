"""The broadcaster and live views without a network: merging, frames, limits, stalls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar, cast

import msgspec
import pytest
from starlette.types import Message
from starlette.websockets import WebSocket

from app.kernel.views import Change, View
from app.web.broadcaster import (
    FRAME_CHARS,
    Broadcaster,
    Client,
    Framing,
    Kind,
    PushLimits,
    frames,
)
from app.web.live import LivePublisher, LiveView
from app.web.live_models import view_message
from app.web.metrics import WebMetrics
from app.web.viewer import NOBODY, Viewer
from tests.support.polling import eventually

T = TypeVar("T")


class FakeSocket:
    """What the broadcaster uses of a Starlette WebSocket; `flowing` cleared = peer not reading."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.incoming: asyncio.Queue[Message] = asyncio.Queue()
        self.flowing = asyncio.Event()
        self.flowing.set()
        self.closed_with: int | None = None

    async def send_text(self, text: str) -> None:
        await self.flowing.wait()
        self.sent.append(text)

    async def receive(self) -> Message:
        return await self.incoming.get()

    async def close(self, code: int = 1000) -> None:
        self.closed_with = code


async def wait_until(check: Callable[[], T], **kwargs: Any) -> T:
    async def probe() -> T:
        return check()

    return await eventually(probe, **kwargs)


def limits(**overrides: Any) -> PushLimits:
    given = {"stall_seconds": 5.0, "max_pending": 100, "max_per_client": 10, **overrides}
    return PushLimits(**given)


@pytest.fixture
async def broadcaster() -> AsyncIterator[Broadcaster]:
    made = Broadcaster(limits(stall_seconds=0.2, max_pending=3, max_per_client=2), WebMetrics())
    made.start()
    yield made
    await made.stop()


def connect(
    broadcaster: Broadcaster,
    kind: Kind = "json",
    framing: Framing = "array",
    owner: str = "someone",
    viewer: Viewer = NOBODY,
) -> tuple[FakeSocket, Client]:
    socket = FakeSocket()
    return socket, broadcaster.admit(cast(WebSocket, socket), kind, framing, owner, viewer)


def render(state: str) -> Any:
    return lambda kind, _viewer: (
        f"<p>{state}</p>" if kind == "html" else json.dumps({"state": state})
    )


def serve(broadcaster: Broadcaster, client: Client) -> asyncio.Task[None]:
    return asyncio.create_task(broadcaster.serve(client, lambda _text: None))


def received(socket: FakeSocket) -> list[Any]:
    return [message for frame in socket.sent for message in json.loads(frame)]


# --- frames ------------------------------------------------------------------------------------


def test_json_arrays_html_side_by_side_or_one_message_per_frame() -> None:
    assert list(frames("array", ['{"a":1}', '{"b":2}'])) == ['[{"a":1},{"b":2}]']
    assert list(frames("fragments", ["<a></a>", "<b></b>"])) == ["<a></a><b></b>"]
    assert list(frames("single", ['{"a":1}', '{"b":2}'])) == ['{"a":1}', '{"b":2}']


def test_a_frame_holds_about_frame_chars_and_keeps_the_order() -> None:
    messages = [json.dumps({"n": n, "pad": "x" * 1000}) for n in range(600)]
    made = list(frames("array", messages))
    assert len(made) > 1
    assert all(len(frame) <= FRAME_CHARS + 1100 for frame in made)
    assert [m["n"] for frame in made for m in json.loads(frame)] == list(range(600))


# --- merging -----------------------------------------------------------------------------------


async def test_a_burst_for_one_key_sends_only_its_newest_state(broadcaster: Broadcaster) -> None:
    socket, client = connect(broadcaster)
    broadcaster.subscribe(client, {"catalog"})
    for state in ("7", "5", "4"):
        broadcaster.publish(["catalog"], ("catalog", "SKU-1"), render(state))
    broadcaster.publish(["catalog"], ("catalog", "SKU-2"), render("9"))
    task = serve(broadcaster, client)
    await wait_until(lambda: socket.sent, message="a frame")
    task.cancel()
    assert socket.sent == ['[{"state": "4"},{"state": "9"}]']


async def test_html_fragments_each_come_in_their_own_template(broadcaster: Broadcaster) -> None:
    socket, client = connect(broadcaster, "html", "fragments")
    broadcaster.subscribe(client, {"t"})
    broadcaster.publish(["t"], 1, render("a"))
    broadcaster.publish(["t"], 2, render("b"))
    task = serve(broadcaster, client)
    await wait_until(lambda: socket.sent, message="a frame")
    task.cancel()
    assert socket.sent == ["<template><p>a</p></template><template><p>b</p></template>"]


async def test_a_message_is_rendered_once_per_kind_and_viewer_for_all_its_clients() -> None:
    wide = Broadcaster(limits(max_per_client=100), WebMetrics())
    admin, shopper = Viewer(True, frozenset({"admin"})), Viewer(True, frozenset({"customer"}))
    clients = [
        connect(wide, "html", "fragments", str(n), viewer)[1]
        for n in range(20)
        for viewer in (NOBODY, admin, shopper)
    ]
    clients += [connect(wide, "json", owner=f"script {n}")[1] for n in range(20)]
    for client in clients:
        wide.subscribe(client, {"t"})
    rendered: list[tuple[Kind, Viewer]] = []

    def counting(kind: Kind, viewer: Viewer) -> str:
        rendered.append((kind, viewer))
        return f"{kind} for {sorted(viewer.roles)}"

    wide.publish(["t", "other"], "k", counting)
    assert sorted(rendered, key=repr) == sorted(
        [("html", NOBODY), ("html", admin), ("html", shopper), ("json", NOBODY)], key=repr
    )
    assert all(len(client.pending) == 1 for client in clients)
    shown = {message for client in clients for message in client.pending.values()}
    assert "<template>html for ['admin']</template>" in shown
    assert "<template>html for ['customer']</template>" in shown


async def test_answers_to_one_client_are_never_merged(broadcaster: Broadcaster) -> None:
    socket, client = connect(broadcaster)
    broadcaster.tell(client, '{"n": 1}')
    broadcaster.tell(client, '{"n": 2}')
    task = serve(broadcaster, client)
    await wait_until(lambda: socket.sent, message="a frame")
    task.cancel()
    assert received(socket) == [{"n": 1}, {"n": 2}]


async def test_clients_only_get_their_topics(broadcaster: Broadcaster) -> None:
    _, alice = connect(broadcaster, owner="alice")
    _, bob = connect(broadcaster, owner="bob")
    broadcaster.subscribe(alice, {"orders:alice"})
    broadcaster.subscribe(bob, {"orders:bob"})
    broadcaster.publish(["orders:alice", "orders:*"], "o-1", render("mine"))
    assert list(alice.pending.values()) == ['{"state": "mine"}']
    assert bob.pending == {}


# --- limits ------------------------------------------------------------------------------------


async def test_too_many_views_waiting_closes_the_socket_with_1013(
    broadcaster: Broadcaster,
) -> None:
    socket, client = connect(broadcaster)
    broadcaster.subscribe(client, {"t"})
    for key in range(3):
        broadcaster.publish(["t"], key, render(str(key)))
    broadcaster.publish(["t"], 0, render("same key: merged, not one more"))
    assert client.close_code is None
    broadcaster.publish(["t"], 3, render("a fourth key"))
    assert client.close_code == 1013
    assert not broadcaster.watching("t")
    await broadcaster.serve(client, lambda _text: None)
    assert socket.closed_with == 1013


async def test_past_the_per_client_cap_a_socket_is_closed_with_1008(
    broadcaster: Broadcaster,
) -> None:
    first = connect(broadcaster, owner="address:10.0.0.1")[1]
    connect(broadcaster, owner="address:10.0.0.1")
    socket, third = connect(broadcaster, owner="address:10.0.0.1")
    assert third.close_code == 1008
    await broadcaster.serve(third, lambda _text: None)
    assert socket.closed_with == 1008
    assert connect(broadcaster, owner="address:10.0.0.2")[1].close_code is None
    broadcaster.disconnect(first)
    assert connect(broadcaster, owner="address:10.0.0.1")[1].close_code is None


async def test_a_socket_that_stops_reading_is_closed_and_the_others_are_not(
    broadcaster: Broadcaster,
) -> None:
    stuck, stuck_client = connect(broadcaster, owner="a")
    reading, reading_client = connect(broadcaster, owner="b")
    stuck.flowing.clear()
    for client in (stuck_client, reading_client):
        broadcaster.subscribe(client, {"t"})
    tasks = [serve(broadcaster, stuck_client), serve(broadcaster, reading_client)]
    broadcaster.publish(["t"], "k", render("1"))
    await wait_until(lambda: stuck.closed_with, message="stuck socket closed")
    assert stuck.closed_with == 1013
    broadcaster.publish(["t"], "k", render("2"))
    await wait_until(lambda: received(reading), until=lambda got: len(got) == 2, timeout=5)
    assert reading.closed_with is None and not tasks[1].done()
    tasks[1].cancel()


async def test_a_binary_frame_closes_the_socket_with_1003(broadcaster: Broadcaster) -> None:
    socket, client = connect(broadcaster)
    texts: list[str] = []
    socket.incoming.put_nowait({"type": "websocket.receive", "text": "hello"})
    socket.incoming.put_nowait({"type": "websocket.receive", "bytes": b"\x00"})
    await asyncio.wait_for(broadcaster.serve(client, texts.append), 5)
    assert texts == ["hello"]
    assert socket.closed_with == 1003
    assert broadcaster.connections == 0


async def test_a_peer_that_leaves_is_not_sent_a_close(broadcaster: Broadcaster) -> None:
    socket, client = connect(broadcaster)
    socket.incoming.put_nowait({"type": "websocket.disconnect", "code": 1001})
    await asyncio.wait_for(broadcaster.serve(client, lambda _text: None), 5)
    assert socket.closed_with is None
    assert broadcaster.connections == 0


# --- live views --------------------------------------------------------------------------------


class Item(msgspec.Struct):
    name: str


async def test_live_views_load_each_batch_once_and_only_what_is_watched(
    broadcaster: Broadcaster,
) -> None:
    loads: list[list[str]] = []

    async def load(keys: list[str]) -> Sequence[Item | None]:
        loads.append(keys)
        return [None if key.endswith("gone") else Item(key) for key in keys]

    view = LiveView[Item](
        View("things"),
        topics=lambda key: (f"things:{key.partition('/')[0]}",),
        load=load,
        fragment=lambda item, _viewer: f"<p>{item.name}</p>",
        message=view_message("things", key=lambda key: key.partition("/")[2]),
    )
    publisher = LivePublisher([view], broadcaster)
    _, client = connect(broadcaster)
    broadcaster.subscribe(client, {"things:alice"})
    await publisher.changed(
        [
            Change(View("things"), "alice/1", "0:1-0"),
            Change(View("things"), "bob/2", "0:2-0"),
            Change(View("things"), "alice/1", "0:3-0"),
            Change(View("things"), "alice/gone", None),
            Change(View("other"), "alice/1", None),
        ]
    )
    assert loads == [["alice/1", "alice/gone"]]
    assert [json.loads(m) for m in client.pending.values()] == [
        {
            "type": "view",
            "view": "things",
            "key": "1",
            "position": "0:3-0",
            "data": {"name": "alice/1"},
        }
    ]
