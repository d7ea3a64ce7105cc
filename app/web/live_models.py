"""A live read model, declared once: what writes it, how it is read, shown and watched.

One `LiveReadModel` names its view (the `View` its projections announce), the projections
that write it (`Feed`: the worker that runs each, whether a rebuild may replay it and the audit
check it), its loader (the query: every changed key of a batch in one round trip), its HTML
fragment (templates under templates/fragments/), who may watch its topic (`Audience`), and the
page regions that re-fetch it when a socket opens (`Region`: a fragment route). Everything
else derives from it, in one place each:

* the projector's registry — which projections run where, rebuildable, audited
  (app/projections/registry.py);
* the live view the hub pushes: loader, fragment, JSON message, topics (`live_view` in
  app/web/live.py);
* the topic grant: who may watch what (`grant`, below);
* the fragment routes, the pages' `live_region` macro that can only name a declared one, and
  a simple admin page when one is declared (app/web/live_routes.py).

Nothing here imports the web server or the templates: a worker reads its projections from the
declarations without loading either.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Generic, TypeVar, assert_never
from urllib.parse import quote, urlencode

import msgspec

from app.kernel.messages import Actor
from app.kernel.projection import AnyProjection
from app.kernel.views import View
from app.web.viewer import Viewer

if TYPE_CHECKING:
    from jinja2 import Environment

S = TypeVar("S")
"""What the loaders are given: the app's services."""
T = TypeVar("T")
"""An item of the view."""
C = TypeVar("C")
"""What a projection is built from (the app's settings)."""
ADMIN = "admin"
_PARAM = re.compile(r"\{([a-z_]+)(?::[a-z]+)?\}")


class Audience(Enum):
    """Who may watch a read model's topic, and the topics an item of it is published to."""

    ANYONE = "anyone"
    """`<topic>`, for everyone, signed in or not."""
    OWNER = "owner"
    """`<topic>:<user>`, for each signed-in user: an item goes to its owner (its key is
    `<owner>/<id>`, or the owner's name itself)."""
    OWNER_OR_ADMINS = "owner or admins"
    """As OWNER; an admin watches `<topic>:*`, every owner's items."""
    ADMINS = "admins"
    """`<topic>`, for admins only."""

    def item_topics(self, topic: str) -> Callable[[str], tuple[str, ...]]:
        """The topics an item is published to, from its key."""
        match self:
            case Audience.ANYONE | Audience.ADMINS:
                topics = (topic,)
                return lambda _key: topics
            case Audience.OWNER:
                return lambda key: (f"{topic}:{owner(key)}",)
            case Audience.OWNER_OR_ADMINS:
                everyone = f"{topic}:*"
                return lambda key: (f"{topic}:{owner(key)}", everyone)
            case _:
                assert_never(self)

    def granted(self, topic: str, actor: Actor) -> str | None:
        """What watching `topic` subscribes this actor to (None: refused)."""
        match self:
            case Audience.ANYONE:
                return topic
            case Audience.ADMINS:
                return topic if actor.has_role(ADMIN) else None
            case Audience.OWNER | Audience.OWNER_OR_ADMINS if actor.username is not None:
                if self is Audience.OWNER_OR_ADMINS and actor.has_role(ADMIN):
                    return f"{topic}:*"
                return f"{topic}:{actor.username}"
            case _:
                return None


def owner(key: str) -> str:
    """The owner of a per-user item: its key's part before the first `/`."""
    return key.partition("/")[0]


def item_id(key: str) -> str:
    """A per-user item's own id: its key's part after the first `/`."""
    return key.partition("/")[2]


@dataclass(frozen=True)
class Feed(Generic[C]):
    """A projection that writes the read model (its consumer is named after its class's
    `name`), and what may be done with it."""

    projection: type[AnyProjection]
    build: Callable[[C], AnyProjection] | None = None
    """How to make one from the app's settings; by default `projection()`."""
    worker: str = "projector"
    """The worker kind that runs it."""
    rebuildable: bool = True
    """Whether a rebuild may replay it from the streams (not if its state comes from users
    too, like an inbox's read flag)."""
    audited: bool = False
    """Whether the audit compares it with what its aggregates' events re-derive: only a read
    model whose keys (or fields, or members) each aggregate owns."""

    @property
    def name(self) -> str:
        return self.projection.name

    def made(self, setup: C) -> AnyProjection:
        return self.build(setup) if self.build is not None else self.projection()


@dataclass(frozen=True)
class Fragment(Generic[T]):
    """An item as HTML: each template `templates/fragments/<name>.html` rendered with
    `context(item)`, `oob` (a pushed copy, swapped in by id) and the `viewer` it is for (its
    controls: app/web/viewer.py). Several templates: each in a `<template>` of its own (a
    table row beside a section would not survive being parsed)."""

    templates: tuple[str, ...]
    context: Callable[[T], Mapping[str, Any]]

    def render(self, env: Environment, item: T, *, oob: bool, viewer: Viewer) -> str:
        context = self.context(item)
        parts = [
            env.get_template(path).render(context, oob=oob, viewer=viewer)
            for path in self.template_paths()
        ]
        return parts[0] if len(parts) == 1 else "".join(f"<template>{p}</template>" for p in parts)

    def template_paths(self) -> list[str]:
        return [f"fragments/{name}.html" for name in self.templates]


def fragment(*templates: str, item: str) -> Fragment[Any]:
    """The usual fragment: the item under one name (`fragment("product_row", item="p")`)."""
    return Fragment(templates, lambda found: {item: found})


@dataclass(frozen=True)
class RegionRequest(Generic[S]):
    """A page re-fetching one of its live regions: who asks, and for what."""

    services: S
    actor: Actor
    query: Mapping[str, str]
    path: Mapping[str, str]


@dataclass(frozen=True)
class Region(Generic[S, T]):
    """A live region of a page and its fragment route, re-fetched on every socket open.

    Pages name it (`live_region("order", o.order_id)`); the route answers the items `load`
    finds, as `fragment` (by default the read model's), swapped as `swap` says. A region of a
    read model only admins may watch answers 403 to anyone else; any other region gives each
    asker what `load` finds for them (an owner's check is the loader's).
    """

    name: str
    path: str
    """The route, e.g. /fragments/orders/{order_id}."""
    load: Callable[[RegionRequest[S]], Awaitable[Sequence[T]]]
    fragment: Fragment[T] | None = None
    swap: str = "innerHTML"
    """How the answer replaces the region (htmx `hx-swap`)."""
    target: str = ""
    """What it replaces, if not the region itself (htmx `hx-target`, e.g. `find section`)."""

    def url(self, *values: object, **query: object) -> str:
        """The route with its parameters filled in order, and the query's non-empty values."""
        filled = iter(quote(str(value), safe="") for value in values)
        try:
            url = _PARAM.sub(lambda _match: next(filled), self.path)
        except StopIteration:
            raise TypeError(f"region {self.name}: too few values for {self.path}") from None
        if next(filled, None) is not None:
            raise TypeError(f"region {self.name}: too many values for {self.path}")
        kept = {name: str(value) for name, value in query.items() if value}
        return f"{url}?{urlencode(kept)}" if kept else url


@dataclass(frozen=True)
class Page:
    """A simple admin page made from the declaration: its title over the view's item `key`,
    in a live region named after the page's path (its route: `/fragments<path>`)."""

    path: str
    title: str
    key: str


class ViewMessage(msgspec.Struct, tag_field="type", tag="view"):
    """The JSON push of a changed item: `{"type": "view", "view", "key", "position", "data"}`."""

    view: str
    key: str
    position: str | None
    data: Any


def view_message(
    name: str, *, key: Callable[[str], str] = str, positioned: bool = True
) -> Callable[[str, str | None, Any], ViewMessage]:
    """The usual JSON shape: the item itself as `data`, under the view's public key (`name`
    is what `view` says: the topic's name)."""

    def make(item_key: str, position: str | None, item: Any) -> ViewMessage:
        return ViewMessage(name, key(item_key), position if positioned else None, item)

    return make


def _same(key: str) -> str | None:
    return key


@dataclass(frozen=True, eq=False)
class LiveReadModel(Generic[S, T]):
    """See the module's docstring. `T`: what the loader returns for a key."""

    view: View
    """Its name on the change notices: the constant its projections announce."""
    load: Callable[[S, list[str]], Awaitable[Sequence[T | None]]]
    """The items of these keys, in order, in one round trip (None: gone, or not pushed)."""
    fragment: Fragment[T]
    watchers: Audience
    topic: str = ""
    """The topic clients ask for (default: the view's name). Read models may share one (the
    admin's views share `admin`); then they declare the same audience."""
    projections: tuple[Feed[Any], ...] = ()
    message: Callable[[str, str | None, T], msgspec.Struct] | None = None
    """The JSON push, from (key, position, item); by default `view_message(topic)`."""
    key: Callable[[str], str | None] = _same
    """A notice's key → this view's key (None: the notice is not about this view)."""
    every: float = 0.0
    """If set, changes are pushed at most this often (seconds), coalesced."""
    refresh: tuple[str, ...] = ()
    """Keys pushed every `every` seconds while watched, whether or not a notice came."""
    regions: tuple[Region[S, T], ...] = ()
    page: Page | None = None
    all_regions: tuple[Region[S, T], ...] = field(init=False)
    """Its regions, and its page's."""

    def __post_init__(self) -> None:
        if self.page is not None and self.watchers is not Audience.ADMINS:
            raise ValueError(f"{self.view}: a declared page is an admin's page")
        derived = () if self.page is None else (self._page_region(self.page),)
        object.__setattr__(self, "all_regions", (*self.regions, *derived))

    @property
    def topic_name(self) -> str:
        return self.topic or self.view

    def _page_region(self, page: Page) -> Region[S, T]:
        async def load(asked: RegionRequest[S]) -> list[T]:
            return [item for item in await self.load(asked.services, [page.key]) if item]

        return Region(page.path, f"/fragments{page.path}", load)


def audiences(declared: Iterable[LiveReadModel[Any, Any]]) -> dict[str, Audience]:
    """Each topic's audience; one topic declared with two audiences is an error."""
    found: dict[str, Audience] = {}
    for model in declared:
        topic = model.topic_name
        if found.setdefault(topic, model.watchers) is not model.watchers:
            raise ValueError(f"topic {topic!r} is declared for {found[topic]} and {model.watchers}")
    return found


def grant(
    topics: Mapping[str, Audience], actor: Actor, requested: Iterable[str]
) -> tuple[set[str], list[str]]:
    """The topics this actor may watch, of those requested, and the requested ones refused."""
    granted: set[str] = set()
    refused: list[str] = []
    for topic in requested:
        audience = topics.get(topic)
        subscribed = audience.granted(topic, actor) if audience is not None else None
        if subscribed is None:
            refused.append(topic)
        else:
            granted.add(subscribed)
    return granted, refused
