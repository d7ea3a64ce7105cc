"""The command log (admin), from the journal: recent commands, counts, latencies, history."""

from __future__ import annotations

import time

from app.observability import history
from app.projections import keys
from app.projections.command_log import (
    LATENCIES,
    RECENT,
    CommandLogProjection,
    JournalEntry,
    LoggedCommand,
)
from tests.support.projection_harness import PARTITION, json_text, project_events

LONG_AGO = 1_700_000_000.0
"""Older than the status page's history keeps (an hour): no history bucket."""


def finished(
    status: str = "succeeded",
    *,
    completed: float = LONG_AGO,
    took: float = 0.25,
    command_type: str = "RestockProduct",
    error_code: str = "",
    command_id: str = "c1-0",
) -> JournalEntry:
    """The journal entry of a command that finished `took` seconds after it was accepted."""
    return JournalEntry(
        command_id, command_type, "admin", status, str(completed - took), str(completed), error_code
    )


def test_a_finished_command_is_logged_counted_and_timed() -> None:
    run = project_events(CommandLogProjection(), [finished()])
    logged = LoggedCommand(
        "c1-0", "RestockProduct", "admin", "succeeded", LONG_AGO, 250.0, "", "succeeded"
    )
    assert run.writes == [
        ("lpush", keys.command_log_recent(PARTITION), json_text(logged)),
        ("ltrim", keys.command_log_recent(PARTITION), 0, RECENT - 1),
        ("hincrby", keys.command_log_counts(PARTITION), "succeeded", 1),
        ("hincrby", keys.command_log_counts(PARTITION), "RestockProduct:succeeded", 1),
        ("lpush", keys.command_log_latencies(PARTITION), f"{LONG_AGO}:250.0"),
        ("ltrim", keys.command_log_latencies(PARTITION), 0, LATENCIES - 1),
    ]
    assert run.changes == []  # the status page showing it is pushed every second anyway


def test_a_refused_command_is_logged_with_its_error_code_and_counted_as_a_rejection() -> None:
    """A business rule saying no is a rejection: its status stays `failed`, its kind is not."""
    run = project_events(
        CommandLogProjection(), [finished("failed", error_code="insufficient_stock")]
    )
    (recent, *_) = run.writes
    logged = LoggedCommand(
        "c1-0", "RestockProduct", "admin", "failed", LONG_AGO, 250.0, "insufficient_stock",
        "rejected",
    )  # fmt: skip
    assert recent == ("lpush", keys.command_log_recent(PARTITION), json_text(logged))
    assert ("hincrby", keys.command_log_counts(PARTITION), "rejected", 1) in run.writes
    assert (
        "hincrby",
        keys.command_log_counts(PARTITION),
        "RestockProduct:rejected",
        1,
    ) in run.writes
    assert not [w for w in run.writes if w[0] == "hincrby" and "failed" in str(w[2])]


def test_an_error_a_timeout_or_a_lost_race_is_counted_as_a_failure() -> None:
    entries = [
        finished("failed", error_code=code, command_id=f"c{n}-0")
        for n, code in enumerate(("internal_error", "payment_unavailable", "concurrency_conflict"))
    ]
    run = project_events(CommandLogProjection(), entries)
    assert ("hincrby", keys.command_log_counts(PARTITION), "failed", 3) in run.writes
    assert not [w for w in run.writes if w[0] == "hincrby" and "rejected" in str(w[2])]


def test_a_command_finished_within_the_hour_counts_in_its_10_second_bucket() -> None:
    completed = float(history.bucket_of(time.time()) - 60)
    run = project_events(CommandLogProjection(), [finished(completed=completed)])
    bucket = history.commands_key(PARTITION, int(completed))
    assert run.writes[-3:] == [
        ("hincrby", bucket, "succeeded", 1),
        ("hincrby", bucket, "lat:250", 1),
        ("expire", bucket, history.KEEP_SECONDS),
    ]


def test_a_latency_that_cannot_be_worked_out_counts_as_zero() -> None:
    garbled = JournalEntry("c1-0", "ChangePrice", "admin", "succeeded", "never", str(LONG_AGO))
    backwards = finished(took=-1.0, command_id="c2-0")  # accepted after it finished: clocks
    run = project_events(CommandLogProjection(), [garbled, backwards])
    latencies = next(
        w for w in run.writes if w[:2] == ("lpush", keys.command_log_latencies(PARTITION))
    )
    assert latencies[2:] == (f"{LONG_AGO}:0.0", f"{LONG_AGO}:0.0")


def test_a_batch_of_commands_is_one_push_and_one_trim_per_list() -> None:
    entries = [finished(command_id=f"c{n}-0") for n in range(3)]
    run = project_events(CommandLogProjection(), entries)
    recent = [w for w in run.writes if w[1] == keys.command_log_recent(PARTITION)]
    assert [w[0] for w in recent] == ["lpush", "ltrim"]
    assert list(recent[0][2:]) == [
        json_text(
            LoggedCommand(
                f"c{n}-0", "RestockProduct", "admin", "succeeded", LONG_AGO, 250.0, "", "succeeded"
            )
        )
        for n in range(3)
    ]  # pushed in the order they finished: the newest ends up first
    assert ("hincrby", keys.command_log_counts(PARTITION), "succeeded", 3) in run.writes
    assert run.changes == []  # the status page showing it is pushed every second anyway


def test_journal_entries_carry_no_version_so_each_one_is_applied() -> None:
    """A redelivered batch is kept out by the projection's checkpoint, not by versions."""
    run = project_events(CommandLogProjection(), [finished(), finished()])
    assert (run.applied, run.versions, run.gaps) == (2, {}, [])


def test_once_written_each_finished_command_is_reported_for_the_metrics() -> None:
    reported: list[tuple[str, str, float, float]] = []
    log = CommandLogProjection(lambda *args: reported.append(args))
    garbled = JournalEntry("c9-0", "ChangePrice", "admin", "failed", "", "")
    declined = finished("failed", command_type="PlaceOrder", error_code="payment_declined")
    log.committed([finished(), garbled, finished("failed", command_type="PlaceOrder"), declined])
    assert reported == [
        ("RestockProduct", "succeeded", LONG_AGO - 0.25, LONG_AGO),
        ("PlaceOrder", "failed", LONG_AGO - 0.25, LONG_AGO),
        ("PlaceOrder", "rejected", LONG_AGO - 0.25, LONG_AGO),
    ]
