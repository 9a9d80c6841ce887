"""Circuit breakers whose state lives in Redis, so every process sees a system as down at once.

One hash per external system (``{prefix}:{breakers}:system:<name>``). Each question and each
report is one atomic Lua step (``breaker_allow``, ``breaker_record``):

* **closed**: calls go out; the ``threshold``-th failed call in a row opens it.
* **open**: calls fail fast until ``open_until``; the first caller after that becomes the
  single **probe** (state ``half_open``; other callers still fail fast until the probe reports
  or its ``probe_ms`` lapse).
* the probe's success closes the breaker and adds the system to the *recovered* set, which the
  worker's sweep takes (:meth:`BreakerStore.take_recovered`) to wake the runs parked on it; the
  probe's failure reopens it for twice as long, up to ``max_open_ms``.

Why not pybreaker's ``CircuitRedisStorage``: it keeps each field under its own key and moves
between states with separate GET/SET/INCR calls (two processes can both decide to probe, or lose
a transition), falls back silently to *closed* when Redis errors, reads the wall clock (a
scenario's virtual clock cannot drive it), and its keys sit outside carebound's prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import redis

from carebound.state.keys import DEFAULT_PREFIX, breaker_key, breakers_recovered_key, text
from carebound.state.lua import script

BreakerState = Literal["closed", "open", "half_open"]
"""Where a breaker is."""

_ALLOW = script("breaker_allow")
_RECORD = script("breaker_record")
_TAKE_RECOVERED = script("breaker_take_recovered")


@dataclass(frozen=True)
class BreakerVerdict:
    """Whether one call may go out now."""

    allowed: bool
    state: BreakerState
    retry_at_ms: int
    """When a refused call may be tried again (epoch ms); 0 when allowed."""


@dataclass(frozen=True, kw_only=True)
class BreakerLimits:
    """When a breaker opens and for how long."""

    threshold: int = 5
    """Failed calls in a row that open a closed breaker."""
    open_ms: int = 30_000
    """How long it stays open the first time (doubled after each failed probe)."""
    max_open_ms: int = 600_000
    """The longest it stays open."""
    probe_ms: int = 30_000
    """How long one probe may take before another process may probe instead."""


class BreakerStore:
    """The circuit breakers of every external system, in Redis (see the module docstring)."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._r = client
        self._prefix = prefix

    def allow(self, system: str, now_ms: int, limits: BreakerLimits) -> BreakerVerdict:
        """May a call to ``system`` go out at ``now_ms``? (An allowed call after the cool-down
        is the probe: report its outcome with :meth:`record`.)"""
        allowed, state, retry_at = _ALLOW(
            self._r, [breaker_key(self._prefix, system)], [now_ms, limits.probe_ms]
        )
        return BreakerVerdict(bool(int(allowed)), _state(state), int(retry_at))

    def record(
        self, system: str, ok: bool, now_ms: int, limits: BreakerLimits
    ) -> tuple[BreakerState, int]:
        """Record how a call to ``system`` ended; returns the breaker's state and, when open,
        until when (epoch ms)."""
        keys = [breaker_key(self._prefix, system), breakers_recovered_key(self._prefix)]
        args = [now_ms, "ok" if ok else "fail", limits.threshold, limits.open_ms]
        state, until = _RECORD(self._r, keys, [*args, limits.max_open_ms, system])
        return _state(state), int(until)

    def state(self, system: str) -> BreakerState:
        """Where ``system``'s breaker is (closed when it was never used)."""
        raw = self._r.hget(breaker_key(self._prefix, system), "state")
        return "closed" if raw is None else _state(raw)

    def take_recovered(self) -> list[str]:
        """The systems whose breaker closed since the last take; each is returned to one
        caller, once (the sweep wakes their parked runs)."""
        names = _TAKE_RECOVERED(self._r, [breakers_recovered_key(self._prefix)], [])
        return sorted(text(n) for n in names)


def _state(raw: object) -> BreakerState:
    value = text(raw)
    if value not in ("closed", "open", "half_open"):
        raise ValueError(f"unknown breaker state {value!r}")
    return value  # type: ignore[return-value]
