"""Sign-in throttling that slows a password guesser without locking the real reviewer out.

Two brakes, both kept in the run store so every server process agrees:

- **Per account, exponential backoff on failures.** After ``free_failures`` wrong passwords in a
  row for one reviewer id, each further attempt must wait ``base_s * 2**(extra failures)``
  seconds (at most ``max_s``) after the last failure. Rotating client addresses does not help an
  attacker: the counter is per account.
- **Known devices are exempt from the account brake.** A successful sign-in leaves a random
  *device cookie* in that browser (only its sha256 is stored, bound to the reviewer id). Attempts
  that present it are counted per device instead, so someone who merely knows an id cannot lock
  its owner out of the browsers she already uses (OWASP's "device cookies" defence).

The per-client-address fixed window (:class:`~carebound.web._ratelimit.RateLimiter`) stays on
top of both. Keys::

    {prefix}:web:signin:fail:<sha256(who)[:24]>   hash {n, last}; expires after max_s + a day
    {prefix}:web:device:<sha256(cookie)>         reviewer id; expires after device_ttl_s
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import redis

from carebound.state.keys import DEFAULT_PREFIX, global_key

DEVICE_COOKIE = "carebound_device"
"""Name of the known-device cookie."""


@dataclass(frozen=True, kw_only=True)
class SignInBackoff:
    """How hard wrong passwords are braked."""

    free_failures: int = 5
    """Wrong passwords in a row that cost nothing."""
    base_s: float = 1.0
    """The wait after the first failure past the free ones; doubles with each further one."""
    max_s: float = 900.0
    """The longest wait (15 minutes)."""
    device_ttl_s: int = 30 * 24 * 3600
    """How long a browser stays a known device after its last successful sign-in."""


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class SignInThrottle:
    """Counts failed sign-ins per account (or per known device) and says how long to wait."""

    def __init__(
        self, client: redis.Redis, rule: SignInBackoff, *, prefix: str = DEFAULT_PREFIX
    ) -> None:
        self._r = client
        self._rule = rule
        self._prefix = prefix

    def _fail_key(self, who: str) -> str:
        return global_key(self._prefix, "web", "signin", "fail", _digest(who))

    def _device_key(self, cookie: str) -> str:
        digest = hashlib.sha256(cookie.encode()).hexdigest()
        return global_key(self._prefix, "web", "device", digest)

    def subject(self, reviewer: str, device_cookie: str | None) -> str:
        """What one attempt counts against: the known device when the cookie is this reviewer's,
        else the account itself."""
        if device_cookie and len(device_cookie) <= 100:
            owner = self._r.get(self._device_key(device_cookie))
            if (
                owner is not None
                and (owner if isinstance(owner, str) else owner.decode()) == reviewer
            ):
                return f"device:{_digest(device_cookie)}"
        return f"account:{reviewer}"

    def wait_s(self, subject: str) -> int:
        """Seconds before ``subject`` may try again (0: now)."""
        raw = self._r.hmget(self._fail_key(subject), ["n", "last"])
        if raw[0] is None or raw[1] is None:
            return 0
        failures, last = int(raw[0]), float(raw[1])
        extra = failures - self._rule.free_failures
        if extra < 0:
            return 0
        delay = min(self._rule.max_s, self._rule.base_s * 2.0**extra)
        remaining = last + delay - time.time()
        return max(0, int(remaining + 0.999))

    def failed(self, subject: str) -> None:
        """Record one wrong password."""
        key = self._fail_key(subject)
        pipe = self._r.pipeline(transaction=True)
        pipe.hincrby(key, "n", 1)
        pipe.hset(key, "last", repr(time.time()))
        pipe.expire(key, int(self._rule.max_s) + 86400)
        pipe.execute()

    def succeeded(self, subject: str, reviewer: str, device_cookie: str | None) -> str:
        """Clear the failures and (re)issue the device cookie; returns the cookie to set."""
        cookie = device_cookie if subject.startswith("device:") and device_cookie else None
        cookie = cookie or secrets.token_urlsafe(32)
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(self._fail_key(subject))
        pipe.set(self._device_key(cookie), reviewer, ex=self._rule.device_ttl_s)
        pipe.execute()
        return cookie
