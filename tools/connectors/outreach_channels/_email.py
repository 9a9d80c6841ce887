"""Direct-style secure email: document requests sent over SMTP with STARTTLS (``aiosmtplib``).

Direct Secure Messaging is SMTP between HISPs (with S/MIME, which the HISP applies); a Direct
address looks like an email address. One message per send, with a ``Message-ID`` derived from
the effect ledger's key, so a send repeated after a crash carries the same id and the receiving
HISP (or a person) can tell it is the same message. Connection failures and 4xx replies
(421/450/451/452) are retried through :class:`Resilience` (nothing was accepted yet); a 5xx
refusal is a :class:`SystemRefusedError`.

Replies by email arrive through the receiving gateway and the HTTP events API (as every
inbound document does), so :meth:`EmailOutreach.due_replies` has nothing to poll.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from carebound.state.outreach import OutreachStore
from carebound.tools.connectors._errors import ConnectorError, SystemRefusedError
from carebound.tools.connectors._outreach import Channel, InboundDocument, OutreachReceipt
from carebound.tools.connectors._resilience import Resilience
from carebound.tools.connectors.config import SmtpConfig
from carebound.tools.connectors.mail import send_mail
from carebound.tools.connectors.outreach_channels._common import (
    require_aware,
    require_send_args,
    run_coroutine,
    sent_once,
)

_CONNECTION_ERRORS = (
    aiosmtplib.SMTPConnectError,
    aiosmtplib.SMTPConnectTimeoutError,
    aiosmtplib.SMTPServerDisconnected,
    aiosmtplib.SMTPTimeoutError,
    ConnectionError,
    TimeoutError,
)


class _SmtpBusyError(Exception):
    """A 4xx SMTP reply (the server is busy or short of resources): worth another try."""


class EmailOutreach:
    """Document requests by Direct-style email over SMTP (see the module docstring).

    Args:
        config: the HISP's SMTP settings (host, port, STARTTLS, sign-in, our address).
        store: this run's outreach state in Redis.
        resilience: retries and the breaker of the HISP (system ``office.smtp``).
        tls_context: the TLS context for STARTTLS (None: the system's trusted CAs).
    """

    channel: Channel = "email"

    def __init__(
        self,
        config: SmtpConfig,
        *,
        store: OutreachStore,
        resilience: Resilience,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._resilience = resilience
        self._tls = tls_context

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
        """Send the request by email (once per ``idempotency_key`` as far as this run knows).

        Raises:
            ConnectorError: no recipient or request id, or a naive ``now``.
            SystemUnavailableError: the HISP cannot be reached (retries spent, breaker open).
            SystemRefusedError: the HISP refused the message (a 5xx reply).
        """
        require_aware(now, "now")
        require_send_args(to, request_id)
        message_id = f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@carebound>"

        def deliver(attempt: int) -> str:
            message = EmailMessage()
            message["From"] = self._config.from_address
            message["To"] = to
            message["Subject"] = subject
            message["Message-ID"] = message_id
            message["Date"] = format_datetime(now)
            message["X-Carebound-Request"] = request_id
            message["X-Carebound-Attempt"] = str(attempt)
            message.set_content(body)
            self._resilience.call(
                lambda: run_coroutine(self._send(message)),
                retryable=True,
                what="SMTP send",
                transient=(*_CONNECTION_ERRORS, _SmtpBusyError),
            )
            return message_id

        return sent_once(self._store, idempotency_key, channel=self.channel, to=to,
                         request_id=request_id, now=now, send=deliver)  # fmt: skip

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        """Nothing: email replies come in through the HTTP events API."""
        require_aware(now, "now")
        return []

    async def _send(self, message: EmailMessage) -> None:
        c = self._config
        try:
            await send_mail(
                message,
                hostname=c.host,
                port=c.port,
                start_tls=c.starttls,
                username=c.username,
                password=c.secret(),
                tls_context=self._tls,
                timeout=c.timeouts.connect_s + c.timeouts.read_s,
            )
        except ssl.SSLError as exc:
            raise ConnectorError(
                f"{self._resilience.system}: TLS with the mail server {c.host} failed "
                f"({exc.reason or type(exc).__name__})",
                hint="check that the server's certificate is valid for its host name and signed "
                "by a CA this machine trusts",
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                raise _SmtpBusyError(f"SMTP {exc.code}") from None
            raise SystemRefusedError(
                f"the mail server refused the message: SMTP {exc.code}",
                system=self._resilience.system,
                status=exc.code,
                hint="check the recipient's Direct address and our sender address and sign-in",
            ) from None
