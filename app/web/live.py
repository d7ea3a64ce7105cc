"""Live views: the machinery that pushes what a page or a script watches as it changes.

A `LiveView` says which topics an item is published to, how to load items from the read side
(all the keys of a batch in one call), its HTML fragment and its JSON message; `live_view`
makes one from a read model's declaration (app/web/live_models.py). `LivePublisher` turns
changes — (view, key, position) from the notice streams — into pushes: per view, the changed
keys that somebody watches are loaded once, rendered once per kind and viewer, and published under
(view, key), so each socket keeps only the newest state of each item. Nothing here knows a
view by name; the storefront's are declared in app/read_models/ (wired in
`app.web.live_views`).

A pushed item's latency (from the commit it reflects, by Redis's clock, to its publication)
goes to `observe`; a change whose notice is traced gets a `push <view>` span in that trace,
from when its notice was taken to its publication — so does each traced change a newer one
of the same item replaced before it was pushed (the push carried it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar, assert_never

import msgspec
from redis.asyncio import Redis

from app.kernel import tracing
from app.kernel.consumer import INFRA_ERRORS
from app.kernel.notices import read_view_notice
from app.kernel.positions import entry_time
from app.kernel.views import Change, View
from app.web.broadcaster import Broadcaster, Kind
from app.web.live_models import LiveReadModel, view_message
from app.web.viewer import Viewer

if TYPE_CHECKING:
    from jinja2 import Environment

log = logging.getLogger(__name__)

S = TypeVar("S")
T = TypeVar("T")
MERGED_TRACES = 8
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True)
class NoticeStream:
    """A capped stream that announces changes, and how to read one of its entries."""

    redis: Redis
    stream: str
    change: Callable[[str, dict[str, str]], Change | None]
    """A change from an entry (its id and fields), or None if it is not about a view."""


def _same(key: str) -> str | None:
    return key


@dataclass(frozen=True, eq=False)
class LiveView(Generic[T]):
    name: View
    """The view's name in change notices."""
    topics: Callable[[str], Sequence[str]]
    """The topics an item is published to, from its key."""
    load: Callable[[list[str]], Awaitable[Sequence[T | None]]]
    """The items of these keys, in order, in one round trip (None: gone, or not to be pushed)."""
    fragment: Callable[[T, Viewer], str]
    """The item as an HTML fragment for a viewer, for /ws."""
    message: Callable[[str, str | None, T], msgspec.Struct]
    """The item as a JSON message, for /api/ws, from (key, position, item)."""
    key: Callable[[str], str | None] = _same
    """A notice's key → this view's key (None: the notice is not about this view)."""
    every: float = 0.0
    """If set, changes are pushed at most this often (seconds), coalesced."""
    refresh: tuple[str, ...] = ()
    """Keys pushed every `every` seconds while watched, whether or not a notice came."""


def live_view(model: LiveReadModel[S, T], services: S, env: Environment) -> LiveView[T]:
    """The live view a declaration describes, its loader given `services`; its templates are
    looked up now, so a missing one stops the web process from starting."""
    for path in model.fragment.template_paths():
        env.get_template(path)
    return LiveView(
        model.view,
        topics=model.watchers.item_topics(model.topic_name),
        load=partial(model.load, services),
        fragment=lambda item, viewer: model.fragment.render(env, item, oob=True, viewer=viewer),
        message=model.message or view_message(model.topic_name),
        key=model.key,
        every=model.every,
        refresh=model.refresh,
    )


def _render(
    view: LiveView[T], key: str, position: str | None, item: T, kind: Kind, viewer: Viewer
) -> str:
    match kind:
        case "html":
            return view.fragment(item, viewer)
        case "json":
            return _encoder.encode(view.message(key, position, item)).decode()
        case _:
            assert_never(kind)


def _no_latency(_seconds: float) -> None:
    return None


class LivePublisher:
    def __init__(
        self,
        views: Sequence[LiveView[Any]],
        broadcaster: Broadcaster,
        observe: Callable[[float], None] = _no_latency,
    ) -> None:
        self._broadcaster = broadcaster
        self._observe = observe
        self._by_notice: dict[str, list[LiveView[Any]]] = {}
        for view in views:
            self._by_notice.setdefault(view.name, []).append(view)
        self._dirty: dict[LiveView[Any], dict[str, Change | None]] = {
            view: {} for view in views if view.every
        }
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._tick(view), name=f"live-{view.name}") for view in self._dirty
        ]

    async def stop(self) -> None:
        self._stopping = True  # a cancel that a Redis client turned into an error ends it too
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def changed(self, changes: Iterable[Change]) -> None:
        """Push what the changes touched. Redis errors propagate: the caller retries them."""
        by_view: dict[LiveView[Any], dict[str, Change]] = {}
        for change in changes:
            for view in self._by_notice.get(change.view, ()):
                key = view.key(change.key)
                if key is not None:
                    keyed = by_view.setdefault(view, {})
                    keyed[key] = _merged(keyed.get(key), change)
        for view, keyed in by_view.items():
            if view.every:
                dirty = self._dirty[view]
                for key, fresh in keyed.items():
                    dirty[key] = _merged(dirty.get(key), fresh)
                continue
            try:
                await self._push(view, dict(keyed))
            except INFRA_ERRORS:
                raise
            except Exception:
                log.exception("live view %s could not be pushed", view.name)

    def _watched(self, view: LiveView[Any], key: str) -> bool:
        return any(self._broadcaster.watching(topic) for topic in view.topics(key))

    async def _push(self, view: LiveView[Any], changes: dict[str, Change | None]) -> None:
        keys = [key for key in changes if self._watched(view, key)]
        if not keys:
            return
        items = await view.load(keys)
        for key, item in zip(keys, items, strict=True):
            if item is None:
                continue
            change = changes[key]
            position = change.position if change is not None else None
            render = partial(_render, view, key, position, item)
            self._broadcaster.publish(view.topics(key), (view.name, key), render)
            if change is not None:
                self._pushed(view, change)

    def _pushed(self, view: LiveView[Any], change: Change) -> None:
        if change.at:
            self._observe(max(0.0, time.time() - change.at))
        if change.trace:
            end = tracing.now_ns()
            for parent in change.trace.split():
                tracing.record(
                    f"push {view.name}",
                    parent,
                    change.taken_ns,
                    end,
                    kind=tracing.CONSUMER,
                    attributes={"cqrs.view": view.name, tracing.WAIT: _waited(change)},
                )

    async def _tick(self, view: LiveView[Any]) -> None:
        while not self._stopping:
            await asyncio.sleep(view.every)
            keyed, self._dirty[view] = self._dirty[view], {}
            for key in view.refresh:
                keyed.setdefault(key, None)
            try:
                await self._push(view, keyed)
            except INFRA_ERRORS as exc:
                log.warning("live view %s: redis unavailable (%s)", view.name, exc)
                for key, change in keyed.items():
                    self._dirty[view].setdefault(key, change)  # again at the next tick
            except Exception:
                log.exception("live view %s could not be pushed", view.name)


def _merged(older: Change | None, newer: Change) -> Change:
    """The newer change of an item, carrying the traces of the older one it replaces."""
    if older is None or not older.trace:
        return newer
    traces = list(dict.fromkeys(older.trace.split() + newer.trace.split()))[-MERGED_TRACES:]
    return msgspec.structs.replace(
        newer, trace=" ".join(traces), taken_ns=older.taken_ns or newer.taken_ns
    )


def _waited(change: Change) -> float:
    """From the commit to the notice being taken (s): the projection's and the stream's part."""
    return max(0.0, round(change.taken_ns / 1e9 - change.at, 6)) if change.at else 0.0


def view_change(entry_id: str, fields: dict[str, str]) -> Change | None:
    """A change from a view notice (`rm:notices:{pN}`, written by projections), its time the
    event's commit (from its read position) or else the notice's own."""
    notice = read_view_notice(fields)
    if notice is None:
        return None
    position = notice.position or None
    return Change(
        notice.view,
        notice.key,
        position,
        at=entry_time(position.partition(":")[2]) if position else entry_time(entry_id),
        trace=notice.trace,
    )
