"""`/ws` (HTML fragments for htmx pages) and `/api/ws` (JSON for scripts)."""

from __future__ import annotations

import asyncio
import contextlib

import msgspec
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from app.web.auth import actor_of, own_origin, session_of
from app.web.hub import Client, Hub, grant

REFUSED = 1008


class Subscribe(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subscribe: list[str]


_subscribe = msgspec.json.Decoder(Subscribe)
_encoder = msgspec.json.Encoder()


def hub_of(websocket: WebSocket) -> Hub:
    hub: Hub = websocket.app.state.hub
    return hub


async def _serve(client: Client, websocket: WebSocket, hub: Hub, json_api: bool) -> None:
    pump = asyncio.create_task(client.pump())
    try:
        while True:
            receive = asyncio.create_task(websocket.receive_text())
            done, _ = await asyncio.wait({receive, pump}, return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                receive.cancel()
                pump.result()  # re-raise why sending stopped
                return
            text = receive.result()
            if json_api:
                handle_json_message(client, hub, text)
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pump
        hub.disconnect(client)


def handle_json_message(client: Client, hub: Hub, text: str) -> None:
    try:
        request = _subscribe.decode(text)
    except msgspec.DecodeError as exc:
        hub.send(
            client,
            _encoder.encode(
                {"type": "error", "code": "malformed_json", "detail": str(exc)}
            ).decode(),
        )
        return
    granted, refused = grant(client.actor, request.subscribe)
    hub.subscribe(client, granted)
    for topic in refused:
        hub.send(
            client, _encoder.encode({"type": "error", "code": "forbidden", "topic": topic}).decode()
        )
    accepted = [t for t in request.subscribe if t not in refused]
    hub.send(client, _encoder.encode({"type": "subscribed", "topics": accepted}).decode())


async def html_socket(websocket: WebSocket) -> None:
    """htmx pages: Origin must be ours; topics from ?topics=, limited to what the user may see."""
    if websocket.headers.get("origin") != own_origin(websocket):
        await websocket.close(code=REFUSED)
        return
    actor = actor_of(await session_of(websocket))
    requested = websocket.query_params.get("topics", "catalog").split(",")
    granted, _refused = grant(actor, requested)
    await websocket.accept()
    hub = hub_of(websocket)
    client = hub.connect(websocket, actor, "html")
    hub.subscribe(client, granted)
    await _serve(client, websocket, hub, json_api=False)


async def json_socket(websocket: WebSocket) -> None:
    """Scripts: no Origin (not a browser) or our own; then {"subscribe": [...]}."""
    origin = websocket.headers.get("origin")
    if origin is not None and origin != own_origin(websocket):
        await websocket.close(code=REFUSED)
        return
    actor = actor_of(await session_of(websocket))
    await websocket.accept()
    hub = hub_of(websocket)
    client = hub.connect(websocket, actor, "json")
    await _serve(client, websocket, hub, json_api=True)


routes: list[BaseRoute] = [
    WebSocketRoute("/ws", html_socket),
    WebSocketRoute("/api/ws", json_socket),
]
