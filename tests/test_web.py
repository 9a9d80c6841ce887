"""The reviewer web inbox and the JSON API, through FastAPI's TestClient on real Redis.

Sign-in, sessions, CSRF and rate limits; the inbox, the decision packet (PHI masked until an
audited reveal, markup from documents inert), every decision, the run and audit pages; the
service API with bearer tokens and problem+json errors; and a property-based run over the API
that must never produce a 500.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
import redis
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from carebound import Approve, DecisionPacket, Runner
from carebound._tokens import SCOPES, Scope
from carebound.agents.demo import DEMO
from carebound.approvals import PacketCheck, PacketFact, SourceRef
from carebound.guardrails import AgentPolicy, Grant, ScopeGrant, load_policy_pack
from carebound.tools.connectors.simulated import World
from carebound.web import (
    CredentialError,
    RateLimit,
    UserStore,
    WebSettings,
    create_app,
)
from carebound.web._signin_throttle import SignInBackoff

PASSWORD = "correct horse battery staple"
ROLE = "intake_coordinator"
SCRIPT = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PATIENT = "Adaeze Okafor"
PROBLEM = "application/problem+json"


def _packet(ctx: Any, call: Any, verdict: Any, facts: Any) -> DecisionPacket:
    """A packet as a document-reading agent would build it: a fax's text, a PHI fact."""
    return DecisionPacket(
        summary=f"Fax the referring office for the progress note {SCRIPT}",
        facts=[
            PacketFact(
                label="Patient",
                value=PATIENT,
                source=SourceRef(resource="Patient/pat-hello-1", field="name"),
                phi=True,
            ),
            PacketFact(
                label="Fax cover text",
                value=f"Dear office, {SCRIPT}<img src=x onerror=alert(2)>",
                source=SourceRef(resource="DocumentReference/doc-1", document="fax p.1"),
            ),
        ],
        checks=[
            PacketCheck(
                name="recipient on file",
                passed=True,
                detail="the fax number is the referring practitioner's",
                rule_id="OUT-1",
                rule_text="Outreach to a number or address that is not on file needs a "
                "coordinator.",
            )
        ],
        missing=["Progress note (LOINC 11506-3)"],
        recommendation="approve",
        recommendation_text="The office is on file and the note is missing.",
        confidence=0.9,
        on_approve="the fax request is sent once",
        on_reject="no fax is sent; the agent is told why",
    )


AGENTS = {"demo": dataclasses.replace(DEMO, packet=_packet)}


@dataclasses.dataclass
class Web:
    """An app on a runner, with its user store."""

    runner: Runner
    users: UserStore
    app: FastAPI
    world: Any
    case: dict[str, Any]

    def park(self, requester: str = "sam") -> Any:
        """Start a demo run that parks on its fax hold; returns the approval request."""
        view = self.runner.start("demo", self.case, requester=requester, world=self.world)
        assert view.status == "paused" and view.pending is not None
        return view.pending.request

    def browser(self, https: bool = False) -> TestClient:
        """A browser-like client (cookies kept, redirects not followed)."""
        base = "https://testserver" if https else "http://testserver"
        return TestClient(self.app, base_url=base, follow_redirects=False)

    def api(
        self,
        roles: tuple[str, ...] = (ROLE,),
        name: str = "svc",
        scopes: tuple[Scope, ...] = SCOPES,
        reviewer: str | None = None,
    ) -> TestClient:
        """A client with a bearer token of ``roles`` and ``scopes`` (default: all), acting as
        ``reviewer`` if given, else as itself."""
        token = self.users.create_token(name, roles, scopes=scopes, reviewer=reviewer)
        return TestClient(self.app, headers={"Authorization": f"Bearer {token}"})


def _cheap_hasher() -> PasswordHasher:
    # Still argon2id; smaller cost so the suite stays fast.
    return PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


def _make_web(
    make_runner: Any,
    redis_client: redis.Redis,
    key_prefix: str,
    demo_case: Any,
    demo_world: Any,
    runner_options: dict[str, Any] | None = None,
    **settings: Any,
) -> Web:
    runner = make_runner(**{"agents": AGENTS, **(runner_options or {})})
    users = UserStore(
        redis_client, load_policy_pack("default"), prefix=key_prefix, hasher=_cheap_hasher()
    )
    for reviewer in ("casey", "jordan", "billie"):
        users.set_password(reviewer, PASSWORD)
    app = create_app(runner, users=users, settings=WebSettings(**settings))
    return Web(runner=runner, users=users, app=app, world=demo_world, case=demo_case)


@pytest.fixture
def web(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> Web:
    """The app with the default pack; casey, jordan and billie have passwords."""
    return _make_web(make_runner, redis_client, key_prefix, demo_case, demo_world)


def csrf_of(html: str) -> str:
    """The CSRF token of the first form in a page."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def sign_in(client: TestClient, user: str, password: str = PASSWORD) -> str:
    """Sign in through the form; returns the session's CSRF token."""
    form = client.get("/login")
    assert form.status_code == 200
    answer = client.post(
        "/login",
        data={"user": user, "password": password, "csrf_token": csrf_of(form.text)},
    )
    assert answer.status_code == 303, answer.text
    return csrf_of(client.get("/inbox").text)


def decide(client: TestClient, approval_id: str, csrf: str | None, **fields: str) -> Any:
    data = dict(fields)
    if csrf is not None:
        data["csrf_token"] = csrf
    return client.post(f"/approvals/{approval_id}/decision", data=data)


def _sent(web: Web, run_id: str) -> int:
    return len(World.attach(web.runner.client, run_id, prefix=web.runner.prefix).outreach.effects())


def _actions(web: Web, run_id: str, action: str) -> list[Any]:
    return [e for e in web.runner.audit(run_id) if e.action == action]


# -- sign-in, sessions, CSRF ----------------------------------------------------------------


def test_anonymous_access_is_refused(web: Web) -> None:
    request = web.park()
    client = web.browser()
    for path in ("/inbox", f"/approvals/{request.approval_id}", f"/runs/{request.run_id}"):
        answer = client.get(path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=")
    assert client.get("/").headers["location"] == "/inbox"
    for path in (f"/approvals/{request.approval_id}/decision", "/logout"):
        answer = client.post(path, data={"action": "approve", "args_hash": request.args_hash})
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    polled = client.get("/inbox.json")
    assert polled.status_code == 401 and polled.headers["content-type"] == PROBLEM
    for method, path in (
        ("GET", "/api/approvals"),
        ("GET", f"/api/runs/{request.run_id}"),
        ("POST", "/api/events"),
    ):
        answer = client.request(method, path, json={"match": "x"})
        assert answer.status_code == 401, path
        assert answer.headers["content-type"] == PROBLEM
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "tokens create" in answer.json()["hint"]
    bad = client.get("/api/approvals", headers={"Authorization": "Bearer cbt_not-a-token"})
    assert bad.status_code == 401
    assert web.runner.approval(request.approval_id).status == "pending"


def test_sign_in_rotates_the_session_and_sets_safe_cookie_flags(web: Web) -> None:
    client = web.browser()
    form = client.get("/login")
    anonymous = client.cookies["carebound_session"]
    cookie = form.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie
    assert "secure" not in cookie  # plain http in this test; see the https case below
    answer = client.post(
        "/login",
        data={
            "user": "casey",
            "password": PASSWORD,
            "csrf_token": csrf_of(form.text),
            "next": "/inbox?role=intake_coordinator",
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/inbox?role=intake_coordinator"
    signed_in = client.cookies["carebound_session"]
    assert signed_in != anonymous
    assert "httponly" in answer.headers["set-cookie"].lower()
    page = client.get("/inbox")
    assert page.status_code == 200 and "Casey Coordinator" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    # The pre-sign-in session id is dead: it neither signs in nor reaches a page.
    stale = web.browser()
    stale.cookies.set("carebound_session", anonymous)
    assert stale.get("/inbox").status_code == 303

    secure = web.browser(https=True)
    login = secure.get("/login")
    assert "secure" in login.headers["set-cookie"].lower()
    answer = secure.post(
        "/login", data={"user": "casey", "password": PASSWORD, "csrf_token": csrf_of(login.text)}
    )
    assert "secure" in answer.headers["set-cookie"].lower()


def test_sign_in_refuses_wrong_passwords_foreign_forms_and_open_redirects(web: Web) -> None:
    client = web.browser()
    form = client.get("/login")
    token = csrf_of(form.text)
    wrong = client.post("/login", data={"user": "casey", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 401 and "Wrong reviewer id or password" in wrong.text
    unknown = client.post(
        "/login", data={"user": "mallory", "password": PASSWORD, "csrf_token": token}
    )
    assert unknown.status_code == 401 and "Wrong reviewer id or password" in unknown.text
    forged = client.post("/login", data={"user": "casey", "password": PASSWORD})
    assert forged.status_code == 403 and "expired" in forged.text
    other = web.browser()
    cross = other.post("/login", data={"user": "casey", "password": PASSWORD, "csrf_token": token})
    assert cross.status_code == 403
    form = client.get("/login")
    answer = client.post(
        "/login",
        data={
            "user": "casey",
            "password": PASSWORD,
            "csrf_token": csrf_of(form.text),
            "next": "//evil.example/x",
        },
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/inbox"


def test_sign_in_attempts_are_rate_limited(make_web: Any) -> None:
    web = make_web(
        signin_backoff=SignInBackoff(free_failures=3, base_s=60),
    )
    client = web.browser()
    token = csrf_of(client.get("/login").text)
    for _ in range(3):
        answer = client.post(
            "/login", data={"user": "casey", "password": "guess", "csrf_token": token}
        )
        assert answer.status_code == 401
    limited = client.post(
        "/login", data={"user": "casey", "password": PASSWORD, "csrf_token": token}
    )
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert "Too many wrong passwords" in limited.text
    # Another reviewer is not locked out by casey's window.
    assert sign_in(web.browser(), "jordan")


def test_logout_ends_the_session(web: Web) -> None:
    client = web.browser()
    csrf = sign_in(client, "casey")
    assert client.post("/logout", data={}).status_code == 403
    assert client.get("/inbox").status_code == 200
    answer = client.post("/logout", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.get("/inbox").status_code == 303


# -- inbox ----------------------------------------------------------------------------------


def test_inbox_lists_only_holds_of_the_reviewers_roles(web: Web) -> None:
    first = web.park()
    web.runner.clock.advance(timedelta(minutes=5))
    second = web.park()
    casey = web.browser()
    sign_in(casey, "casey")
    page = casey.get("/inbox")
    assert page.status_code == 200
    assert page.text.index(first.approval_id) < page.text.index(second.approval_id)
    assert "low" in page.text and "in 2d" in page.text and "demo" in page.text
    polled = casey.get("/inbox.json").json()
    assert [i["approval_id"] for i in polled["items"]] == [first.approval_id, second.approval_id]
    item = polled["items"][0]
    assert item["risk"] == "low" and item["required_role"] == ROLE and item["agent"] == "demo"
    assert item["summary"].startswith("Fax the referring office") and item["due"] == "in 1d 23h"
    assert polled["items"][1]["due"] == "in 2d"
    assert casey.get("/inbox.json", params={"agent": "reconciler"}).json()["items"] == []
    assert casey.get("/inbox.json", params={"overdue": "true"}).json()["items"] == []
    web.runner.clock.advance(timedelta(days=3))
    overdue = casey.get("/inbox.json", params={"overdue": "true"}).json()["items"]
    assert len(overdue) == 2 and all(i["overdue"] for i in overdue)
    assert 'class="overdue"' in casey.get("/inbox?overdue=true").text

    billie = web.browser()
    sign_in(billie, "billie")
    page = billie.get("/inbox")
    assert first.approval_id not in page.text and "Nothing waiting for you" in page.text
    assert billie.get("/inbox.json").json()["items"] == []
    assert billie.get("/inbox", params={"role": ROLE}).status_code == 403
    assert billie.get("/inbox.json", params={"role": ROLE}).status_code == 403


def test_inbox_pages(make_runner: Any, redis_client: redis.Redis, key_prefix: str,
                     demo_case: Any, demo_world: Any) -> None:  # fmt: skip
    web = _make_web(make_runner, redis_client, key_prefix, demo_case, demo_world, page_size=2)
    ids = []
    for _ in range(3):
        ids.append(web.park().approval_id)
        web.runner.clock.advance(timedelta(minutes=1))
    client = web.browser()
    sign_in(client, "jordan")
    first = client.get("/inbox.json").json()
    assert [i["approval_id"] for i in first["items"]] == ids[:2] and first["more"]
    page = client.get("/inbox")
    assert "offset=2" in page.text
    rest = client.get("/inbox.json", params={"offset": 2}).json()
    assert [i["approval_id"] for i in rest["items"]] == ids[2:] and not rest["more"]
    assert client.get("/inbox", params={"offset": -1}).status_code == 422


# -- the decision packet --------------------------------------------------------------------


def test_packet_shows_the_decision_and_masks_phi_until_an_audited_reveal(web: Web) -> None:
    request = web.park()
    client = web.browser()
    csrf = sign_in(client, "casey")
    page = client.get(f"/approvals/{request.approval_id}")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = page.text
    for expected in (
        "send_document_request",
        "OUT-2",
        "A document request the demo agent faxes is confirmed by a coordinator.",
        "recipient on file",
        "Progress note (LOINC 11506-3)",
        "90%",
        "the fax request is sent once",
        "no fax is sent; the agent is told why",
        "Patient/pat-hello-1",
        request.args_hash,
        "read_referral",  # the run's history
        "Reveal PHI",
    ):
        assert expected in text, expected
    assert PATIENT not in text and "555-010-2000" not in text and "•••" in text
    assert 'name="arg.to"' not in text  # editing needs the arguments, which are PHI here
    assert _actions(web, request.run_id, "view_phi") == []

    refused = client.post(f"/approvals/{request.approval_id}/reveal", data={})
    assert refused.status_code == 403 and _actions(web, request.run_id, "view_phi") == []
    revealed = client.post(f"/approvals/{request.approval_id}/reveal", data={"csrf_token": csrf})
    assert revealed.status_code == 200
    assert PATIENT in revealed.text and "555-010-2000" in revealed.text
    assert 'name="arg.to"' in revealed.text and 'name="arg.note"' in revealed.text
    views = _actions(web, request.run_id, "view_phi")
    assert len(views) == 1
    assert views[0].actor.id == "casey" and views[0].actor.role == ROLE
    assert views[0].detail["approval_id"] == request.approval_id


def test_markup_from_documents_renders_inert(web: Web) -> None:
    request = web.park()
    client = web.browser()
    csrf = sign_in(client, "casey")
    pages = [
        client.get("/inbox"),
        client.get(f"/approvals/{request.approval_id}"),
        client.post(f"/approvals/{request.approval_id}/reveal", data={"csrf_token": csrf}),
    ]
    for page in pages:
        assert SCRIPT not in page.text
        assert "<img src=x" not in page.text
        assert ESCAPED in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "&lt;img src=x onerror=alert(2)&gt;" in pages[1].text
    # The polled JSON carries the text as data; the page script sets it with textContent.
    assert client.get("/inbox.json").json()["items"][0]["summary"].endswith(SCRIPT)


def test_a_reviewer_without_the_role_can_neither_see_nor_decide(web: Web) -> None:
    request = web.park()
    billie = web.browser()
    csrf = sign_in(billie, "billie")
    assert billie.get(f"/approvals/{request.approval_id}").status_code == 404
    assert billie.get(f"/runs/{request.run_id}").status_code == 404
    assert billie.get(f"/runs/{request.run_id}/audit").status_code == 404
    reveal = billie.post(f"/approvals/{request.approval_id}/reveal", data={"csrf_token": csrf})
    assert reveal.status_code == 404 and PATIENT not in reveal.text
    answer = decide(
        billie, request.approval_id, csrf, action="approve", args_hash=request.args_hash
    )
    assert answer.status_code == 404
    assert billie.get("/approvals/no-such-hold").status_code == 404
    assert web.runner.approval(request.approval_id).status == "pending"
    assert _sent(web, request.run_id) == 0
    assert _actions(web, request.run_id, "view_phi") == []


def test_approve_moves_the_run_on(web: Web) -> None:
    request = web.park()
    client = web.browser()
    csrf = sign_in(client, "casey")
    answer = decide(
        client, request.approval_id, csrf, action="approve", args_hash=request.args_hash,
        note="office confirmed by phone",
    )  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"].startswith(f"/runs/{request.run_id}?decided=")
    run = client.get(answer.headers["location"])
    assert run.status_code == 200
    assert "was recorded (decided)" in run.text and "waiting" in run.text
    assert "waiting for the progress note" in run.text
    assert web.runner.get(request.run_id).status == "waiting"
    assert _sent(web, request.run_id) == 1
    packet = client.get(f"/approvals/{request.approval_id}")
    assert "Decided: <b>approved</b> by <b>casey</b>" in packet.text
    assert 'id="approve"' not in packet.text
    decision = _actions(web, request.run_id, "decision")[0]
    assert decision.actor.id == "casey" and decision.detail["decision"] == "approve"


def test_decisions_need_the_sessions_csrf_token(web: Web) -> None:
    request = web.park()
    client = web.browser()
    sign_in(client, "casey")
    other = web.browser()
    foreign = sign_in(other, "jordan")
    for token in (None, "", "forged", foreign):
        answer = decide(client, request.approval_id, token, action="approve",
                        args_hash=request.args_hash)  # fmt: skip
        assert answer.status_code == 403, token
        assert "security token" in answer.text
    assert web.runner.approval(request.approval_id).status == "pending"
    assert _sent(web, request.run_id) == 0


def test_a_stale_args_hash_is_refused(web: Web) -> None:
    request = web.park()
    client = web.browser()
    csrf = sign_in(client, "casey")
    answer = decide(client, request.approval_id, csrf, action="approve", args_hash="0" * 64)
    assert answer.status_code == 409
    assert "stale args hash" in answer.text and "review it again" in answer.text
    assert web.runner.approval(request.approval_id).status == "pending"
    assert _sent(web, request.run_id) == 0


def test_reject_needs_a_reason(web: Web) -> None:
    request = web.park()
    client = web.browser()
    csrf = sign_in(client, "casey")
    fields = {"action": "reject", "args_hash": request.args_hash}
    answer = decide(client, request.approval_id, csrf, **fields, reason="  ")
    assert answer.status_code == 422 and "a reason is required" in answer.text
    assert web.runner.approval(request.approval_id).status == "pending"
    answer = decide(client, request.approval_id, csrf, **fields, reason="wrong office <b>x</b>")
    assert answer.status_code == 303
    view = web.runner.approval(request.approval_id)
    assert view.status == "rejected" and view.record is not None
    assert _sent(web, request.run_id) == 0
    packet = client.get(f"/approvals/{request.approval_id}").text
    assert "wrong office" not in packet  # a reviewer's words on a PHI hold are masked
    revealed = client.post(f"/approvals/{request.approval_id}/reveal", data={"csrf_token": csrf})
    assert "wrong office &lt;b&gt;x&lt;/b&gt;" in revealed.text


def test_edit_uses_the_form_built_from_the_args_schema(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    grant = Grant(
        scopes=[
            ScopeGrant(scope="ehr:*.read"),
            ScopeGrant(scope="outreach:fax.send", recipients=["555-010-2000"]),
        ]
    )
    pack = load_policy_pack("default")
    pack = pack.model_copy(update={"agents": {"demo": AgentPolicy(grant=grant)}})
    web = _make_web(make_runner, redis_client, key_prefix, demo_case, demo_world,
                    runner_options={"policy": pack})  # fmt: skip
    request = web.park()
    client = web.browser()
    csrf = sign_in(client, "jordan")
    form = client.post(f"/approvals/{request.approval_id}/reveal", data={"csrf_token": csrf}).text
    assert re.search(r'name="arg.to" value="555-010-2000" required', form)
    assert re.search(r'name="arg.document_code" value="11506-3" required', form)
    assert 'name="arg.note" value="Please fax the most recent progress note."' in form
    fields = {"action": "edit", "args_hash": request.args_hash, "arg.to": "555-010-2000",
              "arg.document_code": "11506-3", "arg.note": "Please fax it today."}  # fmt: skip
    beyond = decide(client, request.approval_id, csrf, **{**fields, "arg.to": "555-999-0000"})
    assert beyond.status_code == 422 and "the edit goes beyond the agent" in beyond.text
    assert web.runner.approval(request.approval_id).status == "pending"
    answer = decide(client, request.approval_id, csrf, **fields)
    assert answer.status_code == 303, answer.text
    view = web.runner.approval(request.approval_id)
    assert view.status == "edited" and view.record is not None
    run = web.runner.get(request.run_id)
    assert run.status == "waiting" and run.results[-1].args["note"] == "Please fax it today."
    assert _sent(web, request.run_id) == 1


def test_escalation_hands_the_hold_to_another_role(web: Web) -> None:
    request = web.park()
    casey = web.browser()
    csrf = sign_in(casey, "casey")
    answer = decide(casey, request.approval_id, csrf, action="escalate",
                    args_hash=request.args_hash, to_role="supervisor")  # fmt: skip
    assert answer.status_code == 303 and "outcome=escalated" in answer.headers["location"]
    assert casey.get(f"/approvals/{request.approval_id}").status_code == 404
    assert web.runner.approval(request.approval_id).required_role == "supervisor"
    jordan = web.browser()
    sign_in(jordan, "jordan")
    items = jordan.get("/inbox.json", params={"role": "supervisor"}).json()["items"]
    assert [i["approval_id"] for i in items] == [request.approval_id]


def test_two_concurrent_decisions_one_wins_the_other_is_told(web: Web) -> None:
    request = web.park()
    clients = {name: web.browser() for name in ("casey", "jordan")}
    tokens = {name: sign_in(c, name) for name, c in clients.items()}
    barrier = threading.Barrier(2)
    answers: dict[str, Any] = {}

    def run(name: str) -> None:
        barrier.wait()
        answers[name] = decide(clients[name], request.approval_id, tokens[name],
                               action="approve", args_hash=request.args_hash)  # fmt: skip

    threads = [threading.Thread(target=run, args=(name,)) for name in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(a.status_code for a in answers.values())
    assert codes == [303, 409], codes
    winner = next(n for n, a in answers.items() if a.status_code == 303)
    loser = next(a for a in answers.values() if a.status_code == 409)
    assert f"already decided by {winner} at" in loser.text
    assert f"Decided: <b>approved</b> by <b>{winner}</b>" in loser.text
    assert _sent(web, request.run_id) == 1
    assert len(_actions(web, request.run_id, "decision")) == 1


def test_decisions_are_rate_limited(make_web: Any) -> None:
    web = make_web(
        decisions_per_actor=RateLimit(limit=2, window_s=60),
    )
    request = web.park()
    client = web.browser()
    csrf = sign_in(client, "casey")
    for _ in range(2):
        answer = decide(client, request.approval_id, csrf, action="approve", args_hash="1" * 64)
        assert answer.status_code == 409
    limited = decide(
        client, request.approval_id, csrf, action="approve", args_hash=request.args_hash
    )
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert web.runner.approval(request.approval_id).status == "pending"
    # jordan has a window of his own
    other = web.browser()
    answer = decide(
        other, request.approval_id, sign_in(other, "jordan"), action="approve",
        args_hash=request.args_hash,
    )  # fmt: skip
    assert answer.status_code == 303


# -- run and audit pages --------------------------------------------------------------------


def test_run_and_audit_pages(web: Web) -> None:
    request = web.park()
    client = web.browser()
    csrf = sign_in(client, "casey")
    decide(client, request.approval_id, csrf, action="approve", args_hash=request.args_hash)
    run = client.get(f"/runs/{request.run_id}")
    assert run.status_code == 200
    for expected in ("waiting", request.approval_id, "send_document_request", "Progress note",
                     "hold", "decision", "effect", "casey"):  # fmt: skip
        assert expected in run.text, expected
    assert "555-010-2000" not in run.text  # call arguments of PHI tools stay masked here
    audit = client.get(f"/runs/{request.run_id}/audit")
    assert audit.status_code == 200
    assert "Hash chain intact" in audit.text
    assert "view phi" not in audit.text
    events = web.runner.audit(request.run_id)
    assert f"{len(events)} events" in audit.text
    assert client.get("/runs/no-such-run").status_code == 404
    # The requester sees the run they started, but not a hold outside their roles.
    mine = web.park(requester="billie")
    billie = web.browser()
    sign_in(billie, "billie")
    assert billie.get(f"/runs/{mine.run_id}").status_code == 200
    assert billie.get(f"/approvals/{mine.approval_id}").status_code == 404
    assert billie.get(f"/runs/{request.run_id}").status_code == 404


# -- JSON API -------------------------------------------------------------------------------


def test_api_starts_reads_and_audits_runs(web: Web) -> None:
    api = web.api(roles=())
    answer = api.post("/api/runs", json={"agent": "demo", "bundle": web.case, "requester": "sam"})
    assert answer.status_code == 201, answer.text
    run = answer.json()
    assert run["status"] == "paused" and run["requester"] == "sam"
    assert run["pending"][0]["required_role"] == ROLE
    assert run["findings"]["missing_documents"][0]["code"] == "11506-3"
    again = api.get(f"/api/runs/{run['run_id']}")
    assert again.status_code == 200 and again.json()["run_id"] == run["run_id"]
    audit = api.get(f"/api/runs/{run['run_id']}/audit").json()
    assert audit["verify"]["ok"] is True
    assert audit["events"][0]["action"] == "create"
    assert "hold" in [e["action"] for e in audit["events"]]
    missing = api.get("/api/runs/r-nope")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert "r-nope" in missing.json()["detail"]
    assert api.get("/api/runs/r-nope/audit").status_code == 404
    # a token without roles sees no holds
    assert api.get("/api/approvals").json()["approvals"] == []


def test_api_refuses_malformed_fhir_with_a_clear_message(web: Web) -> None:
    api = web.api(roles=())
    cases = [
        ({"resourceType": "Bundle", "type": "nope"}, "bundle-type"),
        ({"resourceType": "Patient", "id": "p1"}, "Bundle"),
        ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
            "resourceType": "Patient", "birthDate": "12/04/1961"}}]}, "birthDate"),
        ({"type": "collection"}, "resourceType"),
    ]  # fmt: skip
    for bundle, needle in cases:
        answer = api.post("/api/runs", json={"agent": "demo", "bundle": bundle, "requester": "s"})
        assert answer.status_code == 422, (bundle, answer.text)
        assert answer.headers["content-type"] == PROBLEM
        body = answer.json()
        assert "request body field 'bundle'" in body["detail"] and needle in body["detail"]
        assert body["status"] == 422 and body["title"]
    not_json = api.post(
        "/api/runs", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 422 and not_json.headers["content-type"] == PROBLEM
    no_bundle = api.post("/api/runs", json={"agent": "demo", "requester": "s"})
    assert no_bundle.status_code == 422 and "bundle" in no_bundle.json()["detail"]
    not_object = api.post("/api/runs", json={"agent": "demo", "bundle": [1], "requester": "s"})
    assert not_object.status_code == 422
    unknown = api.post("/api/runs", json={"agent": "ghost", "bundle": web.case, "requester": "s"})
    assert unknown.status_code == 422 and "known agents: demo" in unknown.json()["hint"]
    assert web.runner.list_runs() == []


def test_api_lists_reveals_and_decides_holds(web: Web) -> None:
    request = web.park()
    api = web.api(roles=(ROLE,), name="casey-app", reviewer="casey")
    page = api.get("/api/approvals", params={"limit": 10})
    assert page.status_code == 200
    body = page.json()
    assert [a["approval_id"] for a in body["approvals"]] == [request.approval_id]
    assert body["approvals"][0]["args_hash"] == request.args_hash and body["next_offset"] is None
    assert api.get("/api/approvals", params={"role": "billing"}).status_code == 403
    assert api.get("/api/approvals", params={"limit": 0}).status_code == 422

    masked = api.get(f"/api/approvals/{request.approval_id}").json()
    assert masked["phi_masked"] and masked["approval"]["request"]["args"]["to"] == "•••"
    assert PATIENT not in json.dumps(masked)
    revealed = api.get(f"/api/approvals/{request.approval_id}", params={"reveal": "true"}).json()
    assert revealed["approval"]["request"]["args"]["to"] == "555-010-2000"
    views = _actions(web, request.run_id, "view_phi")
    assert [v.actor.id for v in views] == ["casey"]

    billing = web.api(roles=("billing",), name="billing-svc")
    assert billing.get(f"/api/approvals/{request.approval_id}").status_code == 404
    refused = billing.post(
        f"/api/approvals/{request.approval_id}/decision",
        json={"kind": "approve", "reviewer": "casey", "args_hash": request.args_hash},
    )
    assert refused.status_code == 404

    url = f"/api/approvals/{request.approval_id}/decision"
    billie = web.api(roles=(), name="billie-app", reviewer="billie")
    wrong_role = billie.post(url, json={"kind": "approve", "args_hash": request.args_hash})
    assert wrong_role.status_code == 404  # billie's token sees no intake holds
    stranger = api.post(url, json={"kind": "approve", "reviewer": "sam",
                                   "args_hash": request.args_hash})  # fmt: skip
    assert stranger.status_code == 403 and stranger.json()["code"] == "principal_mismatch"
    stale = api.post(url, json={"kind": "approve", "reviewer": "casey", "args_hash": "f" * 64})
    assert stale.status_code == 409 and stale.json()["code"] == "stale"
    no_reason = api.post(url, json={"kind": "reject", "reviewer": "casey",
                                    "args_hash": request.args_hash})  # fmt: skip
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "reason_required"
    bad_edit = api.post(url, json={"kind": "edit", "reviewer": "casey",
                                   "args_hash": request.args_hash, "args": {"to": 5}})  # fmt: skip
    assert bad_edit.status_code == 422 and bad_edit.json()["code"] == "invalid_edit"
    assert "to" in bad_edit.json()["detail"]
    ok = api.post(url, json={"kind": "approve", "reviewer": "casey",
                             "args_hash": request.args_hash, "note": "ok"})  # fmt: skip
    assert ok.status_code == 200, ok.text
    assert ok.json()["outcome"] == "decided" and ok.json()["run"]["status"] == "waiting"
    jordan = web.api(roles=(ROLE,), name="jordan-app", reviewer="jordan")
    late = jordan.post(url, json={"kind": "approve", "args_hash": request.args_hash})
    assert late.status_code == 409
    assert late.json()["code"] == "already_decided" and late.json()["decided_by"] == "casey"
    assert _sent(web, request.run_id) == 1


def test_api_events_wake_the_waiting_run_once(web: Web) -> None:
    request = web.park()
    web.runner.decide(
        request.approval_id, Approve(reviewer="casey", role=ROLE, args_hash=request.args_hash)
    )
    api = web.api(roles=())
    match = f"request:{request.run_id}:11506-3"
    body = {"match": match, "payload": {"document": "progress note"}, "event_id": "fax-1"}
    first = api.post("/api/events", json=body)
    assert first.status_code == 200 and first.json() == {
        "event_id": "fax-1",
        "woken": [request.run_id],
    }
    assert api.post("/api/events", json=body).json()["woken"] == []
    assert api.get(f"/api/runs/{request.run_id}").json()["status"] == "completed"
    other = api.post("/api/events", json={"match": "request:nobody"}).json()
    assert other["woken"] == [] and other["event_id"].startswith("ev-")
    assert api.post("/api/events", json={"match": ""}).status_code == 422


def test_api_errors_are_problem_json_and_bugs_are_500s_without_details(
    web: Web, caplog: pytest.LogCaptureFixture
) -> None:
    api = web.api(roles=())
    for method, path, code in (("GET", "/api/nowhere", 404), ("DELETE", "/api/runs", 405)):
        answer = api.request(method, path)
        assert answer.status_code == code and answer.headers["content-type"] == PROBLEM
    too_big = api.post("/api/events", content=b"x", headers={"content-length": str(11 << 20)})
    assert too_big.status_code == 413
    for raw in (b'{"match": "m", "payload": {"x": NaN}}', b'{"match": "m", "payload": 1e999}'):
        odd = api.post("/api/events", content=raw, headers={"content-type": "application/json"})
        assert odd.status_code < 500, odd.text

    def broken(run_id: str) -> Any:
        raise RuntimeError(f"lookup failed for patient {PATIENT}")

    web.runner.get = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR, logger="carebound.web"):
        answer = api.get("/api/runs/r1")
    assert answer.status_code == 500 and answer.headers["content-type"] == PROBLEM
    assert PATIENT not in answer.text and "Traceback" not in answer.text
    assert "error id" in answer.json()["detail"]
    assert "RuntimeError" in caplog.text and PATIENT not in caplog.text


def test_openapi_schema_documents_the_api(web: Web) -> None:
    schema = TestClient(web.app).get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/audit", "/api/events",
                 "/api/approvals", "/api/approvals/{approval_id}/decision"):  # fmt: skip
        assert path in paths, path
    assert "/inbox" not in paths and "/login" not in paths
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_health_and_static(web: Web) -> None:
    client = TestClient(web.app)
    assert client.get("/healthz").json() == {"ok": True}
    script = client.get("/static/inbox.js")
    assert script.status_code == 200 and "textContent" in script.text
    assert client.get("/static/style.css").status_code == 200


# -- property-based: no input makes the API fail --------------------------------------------

_json_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_json = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
_object = st.dictionaries(st.text(max_size=12), _json, max_size=4)


def _bundles(case: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The valid demo case, the case with one field replaced, and arbitrary JSON."""
    entries = case["entry"]

    def mutate(args: tuple[int, str, Any]) -> dict[str, Any]:
        index, key, value = args
        copy = json.loads(json.dumps(case))
        copy["entry"][index % len(entries)]["resource"][key] = value
        return dict(copy)

    keys = st.sampled_from(["resourceType", "id", "status", "birthDate", "telecom", "name", "x"])
    near = st.tuples(st.integers(0, 5), keys, _json).map(mutate)
    return st.one_of(st.just(case), near, _object, _json)


def _calls(web: Web, request: Any, endpoint: str) -> st.SearchStrategy[Any]:
    """(method, path, JSON body or None, query) for one endpoint: mostly well-formed, some not."""
    text = st.text(max_size=30)
    query = st.dictionaries(
        st.sampled_from(["role", "agent", "overdue", "limit", "offset", "reveal", "x"]),
        st.sampled_from([ROLE, "billing", "demo", "true", "0", "-1", "201"]) | text,
        max_size=4,
    )
    ids = st.sampled_from([request.approval_id, "nope", "a-b-c", "r-1"]) | st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="/?#"), min_size=1, max_size=12
    ).map(lambda value: quote(value, safe=""))
    if endpoint == "start":
        body = st.fixed_dictionaries(
            {
                "agent": st.sampled_from(["demo", "ghost", ""]) | text,
                "bundle": _bundles(web.case),
                "requester": st.sampled_from(["sam", ""]) | text,
            }
        )
        return st.tuples(st.just("POST"), st.just("/api/runs"), body | _json, st.just({}))
    if endpoint == "decide":
        body = st.fixed_dictionaries(
            {
                "kind": st.sampled_from(["approve", "reject", "edit", "escalate"]) | text,
                "args_hash": st.sampled_from([request.args_hash, "0" * 64, ""]) | text,
            },
            optional={
                "reviewer": st.sampled_from(["token:svc", "casey", "sam", "x" * 300]) | text,
                "role": st.sampled_from([ROLE, "supervisor", "billing"]) | text,
                "reason": st.none() | text,
                "args": st.just(request.args) | _object | _json,
                "to_role": st.sampled_from(["supervisor", "billing"]) | text,
                "note": st.none() | text | _json,
                "other": _json,
            },
        )
        paths = ids.map(lambda i: f"/api/approvals/{i}/decision")
        return st.tuples(st.just("POST"), paths, body | _json, st.just({}))
    if endpoint == "events":
        match = st.sampled_from([f"request:{request.run_id}:11506-3", ""]) | text
        body = st.fixed_dictionaries(
            {"match": match},
            optional={"payload": _object | _json, "event_id": st.none() | text, "x": _json},
        )
        return st.tuples(st.just("POST"), st.just("/api/events"), body | _json, st.just({}))
    if endpoint == "approvals":
        paths = st.just("/api/approvals") | ids.map(lambda i: f"/api/approvals/{i}")
        return st.tuples(st.just("GET"), paths, st.none(), query)
    runs = st.sampled_from([request.run_id, "zz", "{x}"]) | ids
    paths = runs.flatmap(lambda r: st.sampled_from([f"/api/runs/{r}", f"/api/runs/{r}/audit"]))
    return st.tuples(st.just("GET"), paths, st.none(), query)


@pytest.mark.parametrize("endpoint", ["start", "decide", "events", "approvals", "runs"])
def test_property_the_api_never_answers_500(web: Web, endpoint: str) -> None:
    request = web.park()
    api = web.api(roles=("*",))
    seen: set[int] = set()

    @settings(
        max_examples=50,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )
    @given(_calls(web, request, endpoint))
    def check(call: tuple[str, str, Any, dict[str, str]]) -> None:
        method, path, body, params = call
        kwargs: dict[str, Any] = {"params": params}
        if method == "POST":
            kwargs["json"] = body
        answer = api.request(method, path, **kwargs)
        seen.add(answer.status_code)
        assert answer.status_code < 500, (method, path, body, answer.text)
        if answer.status_code >= 400:
            assert answer.headers["content-type"] == PROBLEM
            assert answer.json()["detail"]

    check()
    assert any(code < 300 for code in seen) and any(code >= 400 for code in seen), seen


# -- credentials ----------------------------------------------------------------------------


def test_user_store_hashes_passwords_with_argon2id_and_tokens_with_sha256(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    users = UserStore(
        redis_client, load_policy_pack("default"), prefix=key_prefix, hasher=_cheap_hasher()
    )
    with pytest.raises(CredentialError, match="not in the reviewer directory"):
        users.set_password("mallory", PASSWORD)
    with pytest.raises(CredentialError, match="15 to 1024 characters"):
        users.set_password("casey", "short")
    users.set_password("casey", PASSWORD)
    stored = redis_client.hget(f"{key_prefix}:web:passwords", "casey")
    assert stored is not None and stored.startswith(b"$argon2id$")
    assert PASSWORD.encode() not in stored
    reviewer = users.verify("casey", PASSWORD)
    assert reviewer is not None and reviewer.roles == [ROLE]
    assert users.verify("casey", PASSWORD + "x") is None
    assert users.verify("jordan", PASSWORD) is None  # no password set
    assert users.verify("nobody", PASSWORD) is None
    assert users.remove_password("casey") and users.verify("casey", PASSWORD) is None

    token = users.create_token("ehr-bridge", [ROLE])
    assert token.startswith("cbt_") and len(token) > 40
    dump = b"".join(
        k + b"".join(redis_client.hgetall(k).keys()) + b"".join(redis_client.hgetall(k).values())
        for k in redis_client.scan_iter(match=f"{key_prefix}:web:token*")
    )
    assert token.encode() not in dump
    found = users.token(token)
    assert found is not None and found.name == "ehr-bridge" and found.holds(ROLE)
    assert not found.holds("billing")
    assert users.token(token + "x") is None and users.token("garbage") is None
    with pytest.raises(CredentialError, match="exists already"):
        users.create_token("ehr-bridge")
    with pytest.raises(CredentialError, match="no reviewer"):
        users.create_token("other", ["astronaut"])
    assert [t.name for t in users.tokens()] == ["ehr-bridge"]
    assert users.revoke_token("ehr-bridge") and users.token(token) is None
    assert not users.revoke_token("ehr-bridge")


def test_cli_sets_passwords_and_creates_tokens(
    redis_url: str, redis_client: redis.Redis, key_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer

    from carebound.cli._app import CareboundGroup
    from carebound.cli._web import register

    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    app = typer.Typer(cls=CareboundGroup)
    register(app)
    cli = CliRunner()
    done = cli.invoke(app, ["users", "set-password", "casey", "--password-stdin"],
                      input=PASSWORD + "\n")  # fmt: skip
    assert done.exit_code == 0, done.output
    users = UserStore(redis_client, load_policy_pack("default"), prefix=key_prefix)
    assert users.verify("casey", PASSWORD) is not None
    unknown = cli.invoke(app, ["users", "set-password", "mallory", "--password-stdin"], input="x")
    assert unknown.exit_code != 0 and "not in the reviewer directory" in unknown.output
    listed = cli.invoke(app, ["users", "list"])
    assert "casey" in listed.output and "can sign in" in listed.output
    created = cli.invoke(app, ["tokens", "create", "ehr-bridge", "--role", ROLE])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert users.token(token) is not None
    assert "ehr-bridge" in cli.invoke(app, ["tokens", "list"]).output
    assert cli.invoke(app, ["tokens", "revoke", "ehr-bridge"]).exit_code == 0
    assert users.token(token) is None
    assert "--port" in cli.invoke(app, ["serve", "--help"]).output


def test_public_api_is_pinned_and_the_cli_stays_light() -> None:
    import subprocess
    import sys

    import carebound.web

    assert carebound.web.__all__ == [
        "CredentialError",
        "RateLimit",
        "RateLimiter",
        "ServiceToken",
        "UserStore",
        "WebSettings",
        "create_app",
        "simulated_world",
    ]
    for name in carebound.web.__all__:
        assert getattr(carebound.web, name) is not None
    with pytest.raises(AttributeError):
        _ = carebound.web.nothing_here
    probe = "import sys, carebound.cli._web; print('fastapi' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # 'carebound --help' does not load the web stack
