"""One :class:`OutreachConnector` over the configured channels, and ``build_outreach``."""

from __future__ import annotations

import atexit
import datetime as dt
import ssl
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from carebound.state.breaker import BreakerStore
from carebound.state.outreach import OutreachStore
from carebound.tools.connectors._bundle import RunContext
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._outreach import (
    Channel,
    InboundDocument,
    OutreachConnector,
    OutreachReceipt,
)
from carebound.tools.connectors._resilience import Resilience
from carebound.tools.connectors.config import CdexConfig, OfficeConfig
from carebound.tools.connectors.outreach_channels._cdex import CdexOutreach
from carebound.tools.connectors.outreach_channels._email import EmailOutreach
from carebound.tools.connectors.outreach_channels._fax import SimulatedFax
from carebound.tools.connectors.simulated import SimulatedOutreach

CDEX_SYSTEM = "office"
"""The name operators see for the referring offices' CDex endpoint (breaker, waiting reason)."""
SMTP_SYSTEM = "office-email"
"""The name operators see for the HISP (SMTP)."""


@dataclass
class ChannelOutreach:
    """Outreach over the configured channels: ``portal`` goes out as a CDex Task, ``email`` by
    SMTP, ``fax`` through the fax gateway; a channel with nothing configured is refused."""

    channels: dict[str, OutreachConnector] = field(default_factory=dict)
    """Channel -> the connector that sends on it."""

    def send(
        self,
        channel: Channel,
        to: str,
        *,
        subject: str,
        body: str,
        request_id: str,
        requested_codes: Sequence[str],
        idempotency_key: str,
        now: dt.datetime,
    ) -> OutreachReceipt:
        """Send on ``channel`` (see :class:`OutreachConnector`).

        Raises:
            ConnectorError: no channel of that kind is configured.
        """
        connector = self.channels.get(channel)
        if connector is None:
            raise ConnectorError(
                f"outreach: no {channel} channel is configured",
                hint=f"configured: {', '.join(sorted(self.channels)) or 'none'}; add the "
                "channel to the connectors file's [office] section, or chase by another one",
            )
        return connector.send(
            channel, to, subject=subject, body=body, request_id=request_id,
            requested_codes=requested_codes, idempotency_key=idempotency_key, now=now,
        )  # fmt: skip

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        """Replies from every channel that polls, oldest first, each handed out once."""
        replies: list[InboundDocument] = []
        for connector in {id(c): c for c in self.channels.values()}.values():
            replies.extend(connector.due_replies(now))
        return sorted(replies, key=lambda r: (r.received_at, r.inbound_id))


def build_outreach(
    config: OfficeConfig | None,
    run: RunContext,
    *,
    clock: Callable[[], dt.datetime] | None = None,
    smtp_tls_context: ssl.SSLContext | None = None,
    http_transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] | None = None,
) -> ChannelOutreach:
    """The outreach connector of one run from the connectors file's ``[office]`` section.

    Args:
        config: the ``[office]`` section (None: no channel; every send is refused).
        run: the run (its Redis client and key prefix keep the channels' state and breakers).
        clock: the time source (the run's clock).
        smtp_tls_context: the TLS context for STARTTLS (None: the system's trusted CAs).
        http_transport: an ``httpx`` transport for the CDex endpoint (e.g. through a proxy).
        sleep: how retries wait (``time.sleep``).

    The CDex endpoint signs in as the section's ``auth`` says (none, a bearer token, or SMART
    Backend Services, as the FHIR REST connectors do).

    Raises:
        ConnectorsConfigError: a SMART private key file cannot be read.
    """
    now = clock or (lambda: dt.datetime.now(dt.UTC))
    outreach = ChannelOutreach()
    if config is None:
        return outreach
    store = OutreachStore(run.client, run.run_id, prefix=run.prefix)
    breakers = BreakerStore(run.client, prefix=run.prefix)
    extra = {} if sleep is None else {"sleep": sleep}
    if config.cdex is not None:
        cdex = config.cdex
        resilience = Resilience(CDEX_SYSTEM, breakers, timeouts=cdex.timeouts, retry=cdex.retry,
                                breaker=cdex.breaker, clock=now, **extra)  # fmt: skip
        http = _shared_client(cdex, http_transport, resilience.http_timeout())
        endpoint = CdexOutreach(
            str(cdex.base_url), store=store, resilience=resilience, http=http, clock=now
        )
        for channel in cdex.channels:  # the contacts whose requests go out as CDex Tasks
            outreach.channels[channel] = endpoint
    if config.smtp is not None:
        smtp = config.smtp
        resilience = Resilience(SMTP_SYSTEM, breakers, timeouts=smtp.timeouts, retry=smtp.retry,
                                breaker=smtp.breaker, clock=now, **extra)  # fmt: skip
        outreach.channels["email"] = EmailOutreach(
            smtp, store=store, resilience=resilience, tls_context=smtp_tls_context
        )
    if config.fax is not None:
        outreach.channels["fax"] = SimulatedFax(
            SimulatedOutreach(run.client, run.run_id, prefix=run.prefix)
        )
    return outreach


_CLIENTS: dict[tuple[int, int], tuple[object, object, httpx.Client]] = {}
_CLIENTS_LOCK = threading.Lock()


def _shared_client(
    cdex: CdexConfig, transport: httpx.BaseTransport | None, timeout: httpx.Timeout
) -> httpx.Client:
    """One pooled HTTP client (with its auth, e.g. a cached SMART token) per configured endpoint
    and process: connectors are built per run, their connections and tokens are not. The
    config and transport are kept with it, so their ids are not reused; closed at exit."""
    key = (id(cdex), id(transport))
    with _CLIENTS_LOCK:
        kept = _CLIENTS.get(key)
        if kept is None or kept[2].is_closed:
            # Imported here: fhir_rest's package imports fhir_world, whose office player
            # imports this package (a cycle at import time otherwise).
            from carebound.tools.connectors.fhir_rest._build import build_auth

            base_url = str(cdex.base_url).rstrip("/")
            auth = build_auth(cdex.auth, system=CDEX_SYSTEM, base_url=base_url)
            client = httpx.Client(auth=auth, transport=transport, timeout=timeout)
            kept = (cdex, transport, client)
            _CLIENTS[key] = kept
        return kept[2]


def close_clients(config: OfficeConfig) -> None:
    """Close the pooled HTTP clients of ``config``'s CDex endpoint (its factory is done:
    e.g. one scenario run's connectors). The next run built from it opens a new one."""
    if config.cdex is None:
        return
    with _CLIENTS_LOCK:
        for key in [k for k in _CLIENTS if k[0] == id(config.cdex)]:
            _CLIENTS.pop(key)[2].close()


@atexit.register
def _close_clients() -> None:
    with _CLIENTS_LOCK:
        for _, _, client in _CLIENTS.values():
            client.close()
        _CLIENTS.clear()


def _conforms(outreach: ChannelOutreach, cdex: CdexOutreach, email: EmailOutreach,
              fax: SimulatedFax) -> list[OutreachConnector]:  # fmt: skip
    """Static check (mypy): every channel implements the interface."""
    return [outreach, cdex, email, fax]
