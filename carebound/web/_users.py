"""Who may use the web app: reviewers (passwords) and services (API tokens), kept in Redis.

Reviewers are the people in the policy pack's reviewer directory; the pack says who they are and
which roles they hold, this store only keeps their password hash. Services get API tokens::

    {prefix}:web:passwords      hash  reviewer id -> argon2id hash (PHC string)
    {prefix}:web:tokens         hash  sha256(token) -> ServiceToken JSON
    {prefix}:web:token-names    hash  token name -> sha256(token)

Passwords are hashed with argon2id (argon2-cffi's RFC 9106 defaults): people choose guessable
passwords, so a stolen hash must be slow and memory-hard to attack. Tokens are 256 random bits
made here: nobody can guess one, so a fast sha256 at rest is enough (a leaked digest does not
give the token back), and it lets a request's token be found in one lookup.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime

import redis
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from pydantic import BaseModel, ConfigDict, Field

from carebound._errors import CareboundError
from carebound._keys import DEFAULT_PREFIX, global_key, text
from carebound.guardrails import PolicyPack, Reviewer

MIN_PASSWORD = 15
"""Shortest password accepted (NIST SP 800-63B-4 for a password used on its own)."""
MAX_PASSWORD = 1024
"""Longest password accepted."""
TOKEN_PREFIX = "cbt_"
"""Every API token starts with this, so a leaked one is easy to recognise and scan for."""
ALL_ROLES = "*"
"""A token role that stands for every role of the directory."""


class CredentialError(CareboundError):
    """A password or token cannot be set: unknown reviewer, weak password, taken name."""


class ServiceToken(BaseModel):
    """An API token as stored (never the token itself)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Name of the service, shown in the audit trail.")
    roles: list[str] = Field(
        default_factory=list,
        description="Roles whose holds the service may list and decide ('*': all); none: it "
        "may start runs, read them and deliver events only.",
    )
    created_at: datetime

    def holds(self, role: str) -> bool:
        """Whether the token may act on holds for ``role``."""
        return ALL_ROLES in self.roles or role in self.roles


def token_digest(token: str) -> str:
    """The sha256 under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


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
        self._passwords = global_key(prefix, "web", "passwords")
        self._tokens = global_key(prefix, "web", "tokens")
        self._token_names = global_key(prefix, "web", "token-names")
        self._dummy: str | None = None

    # -- reviewers -----------------------------------------------------------------------

    def reviewer(self, user_id: str) -> Reviewer | None:
        """The reviewer with this id in the directory, or None."""
        return self.directory.reviewer(user_id)

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
        """Set (or replace) a reviewer's password.

        Raises:
            CredentialError: ``user_id`` is not in the directory, or the password is too short
                or too long.
        """
        self.require_reviewer(user_id)
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise CredentialError(
                f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long",
                hint="a few unrelated words make a long password that is easy to remember",
            )
        self._r.hset(self._passwords, user_id, self._hasher.hash(password))

    def has_password(self, user_id: str) -> bool:
        """Whether the reviewer can sign in."""
        return bool(self._r.hexists(self._passwords, user_id))

    def remove_password(self, user_id: str) -> bool:
        """Stop a reviewer from signing in. True if they had a password."""
        return bool(self._r.hdel(self._passwords, user_id))

    def verify(self, user_id: str, password: str) -> Reviewer | None:
        """The reviewer, if the password is theirs; None otherwise (same work either way)."""
        reviewer = self.reviewer(user_id) if len(user_id) <= 200 else None
        stored = self._r.hget(self._passwords, user_id) if reviewer is not None else None
        if reviewer is None or stored is None or len(password) > MAX_PASSWORD:
            # Spend the same time on unknown users, so timing does not tell who exists.
            self._check(self._dummy_hash(), password[:MAX_PASSWORD])
            return None
        phc = text(stored)
        if not self._check(phc, password):
            return None
        if self._hasher.check_needs_rehash(phc):
            self._r.hset(self._passwords, user_id, self._hasher.hash(password))
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

    def create_token(self, name: str, roles: Iterable[str] = ()) -> str:
        """Create an API token for the service ``name``; returns the token, shown only now.

        Raises:
            CredentialError: the name is empty, too long or already has a token, or a role is
                held by nobody in the directory.
        """
        name = name.strip()
        if not name or len(name) > 100 or not name.isprintable():
            raise CredentialError(
                "a token name must be 1 to 100 printable characters",
                hint="name it after the service, e.g. 'ehr-bridge'",
            )
        roles = sorted(set(roles))
        known = {role for r in self.directory.reviewers for role in r.roles}
        unknown = [r for r in roles if r != ALL_ROLES and r not in known]
        if unknown:
            raise CredentialError(
                f"no reviewer in policy pack {self.directory.name!r} holds role(s) "
                f"{', '.join(unknown)}",
                hint=f"roles in the pack: {', '.join(sorted(known)) or '(none)'}",
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        digest = token_digest(token)
        if not self._r.hsetnx(self._token_names, name, digest):
            raise CredentialError(
                f"a token named {name!r} exists already",
                hint=f"revoke it first ('carebound tokens revoke {name}') or pick another name",
            )
        record = ServiceToken(name=name, roles=roles, created_at=datetime.now(UTC))
        self._r.hset(self._tokens, digest, record.model_dump_json())
        return token

    def token(self, token: str) -> ServiceToken | None:
        """The service a presented token belongs to, or None."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        raw = self._r.hget(self._tokens, token_digest(token))
        return ServiceToken.model_validate_json(raw) if raw else None

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
