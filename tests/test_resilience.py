"""Retries, timeouts and the Redis circuit breaker of real connectors (issue 15).

Every test sends real HTTP requests to a real server on a loopback port that answers from a
script of faults (tests/http_servers.py), with the breaker's state in a real Redis.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator

import httpx
import pytest
import redis

from carebound.state.breaker import BreakerLimits, BreakerStore
from carebound.tools.connectors import SystemRefusedError, SystemUnavailableError
from carebound.tools.connectors._resilience import Resilience, retry_after_s
from carebound.tools.connectors.config import BreakerSettings, RetrySettings, Timeouts
from tests.http_servers import Answer, Script, scripted_server

RETRY = RetrySettings(attempts=4, backoff_s=0.001, cap_s=30, jitter_s=0)
BREAKER = BreakerSettings(failure_threshold=2, reset_timeout_s=60)


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def breakers(redis_client: redis.Redis, key_prefix: str) -> BreakerStore:
    return BreakerStore(redis_client, prefix=key_prefix)


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client() as client:
        yield client


def _resilience(breakers: BreakerStore, clock: Clock, sleeps: list[float] | None = None,
                timeouts: Timeouts | None = None) -> Resilience:  # fmt: skip
    record = sleeps if sleeps is not None else []
    return Resilience("ehr", breakers, timeouts=timeouts or Timeouts(read_s=2.0), retry=RETRY,
                      breaker=BREAKER, clock=clock, sleep=record.append)  # fmt: skip


def test_a_read_is_retried_through_503_and_a_reset_and_succeeds(
    breakers: BreakerStore, http: httpx.Client
) -> None:
    script = Script([Answer(503), Answer(reset=True), Answer(502), Answer(200, {"ok": 1})])
    with scripted_server(script) as base:
        response = _resilience(breakers, Clock()).send(http, http.build_request("GET", base))
    assert response.json() == {"ok": 1}
    assert len(script.seen) == 4


def test_a_conditional_create_is_retried_a_plain_post_is_not(
    breakers: BreakerStore, http: httpx.Client
) -> None:
    script = Script([Answer(503), Answer(201, {"id": "t1"})])
    with scripted_server(script) as base:
        conditional = http.build_request(
            "POST", f"{base}/Task", json={}, headers={"If-None-Exist": "identifier=a|b"}
        )
        assert _resilience(breakers, Clock()).send(http, conditional).status_code == 201
    assert len(script.seen) == 2

    script = Script([Answer(503), Answer(201, {"id": "t1"})])
    unavailable = pytest.raises(SystemUnavailableError, match="ehr is unavailable: POST failed")
    with scripted_server(script) as base, unavailable:
        _resilience(breakers, Clock()).send(
            http, http.build_request("POST", f"{base}/Task", json={})
        )
    assert len(script.seen) == 1


def test_a_4xx_is_a_tool_error_never_retried(breakers: BreakerStore, http: httpx.Client) -> None:
    outcome = {"resourceType": "OperationOutcome", "issue": [{"code": "conflict",
               "diagnostics": "Patient Jane Doe changed"}]}  # fmt: skip
    script = Script([Answer(412, outcome)])
    with scripted_server(script) as base, pytest.raises(SystemRefusedError) as caught:
        _resilience(breakers, Clock()).send(
            http, http.build_request("PUT", f"{base}/Patient/p1", headers={"If-Match": 'W/"1"'})
        )
    assert caught.value.status == 412 and caught.value.system == "ehr"
    assert "HTTP 412 (conflict)" in caught.value.message
    assert "Jane" not in str(caught.value)  # the server's diagnostics may quote PHI
    assert len(script.seen) == 1
    assert breakers.state("ehr") == "closed"  # it answered: it is up


def test_429_honours_retry_after(breakers: BreakerStore, http: httpx.Client) -> None:
    sleeps: list[float] = []
    script = Script([Answer(429, headers={"Retry-After": "3"}), Answer(200, {})])
    with scripted_server(script) as base:
        _resilience(breakers, Clock(), sleeps).send(http, http.build_request("GET", base))
    assert sleeps == [3.0]  # the server's wait, longer than the backoff


def test_a_long_retry_after_is_not_slept_through(
    breakers: BreakerStore, http: httpx.Client
) -> None:
    clock, sleeps = Clock(), []
    script = Script([Answer(429, headers={"Retry-After": "120"}), Answer(200, {})])
    with scripted_server(script) as base, pytest.raises(SystemUnavailableError) as caught:
        _resilience(breakers, clock, sleeps).send(http, http.build_request("GET", base))
    assert sleeps == [] and len(script.seen) == 1
    assert caught.value.retry_at == clock.now + dt.timedelta(seconds=120)


def test_retry_after_as_an_http_date() -> None:
    now = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    response = httpx.Response(429, headers={"Retry-After": "Mon, 02 Mar 2026 09:00:45 GMT"})
    assert retry_after_s(response, now) == 45.0


def test_a_slow_answer_times_out_and_is_retried(breakers: BreakerStore, http: httpx.Client) -> None:
    # Generous margins: the fast answer must not miss its timeout on a busy machine.
    timeouts = Timeouts(read_s=1.0)
    script = Script([Answer(200, {"slow": 1}, delay_s=4.0), Answer(200, {"fast": 1})])
    with scripted_server(script) as base:
        response = _resilience(breakers, Clock(), timeouts=timeouts).send(
            http, http.build_request("GET", base)
        )
    assert response.json() == {"fast": 1}


def test_the_breaker_opens_for_every_process_then_one_probe_closes_it(
    redis_client: redis.Redis, redis_url: str, key_prefix: str, http: httpx.Client
) -> None:
    clock = Clock()
    down = Script([Answer(503)])
    with scripted_server(down) as base:
        worker_a = _resilience(BreakerStore(redis_client, prefix=key_prefix), clock)
        for _ in range(2):  # breaker_failures=2 calls, each after 4 tries
            with pytest.raises(SystemUnavailableError):
                worker_a.send(http, http.build_request("GET", base))
    assert len(down.seen) == 8
    # Another process (its own client and store) sees it open and calls nothing.
    other = redis.Redis.from_url(redis_url)
    worker_b = _resilience(BreakerStore(other, prefix=key_prefix), clock)
    up = Script([Answer(200, {"ok": 1})])
    with scripted_server(up) as base:
        with pytest.raises(SystemUnavailableError, match="circuit breaker is open") as caught:
            worker_b.send(http, http.build_request("GET", base))
        assert caught.value.retry_at == clock.now + dt.timedelta(seconds=60)
        assert up.seen == []
        clock.now += dt.timedelta(seconds=61)
        assert worker_b.send(http, http.build_request("GET", base)).json() == {"ok": 1}
    assert BreakerStore(redis_client, prefix=key_prefix).state("ehr") == "closed"
    assert BreakerStore(redis_client, prefix=key_prefix).take_recovered() == ["ehr"]
    assert BreakerStore(redis_client, prefix=key_prefix).take_recovered() == []


def test_only_one_process_probes_a_half_open_breaker(breakers: BreakerStore) -> None:
    limits = BreakerLimits(threshold=1, open_ms=1000, max_open_ms=8000, probe_ms=5000)
    breakers.record("payer", False, 0, limits)
    assert not breakers.allow("payer", 500, limits).allowed
    verdicts = []
    threads = [
        threading.Thread(target=lambda: verdicts.append(breakers.allow("payer", 1500, limits)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(v.allowed for v in verdicts) == 1
    # The probe failed: open again for twice as long.
    assert breakers.record("payer", False, 1600, limits) == ("open", 1600 + 2000)
    # A probe that never reports lets another process probe after probe_ms.
    assert breakers.allow("payer", 3700, limits).allowed
    assert not breakers.allow("payer", 3800, limits).allowed
    assert breakers.allow("payer", 3700 + 5000, limits).allowed
