"""Browser sessions in Redis, each with its own CSRF token.

The cookie holds a random session id (256 bits); Redis holds only its sha256, so a copy of the
store does not hand out live sessions::

    {prefix}:web:session:<sha256(session id)>   JSON Session, expires after the idle time

A visitor who is not signed in gets an *anonymous* session when the sign-in form is shown, so
the form carries a CSRF token too. Signing in deletes that session and issues a new id (no
session fixation); signing out deletes it. A signed-in session carries its reviewer's credential
version: a password change or removal bumps it, and the session is over at its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

import redis
from pydantic import BaseModel, ConfigDict

from carebound.state.keys import DEFAULT_PREFIX, global_key

COOKIE = "carebound_session"
"""Name of the session cookie."""


class Session(BaseModel):
    """One browser session."""

    model_config = ConfigDict(frozen=True)

    user: str | None
    """The signed-in reviewer's id; None before sign-in."""
    csrf: str
    """The token every state-changing form of this session must carry."""
    created_at: float
    """When the session was issued (Unix time)."""
    credential_version: int | None = None
    """The reviewer's credential version at sign-in; a session of another version is over
    (None: an anonymous session, or one issued before versions existed)."""

    def csrf_ok(self, presented: str | None) -> bool:
        """Whether a form's CSRF token is this session's (compared in constant time)."""
        return presented is not None and hmac.compare_digest(presented.encode(), self.csrf.encode())


class SessionStore:
    """Issue, read and end sessions."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        idle_s: int,
        max_s: int,
        anonymous_s: int,
    ) -> None:
        self._r = client
        self._prefix = prefix
        self._idle_s = idle_s
        self._max_s = max_s
        self._anonymous_s = anonymous_s

    def _key(self, session_id: str) -> str:
        digest = hashlib.sha256(session_id.encode()).hexdigest()
        return global_key(self._prefix, "web", "session", digest)

    def create(
        self, user: str | None, *, credential_version: int | None = None
    ) -> tuple[str, Session]:
        """A new session (anonymous when ``user`` is None); returns its id and record.

        ``credential_version`` is the signed-in reviewer's (see :meth:`UserStore.verify`)."""
        session_id = secrets.token_urlsafe(32)
        session = Session(
            user=user,
            csrf=secrets.token_urlsafe(32),
            created_at=time.time(),
            credential_version=credential_version,
        )
        ttl = self._anonymous_s if user is None else self._idle_s
        self._r.set(self._key(session_id), session.model_dump_json(), ex=ttl)
        return session_id, session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, or None; a signed-in session's idle time restarts."""
        if not session_id or len(session_id) > 100:
            return None
        key = self._key(session_id)
        raw = self._r.get(key)
        if raw is None:
            return None
        session = Session.model_validate_json(raw)
        if session.user is not None:
            if time.time() - session.created_at > self._max_s:
                self._r.delete(key)
                return None
            self._r.expire(key, self._idle_s)
        return session

    def delete(self, session_id: str | None) -> None:
        """End a session."""
        if session_id:
            self._r.delete(self._key(session_id))
