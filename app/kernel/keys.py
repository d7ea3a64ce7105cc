"""Every Redis key name the system uses, in one place.

Write-side keys carry their partition's hash tag so one commit touches one Cluster slot; so do
read-model keys (on the read Redis: a single server, the same one, or a Cluster).
"""

from __future__ import annotations

import hashlib

from app.kernel.partitions import tag

# --- write side, per partition -------------------------------------------------------------


def aggregate(partition: int, kind: str, aggregate_id: str) -> str:
    return f"{tag(partition)}:agg:{kind}:{aggregate_id}"


def dedup(partition: int, command_id: str) -> str:
    return f"{tag(partition)}:dedup:{command_id}"


def command_status(partition: int, command_id: str) -> str:
    return f"{tag(partition)}:cmd:{command_id}"


def command_steps(partition: int, command_id: str) -> str:
    return f"{tag(partition)}:cmd:{command_id}:steps"


def events(partition: int) -> str:
    return f"{tag(partition)}:events"


def journal(partition: int) -> str:
    """Outcome of every finished command, success or failure (the command log's source)."""
    return f"{tag(partition)}:journal"


def integration(partition: int) -> str:
    return f"{tag(partition)}:integration"


def commands(partition: int) -> str:
    return f"{tag(partition)}:commands"


def queue_counters(partition: int) -> str:
    """Hash: `accepted` and `finished` queued commands of the partition (their difference is
    the backlog; the web's admission control and the queue estimate read it)."""
    return f"{tag(partition)}:queue"


def archive_summary(partition: int) -> str:
    """Hash: what the archive holds of the partition's events (`first`, `last`, `entries`,
    `segments`, `bytes`), a cache of its manifest written by the archiver."""
    return f"{tag(partition)}:archive"


def archive_holds(partition: int) -> str:
    """Hash: holder → `expires_ms position`, readers that still need the partition's events
    after `position` in the stream (the trim keeps them)."""
    return f"{tag(partition)}:archive:holds"


def running(partition: int) -> str:
    """Sorted set: long-running commands (a process finishes them after their commit) by the
    time of their last status change, until their process settled them (kernel/running.py)."""
    return f"{tag(partition)}:running"


def status_notices(partition: int) -> str:
    """Capped stream of command-status changes the WebSocket hubs follow."""
    return f"{tag(partition)}:notices"


# --- coordination (write Redis) ---------------------------------------------------------------


def lease(group: str, partition: int) -> str:
    return f"lease:{group}:{partition}"


def heartbeats() -> str:
    return "workers:heartbeats"


def dead_letters(group: str) -> str:
    return f"dlq:{group}"


def rebuild_state(projection: str) -> str:
    """JSON of the latest rebuild of a projection (see kernel/rebuild)."""
    return f"rebuilds:{projection}"


def audit_report(projection: str) -> str:
    """JSON of what the audit last found in a projection's read model (see kernel/audit)."""
    return f"audits:{projection}"


def paused_consumers() -> str:
    """Hash: consumer group → JSON of who paused it, when and why (see kernel/pauses)."""
    return "consumers:paused"


def consumer_health(group: str) -> str:
    """Hash: last_error, last_error_at, dead_letters, retries for one consumer group."""
    return f"health:{group}"


def idempotency_digest(user: str, key: str) -> str:
    return hashlib.sha256(f"{user}\x00{key}".encode()).hexdigest()[:40]


def idempotency(partition: int, digest: str) -> str:
    """A (user, Idempotency-Key) claim, in the partition its digest picks (see idempotency)."""
    return f"{tag(partition)}:idem:{digest}"


def session(token_digest: str) -> str:
    return f"session:{token_digest}"


def session_revocations() -> str:
    """Capped stream of logged-out sessions' digests, for every web process's cache."""
    return "sessions:revoked"


def user(username: str) -> str:
    return f"user:{username}"


def users() -> str:
    return "users"


def login_throttle(place: str, scope: str, subject: str) -> str:
    """Sign-in attempts of one throttle scope; `place` is a hash tag (one slot per attempt)."""
    return f"login:{{{place}}}:{scope}:{subject}"


def request_budget(name: str, client: str, window: int) -> str:
    """Requests of one client in one budget window (e.g. commands in one minute)."""
    digest = hashlib.sha256(client.encode()).hexdigest()[:32]
    return f"budget:{name}:{digest}:{window}"


def ui_state(name: str, user: str) -> str:
    """A user's UI scratch state (e.g. a cart): not part of any aggregate."""
    return f"ui:{name}:{user}"


def external(system: str, *parts: str) -> str:
    """State of a simulated remote system (e.g. the payment gateway's ledger); one system's
    keys share a Cluster slot, so one script can act on them."""
    return ":".join(("ext", f"{{{system}}}", *parts))


# --- read side -----------------------------------------------------------------------------
#
# Every read-model key belongs to one partition and carries its hash tag after the model's
# name (`rm:catalog:{p3}:...`): the keys one projector batch of partition 3 writes share a
# slot (one apply script, on one server or a Cluster), `rm:<model>:` still prefixes every
# key of a model (a rebuild's SCAN), and a shadow copy (`rebuild:` + the key) keeps the tag,
# so RENAME stays in the slot. Views that span partitions are gathered at query time.


def read_model(name: str, partition: int, *parts: str) -> str:
    return ":".join(("rm", name, tag(partition), *parts))


def read_model_prefix(projection: str) -> str:
    """Every key of a projection's read model starts with this (its checkpoints too)."""
    return f"rm:{projection}:"


def shadow(key: str) -> str:
    """A read-model key's copy in a rebuild's shadow (same slot, renamed over at the swap)."""
    return f"rebuild:{key}"


def checkpoint(projection: str, partition: int) -> str:
    return read_model(projection, partition, "checkpoint")


def applied_versions(projection: str, partition: int) -> str:
    return read_model(projection, partition, "versions")


def projection_health(projection: str, partition: int) -> str:
    """Hash: `gap`, `gap_at` when an aggregate's versions jumped in this partition."""
    return read_model(projection, partition, "health")


def view_notices(partition: int) -> str:
    """Capped stream of the partition's read-model changes the WebSocket hubs follow (each
    hub follower reads one stream, so one slot)."""
    return f"rm:notices:{tag(partition)}"


# --- observability (read Redis) ------------------------------------------------------------


def trace_spans(trace_id: str) -> str:
    """List of a recent command trace's spans (JSON), capped, with a TTL: the span store."""
    return f"traces:spans:{trace_id}"


def command_trace(command_id: str) -> str:
    """The id of the trace a command was accepted in."""
    return f"traces:command:{command_id}"


def recent_traces() -> str:
    """Sorted set of the span store's traces by when they were first written (the cap)."""
    return "traces:recent"


def browser_report(command_id: str) -> str:
    """Set once a page reported a command's click and swaps (a report is taken once)."""
    return f"traces:browser:{command_id}"


def history_samples(bucket: int) -> str:
    """Hash of what was sampled in one 10-s bucket of the status page's history (lag, sockets)."""
    return f"history:samples:{bucket}"
