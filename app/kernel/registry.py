"""What a command is: its Struct, its aggregate, who may send it, how it runs, its handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import msgspec

from app.kernel.command_status import StatusChange
from app.kernel.messages import Actor, CommandEnvelope, Outcome
from app.kernel.validation import CommandDecoder

if TYPE_CHECKING:
    from app.kernel.bus import CommandBus

S = TypeVar("S", bound=msgspec.Struct)
C = TypeVar("C", bound=msgspec.Struct)


class AggregateKind(Generic[S]):
    """A kind of aggregate: its name in keys and events, and how its state is decoded."""

    def __init__(self, name: str, state_type: type[S]) -> None:
        self.name = name
        self.state_type = state_type
        self.decoder: msgspec.json.Decoder[S] = msgspec.json.Decoder(state_type)


@dataclass(frozen=True)
class Context:
    """What a handler may know besides the command and the aggregate's state."""

    command_id: str
    actor: Actor
    now: float
    aggregate_id: str
    lookups: dict[str, Any] = field(default_factory=dict)
    """Read-only states of other aggregates the spec asked for, by aggregate id."""


@dataclass
class Decision(Generic[S]):
    """What a handler decided: the new state and the events that explain it.

    `complete=False` leaves the command `processing` (a process will finish it later) and
    appends `step` to its steps instead of `succeeded`.
    """

    state: S | None = None
    events: Sequence[msgspec.Struct] = ()
    integration: Sequence[msgspec.Struct] = ()
    complete: bool = True
    step: str = ""


Runner = Callable[[CommandEnvelope, "CommandBus"], Awaitable[Outcome]]


class AnyCommandSpec:
    """A CommandSpec of whatever command and state: what a Registry is given.

    Not generic on purpose. Given a list of `CommandSpec[Any, Any]`, mypy would infer the
    type arguments of every spec made in that list from it (Any), so a command paired with
    another command's handler would pass; with this as the list's type, each spec is checked
    on its own: its command type against its aggregate id, handler and authorization.
    """

    __slots__ = ()


@dataclass(frozen=True)
class CommandSpec(AnyCommandSpec, Generic[C, S]):
    """One command type and everything the bus needs to run it.

    `roles`: the sender needs one of them (checked before anything runs).
    `authorize`: ownership rules on the write side, given the loaded state.
    `assign_id`: for commands creating an aggregate whose id the server picks.
    `runner`: for commands that are not one aggregate's transaction (e.g. a bulk import).
    `wire_type` + `prepare`: when what clients send differs from what may be stored (a card
    number becomes a token at the edge), the wire form is decoded and `prepare`d first.
    `follow`: for a command creating an aggregate (with `assign_id`) that goes on after its
    commit: which step (or end) of it each later event of that aggregate is. Its status then
    moves in the same commits as those events. Its id derives from the aggregate's.
    `shed_when_busy`: refused with 503 while the queue's backlog is over its limit.
    `tracked`: a process's step whose effect another aggregate's fate settles (a hold for an
    order): once it lands, it stays among its partition's running commands until the
    process's sweeper settled it (kernel/running.py) — so a failover that lost that other
    aggregate still leaves a trace where the effect is.
    """

    command_type: type[C]
    kind: AggregateKind[S] | None
    aggregate_id: Callable[[C], str]
    decide: Callable[[C, S | None, Context], Decision[S]] | None = None
    roles: frozenset[str] = frozenset()
    mode: Literal["sync", "async"] = "sync"
    public: bool = True
    authorize: Callable[[C, S | None, Actor], None] | None = None
    lookups: Callable[[C], Sequence[tuple[AggregateKind[Any], str]]] | None = None
    assign_id: Callable[[], str] | None = None
    runner: Runner | None = None
    wire_type: type[msgspec.Struct] | None = None
    prepare: Callable[[Any, Actor], Awaitable[C]] | None = None
    follow: Callable[[Any], StatusChange | None] | None = None
    shed_when_busy: bool = False
    tracked: bool = False

    @property
    def name(self) -> str:
        tag = self.command_type.__struct_config__.tag
        assert isinstance(tag, str)
        return tag

    def permits(self, actor: Actor) -> bool:
        """Whether this sender's roles may send it: what the intake checks before anything
        runs (an ownership rule, `authorize`, is checked later, on the loaded state)."""
        return actor.authenticated and (not self.roles or bool(self.roles & actor.roles))


class Registry:
    """Every command the system knows, and one decoder for the public ones."""

    def __init__(self, given: Sequence[AnyCommandSpec]) -> None:
        specs = [_spec(spec) for spec in given]
        self._specs = {spec.name: spec for spec in specs}
        self._followers: dict[str, CommandSpec[Any, Any]] = {}
        for spec in specs:
            if spec.follow is not None:
                assert spec.kind is not None and spec.assign_id is not None, spec.name
                assert spec.kind.name not in self._followers, spec.kind.name
                self._followers[spec.kind.name] = spec
        self._decoders: dict[str, msgspec.json.Decoder[Any]] = {
            spec.name: msgspec.json.Decoder(spec.command_type) for spec in specs
        }
        self.public_decoder = CommandDecoder(
            [s.wire_type or s.command_type for s in specs if s.public]
        )

    def spec(self, name: str) -> CommandSpec[Any, Any]:
        return self._specs[name]

    def follower(self, kind: str) -> CommandSpec[Any, Any] | None:
        """The command whose status follows the events of aggregates of this kind."""
        return self._followers.get(kind)

    def may_send(self, actor: Actor, name: str) -> bool:
        """Whether a client with this actor's roles may send command `name`: a page shows a
        control for it only then. KeyError for a name nobody registered."""
        spec = self._specs[name]
        return spec.public and spec.permits(actor)

    def __contains__(self, name: str) -> bool:
        return name in self._specs

    def decode_body(self, name: str, body: bytes) -> Any:
        return self._decoders[name].decode(body)

    @property
    def specs(self) -> list[CommandSpec[Any, Any]]:
        """Every command's spec, in the order they were registered."""
        return list(self._specs.values())

    @property
    def names(self) -> list[str]:
        return sorted(self._specs)

    @property
    def public_names(self) -> list[str]:
        """The commands clients may send (the ones with a status and a journal entry)."""
        return sorted(name for name, spec in self._specs.items() if spec.public)


def _spec(spec: AnyCommandSpec) -> CommandSpec[Any, Any]:
    assert isinstance(spec, CommandSpec), spec
    return spec
