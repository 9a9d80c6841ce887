"""Fax: a Protocol for a fax provider's gateway, and the simulated gateway that ships.

A real gateway would wrap a cloud fax provider's REST API: Phaxio (``POST /v2.1/faxes``, with
the document as a file and a callback URL for the delivery status), Sfax (``SendFax``), or eFax
Corporate (its Developer API's outbound fax request). Received faxes come in through the
provider's webhook, which a small adapter posts to carebound's HTTP events API as every inbound
document does; so a gateway's ``due_replies`` has nothing to poll.

:class:`SimulatedFax` is the simulator's outreach (:class:`SimulatedOutreach`) limited to fax:
its replies are the scenario's scripted ones, on the run's clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._outreach import (
    Channel,
    InboundDocument,
    OutreachConnector,
    OutreachReceipt,
)
from carebound.tools.connectors.simulated import SimulatedOutreach


class FaxGateway(OutreachConnector, Protocol):
    """A fax provider's gateway: ``send`` sends one fax per idempotency key to a fax number;
    ``due_replies`` returns received faxes not handed out yet (nothing, for a gateway whose
    received faxes come in through its webhook and the HTTP events API)."""


class SimulatedFax:
    """The simulated fax gateway: the run's simulated outreach, fax only."""

    channel: Channel = "fax"

    def __init__(self, simulated: SimulatedOutreach) -> None:
        self._simulated = simulated

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
        """Send a simulated fax (see :meth:`SimulatedOutreach.send`)."""
        if channel != "fax":
            raise ConnectorError(
                f"outreach: the fax gateway cannot send by {channel}",
                hint="send faxes only through it",
            )
        return self._simulated.send(
            channel, to, subject=subject, body=body, request_id=request_id,
            requested_codes=requested_codes, idempotency_key=idempotency_key, now=now,
        )  # fmt: skip

    def due_replies(self, now: dt.datetime) -> list[InboundDocument]:
        """The scripted replies due by ``now``."""
        return self._simulated.due_replies(now)
