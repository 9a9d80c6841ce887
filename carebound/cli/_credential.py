"""Who is at the command line: the principal a decision or a PHI view is attributed to.

A store where any reviewer has a password or any token exists no longer believes ``--reviewer``
alone. The caller presents a token (see :mod:`carebound._tokens`): ``CAREBOUND_TOKEN``, or the
one ``carebound login`` saved for this store in ``credentials.json`` of the user's config
directory (``CAREBOUND_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/carebound`` or
``~/.config/carebound``; written 0600). A token bound to a reviewer acts as them; ``--reviewer``,
if given, must name the same person.

Development mode is explicit: with ``CAREBOUND_UNAUTHENTICATED=1``, or on a store that has no
password and no token at all, ``--reviewer`` is taken as given and every decision records
``authenticated: false``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from carebound._errors import CareboundError
from carebound._principal import Provenance, normalize_reviewer_id
from carebound._tokens import (
    ALL_ROLES,
    CredentialRefusedError,
    Scope,
    ServiceToken,
    effective_roles,
    find_token,
    require_scope,
    store_has_credentials,
)
from carebound.cli._errors import CliInputError

if TYPE_CHECKING:
    from carebound.engine.runner import Runner

TOKEN_VAR = "CAREBOUND_TOKEN"
"""A token to act with (overrides the one ``carebound login`` saved)."""
UNAUTHENTICATED_VAR = "CAREBOUND_UNAUTHENTICATED"
"""Set to 1 for the explicit unauthenticated development mode."""
CONFIG_VAR = "CAREBOUND_CONFIG_DIR"
"""Where ``carebound login`` keeps its credentials file."""


def config_dir() -> Path:
    """The user's carebound config directory."""
    explicit = os.environ.get(CONFIG_VAR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    if os.name == "nt" and os.environ.get("APPDATA"):
        return Path(os.environ["APPDATA"]) / "carebound"
    base = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(Path.home() / ".config")
    return Path(base).expanduser() / "carebound"


def credentials_path() -> Path:
    """The file ``carebound login`` writes."""
    return config_dir() / "credentials.json"


def store_label() -> str:
    """The store a saved token belongs to: the Redis URL without its password (or the embedded
    server's directory) and the key prefix."""
    from carebound.cli._session import key_prefix
    from carebound.store import StoreSettings

    settings = StoreSettings.from_env()
    if settings.redis_url is None:
        where = f"embedded:{settings.home}"
    else:
        parts = urlsplit(settings.redis_url)
        where = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return f"{where}#{key_prefix()}"


def _saved() -> dict[str, str]:
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise CliInputError(
            f"cannot read the credentials file {path}: {exc}",
            hint=f"delete it and run 'carebound login' again (or set {TOKEN_VAR})",
        ) from None
    stores = data.get("stores") if isinstance(data, dict) else None
    if not isinstance(stores, dict) or not all(isinstance(v, str) for v in stores.values()):
        raise CliInputError(
            f"the credentials file {path} is not what 'carebound login' writes",
            hint="delete it and run 'carebound login' again",
        )
    return {str(k): v for k, v in stores.items()}


def _write(stores: dict[str, str]) -> Path:
    path = credentials_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask or an older file said
        os.write(fd, json.dumps({"stores": stores}, indent=2).encode())
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return path


def save_token(token: str) -> Path:
    """Keep ``token`` for the store in use (file mode 0600); returns the file."""
    return _write({**_saved(), store_label(): token})


def forget_token() -> bool:
    """Remove the saved token of the store in use. True if there was one."""
    stores = _saved()
    if stores.pop(store_label(), None) is None:
        return False
    _write(stores)
    return True


def unauthenticated_mode() -> bool:
    """Whether ``CAREBOUND_UNAUTHENTICATED`` asks for the development mode."""
    return os.environ.get(UNAUTHENTICATED_VAR, "").strip().lower() in ("1", "true", "yes")


def presented_token() -> tuple[str, str] | None:
    """The token the caller presents and where it came from, or None."""
    from_env = os.environ.get(TOKEN_VAR, "").strip()
    if from_env:
        return from_env, TOKEN_VAR
    saved = saved_token()
    return (saved, str(credentials_path())) if saved else None


def saved_token() -> str | None:
    """The token ``carebound login`` kept for the store in use, if any."""
    return _saved().get(store_label())


@dataclass(frozen=True, kw_only=True)
class CliPrincipal:
    """Who acts at the command line."""

    reviewer: str
    """The id decisions are made as (a reviewer, or ``token:NAME``)."""
    via: Provenance
    token: ServiceToken | None = None
    roles: frozenset[str] | None = None
    """Roles the token may act in (None: not limited by a token)."""

    def check_role(self, role: str | None) -> None:
        """Refuse a role the token may not act in (the directory is checked by the decide)."""
        if role is None or self.roles is None or role in self.roles or self.token is None:
            return
        raise CredentialRefusedError(
            f"token {self.token.name!r} may not act in role {role!r} "
            f"(it may: {', '.join(sorted(self.roles)) or 'none'})",
            code="wrong_role",
            hint="use a token created with that role",
        )


def token_principal(runner: Runner, token: str, source: str) -> CliPrincipal:
    """The principal of a presented token.

    Raises:
        CredentialRefusedError: the store does not know the token (revoked, or another store's).
    """
    record = find_token(runner.client, runner.prefix, token)
    if record is None:
        raise CredentialRefusedError(
            f"the token from {source} is not valid for this store: it was revoked, or it "
            "belongs to another store or key prefix",
            code="unknown_token",
            hint=f"run 'carebound login' with a current token, or unset {TOKEN_VAR}",
        )
    # A bound token's reviewer is checked against the run's directory by the decide itself;
    # here only the token's own role list narrows what it may do.
    roles = None if ALL_ROLES in record.roles or not record.roles else set(record.roles)
    if record.reviewer is None:
        roles = effective_roles(record, None)
    return CliPrincipal(
        reviewer=record.principal,
        via=record.provenance("cli"),
        token=record,
        roles=frozenset(roles) if roles is not None else None,
    )


def cli_principal(
    runner: Runner,
    reviewer: str | None,
    *,
    scope: Scope,
    action: str,
    option: str = "--reviewer",
    flag: str | None = None,
) -> CliPrincipal:
    """Who does ``action`` (needing ``scope``) at the command line, and how they proved it.

    Raises:
        CredentialRefusedError: the store has credentials and none was presented, the token is
            unknown or lacks ``scope``, or ``--reviewer`` names someone other than the token's
            principal (exit code 3).
        CliInputError: development mode without ``--reviewer`` (exit code 2).
    """
    presented = presented_token()
    if presented is not None:
        principal = token_principal(runner, *presented)
        assert principal.token is not None
        require_scope(principal.token, scope, where=action)
        if reviewer is not None and _normal(reviewer) != principal.reviewer:
            raise CredentialRefusedError(
                f"{option} {reviewer!r} is not who the token from {presented[1]} belongs to: "
                f"it acts as {principal.reviewer!r} (token {principal.token.name!r})",
                code="principal_mismatch",
                hint=f"leave out {option}, or sign in as yourself: carebound login",
            )
        return principal
    if not unauthenticated_mode() and store_has_credentials(runner.client, runner.prefix):
        raise CredentialRefusedError(
            f"this store has reviewer passwords or tokens, so {option} alone is not believed "
            f"to {action}",
            code="not_authenticated",
            hint="sign in with a personal token: 'carebound login' (an admin creates one with "
            f"'carebound tokens create NAME --as YOU --scope {scope}'), or set {TOKEN_VAR}; "
            f"on a development store only, set {UNAUTHENTICATED_VAR}=1",
        )
    if reviewer is None:
        raise CliInputError(
            f"{flag + ' needs ' + option if flag else option + ' is needed'}: nobody is signed "
            f"in (development mode), and whoever does it ({action}) is recorded",
            hint=f"give {option} YOUR_ID, or sign in: carebound login",
        )
    who = _normal(reviewer)
    return CliPrincipal(
        reviewer=who,
        via=Provenance(channel="cli", principal=who, kind="unauthenticated", authenticated=False),
    )


def _normal(reviewer: str) -> str:
    try:
        return normalize_reviewer_id(reviewer)
    except CareboundError as exc:
        raise CliInputError(exc.message, hint=exc.hint) from None
