"""Direct-style email outreach over SMTP with STARTTLS (issue 15), against a real SMTP server.

The server is ``aiosmtpd`` on a loopback port, requiring STARTTLS with a throwaway certificate
from ``trustme``; carebound's client is ``aiosmtplib`` trusting that CA only.
"""

from __future__ import annotations

import datetime as dt
import email
import gc
import ssl
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
import redis
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from carebound.state.breaker import BreakerStore
from carebound.tools.connectors import ConnectorError, SystemRefusedError, SystemUnavailableError
from carebound.tools.connectors._bundle import RunContext
from carebound.tools.connectors.config import OfficeConfig
from carebound.tools.connectors.outreach_channels import SMTP_SYSTEM, build_outreach
from tests.servers import free_port

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@dataclass
class Mailbox:
    """What the SMTP server received, and the replies it gives to DATA (the last repeats)."""

    replies: list[str] = field(default_factory=lambda: ["250 OK"])
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        self.tls.append(session.ssl is not None)
        if reply.startswith("250"):
            message = email.message_from_bytes(envelope.content)
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return reply


@dataclass
class Smtp:
    mailbox: Mailbox
    port: int
    client_tls: ssl.SSLContext


class _SlowQuitSmtp(SMTP):
    """Answers QUIT, then stalls half a second, its whole event loop included (a busy
    machine), before it closes: the TLS close a client starts then waits for this server, and
    a client that does not wait for it leaves its socket behind."""

    async def smtp_QUIT(self, arg: str) -> None:
        await self.push("221 Bye")
        time.sleep(0.5)  # blocks the server's loop: nothing answers the client's close_notify
        assert self._handler_coroutine is not None and self.transport is not None
        self._handler_coroutine.cancel()
        self.transport.close()


class _SlowQuitController(Controller):
    def factory(self) -> SMTP:
        return _SlowQuitSmtp(self.handler, **self.SMTP_kwargs)


@pytest.fixture(params=[Controller, _SlowQuitController], ids=["prompt", "slow-quit"])
def smtp(request: pytest.FixtureRequest) -> Iterator[Smtp]:
    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_tls)
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    mailbox = Mailbox()
    port = free_port()
    controller = request.param(mailbox, hostname="127.0.0.1", port=port,
                               tls_context=server_tls, require_starttls=True)  # fmt: skip
    controller.start()
    try:
        yield Smtp(mailbox, port, client_tls)
    finally:
        controller.stop()


def _outreach(client: redis.Redis, prefix: str, port: int, tls: ssl.SSLContext | None,
              run_id: str = "run-mail") -> Any:  # fmt: skip
    config = OfficeConfig.model_validate({"smtp": {
        "host": "127.0.0.1", "port": port, "from_address": "referrals@direct.clinic.test",
        "retry": {"attempts": 3, "backoff_s": 0.01, "cap_s": 1, "jitter_s": 0},
        "breaker": {"failure_threshold": 2, "reset_timeout_s": 60},
        "timeouts": {"connect_s": 2, "read_s": 5},
    }})  # fmt: skip
    run = RunContext(run_id=run_id, agent="referral_chaser", prefix=prefix, client=client)
    return build_outreach(config, run, clock=lambda: NOW, smtp_tls_context=tls)


def _send(outreach: Any, key: str, to: str = "dr.lee@direct.office.test") -> Any:
    return outreach.send(
        "email", to, subject="Documents needed for referral SR-1",
        body="Please send the progress note (LOINC 11506-3). Quote docreq-1.",
        request_id="docreq-1", requested_codes=["11506-3"], idempotency_key=key, now=NOW,
    )  # fmt: skip


def test_a_request_goes_out_over_starttls_once_per_key(
    redis_client: redis.Redis, key_prefix: str, smtp: Smtp
) -> None:
    outreach = _outreach(redis_client, key_prefix, smtp.port, smtp.client_tls)
    first = _send(outreach, "run-mail:send:1")
    again = _send(outreach, "run-mail:send:1")
    second = _send(outreach, "run-mail:send:2")
    assert again == first
    assert (first.attempt, second.attempt) == (1, 2)
    assert len(smtp.mailbox.messages) == 2
    assert smtp.mailbox.tls == [True, True]
    sender, rcpts, message = smtp.mailbox.messages[0]
    assert sender == "referrals@direct.clinic.test"
    assert rcpts == ["dr.lee@direct.office.test"]
    assert message["Message-ID"] == first.message_id
    assert message["X-Carebound-Request"] == "docreq-1"
    assert "11506-3" in message.get_payload()
    assert outreach.due_replies(NOW) == []  # email replies come through the events API


def test_an_untrusted_certificate_is_refused(
    redis_client: redis.Redis, key_prefix: str, smtp: Smtp
) -> None:
    outreach = _outreach(redis_client, key_prefix, smtp.port, ssl.create_default_context())
    with pytest.raises(ConnectorError, match=r"TLS with the mail server 127\.0\.0\.1 failed"):
        _send(outreach, "run-mail:send:1")
    assert smtp.mailbox.messages == []


def test_a_busy_server_is_retried_a_refusal_is_not(
    redis_client: redis.Redis, key_prefix: str, smtp: Smtp
) -> None:
    smtp.mailbox.replies = ["451 4.3.0 try again later", "250 OK"]
    outreach = _outreach(redis_client, key_prefix, smtp.port, smtp.client_tls)
    with _no_socket_left_behind():
        _send(outreach, "run-mail:send:1")
    assert len(smtp.mailbox.messages) == 1

    smtp.mailbox.replies = ["550 5.1.1 no such mailbox"]
    with _no_socket_left_behind(), pytest.raises(SystemRefusedError, match="SMTP 550") as caught:
        _send(outreach, "run-mail:send:2")
    assert caught.value.system == SMTP_SYSTEM
    assert len(smtp.mailbox.tls) == 3  # 451, 250, 550: the refusal was not tried again


@contextmanager
def _no_socket_left_behind() -> Iterator[None]:
    """Every connection the block opened is closed when it ends: collecting garbage right
    after warns of no unclosed socket or transport (a send that returned before its TLS
    connection was shut left one, and pytest reported it in whichever test came next)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        yield
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == []


def test_a_server_that_is_down_opens_the_breaker(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    outreach = _outreach(redis_client, key_prefix, free_port(), None)
    for n in range(2):
        with pytest.raises(SystemUnavailableError, match="office-email is unavailable"):
            _send(outreach, f"run-mail:send:{n}")
    with pytest.raises(SystemUnavailableError, match="circuit breaker is open") as caught:
        _send(outreach, "run-mail:send:3")
    assert caught.value.retry_at == NOW + dt.timedelta(seconds=60)
    assert BreakerStore(redis_client, prefix=key_prefix).state(SMTP_SYSTEM) == "open"


def test_a_channel_that_is_not_configured_is_refused(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    outreach = _outreach(redis_client, key_prefix, free_port(), None)
    with pytest.raises(ConnectorError, match="no fax channel is configured") as caught:
        outreach.send("fax", "+1-555-0100", subject="s", body="b", request_id="r",
                      requested_codes=[], idempotency_key="k", now=NOW)  # fmt: skip
    assert "configured: email" in (caught.value.hint or "")
