"""One writer per run: a lease with a fencing token.

The lease of a run is a Redis hash at ``carebound.state.keys.lease_key(prefix, run_id)``::

    owner       the holder's id (absent when released)
    token       fencing token: an integer that only ever grows (HINCRBY), bumped on every
                change of owner and never reset, so the hash has no TTL
    expires_ms  when the holder's claim lapses, in ms on the *Redis server's* clock (TIME),
                so the workers' clocks never matter

``owner`` and ``token`` are a contract with the checkpointer: its write scripts compare
``HGET <lease> token`` with the writer's token in the same atomic step, so a process that lost
its lease cannot write even before it notices. Every operation here is one Lua script.

Owner ids must be unique per process (e.g. ``host:pid:uuid``): two processes with the same
owner id share the lease.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis

from carebound.state.keys import DEFAULT_PREFIX, lease_key
from carebound.state.lua import script
from carebound.state.pipeline import Guard

__all__ = ["Heartbeat", "Lease", "RunLease", "start_heartbeats"]

_log = logging.getLogger("carebound.state.lease")

_ACQUIRE = script("lease_acquire")
_RENEW = script("lease_renew")
_RELEASE = script("lease_release")


@dataclass(frozen=True, slots=True)
class Lease:
    """A claim on being the only writer of one run.

    A lease stays valid for writing as long as the run's ``token`` is unchanged: the token
    changes only when another owner acquires the run, which it can do once the lease expired.
    """

    run_id: str
    """The run this lease is for."""
    owner: str
    """The holder's id, unique per process."""
    token: int
    """Fencing token: pass it with every write; the store refuses writes with an older token."""
    expires_at_ms: int
    """When the claim lapses unless renewed, in ms since the epoch on the Redis server's clock."""
    ttl_ms: int
    """How long each acquire or renew extends the claim."""


def _check(run_id: str, owner: str, ttl_ms: int) -> None:
    if not run_id or not owner:
        raise ValueError("a lease needs a non-empty run_id and owner")
    if ttl_ms <= 0:
        raise ValueError(f"lease ttl_ms must be positive, got {ttl_ms}")


def _acquired(run_id: str, owner: str, ttl_ms: int, reply: Sequence[Any]) -> Lease | None:
    if int(reply[0]) != 1:
        return None
    return Lease(run_id, owner, int(reply[1]), int(reply[2]), ttl_ms)


class RunLease:
    """Acquire, renew and release run leases in one Redis.

    Args:
        client: a ``redis.Redis``.
        prefix: key prefix, see ``carebound.state.keys``.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._client = client
        self._prefix = prefix

    def acquire(self, run_id: str, owner: str, ttl_ms: int) -> Lease | None:
        """Become the writer of ``run_id`` for ``ttl_ms``.

        Returns None while another owner holds a live lease. If ``owner`` already holds it (even
        if it lapsed and nobody took over), the lease is extended and keeps its token;
        otherwise the token is incremented.
        """
        _check(run_id, owner, ttl_ms)
        reply = _ACQUIRE(self._client, [lease_key(self._prefix, run_id)], [owner, ttl_ms])
        return _acquired(run_id, owner, ttl_ms, reply)

    def queue_acquire(
        self,
        pipe: redis.client.Pipeline,
        run_id: str,
        owner: str,
        ttl_ms: int,
        *,
        guard: Guard | None = None,
    ) -> Callable[[Any], Lease | None]:
        """Queue ``acquire`` on ``pipe`` (sent with ``carebound.state.pipeline.run``); returns the
        function that turns its reply into the lease, or None. With ``guard`` (a hash in the
        run's hash slot), the lease is only taken if the guard holds then."""
        _check(run_id, owner, ttl_ms)
        keys = [lease_key(self._prefix, run_id)]
        args: list[str | int] = [owner, ttl_ms]
        if guard is not None:
            keys.append(guard.key)
            args += guard.args()
        _ACQUIRE.queue(pipe, keys, args)
        return functools.partial(_acquired, run_id, owner, ttl_ms)

    def held(self, lease: Lease) -> Guard:
        """A guard that holds until another owner takes the run over (its token changes):
        writes in the run's hash slot queued with it are fenced like checkpoint writes. It
        still holds after this owner's own release, so a pipeline re-sent after that is fine."""
        return Guard(lease_key(self._prefix, lease.run_id), {"token": str(lease.token)})

    def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` by its ``ttl_ms`` from now; False if it is no longer ours.

        A lease that lapsed but that no other owner acquired (same token) can still be renewed:
        no other writer can have written in between.
        """
        reply = _RENEW(
            self._client,
            [lease_key(self._prefix, lease.run_id)],
            [lease.owner, lease.token, lease.ttl_ms],
        )
        return int(reply) > 0

    @contextmanager
    def heartbeat(self, lease: Lease, every_s: float | None = None) -> Iterator[Heartbeat]:
        """Keep ``lease`` alive while the block runs (a slow tool call): the process's
        heartbeat thread renews it every ``every_s`` seconds (default: a third of its ttl),
        with its fencing token, on connections of the client's pool (never one the caller
        is using)."""
        beat = Heartbeat(self, lease, every_s if every_s is not None else lease.ttl_ms / 3000)
        beat.start()
        try:
            yield beat
        finally:
            beat.stop()

    def release(self, lease: Lease, *, pipe: redis.client.Pipeline | None = None) -> bool:
        """Give up ``lease`` so another owner can acquire at once; False if it was not ours.

        With ``pipe``, the release is only queued there (after the writes queued before it),
        to be sent with ``carebound.state.pipeline.run``, and True is returned.
        """
        keys = [lease_key(self._prefix, lease.run_id)]
        args: list[str | int] = [lease.owner, lease.token]
        if pipe is not None:
            _RELEASE.queue(pipe, keys, args)
            return True
        return int(_RELEASE(self._client, keys, args)) == 1


class Heartbeat:
    """Keeps one lease alive while registered with the process's heartbeat thread (see
    :meth:`RunLease.heartbeat`).

    ``lost`` turns True when a renewal found the lease taken over (its token changed): the
    caller must not write anything more for the run (its fenced writes are refused anyway).
    """

    def __init__(self, leases: RunLease, lease: Lease, every_s: float) -> None:
        self._leases = leases
        self._lease = lease
        self.every_s = every_s
        self.next_at = time.monotonic() + every_s
        self.lost = False
        self.renewals = 0

    def start(self) -> None:
        """Start renewing (no thread is started per lease: one per process serves all)."""
        _HEARTBEATS.add(self)

    def stop(self) -> None:
        """Stop renewing."""
        _HEARTBEATS.remove(self)

    def beat(self) -> bool:
        """Renew once; False once the lease was found taken over (stop renewing)."""
        self.next_at = time.monotonic() + self.every_s
        try:
            if not self._leases.renew(self._lease):
                self.lost = True
                _log.warning("run %s: lease taken over during a tool call", self._lease.run_id)
                return False
        except redis.RedisError as exc:  # a blip: the next beat tries again
            _log.warning(
                "run %s: lease renewal failed (%s)", self._lease.run_id, type(exc).__name__
            )
            return True
        self.renewals += 1
        return True


class _Heartbeats:
    """The process's one heartbeat thread: renews every registered lease when it is due.

    A tool call registers its run's lease and unregisters it when the call ends: no thread is
    started and nothing is sent for a call shorter than a third of the lease. The thread is
    started when carebound's Runner module is imported (and again, lazily, in a forked child).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._beats: dict[int, Heartbeat] = {}
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._wakes_at = math.inf
        """When the waiting thread wakes up next (monotonic): a lease due later needs no
        wake-up now, so most tool calls register without waking the thread."""

    def ensure_started(self) -> None:
        """Start the thread unless it runs in this process already."""
        with self._cond:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._loop, name="carebound-lease-heartbeat", daemon=True
            )
            self._thread.start()

    def add(self, beat: Heartbeat) -> None:
        self.ensure_started()
        with self._cond:
            self._beats[id(beat)] = beat
            if beat.next_at < self._wakes_at:
                self._cond.notify()

    def remove(self, beat: Heartbeat) -> None:
        with self._cond:
            self._beats.pop(id(beat), None)

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [b for b in self._beats.values() if b.next_at <= now]
                if not due:
                    first = min((b.next_at for b in self._beats.values()), default=None)
                    self._wakes_at = math.inf if first is None else first
                    self._cond.wait(None if first is None else first - now)
                    self._wakes_at = -math.inf  # awake: it looks at every lease before waiting
                    continue
            for beat in due:  # renewals go out without the lock held
                if not beat.beat():
                    self.remove(beat)


_HEARTBEATS = _Heartbeats()


def start_heartbeats() -> None:
    """Start the process's lease heartbeat thread now (idle until a tool call registers a
    lease), so that no thread is started on the path of a reviewer's decide."""
    _HEARTBEATS.ensure_started()
