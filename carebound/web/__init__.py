"""carebound.web: the reviewer web inbox and the JSON API for services (``carebound serve``).

Reviewers from the policy pack's directory sign in with a password (argon2id hash in Redis),
work their inbox of paused steps, read a hold's decision packet (PHI masked until they reveal
it, which is audited) and approve, edit, reject or escalate it. Services call the JSON API
under ``/api`` with a bearer token.

Needs the ``web`` extra (``pip install 'carebound[web]'``). Importing this package is cheap;
FastAPI is loaded when :func:`create_app` is first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carebound.web._app import create_app, simulated_world
    from carebound.web._ratelimit import RateLimit, RateLimiter
    from carebound.web._settings import WebSettings
    from carebound.web._users import CredentialError, ServiceToken, UserStore

__all__ = [
    "CredentialError",
    "RateLimit",
    "RateLimiter",
    "ServiceToken",
    "UserStore",
    "WebSettings",
    "create_app",
    "simulated_world",
]

_HOME = {
    "create_app": "_app",
    "simulated_world": "_app",
    "RateLimit": "_ratelimit",
    "RateLimiter": "_ratelimit",
    "WebSettings": "_settings",
    "CredentialError": "_users",
    "ServiceToken": "_users",
    "UserStore": "_users",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'carebound.web' has no attribute {name!r}")
    return getattr(importlib.import_module(f"carebound.web.{home}"), name)
