"""Who may use the web app: reviewers (passwords) and services (API tokens), kept in Redis.

Reviewers are the people in the policy pack's reviewer directory; the pack says who they are and
which roles they hold, this store only keeps their password hash. Services get API tokens, and
reviewers may get personal tokens bound to them (key layout, scopes and binding:
:mod:`carebound._tokens`).

Passwords are hashed with argon2id (argon2-cffi's RFC 9106 defaults): people choose guessable
passwords, so a stolen hash must be slow and memory-hard to attack. Tokens are 256 random bits
made here: nobody can guess one, so a fast sha256 at rest is enough (a leaked digest does not
give the token back), and it lets a request's token be found in one lookup. Every password
change or removal bumps the reviewer's credential version, which ends their web sessions.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from carebound._errors import CareboundError
from carebound._principal import normalize_reviewer_id
from carebound._tokens import (
    ALL_ROLES,
    SCOPES,
    TOKEN_PREFIX,
    Scope,
    ServiceToken,
    credential_versions_key,
    default_scopes,
    find_token,
    passwords_key,
    token_digest,
    token_names_key,
    tokens_key,
)
from carebound.guardrails import PolicyPack, Reviewer
from carebound.state.keys import DEFAULT_PREFIX, text

__all__ = [
    "ALL_ROLES",
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "SCOPES",
    "TOKEN_PREFIX",
    "CredentialError",
    "ServiceToken",
    "UserStore",
    "token_digest",
]

MIN_PASSWORD = 15
"""Shortest password accepted (NIST SP 800-63B-4 for a password used on its own)."""
MAX_PASSWORD = 1024
"""Longest password accepted."""


class CredentialError(CareboundError):
    """A password or token cannot be set: unknown reviewer, weak password, taken name."""


def _same_id(stored: str, key: str) -> bool:
    try:
        return normalize_reviewer_id(stored) == key
    except CareboundError:
        return False


def _key_of(user_id: str) -> str:
    """The id a reviewer's password and credential version are stored under (its normal form;
    an id that has none is used as given, and matches nobody)."""
    try:
        return normalize_reviewer_id(user_id)
    except CareboundError:
        return user_id


class UserStore:
    """Reviewer passwords and service tokens; the reviewer directory comes from a policy pack."""

    def __init__(
        self,
        client: redis.Redis,
        directory: PolicyPack,
        *,
        prefix: str = DEFAULT_PREFIX,
        hasher: PasswordHasher | None = None,
    ) -> None:
        self._r = client
        self.directory = directory
        self._hasher = hasher or PasswordHasher()
        self._prefix = prefix
        self._passwords = passwords_key(prefix)
        self._versions = credential_versions_key(prefix)
        self._tokens = tokens_key(prefix)
        self._token_names = token_names_key(prefix)
        self._dummy: str | None = None

    # -- reviewers -----------------------------------------------------------------------

    def reviewer(self, user_id: str) -> Reviewer | None:
        """The reviewer with this id (compared in its normal form) in the directory, or None."""
        try:
            key = normalize_reviewer_id(user_id)
        except CareboundError:
            return None
        return self.directory.reviewer(key) or next(
            (r for r in self.directory.reviewers if _same_id(r.id, key)), None
        )

    def require_reviewer(self, user_id: str) -> Reviewer:
        """The reviewer with this id.

        Raises:
            CredentialError: nobody in the directory has that id.
        """
        reviewer = self.reviewer(user_id)
        if reviewer is None:
            known = ", ".join(r.id for r in self.directory.reviewers) or "(none)"
            raise CredentialError(
                f"{user_id!r} is not in the reviewer directory of policy pack "
                f"{self.directory.name!r}",
                hint=f"reviewers in the pack: {known}",
            )
        return reviewer

    def set_password(self, user_id: str, password: str) -> None:
        """Set (or replace) a reviewer's password; their existing web sessions end.

        Raises:
            CredentialError: ``user_id`` is not in the directory, or the password is too short
                or too long.
        """
        user_id = _key_of(self.require_reviewer(user_id).id)
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise CredentialError(
                f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long",
                hint="a few unrelated words make a long password that is easy to remember",
            )
        phc = self._hasher.hash(password)
        with self._r.pipeline(transaction=True) as pipe:
            pipe.hset(self._passwords, user_id, phc)
            pipe.hincrby(self._versions, user_id, 1)
            pipe.execute()

    def has_password(self, user_id: str) -> bool:
        """Whether the reviewer can sign in."""
        return bool(self._r.hexists(self._passwords, _key_of(user_id)))

    def remove_password(self, user_id: str) -> bool:
        """Stop a reviewer from signing in, ending their web sessions. True if they had a
        password."""
        user_id = _key_of(user_id)
        with self._r.pipeline(transaction=True) as pipe:
            pipe.hdel(self._passwords, user_id)
            pipe.hincrby(self._versions, user_id, 1)
            removed, _ = pipe.execute()
        return bool(removed)

    def credential_version(self, user_id: str) -> int:
        """The reviewer's credential version: a session issued under another one is over."""
        raw = self._r.hget(self._versions, _key_of(user_id))
        return int(text(raw)) if raw is not None else 0

    def verify(self, user_id: str, password: str) -> Reviewer | None:
        """The reviewer, if the password is theirs; None otherwise (same work either way)."""
        reviewer = self.reviewer(user_id) if len(user_id) <= 200 else None
        key = _key_of(reviewer.id) if reviewer is not None else ""
        stored = self._r.hget(self._passwords, key) if reviewer is not None else None
        if reviewer is None or stored is None or len(password) > MAX_PASSWORD:
            # Spend the same time on unknown users, so timing does not tell who exists.
            self._check(self._dummy_hash(), password[:MAX_PASSWORD])
            return None
        phc = text(stored)
        if not self._check(phc, password):
            return None
        if self._hasher.check_needs_rehash(phc):
            self._r.hset(self._passwords, key, self._hasher.hash(password))
        return reviewer

    def _check(self, phc: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(phc, password))
        except (VerificationError, InvalidHashError):
            return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy

    # -- services ------------------------------------------------------------------------

    def create_token(
        self,
        name: str,
        roles: Iterable[str] = (),
        *,
        scopes: Iterable[Scope] | None = None,
        reviewer: str | None = None,
    ) -> str:
        """Create a token called ``name``; returns the token, shown only now.

        Args:
            name: the token's name (shown in the audit trail).
            roles: roles whose holds it may list and decide ('*': all).
            scopes: what it may do (see :mod:`carebound._tokens`); None: ``read``, plus
                ``decide`` when it has roles or a reviewer.
            reviewer: bind it to this directory reviewer (a personal token): it then acts as
                them, within their roles; None: it acts as itself, ``token:NAME``.

        Raises:
            CredentialError: the name is empty, too long or already has a token, a role is held
                by nobody in the directory (or not by the bound reviewer), the reviewer is not
                in the directory, or a scope is unknown.
        """
        name = name.strip()
        if not name or len(name) > 100 or not name.isprintable():
            raise CredentialError(
                "a token name must be 1 to 100 printable characters",
                hint="name it after the service, e.g. 'ehr-bridge'",
            )
        roles = sorted(set(roles))
        bound = None
        if reviewer is not None:
            bound = self.require_reviewer(normalize_reviewer_id(reviewer))
            known = set(bound.roles)
            who = f"reviewer {bound.id!r} does not hold"
        else:
            known = {role for r in self.directory.reviewers for role in r.roles}
            who = f"no reviewer in policy pack {self.directory.name!r} holds"
        unknown = [r for r in roles if r != ALL_ROLES and r not in known]
        if unknown:
            raise CredentialError(
                f"{who} role(s) {', '.join(unknown)}",
                hint=f"roles there: {', '.join(sorted(known)) or '(none)'}",
            )
        given = set(scopes) if scopes is not None else None
        chosen = [s for s in SCOPES if s in given] if given is not None else None
        bad = sorted(given - set(SCOPES)) if given is not None else []
        if bad:
            raise CredentialError(
                f"unknown scope(s) {', '.join(map(repr, bad))}",
                hint=f"scopes: {', '.join(SCOPES)}",
            )
        record = ServiceToken(
            name=name,
            roles=roles,
            scopes=chosen if chosen is not None else default_scopes(roles, reviewer),
            reviewer=bound.id if bound is not None else None,
            created_at=datetime.now(UTC),
        )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = token_digest(token)
        if not self._r.hsetnx(self._token_names, name, digest):
            raise CredentialError(
                f"a token named {name!r} exists already",
                hint=f"revoke it first ('carebound tokens revoke {name}') or pick another name",
            )
        self._r.hset(self._tokens, digest, record.model_dump_json())
        return token

    def token(self, token: str) -> ServiceToken | None:
        """The record of a presented token, or None."""
        return find_token(self._r, self._prefix, token)

    def tokens(self) -> list[ServiceToken]:
        """Every service token, by name."""
        records = [ServiceToken.model_validate(json.loads(v)) for v in self._r.hvals(self._tokens)]
        return sorted(records, key=lambda t: t.name)

    def revoke_token(self, name: str) -> bool:
        """Revoke the token called ``name``. True if there was one."""
        digest = self._r.hget(self._token_names, name)
        if digest is None:
            return False
        self._r.hdel(self._tokens, text(digest))
        self._r.hdel(self._token_names, name)
        return True
