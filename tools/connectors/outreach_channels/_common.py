"""What the real outreach channels share: the effect identifier, receipts, running a coroutine."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
from collections.abc import Coroutine
from typing import Any, TypeVar

from carebound.state.outreach import OutreachStore
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._outreach import Channel, OutreachReceipt

T = TypeVar("T")

EFFECT_ID_SYSTEM = "urn:carebound:effect"
"""Identifier system of every resource carebound writes: the value is the effect ledger's key,
so a retried write finds the first (conditional create) instead of making a second."""
REQUEST_ID_SYSTEM = "urn:carebound:outreach-request"
"""Identifier system of the request (the referral's document-request Task) a message chases."""


def require_aware(moment: dt.datetime, name: str) -> None:
    """Refuse a naive datetime (every outreach time is aware)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ConnectorError(
            f"outreach: {name} has no time zone",
            hint="pass an aware datetime, e.g. datetime.now(timezone.utc) or the run's clock",
        )


def require_send_args(to: str, request_id: str) -> None:
    """Refuse a send with no recipient or request id."""
    if not to.strip() or not request_id.strip():
        raise ConnectorError(
            "outreach: send needs a recipient (to=) and a request_id",
            hint="pass the address or endpoint and the id of the request being chased",
        )


def sent_once(
    store: OutreachStore,
    idempotency_key: str,
    *,
    channel: Channel,
    to: str,
    request_id: str,
    now: dt.datetime,
    send: Any,
) -> OutreachReceipt:
    """Send at most once per ``idempotency_key`` as far as this run's store knows: a key with a
    kept receipt returns it; otherwise ``send(attempt)`` runs and returns the message id, and
    the receipt is kept (the channel itself makes a send repeated after a crash harmless where
    it can: a conditional create, a stable Message-ID)."""
    kept = store.receipt(idempotency_key)
    if kept is not None:
        return OutreachReceipt.model_validate_json(kept)
    attempt = store.attempt(request_id, idempotency_key)
    message_id = send(attempt)
    receipt = OutreachReceipt(
        message_id=message_id,
        channel=channel,
        to=to,
        request_id=request_id,
        attempt=attempt,
        sent_at=now,
    )
    return OutreachReceipt.model_validate_json(
        store.keep_receipt(idempotency_key, receipt.model_dump_json())
    )


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, also when this thread runs an event loop
    (then in a helper thread with its own loop)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
