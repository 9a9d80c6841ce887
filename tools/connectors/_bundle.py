"""The typed extension point: a run's :class:`Connectors`, built by a :class:`ConnectorsFactory`.

The engine asks the factory it was given for each run's connectors, once per run and process,
with a :class:`RunContext`; tools reach the outside world only through them. The simulator
(:mod:`carebound.tools.connectors.simulated`) is one factory, the connectors file
(:mod:`carebound.tools.connectors.config`) builds another, and a service may pass its own::

    def my_connectors(run: RunContext) -> Connectors:
        return Connectors(ehr=MyEhr(), outreach=MyOutreach(), payer=MyPayer(), erp=MyErp())

    runner = Runner(connectors=my_connectors)

A factory that can also write a scenario's world (:class:`WorldSpec`) into its systems implements
:class:`WorldSeeder`; ``Runner.start(..., world=spec)`` needs one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from carebound.tools.connectors._ehr import EHRConnector
from carebound.tools.connectors._erp import ERPConnector
from carebound.tools.connectors._outreach import OutreachConnector
from carebound.tools.connectors._payer import PayerConnector
from carebound.tools.connectors._world_spec import WorldSpec

if TYPE_CHECKING:
    import redis


@dataclass(frozen=True, kw_only=True)
class Connectors:
    """The four systems one run's tools may reach."""

    ehr: EHRConnector
    """The EHR: patients, documents, referral Tasks, Communications."""
    outreach: OutreachConnector
    """Outreach to referring offices (fax, portal, email, CDex)."""
    payer: PayerConnector
    """The payer: coverage, eligibility, prior authorisation (``connected()`` False: none)."""
    erp: ERPConnector
    """The ERP: purchase orders, receipts, invoices."""


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """What a connectors factory is told about the run it builds connectors for."""

    run_id: str
    """The run."""
    agent: str
    """The agent the run belongs to."""
    prefix: str
    """The key prefix of the run's Redis keys (``cb``)."""
    client: redis.Redis
    """The run store's Redis client (the simulator keeps its systems' state in it; a real
    connector may keep its breaker's state there)."""
    world_seeded: bool = False
    """The run's record says a world was seeded for it at start (the simulator then reopens it
    without checking)."""
    fresh: bool = False
    """The run's id was made just now by the start seeding its world, so nothing is stored
    under it yet: a seeder may send its writes in the round trip that stores the run, ahead of
    the record, instead of one of their own (the simulator does)."""
    clock: Callable[[], datetime] | None = None
    """The Runner's clock (a scenario's is virtual); None: the wall clock. Real connectors time
    their circuit breakers and ``Retry-After`` answers with it, so a breaker's cool-down and
    the run's retry timers (``engine.outage``) run on one clock."""


class ConnectorsFactory(Protocol):
    """Builds a run's connectors (any ``(RunContext) -> Connectors`` callable is one).

    A factory may also have an ``identity`` string naming the systems it reaches
    (``simulator``; ``config:<digest>`` for a connectors file). A run records its starter's,
    and a Runner whose factory has another identity does not drive it: the run stays marked
    for a process that can (a factory without one is trusted to serve any run).
    """

    def __call__(self, run: RunContext, /) -> Connectors:
        """The connectors of ``run``; raises a ``ConnectorError`` when they cannot be built."""
        ...


@runtime_checkable
class WorldSeeder(Protocol):
    """A factory that can write a scenario's world into its systems before a run starts."""

    def seed_world(self, run: RunContext, spec: WorldSpec, /) -> None:
        """Write ``spec`` for ``run``; seeding again with an equal spec changes nothing."""
        ...
