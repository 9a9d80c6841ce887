"""Settings of the web inbox and API: session lifetimes, cookies, rate limits, proxies, paging,
the purge archive."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from carebound.store import StoreSettings
from carebound.web._ratelimit import RateLimit
from carebound.web._signin_throttle import SignInBackoff


@dataclass(frozen=True, kw_only=True)
class WebSettings:
    """How the web app behaves; the defaults suit a reviewer team behind TLS."""

    session_idle_s: int = 15 * 60
    """A signed-in session ends after this long without a request (15 minutes: PHI
    workstations are commonly required to lock after 15-30 idle minutes)."""
    session_max_s: int = 12 * 3600
    """...and this long after sign-in, whatever happens."""
    anonymous_session_s: int = 15 * 60
    """Lifetime of the pre-sign-in session that carries the sign-in form's CSRF token."""
    secure_cookies: bool | None = None
    """Mark the session cookie ``Secure``: None does so when the request came over https
    (directly, or as a proxy in ``trusted_proxies`` says with ``X-Forwarded-Proto``); True
    always."""
    signin_backoff: SignInBackoff = field(default_factory=SignInBackoff)
    """Wrong passwords per account (or known device): free ones, then an exponential wait."""
    signin_per_client: RateLimit = field(default_factory=lambda: RateLimit(limit=20, window_s=300))
    """Sign-in attempts per client address (see ``trusted_proxies`` for what the address is)."""
    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks of reverse proxies whose ``X-Forwarded-For``/``-Proto`` headers are
    believed. Empty (the default): the headers are ignored and the TCP peer is the client."""
    decisions_per_actor: RateLimit = field(default_factory=lambda: RateLimit(limit=30, window_s=60))
    """Decisions per reviewer (web) or per service token (API)."""
    poll_interval_s: float = 10.0
    """How often an open inbox page asks for new holds."""
    page_size: int = 50
    """Holds per inbox page."""
    max_body_bytes: int = 10 * 1024 * 1024
    """Largest request body accepted (a FHIR Bundle with documents can be large)."""
    metrics_token: str | None = None
    """The bearer token ``GET /metrics`` asks for (``CAREBOUND_METRICS_TOKEN`` for ``carebound
    serve``); None: ``/metrics`` answers anyone who reaches it (keep it behind the network)."""
    purge_archive: Path = field(default_factory=lambda: StoreSettings.from_env().archive_file)
    """The file ``POST /api/runs/purge`` and the Runs page's purge form append the purged
    runs' audit chains to, before anything is deleted (the caller never chooses it). Default:
    ``CAREBOUND_ARCHIVE``, else ``purged-runs.jsonl`` in ``CAREBOUND_HOME``."""
