"""Fixed-window rate limits in Redis: sign-in attempts and reviewer decisions.

A flood of approval requests, or of guesses at a password, is a known attack on
human-in-the-loop systems; both are capped per person (or service) and, for sign-in, per client
address. One counter per window::

    {prefix}:web:rate:<bucket>:<sha256(who)[:24]>:<window number>   INCR, expires with the window

The first hit of a window creates the counter with its expiry in the same script, so a counter
never outlives its window and a crash cannot leave one without an expiry.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

import redis

from carebound.state.keys import DEFAULT_PREFIX, global_key
from carebound.state.lua import script

_HIT = script("ratelimit_hit")


@dataclass(frozen=True, kw_only=True)
class RateLimit:
    """At most ``limit`` hits per ``window_s`` seconds (a fixed window)."""

    limit: int
    """Hits allowed in one window."""
    window_s: int
    """Length of a window, in seconds."""


class RateLimiter:
    """Counts hits per (bucket, who) in fixed windows on the run store."""

    def __init__(self, client: redis.Redis, *, prefix: str = DEFAULT_PREFIX) -> None:
        self._r = client
        self._prefix = prefix

    def _key(self, bucket: str, who: str, window: int) -> str:
        # Hashing keeps attacker-chosen user names and addresses out of the key space.
        digest = hashlib.sha256(who.encode()).hexdigest()[:24]
        return global_key(self._prefix, "web", "rate", bucket, digest, str(window))

    def hit(self, bucket: str, who: str, rule: RateLimit) -> int | None:
        """Count one hit. None if allowed, else the seconds until the window ends."""
        now = time.time()
        window = int(now // rule.window_s)
        count = int(_HIT(self._r, [self._key(bucket, who, window)], [rule.window_s]))
        if count <= rule.limit:
            return None
        return max(1, int((window + 1) * rule.window_s - now) + 1)

    def reset(self, bucket: str, who: str, rule: RateLimit) -> None:
        """Forget the current window's hits (e.g. after a successful sign-in)."""
        window = int(time.time() // rule.window_s)
        self._r.delete(self._key(bucket, who, window))
