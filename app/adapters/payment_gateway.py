"""A simulated remote payment gateway, and the client the fulfilment process calls it with.

The "remote side" keeps its own ledger (in Redis, a record per idempotency key of the
caller's under ext:{gateway}:ledger:), so a charge retried after a timeout is found, not taken
again. It is slow and unreliable on purpose: PAYMENT_LATENCY_MS, PAYMENT_FAILURE_RATE. Half of
its failures happen after the charge was recorded (the answer is lost), which is what makes
idempotency keys necessary. Its vault maps tokens to how the card behaves — never to the card
number. Ledger records and vault entries expire after `ttl_seconds` (the process's steps'
dedup records live as long: nothing retries a charge after they are gone).

Each call is a client span (`gateway charge`, its attempts as events) in the caller's trace,
and each attempt is counted by its outcome (`observe`: the process's metrics).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import msgspec
from opentelemetry.trace.status import Status, StatusCode
from redis.asyncio import Redis

from app.kernel import keys, tracing
from app.kernel.backoff import Backoff
from app.kernel.redis_types import text
from app.kernel.scripts import load_script

log = logging.getLogger(__name__)
T = TypeVar("T")

_CHARGE = load_script(__file__, "gateway_charge.lua")
RETRY = Backoff(first=0.05, cap=1.0)
GATE_POLL = Backoff(first=0.02, cap=0.1)
APPROVED_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
VAULT_REMEMBERED = 100_000
"""Tokens a process remembers putting in the vault (a repeat then needs no round trip)."""


def ledger_record(idempotency_key: str) -> str:
    """The remote side's record of one idempotency key (a hash): the charge's `charge_id`,
    `approved`, `amount_cents` and `captures`, or a refund's `refund` (the charge refunded)."""
    return keys.external("gateway", "ledger", idempotency_key)


def vault_entry(token: str) -> str:
    return keys.external("gateway", "vault", token)


class ChargeResult(msgspec.Struct, frozen=True):
    charge_id: str
    approved: bool
    amount_cents: int


class PaymentUnavailable(Exception):
    """No answer from the gateway after every retry."""


class _GatewayError(Exception):
    pass


def _unobserved(_outcome: str) -> None:
    return None


def _answered(what: str, answer: object) -> str:
    """An answered request's outcome, for the metrics."""
    if isinstance(answer, ChargeResult):
        return "approved" if answer.approved else "declined"
    return {"refund": "refunded", "void": "voided"}.get(what, "answered")


class SimulatedGateway:
    def __init__(
        self,
        redis: Redis,
        secret: str,
        *,
        latency_ms: int,
        failure_rate: float,
        timeout_ms: int,
        retries: int,
        ttl_seconds: int,
        rng: random.Random | None = None,
        gated: bool = False,
        observe: Callable[[str], None] = _unobserved,
    ) -> None:
        """`gated`: charges wait until the gate key says `open` (see `through_gate`).
        `observe(outcome)`: each request's outcome — approved, declined, refunded, voided,
        error or timeout."""
        self._redis = redis
        self._secret = secret.encode()
        self._latency = latency_ms / 1000
        self._failure_rate = failure_rate
        self._timeout = timeout_ms / 1000
        self._retries = retries
        self._ttl = ttl_seconds
        self._rng = rng or random.Random()
        self._gated = gated
        self._gate = asyncio.Lock()
        self._observe = observe
        self._vaulted: dict[str, float] = {}
        """Tokens this process put in the vault, and when (monotonic): renewed at half-life."""

    # --- the client side -----------------------------------------------------------------

    async def tokenize(self, card_number: str) -> str:
        """What the web edge keeps instead of the number (with its last four digits)."""
        digest = hmac.new(self._secret, card_number.encode(), hashlib.sha256).hexdigest()
        token = f"tok_{digest[:24]}"
        now = time.monotonic()
        if now - self._vaulted.get(token, -self._ttl) >= self._ttl / 2:
            behaviour = "decline" if card_number == DECLINED_CARD else "approve"
            await self._redis.set(vault_entry(token), behaviour, ex=self._ttl)
            if token in self._vaulted or len(self._vaulted) < VAULT_REMEMBERED:
                self._vaulted[token] = now
        return token

    async def charge(self, idempotency_key: str, token: str, amount_cents: int) -> ChargeResult:
        await self.through_gate()
        return await self._with_retries(
            "charge", lambda: self._remote_charge(idempotency_key, token, amount_cents)
        )

    async def void(self, charge_key: str, refund_key: str | None = None) -> str | None:
        """Give back whatever a charge under `charge_key` took, if it took anything.

        For a charge whose answer never came: it may or may not have been recorded. The
        refund is recorded under `refund_key` (default `void:<charge_key>`), once: a void and
        a refund under the same key give the money back once between them.
        """
        key = refund_key or f"void:{charge_key}"
        return await self._with_retries("void", lambda: self._remote_void(charge_key, key))

    async def refund(self, idempotency_key: str, charge_id: str, amount_cents: int) -> str:
        return await self._with_retries(
            "refund", lambda: self._remote_refund(idempotency_key, charge_id, amount_cents)
        )

    async def _with_retries(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        attributes = {"peer.service": "payment-gateway", "rpc.method": what}
        with tracing.span(f"gateway {what}", kind=tracing.CLIENT, attributes=attributes) as span:
            for attempt in range(self._retries + 1):
                try:
                    answer = await asyncio.wait_for(call(), timeout=self._timeout)
                except (TimeoutError, _GatewayError) as exc:
                    outcome = "error" if isinstance(exc, _GatewayError) else "timeout"
                    self._observe(outcome)
                    if span is not None:
                        span.add_event(
                            "attempt failed", {"attempt": attempt + 1, "outcome": outcome}
                        )
                    log.info(
                        "gateway %s attempt %d failed: %s", what, attempt + 1, exc or "timeout"
                    )
                    await RETRY.sleep(attempt)
                    continue
                outcome = _answered(what, answer)
                self._observe(outcome)
                if span is not None:
                    span.set_attributes(
                        {"gateway.outcome": outcome, "gateway.attempts": attempt + 1}
                    )
                return answer
            if span is not None:
                span.set_status(Status(StatusCode.ERROR, "no answer"))
        raise PaymentUnavailable(f"no answer to {what} after {self._retries + 1} attempts")

    async def through_gate(self) -> None:
        """With the gate on, wait until `ext:{gateway}:gate` is `open` (tests hold charges
        at the gate while they crash things, then open it). One waiter polls at a time."""
        if not self._gated:
            return
        async with self._gate:
            polls = 0
            while await self._redis.get(keys.external("gateway", "gate")) != "open":
                await GATE_POLL.sleep(polls)
                polls += 1

    # --- the simulated remote side ------------------------------------------------------

    async def _network(self) -> None:
        if self._latency:
            await asyncio.sleep(self._latency * self._rng.uniform(0.5, 1.5))

    def _failure(self) -> str:
        """ "" (answered), "before" (refused before doing anything) or "after" (done, answer lost).

        PAYMENT_FAILURE_RATE of the calls fail, half of them after the work was recorded.
        """
        if self._failure_rate <= 0 or self._rng.random() >= self._failure_rate:
            return ""
        return "after" if self._rng.random() < 0.5 else "before"

    async def _remote_charge(self, key: str, token: str, amount_cents: int) -> ChargeResult:
        await self._network()
        failure = self._failure()
        if failure == "before":
            raise _GatewayError("503 from gateway")
        existing = await _CHARGE(
            self._redis,
            [ledger_record(key), vault_entry(token)],
            [f"ch_{hashlib.sha256(key.encode()).hexdigest()[:20]}", amount_cents, self._ttl],
        )
        found = msgspec.json.decode(existing or b"", type=ChargeResult)
        if failure == "after":  # recorded, but the answer is lost on the way back
            await asyncio.sleep(self._timeout * 2)
        await self._network()
        return found

    async def _remote_refund(self, key: str, charge_id: str, amount_cents: int) -> str:
        await self._network()
        failure = self._failure()
        if failure == "before":
            raise _GatewayError("503 from gateway")
        refund_id = f"re_{hashlib.sha256(key.encode()).hexdigest()[:20]}"
        await self._record_refund(key, charge_id)
        if failure == "after":
            await asyncio.sleep(self._timeout * 2)
        return refund_id

    async def _remote_void(self, charge_key: str, refund_key: str) -> str | None:
        await self._network()
        if self._failure():
            raise _GatewayError("503 from gateway")
        charge_id, approved = await self._redis.hmget(
            ledger_record(charge_key), ["charge_id", "approved"]
        )
        if charge_id is None or approved != "1":
            return None
        await self._record_refund(refund_key, text(charge_id))
        return f"re_{hashlib.sha256(refund_key.encode()).hexdigest()[:20]}"

    async def _record_refund(self, key: str, charge_id: str) -> None:
        """Once per refund key: the first charge id given stands."""
        async with self._redis.pipeline(transaction=False) as pipe:  # one slot: {gateway}
            pipe.hsetnx(ledger_record(key), "refund", charge_id)
            pipe.expire(ledger_record(key), self._ttl)
            await pipe.execute()

    # --- for tests and the status page ------------------------------------------------------

    async def captures(self, key: str) -> int:
        """How many times the remote side took money for this key (must never exceed 1)."""
        return int(await self._redis.hget(ledger_record(key), "captures") or 0)
