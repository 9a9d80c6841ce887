"""Authenticated principals: token scopes and binding over the API, the CLI credential
(CAREBOUND_TOKEN, ``carebound login``), the explicit unauthenticated development mode, web
sessions bound to the credential version, and ``Decision.via`` in every channel.

Everything runs through the real CLI (Typer's CliRunner), the real app (FastAPI's TestClient)
and a real Redis.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from carebound import Runner
from carebound._principal import Provenance
from carebound._tokens import token_digest, token_names_key, tokens_key
from carebound.cli import ExitCode, app
from carebound.guardrails import load_policy_pack
from carebound.web import UserStore, WebSettings, create_app

PASSWORD = "correct horse battery staple"
ROLE = "intake_coordinator"
PROBLEM = "application/problem+json"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path) -> Path:
    """The CLI on the test Redis and key prefix, nobody signed in; returns the config dir."""
    config = tmp_path / "config"
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_STORE", "working")
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CAREBOUND_CONFIG_DIR", str(config))
    monkeypatch.setenv("COLUMNS", "120")
    for var in ("CAREBOUND_TOKEN", "CAREBOUND_UNAUTHENTICATED", "CAREBOUND_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    return config


def cli(*args: str, code: int = 0, stdin: str | None = None) -> Result:
    """Invoke the CLI; check the exit code and that no traceback shows."""
    result = CliRunner().invoke(app, list(args), input=stdin)
    both = result.stdout + result.stderr
    assert result.exit_code == code, both
    assert "Traceback" not in both
    return result


def _hasher() -> PasswordHasher:
    return PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)


@pytest.fixture
def runner(redis_client: redis.Redis, key_prefix: str) -> Iterator[Runner]:
    """A runner on the test key space (the clock the CLI uses too)."""
    yield Runner(redis_client, prefix=key_prefix)


@pytest.fixture
def users(redis_client: redis.Redis, key_prefix: str) -> UserStore:
    return UserStore(redis_client, load_policy_pack("default"), prefix=key_prefix, hasher=_hasher())


def park(runner: Runner, demo_case: Any, demo_world: Any) -> Any:
    """A demo run parked on its fax hold (for intake_coordinator); its approval request."""
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused" and view.pending is not None
    return view.pending.request


def via_of(runner: Runner, approval_id: str) -> Provenance:
    """The provenance stored with the decision that settled an approval."""
    record = runner.approval(approval_id).record
    assert record is not None and record.decision is not None
    return record.decision.via


def decision_event(runner: Runner, run_id: str) -> dict[str, Any]:
    """The detail of the run's (first) decision audit event."""
    events = [e for e in runner.audit(run_id) if e.action == "decision"]
    assert events, "no decision event"
    return dict(events[0].detail)


def new_token(*args: str) -> str:
    """``carebound tokens create ...`` through the CLI; the token it printed."""
    return cli("tokens", "create", *args).stdout.strip().splitlines()[-1]


# -- web sessions ---------------------------------------------------------------------------


def _app(runner: Runner, users: UserStore) -> TestClient:
    return TestClient(
        create_app(runner, users=users, settings=WebSettings()), follow_redirects=False
    )


def _csrf(html: str) -> str:
    import re

    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def _sign_in(client: TestClient, user: str, password: str = PASSWORD) -> None:
    form = client.get("/login")
    answer = client.post(
        "/login", data={"user": user, "password": password, "csrf_token": _csrf(form.text)}
    )
    assert answer.status_code == 303, answer.text


def test_removing_or_changing_a_password_ends_web_sessions_at_once(
    env: Path, runner: Runner, users: UserStore
) -> None:
    users.set_password("casey", PASSWORD)
    browser = _app(runner, users)
    _sign_in(browser, "casey")
    assert browser.get("/inbox").status_code == 200
    removed = cli("users", "remove-password", "casey").stdout
    assert "their web sessions are ended" in removed
    gone = browser.get("/inbox")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/login")
    assert browser.get("/inbox").status_code == 303  # and it stays gone

    users.set_password("casey", PASSWORD)
    _sign_in(browser, "casey")
    assert browser.get("/inbox").status_code == 200
    other = _app(runner, users)
    _sign_in(other, "casey")
    cli("users", "set-password", "casey", "--password-stdin", stdin="a brand new long password\n")
    assert browser.get("/inbox").status_code == 303
    assert other.get("/inbox").status_code == 303
    _sign_in(browser, "casey", "a brand new long password")
    assert browser.get("/inbox").status_code == 200


def test_web_decisions_are_made_as_the_signed_in_reviewer(
    env: Path, runner: Runner, users: UserStore, demo_case: Any, demo_world: Any
) -> None:
    request = park(runner, demo_case, demo_world)
    users.set_password("casey", PASSWORD)
    browser = _app(runner, users)
    _sign_in(browser, "casey")
    page = browser.get(f"/approvals/{request.approval_id}")
    answer = browser.post(
        f"/approvals/{request.approval_id}/decision",
        data={"action": "approve", "args_hash": request.args_hash, "csrf_token": _csrf(page.text)},
    )
    assert answer.status_code == 303, answer.text
    assert via_of(runner, request.approval_id) == Provenance(
        channel="web", principal="casey", kind="reviewer", authenticated=True
    )


# -- API: scopes and binding ----------------------------------------------------------------


def _api(runner: Runner, users: UserStore, token: str) -> TestClient:
    return TestClient(
        create_app(runner, users=users, settings=WebSettings()),
        headers={"Authorization": f"Bearer {token}"},
    )


def test_api_calls_need_the_tokens_scope(
    env: Path, runner: Runner, users: UserStore, demo_case: Any, demo_world: Any
) -> None:
    request = park(runner, demo_case, demo_world)
    run_id = request.run_id
    # A token created without role or scope may read, nothing else: no forged replies.
    bare = _api(runner, users, new_token("bare"))
    forged = bare.post("/api/events", json={"match": f"request:{run_id}:11506-3"})
    assert forged.status_code == 403 and forged.headers["content-type"] == PROBLEM
    assert forged.json()["code"] == "missing_scope" and "'deliver'" in forged.json()["detail"]
    assert "--scope deliver" in forged.json()["hint"]
    start = bare.post("/api/runs", json={"agent": "demo", "bundle": demo_case, "requester": "s"})
    assert start.status_code == 403 and start.json()["code"] == "missing_scope"
    assert bare.get(f"/api/runs/{run_id}").status_code == 200

    deliverer = _api(runner, users, new_token("fax-gateway", "--scope", "deliver"))
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/audit", "/api/approvals"):
        refused = deliverer.get(path)
        assert refused.status_code == 403 and refused.json()["code"] == "missing_scope", path
    assert deliverer.post("/api/events", json={"match": "request:nobody"}).status_code == 200

    reader = _api(runner, users, new_token("dash", "--role", ROLE, "--scope", "read"))
    url = f"/api/approvals/{request.approval_id}"
    assert reader.get(url).json()["phi_masked"] is True
    no_reveal = reader.get(url, params={"reveal": "true"})
    assert no_reveal.status_code == 403 and no_reveal.json()["code"] == "missing_scope"
    no_decide = reader.post(
        f"{url}/decision", json={"kind": "approve", "args_hash": request.args_hash}
    )
    assert no_decide.status_code == 403 and no_decide.json()["code"] == "missing_scope"
    assert runner.approval(request.approval_id).status == "pending"
    assert not [e for e in runner.audit(run_id) if e.action == "view_phi"]

    starter = _api(runner, users, new_token("ehr", "--scope", "start", "--scope", "read"))
    started = starter.post(
        "/api/runs", json={"agent": "demo", "bundle": demo_case, "requester": "s"}
    )
    assert started.status_code == 201, started.text


def test_tokens_stored_before_scopes_keep_only_read_and_decide(
    env: Path, runner: Runner, users: UserStore, redis_client: redis.Redis, key_prefix: str
) -> None:
    # What an older carebound stored: a record with roles and no scopes.
    for name, roles in (("old-svc", []), ("old-decider", [ROLE])):
        token = f"cbt_{name}-0123456789abcdef0123456789abcdef"
        record = {"name": name, "roles": roles, "created_at": "2026-01-01T00:00:00Z"}
        redis_client.hset(tokens_key(key_prefix), token_digest(token), json.dumps(record))
        redis_client.hset(token_names_key(key_prefix), name, token_digest(token))
        found = users.token(token)
        assert found is not None
        assert found.scopes == (["read", "decide"] if roles else ["read"])
        api = _api(runner, users, token)
        assert api.post("/api/events", json={"match": "m"}).status_code == 403
    listed = cli("tokens", "list").stdout
    assert "old-decider" in listed and "read, decide" in listed


def test_a_bound_token_decides_only_as_its_reviewer(
    env: Path, runner: Runner, users: UserStore, demo_case: Any, demo_world: Any
) -> None:
    request = park(runner, demo_case, demo_world)
    token = new_token("casey-phone", "--as", "Casey", "--scope", "read", "--scope", "decide")
    api = _api(runner, users, token)
    url = f"/api/approvals/{request.approval_id}/decision"
    body = {"kind": "approve", "args_hash": request.args_hash}
    for other in ("jordan", "sam", "token:casey-phone"):
        refused = api.post(url, json={**body, "reviewer": other})
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        assert refused.json()["code"] == "principal_mismatch", other
        assert "'casey'" in refused.json()["detail"]
    assert runner.approval(request.approval_id).status == "pending"
    ok = api.post(url, json={**body, "reviewer": " CASEY", "note": "on file"})
    assert ok.status_code == 200, ok.text
    record = runner.approval(request.approval_id).record
    assert record is not None and record.decided_by == "casey"
    assert via_of(runner, request.approval_id) == Provenance(
        channel="api", principal="casey", kind="reviewer", authenticated=True, token="casey-phone"
    )
    event = decision_event(runner, request.run_id)
    assert (event["channel"], event["principal"], event["token"]) == ("api", "casey", "casey-phone")
    assert event["authenticated"] is True


def test_a_service_token_decides_as_itself_never_as_named_reviewers(
    env: Path, runner: Runner, users: UserStore, demo_case: Any, demo_world: Any
) -> None:
    request = park(runner, demo_case, demo_world)
    api = _api(runner, users, new_token("bridge", "--role", ROLE, "--scope", "decide"))
    url = f"/api/approvals/{request.approval_id}/decision"
    body = {"kind": "approve", "args_hash": request.args_hash}
    # One token cannot supply the approvals of several people by naming them.
    for named in ("casey", "jordan"):
        refused = api.post(url, json={**body, "reviewer": named})
        assert refused.status_code == 403 and refused.json()["code"] == "principal_mismatch"
    ok = api.post(url, json=body)
    assert ok.status_code == 200, ok.text
    via = via_of(runner, request.approval_id)
    assert via == Provenance(
        channel="api", principal="token:bridge", kind="service", authenticated=True, token="bridge"
    )
    record = runner.approval(request.approval_id).record
    assert record is not None and record.decided_by == "token:bridge"


def test_a_bound_token_reveals_as_its_reviewer(
    env: Path, runner: Runner, users: UserStore, demo_case: Any, demo_world: Any
) -> None:
    request = park(runner, demo_case, demo_world)
    token = new_token("casey-app", "--as", "casey", "--scope", "read", "--scope", "reveal")
    api = _api(runner, users, token)
    shown = api.get(f"/api/approvals/{request.approval_id}", params={"reveal": "true"})
    assert shown.status_code == 200 and shown.json()["phi_masked"] is False
    views = [e for e in runner.audit(request.run_id) if e.action == "view_phi"]
    assert [v.actor.id for v in views] == ["casey"]


def test_tokens_create_checks_scopes_and_the_bound_reviewer(env: Path, users: UserStore) -> None:
    bad = cli("tokens", "create", "x", "--scope", "everything", code=ExitCode.BAD_INPUT)
    assert "unknown scope" in bad.stderr and "read, start, deliver, decide, reveal" in bad.stderr
    stranger = cli("tokens", "create", "x", "--as", "mallory", code=ExitCode.BAD_INPUT)
    assert "not in the reviewer directory" in stranger.stderr
    wrong = cli("tokens", "create", "x", "--as", "casey", "--role", "billing", code=2)
    assert "'casey' does not hold role(s) billing" in wrong.stderr
    new_token("casey-cli", "--as", "casey", "--scope", "decide", "--scope", "reveal")
    listed = cli("tokens", "list").stdout
    assert "casey-cli" in listed and "decide, reveal" in listed
    record = users.tokens()[0]
    assert record.reviewer == "casey" and record.principal == "casey"


# -- CLI credential -------------------------------------------------------------------------


APPROVE = ("approve", "--role", ROLE)


def test_cli_believes_no_self_asserted_reviewer_once_the_store_has_credentials(
    env: Path, runner: Runner, users: UserStore, demo_case: Any, demo_world: Any
) -> None:
    request = park(runner, demo_case, demo_world)
    users.set_password("jordan", PASSWORD)  # any credential in the store
    refused = cli("approve", request.approval_id, "--reviewer", "casey", "--role", ROLE, code=3)
    assert "--reviewer alone is not believed" in refused.stderr
    assert "carebound login" in refused.stderr and "CAREBOUND_UNAUTHENTICATED=1" in refused.stderr
    assert runner.approval(request.approval_id).status == "pending"
    reveal = cli("show", request.approval_id, "--reveal", "--reviewer", "casey", code=3)
    assert "not believed" in reveal.stderr
    assert not [e for e in runner.audit(request.run_id) if e.action == "view_phi"]


def test_cli_development_mode_is_explicit_and_recorded_as_unauthenticated(
    env: Path,
    runner: Runner,
    users: UserStore,
    demo_case: Any,
    demo_world: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A store with no password and no token: the development mode, recorded as such.
    first = park(runner, demo_case, demo_world)
    cli("approve", first.approval_id, "--reviewer", "Casey", "--role", ROLE)
    assert via_of(runner, first.approval_id) == Provenance(
        channel="cli", principal="casey", kind="unauthenticated", authenticated=False
    )
    assert decision_event(runner, first.run_id)["authenticated"] is False
    # Once credentials exist, only CAREBOUND_UNAUTHENTICATED=1 opens it again.
    users.set_password("jordan", PASSWORD)
    second = park(runner, demo_case, demo_world)
    monkeypatch.setenv("CAREBOUND_UNAUTHENTICATED", "1")
    cli("approve", second.approval_id, "--reviewer", "casey", "--role", ROLE)
    assert via_of(runner, second.approval_id).authenticated is False
    missing = cli("approve", second.approval_id, "--role", ROLE, code=ExitCode.BAD_INPUT)
    assert "--reviewer is needed" in missing.stderr


def test_cli_token_identifies_the_reviewer(
    env: Path,
    runner: Runner,
    demo_case: Any,
    demo_world: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    request = park(runner, demo_case, demo_world)
    token = new_token("casey-cli", "--as", "casey", "--scope", "decide", "--scope", "read")
    monkeypatch.setenv("CAREBOUND_TOKEN", token)
    other = cli("approve", request.approval_id, "--reviewer", "jordan", "--role", ROLE, code=3)
    assert "'casey'" in other.stderr and "casey-cli" in other.stderr
    assert token not in other.stdout + other.stderr
    cli("approve", request.approval_id, "--role", ROLE, "--note", "checked")
    assert via_of(runner, request.approval_id) == Provenance(
        channel="cli", principal="casey", kind="reviewer", authenticated=True, token="casey-cli"
    )
    event = decision_event(runner, request.run_id)
    assert (event["channel"], event["token"], event["authenticated"]) == ("cli", "casey-cli", True)
    # A token without the scope, or one revoked, decides nothing.
    second = park(runner, demo_case, demo_world)
    monkeypatch.setenv("CAREBOUND_TOKEN", new_token("casey-ro", "--as", "casey", "--scope", "read"))
    lacking = cli("approve", second.approval_id, "--role", ROLE, code=3)
    assert "lacks the 'decide' scope" in lacking.stderr
    cli("tokens", "revoke", "casey-ro")
    revoked = cli("approve", second.approval_id, "--role", ROLE, code=3)
    assert "not valid for this store" in revoked.stderr
    assert runner.approval(second.approval_id).status == "pending"


def test_login_keeps_the_token_private_and_logout_forgets_it(
    env: Path, runner: Runner, demo_case: Any, demo_world: Any
) -> None:
    request = park(runner, demo_case, demo_world)
    token = new_token("casey-laptop", "--as", "casey", "--scope", "decide", "--scope", "reveal")
    assert "--reviewer alone" in cli(*APPROVE, request.approval_id, code=3).stderr
    bad = cli("login", "--token-stdin", stdin="cbt_not-a-real-token\n", code=3)
    assert "not valid for this store" in bad.stderr
    assert not (env / "credentials.json").exists()
    done = cli("login", "--token-stdin", stdin=token + "\n")
    assert "signed in as casey" in done.stdout and token not in done.stdout + done.stderr
    saved = env / "credentials.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(env.stat().st_mode) == 0o700
    assert json.loads(cli("whoami", "--json").stdout)["principal"] == "casey"

    cli("show", request.approval_id, "--reveal")
    views = [e for e in runner.audit(request.run_id) if e.action == "view_phi"]
    assert [v.actor.id for v in views] == ["casey"]
    cli(*APPROVE, request.approval_id)
    assert via_of(runner, request.approval_id).token == "casey-laptop"

    assert "signed out" in cli("logout").stdout
    assert not json.loads(saved.read_text())["stores"]
    second = park(runner, demo_case, demo_world)
    assert "not believed" in cli(*APPROVE, second.approval_id, code=3).stderr


def test_scenario_decisions_say_they_were_not_authenticated(
    env: Path, runner: Runner, users: UserStore
) -> None:
    users.set_password("jordan", PASSWORD)  # credentials do not stop a scenario run
    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "hello_hold.yaml"
    report = json.loads(cli("run", str(scenario), "--json").stdout)
    run_id = report["run_id"]
    assert via_of(runner, f"{run_id}-1") == Provenance(
        channel="scenario", principal="casey", kind="unauthenticated", authenticated=False
    )


def test_the_deadline_sweep_decides_as_carebound_itself(
    make_runner: Any, demo_case: Any, demo_world: Any
) -> None:
    from datetime import timedelta

    runner = make_runner()
    request = park(runner, demo_case, demo_world)
    runner.clock.advance(timedelta(days=2, minutes=1))
    assert runner.sweep().holds_escalated == 1
    runner.clock.advance(timedelta(days=2, minutes=1))
    assert runner.sweep().holds_expired == 1
    assert via_of(runner, request.approval_id) == Provenance(
        channel="worker", principal="system", kind="system", authenticated=True
    )


def test_login_with_the_web_password_makes_a_personal_token_and_logout_revokes_it(
    env: Path, runner: Runner, users: UserStore, demo_case: Any, demo_world: Any
) -> None:
    request = park(runner, demo_case, demo_world)
    users.set_password("casey", PASSWORD)
    wrong = cli(
        "login", "--reviewer", "casey", "--password-stdin", stdin="not it at all!!\n", code=3
    )
    assert "wrong reviewer id or password" in wrong.stderr
    assert users.tokens() == [] and not (env / "credentials.json").exists()
    done = cli("login", "--reviewer", "Casey", "--password-stdin", stdin=PASSWORD + "\n")
    assert "signed in as casey" in done.stdout
    [made] = users.tokens()
    assert made.reviewer == "casey" and made.scopes == ["read", "decide", "reveal"]
    cli(*APPROVE, request.approval_id)
    via = via_of(runner, request.approval_id)
    assert via.principal == "casey" and via.authenticated and via.token == made.name
    assert "revoked" in cli("logout").stdout
    assert users.tokens() == []
