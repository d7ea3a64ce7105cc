"""Which status a commit writes for a command, and how a stored status reads back."""

from __future__ import annotations

import msgspec

from app.kernel import command_status
from app.kernel.command_status import POSITION, QueuePlace, StatusChange, status_view
from app.kernel.commit import StatusWrite
from app.kernel.errors import problem
from app.kernel.messages import CommandEnvelope, Step

AT = 1_700_000_000.5
ACCEPTED_AT = 1_700_000_000.0
OUT_OF_STOCK = problem("out_of_stock", 409, "Only 2 left")


def envelope(*, internal: bool = False) -> CommandEnvelope:
    return CommandEnvelope(
        command_id="c1-3",
        type="RestockProduct",
        body=msgspec.Raw(b"{}"),
        aggregate_id="MUG-001",
        sender="alice",
        accepted_at=ACCEPTED_AT,
        internal=internal,
    )


def steps(write: StatusWrite) -> list[str]:
    return [msgspec.json.decode(step, type=Step).name for step in write.steps]


def test_a_complete_decision_succeeds_in_its_commit() -> None:
    outcome, (write,) = command_status.decided(envelope(), "queued", complete=True, step="", at=AT)
    assert outcome == "succeeded"
    assert write.final and write.id == "c1-3"
    assert write.fields["status"] == "succeeded"
    assert write.fields["completed_at"] == str(AT)
    assert write.fields["position"] == POSITION
    assert steps(write) == ["succeeded"]


def test_an_inline_command_gets_its_accepted_step_from_its_commit() -> None:
    _, (write,) = command_status.decided(envelope(), "inline", complete=True, step="", at=AT)
    assert steps(write) == ["accepted", "succeeded"]
    assert write.fields["sender"] == "alice"


def test_a_decision_a_process_goes_on_with_is_processing_at_its_step() -> None:
    outcome, (write,) = command_status.decided(
        envelope(), "queued", complete=False, step="reserving", at=AT
    )
    assert outcome == "processing"
    assert not write.final
    assert write.fields["status"] == "processing"
    assert "completed_at" not in write.fields
    assert steps(write) == ["reserving"]


def test_an_internal_command_keeps_an_outcome_but_writes_no_status() -> None:
    assert command_status.decided(
        envelope(internal=True), "queued", complete=True, step="", at=AT
    ) == ("succeeded", [])
    assert command_status.decided(
        envelope(internal=True), "queued", complete=False, step="x", at=AT
    ) == ("processing", [])
    assert command_status.refused(envelope(internal=True), OUT_OF_STOCK, "queued") == (
        "failed",
        [],
    )


def test_a_refused_command_fails_with_its_error() -> None:
    outcome, (write,) = command_status.refused(envelope(), OUT_OF_STOCK, "queued")
    assert outcome == "failed"
    assert write.final
    assert write.fields["status"] == "failed"
    assert write.fields["error_code"] == "out_of_stock"
    assert msgspec.json.decode(write.fields["error"])["detail"] == "Only 2 left"
    assert steps(write) == ["failed"]


def test_a_runner_closes_its_queued_command() -> None:
    outcome, (write,) = command_status.closed(envelope(), "succeeded", None)
    assert outcome == "succeeded"
    assert write.final and "error" not in write.fields
    assert steps(write) == ["succeeded"]  # queued: its `accepted` step was written at enqueue


class Reserved(msgspec.Struct):
    pass


class Paid(msgspec.Struct):
    pass


class Rejected(msgspec.Struct):
    pass


def test_events_move_the_command_they_are_steps_of() -> None:
    def follow(event: msgspec.Struct) -> StatusChange | None:
        if isinstance(event, Reserved):
            return StatusChange(step="stock_reserved")
        if isinstance(event, Rejected):
            return StatusChange(status="failed", error=OUT_OF_STOCK)
        return None

    step, end = command_status.followed("o1-2", follow, [Reserved(), Paid(), Rejected()], AT)
    assert (step.id, step.final, steps(step)) == ("o1-2", False, ["stock_reserved"])
    assert (end.id, end.final, steps(end)) == ("o1-2", True, ["failed"])
    assert end.fields["status"] == "failed"
    assert end.fields["error_code"] == "out_of_stock"


def test_a_stored_status_reads_back_as_its_view() -> None:
    write = command_status.refused(envelope(), OUT_OF_STOCK, "inline")[1][0]
    record = {**write.fields, "position": "3:5-0"}
    view = status_view("c1-3", record, write.steps)
    assert view.status == "failed"
    assert [s.name for s in view.steps] == ["accepted", "failed"]
    assert view.error == OUT_OF_STOCK
    assert view.position == "3:5-0"
    assert view.accepted_at == "2023-11-14T22:13:20.000Z"


def test_the_queue_place_is_shown_only_until_the_command_ends() -> None:
    place = msgspec.json.encode(QueuePlace(ahead=12, estimate_seconds=3.0)).decode()
    waiting = status_view("c1-3", {"status": "accepted", "queue": place}, [])
    assert waiting.queue == QueuePlace(12, 3.0)
    done = status_view("c1-3", {"status": "succeeded", "queue": place}, [])
    assert done.queue is None
