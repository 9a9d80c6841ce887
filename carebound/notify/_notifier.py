"""The notifier: tells each role's channels when a hold waits for them.

:meth:`Notifier.sweep` (``carebound worker`` calls it on every sweep) reads the audit index from
where it stopped and announces new holds and escalations; it also announces holds whose
deadline is within ``warn_before_s``; and it retries failed deliveries with backoff. Each notice
is claimed in Redis before it is sent, so two workers never send one twice; a claimed notice
is also scheduled for a retry, so one whose sender died is sent later (receivers get the
notice key as ``X-Carebound-Delivery`` to drop a rare repeat). Every delivery is logged
(:meth:`carebound.state.notify.NotifyStore.log`).
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any

import httpx
import redis

from carebound.approvals import ApprovalStore
from carebound.clock import Clock, to_ms
from carebound.notify._messages import Notice, NoticeKind, signature, target_id
from carebound.state.notify import NotifyStore
from carebound.tools.connectors.config import NotifyConfig
from carebound.tools.connectors.mail import send_mail

CLAIM_S = 60.0
"""A claimed notice not confirmed sent within this long is tried again."""
EVENTS_PER_SWEEP = 1_000


@dataclass
class NotifyReport:
    """What one sweep did."""

    sent: int = 0
    failed: int = 0
    """Deliveries that failed this sweep (retried later, or given up after the last try)."""
    given_up: int = 0


@dataclass(frozen=True)
class _Hold:
    approval_id: str
    run_id: str
    role: str
    rule: str | None
    tool: str
    deadline: datetime | str | None


@dataclass(frozen=True)
class _Target:
    id: str
    role: str
    send: Callable[[Notice], None]


class Notifier:
    """Sends notices for one store to the channels of a :class:`NotifyConfig`."""

    def __init__(
        self,
        client: redis.Redis,
        config: NotifyConfig,
        *,
        prefix: str,
        clock: Clock,
        http: httpx.Client | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._store = NotifyStore(client, prefix=prefix)
        self._approvals = ApprovalStore(client, prefix=prefix)
        self._config = config
        self._clock = clock
        self._owns_http = http is None
        self._http = http or httpx.Client(timeout=httpx.Timeout(10.0))
        self._tls = tls_context
        self._targets = list(self._build_targets())

    def close(self) -> None:
        """Close the HTTP client the notifier made for itself (a client passed in as ``http``
        is the caller's to close)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build_targets(self) -> Iterator[_Target]:
        for hook in self._config.webhooks:
            url = str(hook.url)
            yield _Target(target_id("webhook", url), hook.role, self._webhook(url, hook.secret_env))
        for mailbox in self._config.email:
            to = ",".join(mailbox.to)
            yield _Target(target_id("email", to), mailbox.role, self._email(mailbox.to))

    def sweep(self) -> NotifyReport:
        """Announce new holds, escalations and holds due soon; retry failed deliveries."""
        report = NotifyReport()
        now_ms = to_ms(self._clock.now())
        events, last = self._store.new_events(EVENTS_PER_SWEEP)
        for event in events:
            for notice in self._notices_of(event):
                self._claim_and_send(notice, report, now_ms)
        if last is not None:
            self._store.advance(last)
        soon = now_ms + int(self._config.warn_before_s * 1000)
        for approval_id in self._store.due_soon(now_ms, soon):
            view = self._approvals.get(approval_id)
            if view is None or view.status != "pending":
                continue
            r = view.request
            hold = _Hold(approval_id, r.run_id, view.required_role, r.rule_id, r.tool,
                         view.deadline)  # fmt: skip
            for notice in self._for_role("due_soon", hold):
                self._claim_and_send(notice, report, now_ms)
        for key in self._store.due_retries(now_ms):
            state = self._store.get(key)
            if state is not None and state["status"] != "sent":
                self._send(Notice.model_validate(state["notice"]), state, report, now_ms)
        return report

    def _notices_of(self, event: dict[str, Any]) -> Iterator[Notice]:
        detail = event.get("detail") or {}
        if event.get("action") == "hold":
            yield from self._for_role("hold", _Hold(
                str(detail["approval_id"]), str(event["run_id"]), str(detail["role"]),
                detail.get("rule"), str(detail.get("tool")), detail.get("deadline"),
            ))  # fmt: skip
        elif event.get("action") == "decision" and detail.get("outcome") == "escalated":
            approval_id = str(detail["approval_id"])
            view = self._approvals.get(approval_id)
            if view is None:
                return
            r = view.request
            yield from self._for_role("escalated", _Hold(
                approval_id, r.run_id, str(detail.get("to_role")), r.rule_id, r.tool,
                view.deadline,
            ))  # fmt: skip

    def _for_role(self, kind: NoticeKind, hold: _Hold) -> Iterator[Notice]:
        deadline = hold.deadline
        due = deadline.isoformat() if isinstance(deadline, datetime) else str(deadline or "")
        link = f"{str(self._config.base_url).rstrip('/')}/approvals/{hold.approval_id}"
        for target in self._targets:
            if target.role in (hold.role, "*"):
                yield Notice(
                    kind=kind, approval_id=hold.approval_id, run_id=hold.run_id,
                    role=hold.role, rule=hold.rule or "-", tool=hold.tool, deadline=due,
                    link=link, target=target.id,
                )  # fmt: skip

    def _claim_and_send(self, notice: Notice, report: NotifyReport, now_ms: int) -> None:
        if self._store.claim(
            notice.key, notice.model_dump(), retry_at_ms=now_ms + int(CLAIM_S * 1000)
        ):
            self._send(notice, {"status": "pending", "attempts": 0}, report, now_ms)

    def _send(
        self, notice: Notice, state: dict[str, Any], report: NotifyReport, now_ms: int
    ) -> None:
        target = next((t for t in self._targets if t.id == notice.target), None)
        attempts = int(state.get("attempts", 0)) + 1
        log = {"kind": notice.kind, "approval_id": notice.approval_id, "role": notice.role,
               "target": notice.target, "attempt": str(attempts)}  # fmt: skip
        if target is None:  # the configuration no longer has it
            dropped = {**state, "status": "dropped", "notice": notice.model_dump()}
            self._store.record(
                notice.key, dropped, retry_at_ms=None, log={**log, "status": "dropped"}
            )
            return
        try:
            target.send(notice)
        except Exception as exc:
            report.failed += 1
            retry = self._config.retry
            give_up = attempts >= retry.attempts
            delay_ms = int(min(retry.cap_s, retry.backoff_s * 2 ** (attempts - 1)) * 1000)
            if give_up:
                report.given_up += 1
            self._store.record(
                notice.key,
                {"status": "failed" if give_up else "retrying", "attempts": attempts,
                 "error": type(exc).__name__, "notice": notice.model_dump()},
                retry_at_ms=None if give_up else now_ms + delay_ms,
                log={**log, "status": "failed", "error": type(exc).__name__},
            )  # fmt: skip
            return
        report.sent += 1
        self._store.record(
            notice.key, {"status": "sent", "attempts": attempts, "notice": notice.model_dump()},
            retry_at_ms=None, log={**log, "status": "sent"},
        )  # fmt: skip

    def _webhook(self, url: str, secret_env: str) -> Callable[[Notice], None]:
        def send(notice: Notice) -> None:
            body = notice.webhook_body()
            secret = os.environ[secret_env]
            headers = {
                "Content-Type": "application/json",
                "X-Carebound-Signature": signature(secret, int(time.time()), body),
                "X-Carebound-Delivery": notice.key,
            }
            self._http.post(url, content=body, headers=headers).raise_for_status()

        return send

    def _email(self, to: list[str]) -> Callable[[Notice], None]:
        smtp = self._config.smtp
        assert smtp is not None  # checked by NotifyConfig

        def send(notice: Notice) -> None:
            message = EmailMessage()
            message["From"] = smtp.from_address
            message["To"] = ", ".join(to)
            message["Subject"] = notice.subject()
            message.set_content(notice.text())
            password = smtp.secret()
            asyncio.run(
                send_mail(
                    message, hostname=smtp.host, port=smtp.port, start_tls=smtp.starttls,
                    username=smtp.username, password=password,
                    timeout=smtp.timeouts.connect_s + smtp.timeouts.read_s,
                    tls_context=self._tls,
                )
            )  # fmt: skip

        return send
