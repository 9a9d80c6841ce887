"""carebound.tools.connectors.outreach_channels: outreach to referring offices over real channels.

* :class:`CdexOutreach`: Da Vinci CDex task-based document requests (a Task on the office's FHIR
  endpoint, conditional create on the effect key; completed Tasks polled as replies).
* :class:`EmailOutreach`: Direct-style secure email over SMTP with STARTTLS (``aiosmtplib``).
* :class:`FaxGateway`: the Protocol a fax provider's gateway implements (Phaxio, Sfax, eFax
  Corporate), and :class:`SimulatedFax`, the simulated one that ships.
* :func:`build_outreach`: the run's :class:`ChannelOutreach` from the connectors file's
  ``[office]`` section.

Every channel goes through :class:`~carebound.tools.connectors._resilience.Resilience`
(timeouts, retries, a circuit breaker in Redis); a channel that stays down raises
``SystemUnavailableError`` and the run waits.
"""

from carebound.tools.connectors.outreach_channels._cdex import CdexOutreach
from carebound.tools.connectors.outreach_channels._common import (
    EFFECT_ID_SYSTEM,
    REQUEST_ID_SYSTEM,
)
from carebound.tools.connectors.outreach_channels._email import EmailOutreach
from carebound.tools.connectors.outreach_channels._fax import FaxGateway, SimulatedFax
from carebound.tools.connectors.outreach_channels._router import (
    CDEX_SYSTEM,
    SMTP_SYSTEM,
    ChannelOutreach,
    build_outreach,
    close_clients,
)

__all__ = [
    "CDEX_SYSTEM",
    "EFFECT_ID_SYSTEM",
    "REQUEST_ID_SYSTEM",
    "SMTP_SYSTEM",
    "CdexOutreach",
    "ChannelOutreach",
    "EmailOutreach",
    "FaxGateway",
    "SimulatedFax",
    "build_outreach",
    "close_clients",
]
