"""The run lease: one writer per run, fencing tokens that only grow (real Redis/Valkey)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from carebound.state.keys import lease_key
from carebound.state.lease import Lease, RunLease


@pytest.fixture
def client(server_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(server_url)
    yield c
    c.close()


@pytest.fixture
def leases(client: redis.Redis, key_prefix: str) -> RunLease:
    return RunLease(client, prefix=key_prefix)


def acquire_when_free(leases: RunLease, run_id: str, owner: str, ttl_ms: int) -> Lease:
    """Poll until the current holder's lease lapses (bounded, no fixed sleep)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lease = leases.acquire(run_id, owner, ttl_ms)
        if lease is not None:
            return lease
        time.sleep(0.01)
    raise AssertionError(f"{owner} never acquired {run_id}")


def test_two_owners_contend_only_one_holds(
    leases: RunLease, client: redis.Redis, key_prefix: str
) -> None:
    a = leases.acquire("run-1", "worker-a", 30_000)
    assert a is not None
    assert (a.run_id, a.owner, a.token, a.ttl_ms) == ("run-1", "worker-a", 1, 30_000)
    assert leases.acquire("run-1", "worker-b", 30_000) is None

    stored = client.hgetall(lease_key(key_prefix, "run-1"))
    assert stored[b"owner"] == b"worker-a"
    assert stored[b"token"] == b"1"
    assert int(stored[b"expires_ms"]) == a.expires_at_ms
    assert client.ttl(lease_key(key_prefix, "run-1")) == -1  # the token must outlive any owner


def test_reacquire_by_same_owner_keeps_token_and_extends(leases: RunLease) -> None:
    first = leases.acquire("run-1", "worker-a", 1_000)
    again = leases.acquire("run-1", "worker-a", 60_000)
    assert first is not None and again is not None
    assert again.token == first.token
    assert again.expires_at_ms > first.expires_at_ms


def test_after_expiry_another_owner_gets_a_higher_token(
    leases: RunLease, client: redis.Redis, key_prefix: str
) -> None:
    a = leases.acquire("run-e", "worker-a", 50)
    assert a is not None
    b = acquire_when_free(leases, "run-e", "worker-b", 30_000)

    assert b.token > a.token
    assert client.hget(lease_key(key_prefix, "run-e"), "token") == str(b.token).encode()
    assert leases.renew(a) is False  # stale holder
    assert leases.release(a) is False
    assert leases.acquire("run-e", "worker-a", 30_000) is None
    assert client.hget(lease_key(key_prefix, "run-e"), "owner") == b"worker-b"


def test_release_then_acquire_by_another_increments_token(
    leases: RunLease, client: redis.Redis, key_prefix: str
) -> None:
    a = leases.acquire("run-r", "worker-a", 30_000)
    assert a is not None
    assert leases.release(a) is True
    assert leases.release(a) is False
    assert client.hgetall(lease_key(key_prefix, "run-r")) == {b"token": str(a.token).encode()}

    b = leases.acquire("run-r", "worker-b", 30_000)
    assert b is not None and b.token == a.token + 1
    assert leases.renew(a) is False

    assert leases.release(b) is True
    a2 = leases.acquire("run-r", "worker-a", 30_000)  # the old owner comes back: new token
    assert a2 is not None and a2.token == b.token + 1


def test_renew_extends_only_the_current_holder(
    leases: RunLease, client: redis.Redis, key_prefix: str
) -> None:
    a = leases.acquire("run-n", "worker-a", 200)
    assert a is not None
    longer = Lease(a.run_id, a.owner, a.token, a.expires_at_ms, ttl_ms=60_000)
    assert leases.renew(longer) is True
    expires = int(client.hget(lease_key(key_prefix, "run-n"), "expires_ms") or 0)
    assert expires >= a.expires_at_ms + 59_000
    forged = Lease(a.run_id, a.owner, a.token + 1, a.expires_at_ms, a.ttl_ms)
    assert leases.renew(forged) is False
    assert leases.release(forged) is False
    other_owner = Lease(a.run_id, "worker-b", a.token, a.expires_at_ms, a.ttl_ms)
    assert leases.renew(other_owner) is False
    assert leases.acquire("run-n", "worker-b", 1_000) is None  # still held after renew


def test_lapsed_but_unclaimed_lease_can_be_renewed(leases: RunLease) -> None:
    a = leases.acquire("run-l", "worker-a", 20)
    assert a is not None
    time.sleep(0.05)
    assert leases.renew(a) is True  # nobody took over: the token is still a's
    assert leases.acquire("run-l", "worker-b", 1_000) is None


def test_runs_are_independent(leases: RunLease) -> None:
    a = leases.acquire("run-x", "worker-a", 30_000)
    b = leases.acquire("run-y", "worker-b", 30_000)
    assert a is not None and b is not None
    assert (a.token, b.token) == (1, 1)


def test_eight_threads_one_winner(server_url: str, key_prefix: str, client: redis.Redis) -> None:
    n = 8
    barrier = threading.Barrier(n)
    won: list[Lease | None] = [None] * n
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        own = redis.Redis.from_url(server_url)
        try:
            leases = RunLease(own, prefix=key_prefix)
            barrier.wait()
            won[i] = leases.acquire("run-c", f"worker-{i}", 30_000)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    winners = [lease for lease in won if lease is not None]
    assert len(winners) == 1
    assert winners[0].token == 1
    stored = client.hgetall(lease_key(key_prefix, "run-c"))
    assert stored[b"owner"] == winners[0].owner.encode()
    assert stored[b"token"] == b"1"


@pytest.mark.parametrize(("owner", "ttl_ms"), [("", 1_000), ("worker-a", 0), ("worker-a", -5)])
def test_bad_arguments_are_refused(leases: RunLease, owner: str, ttl_ms: int) -> None:
    with pytest.raises(ValueError, match="lease"):
        leases.acquire("run-1", owner, ttl_ms)


def test_lease_is_frozen() -> None:
    lease = Lease("run-1", "worker-a", 1, 0, 1_000)
    with pytest.raises(AttributeError):
        lease.token = 2  # type: ignore[misc]


def test_a_guarded_acquire_takes_the_lease_only_while_the_guard_holds(
    leases: RunLease, client: redis.Redis, key_prefix: str
) -> None:
    from carebound.state.pipeline import Guard, run

    record = f"{key_prefix}:{{run-g}}:approval:run-g-1"
    client.hset(record, "decide_id", "mine")

    def acquire(expected: str) -> Lease | None:
        parse: dict[str, Any] = {}

        def fill(pipe: redis.client.Pipeline) -> None:
            guard = Guard(record, {"decide_id": expected})
            parse["lease"] = leases.queue_acquire(pipe, "run-g", "w1", 5000, guard=guard)

        (reply,) = run(client, fill)
        lease: Lease | None = parse["lease"](reply)
        return lease

    assert acquire("theirs") is None
    assert client.hget(lease_key(key_prefix, "run-g"), "owner") is None  # untouched
    taken = acquire("mine")
    assert taken is not None and taken.owner == "w1"
