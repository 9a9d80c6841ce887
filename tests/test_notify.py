"""Notifications (issue 18): a hold, a hold due soon and an escalation reach the role's webhook
(signed) and mailbox (SMTP with STARTTLS), once each, retried when the channel fails; no PHI."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from carebound import Escalate
from carebound.cli._upkeep import Upkeep
from carebound.notify import Notifier, verify_signature
from carebound.state.notify import NotifyStore
from carebound.tools.connectors import ConnectorsConfigError
from carebound.tools.connectors.config import NotifyConfig, load_notify_config
from tests.servers import free_port
from tests.test_outreach_email import Smtp, smtp  # noqa: F401  (the SMTP server fixture)

SECRET = "hook-secret-for-tests"


@dataclass
class Hook:
    """A webhook receiver on loopback: what it got, and the statuses it answers with."""

    url: str
    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
def hook() -> Iterator[Hook]:
    port = free_port()
    state = Hook(url=f"http://127.0.0.1:{port}/hooks/intake")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.statuses.pop(0) if len(state.statuses) > 1 else state.statuses[0]
            if status == 200:
                state.received.append((dict(self.headers), body))
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def _config(hook: Hook, smtp_port: int | None = None, **extra: Any) -> NotifyConfig:
    data: dict[str, Any] = {
        "base_url": "https://inbox.clinic.test",
        "warn_before_s": 3600,
        "webhooks": [{"role": "intake_coordinator", "url": hook.url, "secret_env": "CB_HOOK"}],
        "retry": {"attempts": 3, "backoff_s": 0.01, "cap_s": 0.05, "jitter_s": 0},
        **extra,
    }
    if smtp_port is not None:
        data["email"] = [{"role": "supervisor", "to": ["leads@clinic.test"]}]
        data["smtp"] = {"host": "127.0.0.1", "port": smtp_port,
                        "from_address": "carebound@clinic.test"}  # fmt: skip
    return NotifyConfig.model_validate(data)


@pytest.fixture(autouse=True)
def _secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CB_HOOK", SECRET)


def test_a_new_hold_reaches_the_roles_webhook_once_signed_and_without_phi(
    hook: Hook, make_runner: Any, redis_client: redis.Redis, key_prefix: str,
    demo_case: Any, demo_world: Any,
) -> None:  # fmt: skip
    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    request = view.pending.request
    notifier = Notifier(redis_client, _config(hook), prefix=key_prefix, clock=runner.clock)
    report = notifier.sweep()
    assert report.sent == 1 and report.failed == 0
    [(headers, body)] = hook.received
    assert verify_signature(SECRET, headers["X-Carebound-Signature"], body, now=int(time.time()))
    assert not verify_signature("wrong", headers["X-Carebound-Signature"], body,
                                now=int(time.time()))  # fmt: skip
    message = json.loads(body)
    assert request.approval_id in message["text"]
    assert (
        message["carebound"]["link"] == f"https://inbox.clinic.test/approvals/{request.approval_id}"
    )
    assert message["carebound"]["rule"] == request.rule_id
    patient = next(e["resource"] for e in demo_case["entry"]
                   if e["resource"]["resourceType"] == "Patient")  # fmt: skip
    assert patient["name"][0]["family"] not in body.decode()
    assert patient["birthDate"] not in body.decode()
    assert "sam" not in message["text"]

    # a second sweep, and a second notifier at once, send nothing again
    assert notifier.sweep().sent == 0
    other = Notifier(redis_client, _config(hook), prefix=key_prefix, clock=runner.clock)
    assert other.sweep().sent == 0
    assert len(hook.received) == 1
    [entry] = NotifyStore(redis_client, prefix=key_prefix).log()
    assert entry["status"] == "sent" and entry["kind"] == "hold"


def test_a_failing_webhook_is_retried_and_the_outcome_recorded(
    hook: Hook, make_runner: Any, redis_client: redis.Redis, key_prefix: str,
    demo_case: Any, demo_world: Any,
) -> None:  # fmt: skip
    hook.statuses = [503, 500, 200]
    runner = make_runner()
    runner.start("demo", demo_case, requester="sam", world=demo_world)
    notifier = Notifier(redis_client, _config(hook), prefix=key_prefix, clock=runner.clock)
    first = notifier.sweep()
    assert first.failed == 1 and first.sent == 0
    sent = 0
    for _ in range(3):
        runner.clock.advance(timedelta(seconds=1))
        sent += notifier.sweep().sent
    assert sent == 1 and len(hook.received) == 1
    statuses = [e["status"] for e in NotifyStore(redis_client, prefix=key_prefix).log()]
    assert statuses == ["sent", "failed", "failed"]


def test_due_soon_and_escalation_reach_their_roles_by_email(
    hook: Hook, smtp: Smtp, make_runner: Any, redis_client: redis.Redis,  # noqa: F811
    key_prefix: str, demo_case: Any, demo_world: Any,
) -> None:  # fmt: skip
    runner = make_runner()
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    request = view.pending.request
    notifier = Notifier(redis_client, _config(hook, smtp.port), prefix=key_prefix,
                        clock=runner.clock, tls_context=smtp.client_tls)  # fmt: skip
    assert notifier.sweep().sent == 1  # the hold, to intake's webhook
    runner.clock.advance(request.deadline - runner.clock.now() - timedelta(minutes=30))
    assert notifier.sweep().sent == 1  # due within the hour: intake's webhook again
    assert [json.loads(b)["carebound"]["kind"] for _, b in hook.received] == ["hold", "due_soon"]

    escalate = Escalate(reviewer="casey", role="intake_coordinator", to_role="supervisor",
                        args_hash=request.args_hash, note="needs a lead")  # fmt: skip
    runner.decide(request.approval_id, escalate)
    assert notifier.sweep().sent >= 1
    [(sender, to, message)] = smtp.mailbox.messages
    assert to == ["leads@clinic.test"] and sender == "carebound@clinic.test"
    assert "Escalated" in message["Subject"] and request.approval_id in message["Subject"]
    assert smtp.mailbox.tls == [True]


def test_a_bad_notify_table_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text('[notify]\nbase_url = "not a url"\n[[notify.webhooks]]\nrole = "x"\n')
    with pytest.raises(ConnectorsConfigError) as caught:
        load_notify_config(path)
    message = str(caught.value)
    assert "[notify]" in message and "base_url" in message and "webhooks[0].url" in message
    path.write_text("[ehr]\n")
    assert load_notify_config(path) is None


def test_the_notifier_closes_its_own_http_client_not_a_callers(
    hook: Hook, redis_client: redis.Redis, key_prefix: str, make_runner: Any
) -> None:
    clock = make_runner().clock
    with Notifier(redis_client, _config(hook), prefix=key_prefix, clock=clock) as notifier:
        own = notifier._http
        assert not own.is_closed
    assert own.is_closed
    with httpx.Client() as theirs:
        Notifier(redis_client, _config(hook), prefix=key_prefix, clock=clock, http=theirs).close()
        assert not theirs.is_closed


def test_the_worker_closes_the_notifier_when_it_stops(
    hook: Hook, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_runner: Any
) -> None:
    runner = make_runner()  # built before the file is named: it holds only [notify]
    path = tmp_path / "connectors.toml"
    path.write_text(
        f'[notify]\nbase_url = "https://inbox.clinic.test"\n[[notify.webhooks]]\n'
        f'role = "intake_coordinator"\nurl = "{hook.url}"\nsecret_env = "CB_HOOK"\n'
    )
    monkeypatch.setenv("CAREBOUND_CONNECTORS", str(path))
    logger = logging.getLogger("carebound")
    handlers, level = list(logger.handlers), logger.level
    try:
        upkeep = Upkeep(runner, metrics_port=None, pool=False)  # configures carebound's logs
        notifier = upkeep._notifier
        assert notifier is not None and not notifier._http.is_closed
        upkeep.stop()
        assert notifier._http.is_closed
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
