"""The load test's report: built from the shards' messages, as a table and as JSON; and the
arguments and push frames it reads."""

from __future__ import annotations

import argparse

import msgspec
import pytest

from app.loadtest.options import LoadOptions, accounts, add_arguments, options_from
from app.loadtest.report import Report, completed_rate, progress_line, render
from app.loadtest.run import Gather, build_report, sell_out_warning, share
from app.loadtest.shard import Counts, Done, OrderRecord, Ready, Tick
from app.loadtest.stats import summarize
from app.loadtest.wire import CommandStatus, Step, pushes

T0 = 1_800_000_000.0


def status(command_id: str, *steps: tuple[str, str]) -> CommandStatus:
    final = steps[-1][0]
    return CommandStatus(command_id, final, [Step(name, at) for name, at in steps])


def done(shard: int, counts: Counts, **fields: object) -> Done:
    values: dict[str, object] = {
        "started": T0,
        "ended": T0 + 10,
        "first_sent": T0,
        "last_answer": T0 + 8,
        "last_outcome": T0 + 10,
        "orders": [],
        "error_kinds": {},
        "failure_codes": {},
        "close_codes": {},
    }
    values.update(fields)
    return msgspec.convert(
        {"shard": shard, "counts": msgspec.to_builtins(counts), **values}, Done, strict=False
    )


def gathered() -> Gather:
    gather = Gather(2)
    gather.receive(Ready(0))
    gather.receive(Ready(1))
    gather.receive(Tick(0, Counts(attempts=3), [10.0, 20.0], [1.0]))
    gather.receive(Tick(1, Counts(attempts=1), [30.0], [2.0, 3.0]))
    gather.receive(
        done(
            0,
            Counts(
                attempts=110, accepted=100, shed=8, errors=2, succeeded=97, rejected=2, failed=1
            ),
            error_kinds={"409 insufficient_stock": 2},
            rejection_codes={"payment_declined": 2},
            failure_codes={"payment_unavailable": 1},
            orders=[OrderRecord("c1-0", 0, "succeeded", 10.0)],
        )
    )
    gather.receive(
        done(
            1,
            Counts(attempts=100, accepted=100, succeeded=100, watcher_dropped=1),
            first_sent=T0 - 1,
            last_outcome=T0 + 9,
            close_codes={"watcher 1013": 1},
        )
    )
    return gather


def test_gather_knows_when_all_shards_are_ready_and_done() -> None:
    gather = Gather(2)
    gather.receive(Ready(0))
    assert not gather.all_ready.is_set()
    gather.receive(Ready(1))
    assert gather.all_ready.is_set()
    assert gathered().all_done.is_set()


def test_the_totals_add_up_every_shard_and_ticks_keep_every_sample() -> None:
    gather = gathered()
    total = gather.total()
    assert (total.attempts, total.accepted, total.shed, total.succeeded) == (210, 200, 8, 197)
    assert (total.rejected, total.failed) == (2, 1)
    assert gather.latencies == [10.0, 20.0, 30.0]
    assert gather.push == [1.0, 2.0, 3.0]


def test_the_report_has_rates_shares_steps_and_drops() -> None:
    statuses = [
        status(
            "c1-0",
            ("accepted", "2026-01-01T00:00:00.000Z"),
            ("processing", "2026-01-01T00:00:00.002Z"),
            ("stock_reserved", "2026-01-01T00:00:00.005Z"),
            ("payment_captured", "2026-01-01T00:00:00.009Z"),
            ("succeeded", "2026-01-01T00:00:00.012Z"),
        ),
        status(
            "c2-0",
            ("accepted", "2026-01-01T00:00:00.000Z"),
            ("stock_reserved", "2026-01-01T00:00:00.003Z"),
            ("failed", "2026-01-01T00:00:00.004Z"),
        ),
    ]
    report = build_report(LoadOptions(watchers=5), gathered(), statuses, T0)
    assert report.seconds == pytest.approx(11.0)
    # accepted per second of sending: first request (T0 - 1) to last answer (T0 + 8)
    assert report.accepts.accepted_per_second == pytest.approx(200 / 9, abs=0.01)
    assert report.accepts.shed_pct == pytest.approx(100 * 8 / 210, abs=0.01)
    assert report.accepts.error_kinds == {"409 insufficient_stock": 2}
    assert report.orders.completed == 200
    assert report.orders.completed_per_second == pytest.approx(200 / 11, abs=0.01)
    assert (report.orders.rejected, report.orders.failed) == (2, 1)
    assert report.orders.rejection_codes == {"payment_declined": 2}
    assert report.orders.failure_codes == {"payment_unavailable": 1}
    assert [s.transition for s in report.steps] == [
        "accepted → processing",
        "accepted → stock_reserved",
        "processing → stock_reserved",
        "stock_reserved → payment_captured",
        "stock_reserved → failed",
        "payment_captured → succeeded",
    ]
    assert report.end_to_end_ms.count == 1
    assert report.end_to_end_ms.p50 == pytest.approx(12.0)
    assert report.push.watchers_dropped == 1
    assert report.push.close_codes == {"watcher 1013": 1}
    assert report.push.note is None  # the default URL is this machine


def test_push_latency_on_another_host_carries_a_clock_note() -> None:
    report = build_report(LoadOptions(url="http://shop.example:8000"), gathered(), [], T0)
    assert report.push.note is not None
    assert "shop.example" in report.push.note


def test_the_table_shows_every_figure_and_the_json_round_trips() -> None:
    report = build_report(LoadOptions(watchers=5, rate=50), gathered(), [], T0)
    table = render(report)
    for expected in (
        "open loop at 50 orders/s",
        "accepted 200 (95.2%",
        "shed 503 8 (3.8%)",
        "orders completed 200",
        "client: send → outcome seen",
        "push to 5 catalog watchers",
        "sockets dropped: watchers 1",
        "409 insufficient_stock: 2",
    ):
        assert expected in table, (expected, table)
    encoded = msgspec.json.encode(report)
    assert msgspec.json.decode(encoded, type=Report) == report


def test_the_progress_line_shows_done_rate_outcomes_percentiles_and_errors() -> None:
    counts = Counts(accepted=130, shed=4, errors=1, succeeded=100, rejected=15, failed=5)
    line = progress_line(3.0, counts, completed_rate(120, 3.0), summarize([5.0, 15.0]), [2.0])
    assert "done 120 (40.0/s)" in line
    assert "succeeded 100  rejected 15  failed 5" in line
    assert "p50 10.0 ms" in line
    assert "shed 4" in line
    assert "errors 1" in line
    assert "push p99" in line


def test_the_live_line_and_the_table_share_one_rate() -> None:
    """Completed orders over the seconds since the first was sent: at the end of a run the
    live line says what the table says (not the last second's burst)."""
    assert completed_rate(236, 10.25) == 23.02
    assert completed_rate(0, 0.0) == 0.0


def test_ordering_the_catalog_warns_before_it_could_sell_out() -> None:
    assert sell_out_warning(LoadOptions(orders=10), available=100, products=8) == ""
    warned = sell_out_warning(LoadOptions(orders=100), available=100, products=8)
    assert "sell the catalog out" in warned and "100 units" in warned
    assert "sell the catalog out" in sell_out_warning(LoadOptions(), 10**6, 8)


def test_by_default_the_load_test_makes_its_own_products() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert options_from(parser.parse_args([])).create_products == 8
    assert options_from(parser.parse_args(["--use-catalog"])).create_products == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--use-catalog", "--create-products", "3"])


def test_the_load_is_shared_out_over_processes_without_losing_any() -> None:
    assert [share(10, 3, i) for i in range(3)] == [4, 3, 3]
    assert sum(share(7, 4, i) for i in range(4)) == 7


def test_arguments_become_options() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = options_from(
        parser.parse_args(["--orders", "30", "--users", "carol:c-pass", "--rate", "50"])
    )
    assert options.orders == 30
    assert options.duration == 0.0
    assert options.rate == 50.0
    assert [u.username for u in options.users] == ["carol"]
    assert options.admin.username == "admin"
    defaults = options_from(parser.parse_args([]))
    assert defaults.duration == 10.0
    assert [u.username for u in defaults.users] == ["alice", "bob"]


def test_accounts_need_a_name_and_a_password() -> None:
    assert [a.password for a in accounts("alice:alice-pass, bob:b:c")] == ["alice-pass", "b:c"]
    for bad in ("alice", "alice:", ":pass", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            accounts(bad)


def test_a_push_frame_holds_one_message_or_an_array_of_them() -> None:
    one = pushes(b'{"type":"command","command_id":"c-1","status":"succeeded","error":null}')
    assert [(p.type, p.status) for p in one] == [("command", "succeeded")]
    many = pushes(
        b'[{"type":"view","view":"catalog","key":"A","position":"0:5-0","data":{}},'
        b'{"type":"command","command_id":"c-2","status":"failed",'
        b'"error":{"code":"payment_declined","detail":"no"}}]'
    )
    assert [p.type for p in many] == ["view", "command"]
    assert many[0].position == "0:5-0"
    assert many[1].error is not None and many[1].error.code == "payment_declined"
