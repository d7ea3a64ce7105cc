"""`/ws` (HTML fragments for htmx pages) and `/api/ws` (JSON for scripts).

What a client may send: text frames. On /api/ws each is a subscription request; anything
else gets an error message and the socket stays open. On /ws text is ignored. A binary frame
closes the socket with 1003; the server's WebSocket layer closes on a frame over 64 KiB
(1009) or on text that is not UTF-8 (1007). Over `WS_MAX_PER_CLIENT` open sockets of one
user (or one address, when anonymous) in this process, a new socket is closed with 1008.
"""

from __future__ import annotations

from typing import Annotated

import msgspec
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from app.kernel.messages import Actor
from app.web.auth import actor_of, own_origin, session_of
from app.web.broadcaster import Broadcaster, Client, Framing
from app.web.hub import Hub
from app.web.live_views import grant
from app.web.viewer import Viewer

REFUSED = 1008
Topic = Annotated[str, msgspec.Meta(max_length=64)]


class Subscribe(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    subscribe: Annotated[list[Topic], msgspec.Meta(max_length=16)]


class Subscribed(msgspec.Struct, tag_field="type", tag="subscribed"):
    topics: list[str]


class SocketError(msgspec.Struct, tag_field="type", tag="error", omit_defaults=True):
    code: str
    topic: str | None = None
    detail: str | None = None


_subscribe = msgspec.json.Decoder(Subscribe)
_encoder = msgspec.json.Encoder()


def broadcaster_of(websocket: WebSocket) -> Broadcaster:
    hub: Hub = websocket.app.state.hub
    return hub.broadcaster


def client_key(websocket: WebSocket, actor: Actor) -> str:
    """Whose socket it is, for the per-client cap: the user, or the address if anonymous."""
    if actor.username is not None:
        return f"user:{actor.username}"
    return f"address:{websocket.client.host if websocket.client else 'unknown'}"


def answer_subscription(broadcaster: Broadcaster, client: Client, actor: Actor, text: str) -> None:
    """Subscribe to what the actor may see; say what was refused, then what was granted."""
    try:
        request = _subscribe.decode(text)
    except msgspec.DecodeError as exc:
        error = SocketError("malformed_json", detail=str(exc))
        broadcaster.tell(client, _encoder.encode(error).decode())
        return
    granted, refused = grant(actor, request.subscribe)
    broadcaster.subscribe(client, granted)
    for topic in refused:
        broadcaster.tell(client, _encoder.encode(SocketError("forbidden", topic=topic)).decode())
    accepted = [topic for topic in request.subscribe if topic not in refused]
    broadcaster.tell(client, _encoder.encode(Subscribed(accepted)).decode())


def _ignore(_text: str) -> None:
    return None


async def html_socket(websocket: WebSocket) -> None:
    """htmx pages: Origin must be ours; topics from ?topics=, limited to what the user may see."""
    if websocket.headers.get("origin") != own_origin(websocket):
        await websocket.close(code=REFUSED)
        return
    actor = actor_of(await session_of(websocket))
    granted, _refused = grant(actor, websocket.query_params.get("topics", "catalog").split(","))
    await websocket.accept()
    broadcaster = broadcaster_of(websocket)
    client = broadcaster.admit(
        websocket, "html", "fragments", client_key(websocket, actor), Viewer.of(actor)
    )
    broadcaster.subscribe(client, granted)
    await broadcaster.serve(client, _ignore)


async def json_socket(websocket: WebSocket) -> None:
    """Scripts: no Origin (not a browser) or our own; then {"subscribe": [...]}.

    `?batch=1`: every frame is a JSON array of messages (as many as were waiting); otherwise
    each frame is one message object.
    """
    origin = websocket.headers.get("origin")
    if origin is not None and origin != own_origin(websocket):
        await websocket.close(code=REFUSED)
        return
    actor = actor_of(await session_of(websocket))
    await websocket.accept()
    broadcaster = broadcaster_of(websocket)
    framing: Framing = "array" if websocket.query_params.get("batch") in ("1", "true") else "single"
    client = broadcaster.admit(websocket, "json", framing, client_key(websocket, actor))
    await broadcaster.serve(
        client, lambda text: answer_subscription(broadcaster, client, actor, text)
    )


routes: list[BaseRoute] = [
    WebSocketRoute("/ws", html_socket),
    WebSocketRoute("/api/ws", json_socket),
]
