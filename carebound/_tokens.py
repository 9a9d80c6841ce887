"""API and personal tokens: what a token may do (scopes), who it acts as, and how one is found.

A token is 256 random bits with the prefix ``cbt_``; the store keeps only its sha256::

    {prefix}:web:tokens               hash  sha256(token) -> ServiceToken JSON
    {prefix}:web:token-names          hash  token name -> sha256(token)
    {prefix}:web:passwords            hash  reviewer id -> argon2id hash (carebound.web)
    {prefix}:web:credential-versions  hash  reviewer id -> counter, bumped at every password
                                            change or removal (web sessions carry it)

A token either acts as the one directory reviewer it is bound to (``--as casey``: a *personal*
token, what ``carebound login`` stores) or as itself, the service principal ``token:NAME``.
Its scopes say what it may do; nothing is allowed without the scope:

    read      GET runs, audit trails and holds (PHI masked)
    start     start runs (POST /api/runs)
    deliver   deliver external events (POST /api/events), which wake waiting runs
    decide    approve, reject, edit or escalate holds of its roles
    reveal    see a hold's PHI (every view is audited)
    purge     purge ended runs past a retention period (POST /api/runs/purge; their audit
              chains go to the server's archive first)

This module needs only Redis and pydantic, so the command line can check a credential without
the ``web`` extra.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, Literal, get_args

import redis
from pydantic import BaseModel, ConfigDict, Field, model_validator

from carebound._errors import DecisionRefusedError
from carebound._principal import Channel, Provenance
from carebound.state.keys import global_key, text

Scope = Literal["read", "start", "deliver", "decide", "reveal", "purge"]
"""What a token may do; see the module docstring."""
SCOPES: tuple[Scope, ...] = get_args(Scope)
"""Every scope, in the order they are documented."""
TOKEN_PREFIX = "cbt_"
"""Every token starts with this, so a leaked one is easy to recognise and scan for."""
ALL_ROLES = "*"
"""A token role that stands for every role of the directory (or of the bound reviewer)."""
SERVICE_PREFIX = "token:"
"""A token acting as itself is the principal ``token:NAME``."""


def default_scopes(roles: list[str], reviewer: str | None) -> list[Scope]:
    """The scopes of a token created without ``--scope`` (and of tokens stored before scopes
    existed): ``read``, plus ``decide`` when it has roles or is bound to a reviewer. Starting
    runs, delivering events, revealing PHI and purging runs are never implied."""
    return ["read", "decide"] if roles or reviewer else ["read"]


class ServiceToken(BaseModel):
    """An API or personal token as stored (never the token itself)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(description="Name of the token, shown in the audit trail.")
    roles: list[str] = Field(
        default_factory=list,
        description="Roles whose holds the token may list and decide ('*': all; for a bound "
        "token, empty means the reviewer's roles).",
    )
    scopes: list[Scope] = Field(description="What the token may do (see carebound._tokens).")
    reviewer: str | None = Field(
        default=None,
        description="The directory reviewer the token acts as (normalised id); None: the token "
        "acts as itself, the service principal 'token:NAME'.",
    )
    created_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _scopes_of_older_tokens(cls, data: Any) -> Any:
        if isinstance(data, dict) and "scopes" not in data:
            data = {
                **data,
                "scopes": default_scopes(list(data.get("roles") or []), data.get("reviewer")),
            }
        return data

    @property
    def principal(self) -> str:
        """Who acts with this token: its reviewer, or ``token:NAME``."""
        return self.reviewer or f"{SERVICE_PREFIX}{self.name}"

    def allows(self, scope: Scope) -> bool:
        """Whether the token carries ``scope``."""
        return scope in self.scopes

    def holds(self, role: str) -> bool:
        """Whether the token's own role list admits ``role`` (a bound token is further limited
        to its reviewer's roles: see :func:`effective_roles`)."""
        if self.reviewer is not None and not self.roles:
            return True
        return ALL_ROLES in self.roles or role in self.roles

    def provenance(self, channel: Channel) -> Provenance:
        """The provenance of what this token does on ``channel``."""
        return Provenance(
            channel=channel,
            principal=self.principal,
            kind="reviewer" if self.reviewer else "service",
            authenticated=True,
            token=self.name,
        )


def effective_roles(token: ServiceToken, reviewer_roles: list[str] | None) -> set[str] | None:
    """The roles a token may act in now: a bound token's roles are limited to what its reviewer
    holds in the directory today (``reviewer_roles``; None if they left it: no roles). None
    means every role (an unbound ``*`` token)."""
    if token.reviewer is None:
        return None if ALL_ROLES in token.roles else set(token.roles)
    held = set(reviewer_roles or [])
    return held if not token.roles or ALL_ROLES in token.roles else held & set(token.roles)


def token_digest(token: str) -> str:
    """The sha256 under which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_key(prefix: str) -> str:
    """The hash of stored tokens."""
    return global_key(prefix, "web", "tokens")


def token_names_key(prefix: str) -> str:
    """The hash of token names."""
    return global_key(prefix, "web", "token-names")


def passwords_key(prefix: str) -> str:
    """The hash of reviewers' password hashes."""
    return global_key(prefix, "web", "passwords")


def credential_versions_key(prefix: str) -> str:
    """The hash of each reviewer's credential version."""
    return global_key(prefix, "web", "credential-versions")


def find_token(client: redis.Redis, prefix: str, token: str) -> ServiceToken | None:
    """The stored record of a presented token, or None (unknown, revoked or malformed)."""
    token = token.strip()
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    raw = client.hget(tokens_key(prefix), token_digest(token))
    return ServiceToken.model_validate_json(text(raw)) if raw else None


def store_has_credentials(client: redis.Redis, prefix: str) -> bool:
    """Whether any reviewer password or token exists in the store: from then on, a reviewer id
    given on the command line alone is no longer believed."""
    return bool(client.exists(passwords_key(prefix), tokens_key(prefix)))


class CredentialRefusedError(DecisionRefusedError):
    """The credential presented does not allow what was asked (exit code 3, HTTP 403)."""


def require_scope(token: ServiceToken, scope: Scope, *, where: str) -> None:
    """Refuse unless ``token`` carries ``scope``.

    Raises:
        CredentialRefusedError: code ``missing_scope``.
    """
    if not token.allows(scope):
        raise CredentialRefusedError(
            f"token {token.name!r} may not {where}: it lacks the {scope!r} scope "
            f"(it has: {', '.join(token.scopes) or 'none'})",
            code="missing_scope",
            hint=f"create a token with '--scope {scope}' (carebound tokens create NAME "
            f"--scope {scope} ...)",
        )
