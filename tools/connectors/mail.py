"""One SMTP send that returns only once its connection is shut (``aiosmtplib``).

``aiosmtplib.send`` returns as soon as the server has answered ``QUIT``; closing a STARTTLS
connection then still needs the event loop (the TLS ``close_notify`` exchange, then the
socket's close). carebound sends from sync code through ``asyncio.run``, which stops its loop
right after the send returns: on a busy machine the socket was left open and reported as an
unclosed transport when collected. :func:`send_mail` waits for the connection to be lost
before it returns, whatever the server answered; a server that has not finished the close
within ``close_timeout`` seconds has its connection aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from aiosmtplib.protocol import SMTPProtocol

__all__ = ["send_mail"]


class _SMTP(aiosmtplib.SMTP):
    """An SMTP client that knows when its connection is gone."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lost = asyncio.Event()

    def _on_connection_lost(self, protocol: SMTPProtocol) -> None:
        super()._on_connection_lost(protocol)
        self.lost.set()


async def send_mail(message: EmailMessage, *, close_timeout: float = 5.0, **options: Any) -> None:
    """Send ``message`` (``options``: those of :class:`aiosmtplib.SMTP`: ``hostname``, ``port``,
    ``start_tls``, ``username``, ``password``, ``tls_context``, ``timeout``) and return once the
    connection is closed. Raises what :meth:`aiosmtplib.SMTP.send_message` raises."""
    client = _SMTP(**options)
    transport: asyncio.BaseTransport | None = None
    try:
        async with client:
            try:
                await client.send_message(message)
            finally:
                transport = client.transport  # after STARTTLS: the TLS one
    finally:
        if transport is not None:
            try:
                await asyncio.wait_for(client.lost.wait(), close_timeout)
            except TimeoutError:  # the server never finished the TLS close: drop it
                if isinstance(transport, asyncio.Transport):
                    transport.abort()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(client.lost.wait(), close_timeout)
