"""Command log (admin): recent finished commands, counts by outcome kind, latencies.

Counts and the history count each command by its kind (succeeded, rejected, failed:
app/kernel/outcomes.py), not its status: a declined card is a rejection, not a failure.

Its source is the journal (one entry per finished command, failures included), not the
events stream: a failed command emits no event, but it belongs in the log. It also keeps the
status page's history of commands (per 10-s bucket: outcomes and a latency histogram, see
app/observability/history.py), and tells `finished` of each command once its batch is written
(the metrics' count of finished commands and their end-to-end latency).

It announces no change: the status page that shows it is pushed every second while watched.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import msgspec

from app.kernel import keys as kernel_keys
from app.kernel.outcomes import OutcomeKind, OutcomeKinds
from app.kernel.projection import Version
from app.kernel.read_model_writes import ReadModelWrites
from app.kernel.views import Change
from app.observability import history
from app.outcomes import OUTCOMES
from app.projections import keys

RECENT = 200
LATENCIES = 2000


class JournalEntry(msgspec.Struct, frozen=True):
    command_id: str
    type: str
    sender: str
    status: str
    accepted_at: str
    completed_at: str
    error_code: str = ""


class LoggedCommand(msgspec.Struct, frozen=True):
    command_id: str
    type: str
    sender: str
    status: str
    completed_at: float
    latency_ms: float
    error_code: str
    outcome: OutcomeKind | None = None
    """Its kind (None in entries logged before kinds were)."""


_decoder = msgspec.json.Decoder(JournalEntry)


def latency_ms(entry: JournalEntry) -> float:
    try:
        return max(0.0, (float(entry.completed_at) - float(entry.accepted_at)) * 1000)
    except ValueError:
        return 0.0


Finished = Callable[[str, str, float, float], None]
"""(type, outcome kind, accepted_at, completed_at) of a finished command."""


class CommandLogProjection:
    name = "command_log"

    def __init__(self, finished: Finished | None = None, kinds: OutcomeKinds = OUTCOMES) -> None:
        self._finished = finished
        self._kinds = kinds

    def stream(self, partition: int) -> str:
        return kernel_keys.journal(partition)

    def decode(self, fields: dict[str, str]) -> tuple[Version | None, JournalEntry | None]:
        return None, _decoder.decode(fields["e"])

    def apply(self, item: JournalEntry, tx: ReadModelWrites) -> Iterable[Change]:
        took = round(latency_ms(item), 2)
        completed = float(item.completed_at or 0)
        kind = self._kinds.of(item.status, item.error_code)
        logged = LoggedCommand(
            item.command_id,
            item.type,
            item.sender,
            item.status,
            completed,
            took,
            item.error_code,
            kind,
        )
        tx.lpush(keys.command_log_recent(tx.partition), msgspec.json.encode(logged))
        tx.ltrim(keys.command_log_recent(tx.partition), 0, RECENT - 1)
        tx.hincrby(keys.command_log_counts(tx.partition), kind, 1)
        tx.hincrby(keys.command_log_counts(tx.partition), f"{item.type}:{kind}", 1)
        tx.lpush(keys.command_log_latencies(tx.partition), f"{completed}:{took}")
        tx.ltrim(keys.command_log_latencies(tx.partition), 0, LATENCIES - 1)
        if time.time() - completed < history.KEEP_SECONDS:
            bucket = history.commands_key(tx.partition, history.bucket_of(completed))
            tx.hincrby(bucket, kind, 1)
            tx.hincrby(bucket, history.latency_field(took), 1)
            tx.expire(bucket, history.KEEP_SECONDS)
        return ()  # the status page, which shows it, is pushed every second anyway

    def committed(self, items: list[JournalEntry]) -> None:
        if self._finished is None:
            return
        for item in items:
            try:
                accepted, completed = float(item.accepted_at), float(item.completed_at)
            except ValueError:
                continue
            kind = self._kinds.of(item.status, item.error_code)
            self._finished(item.type, kind, accepted, completed)
