"""Simulated outreach: requests go nowhere, replies come from the scenario's reply scripts;
state in Redis under the run's hash tag."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import get_args

import redis
from pydantic import JsonValue, TypeAdapter

from carebound.state.keys import DEFAULT_PREFIX
from carebound.state.lua import script as lua_script
from carebound.state.segment_reads import forget_reads
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._fhir import validate_resource
from carebound.tools.connectors._outreach import (
    Channel,
    InboundDocument,
    OutreachConnector,
    OutreachReceipt,
    ReplyScript,
    require_aware,
)
from carebound.tools.connectors.simulated._redis_state import (
    ConnectorState,
    EffectRecord,
    GuardFailed,
    WriteBatch,
    text,
)

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_CLAIM_DUE = lua_script("outreach_claim_due")

_SCRIPTS = TypeAdapter(list[ReplyScript])


def _parse_scripts(raw: str | None) -> list[ReplyScript]:
    return [] if raw is None else _SCRIPTS.validate_json(raw)


class SimulatedOutreach:
    """Simulated fax/portal/email/phone outreach whose state lives in Redis.

    Args:
        client: a sync Redis client.
        run_id: the run whose world this is.
        prefix: the key prefix.
    """

    def __init__(self, client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._state = ConnectorState(client, run_id, prefix=prefix, system="outreach")
        self._config = self._state.key("config")
        self._request_attempts = self._state.key("request_attempts")
        self._due = self._state.key("inbox", "due")
        self._items = self._state.key("inbox", "items")

    def send(
        self,
        channel: Channel,
        to: str,
        *,
        subject: str,
        body: str,
        request_id: str,
        requested_codes: Sequence[str],
        idempotency_key: str,
        now: dt.datetime,
    ) -> OutreachReceipt:
        """Send a request and schedule the scripted replies it triggers.

        The send, the request's attempt count and the scheduled replies are written in one
        atomic step, recorded once per ``idempotency_key``.

        Raises:
            ConnectorError: unknown channel, empty recipient or request id, or a naive ``now``.
        """
        require_aware(now, "now")
        if channel not in get_args(Channel):
            raise ConnectorError(
                f"outreach: unknown channel {channel!r}",
                hint=f"use one of: {', '.join(get_args(Channel))}",
            )
        if not to.strip() or not request_id.strip():
            raise ConnectorError(
                "outreach: send needs a recipient (to=) and a request_id",
                hint="pass the fax number/address and the id of the request being chased",
            )
        codes = list(requested_codes)

        def compute(values: list[str | None]) -> tuple[WriteBatch, dict[str, JsonValue], JsonValue]:
            count_raw, scripts_raw = values
            attempt = int(count_raw or 0) + 1
            message_id = "msg-" + self._state.derived_id("send", idempotency_key)
            receipt = OutreachReceipt(
                message_id=message_id,
                channel=channel,
                to=to,
                request_id=request_id,
                attempt=attempt,
                sent_at=now,
            )
            batch = WriteBatch()
            batch.guard(self._request_attempts, request_id, count_raw)
            batch.op("HSET", self._request_attempts, request_id, str(attempt))
            scheduled: list[JsonValue] = []
            for n, script in enumerate(_parse_scripts(scripts_raw)):
                if not _matches(script, to, attempt):
                    continue
                reply = InboundDocument.build(
                    inbound_id=f"{message_id}-r{n}",
                    request_id=request_id,
                    channel=script.reply_channel or channel,
                    sender=to,
                    received_at=now + script.after,
                    documents=script.documents,
                )
                self._schedule(batch, reply)
                scheduled.append(
                    {"inbound_id": reply.inbound_id, "due": reply.received_at.isoformat()}
                )
            payload: dict[str, JsonValue] = {
                "channel": channel,
                "to": to,
                "subject": subject,
                "body": body,
                "request_id": request_id,
                "requested_codes": list(codes),
                "attempt": attempt,
                "sent_at": now.isoformat(),
                "scheduled_replies": scheduled,
            }
            return batch, payload, receipt.model_dump(mode="json")

        reads = [(self._request_attempts, request_id), (self._config, "replies")]
        record = self._state.apply_once(idempotency_key, "send", compute, reads=reads)
        return OutreachReceipt.model_validate(record.result)

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        """Atomically take every reply received up to ``now``, oldest first.

        A reply is handed out once: concurrent callers never both get it.
        """
        require_aware(now, "now")
        forget_reads([self._due, self._items])
        raws = _CLAIM_DUE(self._state.client, [self._due, self._items], [str(_micros(now))])
        replies = [InboundDocument.model_validate_json(text(raw)) for raw in raws]
        return sorted(replies, key=lambda r: (r.received_at, r.inbound_id))

    def next_due(self) -> dt.datetime | None:
        """When the earliest reply not yet taken arrives (to advance a virtual clock), or None."""
        first = self._state.client.zrange(self._due, 0, 0, withscores=True)
        if not first:
            return None
        return _EPOCH + dt.timedelta(microseconds=int(first[0][1]))

    def inject_inbound(self, doc: InboundDocument) -> None:
        """Deliver a message at ``doc.received_at`` as if it came in (tests, scenario events).

        Idempotent on ``doc.inbound_id``: injecting the same message again does nothing.

        Raises:
            FhirValidationError: a document's DocumentReference is not valid FHIR R4.
        """
        for item in doc.documents:
            validate_resource(item.resource, where=f"outreach inbound {doc.inbound_id}")
        batch = WriteBatch()
        batch.guard(self._items, doc.inbound_id, None)
        self._schedule(batch, doc)
        try:
            self._state.apply(batch)
        except GuardFailed:
            return

    def scripts(self) -> list[ReplyScript]:
        """The reply scripts this world was seeded with."""
        return _parse_scripts(self._state.hget(self._config, "replies"))

    def seed(self, batch: WriteBatch, replies: Iterable[ReplyScript]) -> None:
        """Add the write that stores the reply scripts to a seeding batch."""
        batch.op("HSET", self._config, "replies", _SCRIPTS.dump_json(list(replies)).decode())

    def effects(self) -> list[EffectRecord]:
        """Every message sent, one per idempotency key, in order."""
        return self._state.effects()

    def attempts(self) -> int:
        """How many send calls came in, repeats included."""
        return self._state.attempts()

    def _schedule(self, batch: WriteBatch, reply: InboundDocument) -> None:
        batch.op("HSET", self._items, reply.inbound_id, reply.model_dump_json())
        batch.op("ZADD", self._due, str(_micros(reply.received_at)), reply.inbound_id)


def _matches(script: ReplyScript, to: str, attempt: int) -> bool:
    if script.to != "*" and script.to.strip().casefold() != to.strip().casefold():
        return False
    return (script.attempt or 1) == attempt


def _micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


def _conforms(connector: SimulatedOutreach) -> OutreachConnector:
    """Static check (mypy): the simulation implements the interface."""
    return connector
