"""A simulated world: the four simulated systems of one run, seeded from a scenario.

``World.seed`` writes the scenario's EHR and payer resources, reply scripts and ERP records to
Redis in one atomic step (seeding again with the same spec does nothing); ``World.attach``
reopens the same world from any process. :class:`SimulatedConnectors` is the connectors factory
that hands the engine each run's world (the default when no connectors are configured).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import redis

from carebound.state.keys import DEFAULT_PREFIX, run_key
from carebound.tools.connectors._bundle import Connectors, RunContext
from carebound.tools.connectors._errors import ConnectorError
from carebound.tools.connectors._fhir import FhirResource, validate_resource
from carebound.tools.connectors._world_spec import WorldSpec
from carebound.tools.connectors.simulated._ehr import SimulatedEHR
from carebound.tools.connectors.simulated._erp import SimulatedERP
from carebound.tools.connectors.simulated._outreach import SimulatedOutreach
from carebound.tools.connectors.simulated._payer import SimulatedPayer
from carebound.tools.connectors.simulated._redis_state import (
    EffectRecord,
    GuardFailed,
    WriteBatch,
    apply_writes,
    ride_prefetch,
    ride_writes,
    text,
)

if TYPE_CHECKING:
    from carebound.tools.connectors.config import ModelsConfig

_URN_UUID = "urn:uuid:"


@dataclass(frozen=True, kw_only=True)
class World(Connectors):
    """The simulated systems of one run (its :class:`Connectors`); all their state is in Redis."""

    run_id: str
    ehr: SimulatedEHR
    outreach: SimulatedOutreach
    payer: SimulatedPayer
    erp: SimulatedERP

    @classmethod
    def seed(
        cls,
        client: redis.Redis,
        run_id: str,
        spec: WorldSpec,
        *,
        prefix: str = DEFAULT_PREFIX,
        ride: bool = False,
    ) -> World:
        """Seed the run's world from ``spec`` (atomically) and return it.

        Seeding is idempotent: seeding again with an equal spec changes nothing, so a crashed
        start can simply be repeated. With ``ride``, inside a riding block
        (``carebound._wire.riding``), the writes ride ahead of the next round trip (a new
        run's, which carries its record) and their refusal is raised from that round trip.

        Raises:
            FhirValidationError: a resource is not valid FHIR R4.
            ConnectorError: a resource has no id, two differ under one id, or the run's world
                was already seeded from a different spec.
        """
        ehr_resources = _validated(spec.ehr, "EHR")
        payer_resources = _validated(spec.payer, "payer")
        world = cls._open(client, run_id, prefix)
        meta = _meta_key(prefix, run_id)
        digest = spec.digest()
        batch = WriteBatch()
        batch.guard(meta, "spec_digest", None)
        batch.op("HSET", meta, "spec_digest", digest)
        world.ehr.seed(batch, ehr_resources)
        world.payer.seed(batch, payer_resources)
        world.outreach.seed(batch, spec.replies)
        if spec.erp is not None:
            world.erp.seed(batch, spec.erp)

        def refused() -> None:
            if _seeded_digest(client, meta) != digest:
                raise ConnectorError(
                    f"the world of run {run_id!r} was already seeded from a different spec",
                    hint="use a new run id for a new scenario, or World.attach to reopen it",
                ) from None

        def landed(applied: bool | None) -> None:
            if applied is None:  # the server had lost the script: nothing ran
                seed_now()
            elif not applied:
                refused()

        def seed_now() -> None:
            try:
                apply_writes(client, batch)
            except GuardFailed:
                refused()

        if not (ride and ride_writes(client, batch, landed)):
            seed_now()
        else:  # the drive that follows reads the world whole: read it in the same trip
            ride_prefetch(client, meta)
        return world

    @classmethod
    def attach(cls, client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> World:
        """Reopen the run's world, seeded earlier (maybe by another process).

        Raises:
            ConnectorError: the run has no seeded world.
        """
        if _seeded_digest(client, _meta_key(prefix, run_id)) is None:
            raise ConnectorError(
                f"run {run_id!r} has no simulated world under prefix {prefix!r}",
                hint="seed it first with World.seed(client, run_id, spec), or check the run id "
                "and prefix",
            )
        return cls._open(client, run_id, prefix)

    @classmethod
    def reopen(cls, client: redis.Redis, run_id: str, *, prefix: str = DEFAULT_PREFIX) -> World:
        """Reopen a world its caller knows was seeded (no round trip to check it; use
        ``attach`` when in doubt)."""
        return cls._open(client, run_id, prefix)

    def effects(self) -> list[EffectRecord]:
        """Every effect applied in this world: EHR, then outreach, payer and ERP, each in order."""
        return [
            *self.ehr.effects(),
            *self.outreach.effects(),
            *self.payer.effects(),
            *self.erp.effects(),
        ]

    def attempts(self) -> int:
        """How many effectful calls came in across the world, repeats included."""
        return sum(system.attempts() for system in (self.ehr, self.outreach, self.payer, self.erp))

    @classmethod
    def _open(cls, client: redis.Redis, run_id: str, prefix: str) -> World:
        return cls(
            run_id=run_id,
            ehr=SimulatedEHR(client, run_id, prefix=prefix),
            outreach=SimulatedOutreach(client, run_id, prefix=prefix),
            payer=SimulatedPayer(client, run_id, prefix=prefix),
            erp=SimulatedERP(client, run_id, prefix=prefix),
        )


class SimulatedConnectors:
    """The connectors factory of the simulator: each run's :class:`World`, seeded from the
    scenario's :class:`WorldSpec` at start (a :class:`~carebound.tools.connectors.WorldSeeder`)."""

    identity = "simulator"
    """What the runs it serves record (see ``ConnectorsFactory``)."""

    def __init__(self, *, models_table: ModelsConfig | None = None) -> None:
        """``models_table``: the ``[models]`` of a connectors file that names no system (its
        runs use the simulator, and a Runner built on it these models)."""
        self.models_table = models_table

    def __call__(self, run: RunContext, /) -> World:
        """The run's world: reopened without a check when the run's record says it was seeded,
        else attached (which checks, and raises ``ConnectorError`` for a run without one)."""
        if run.world_seeded:
            return World.reopen(run.client, run.run_id, prefix=run.prefix)
        return World.attach(run.client, run.run_id, prefix=run.prefix)

    def seed_world(self, run: RunContext, spec: WorldSpec, /) -> None:
        """Seed the run's world from ``spec`` (see :meth:`World.seed`; riding the start's
        round trip for a run whose id is new)."""
        World.seed(run.client, run.run_id, spec, prefix=run.prefix, ride=run.fresh)


def _meta_key(prefix: str, run_id: str) -> str:
    return run_key(prefix, run_id, "world", "meta")


def _seeded_digest(client: redis.Redis, meta: str) -> str | None:
    raw = client.hget(meta, "spec_digest")
    return None if raw is None else text(raw)


def _validated(resources: Iterable[Mapping[str, Any]], system: str) -> list[FhirResource]:
    """Validate seed resources and drop repeats of one resource.

    Bundles often repeat a resource (the request and the response bundle both carry the
    Patient); a repeat that differs only in narrative ``text`` or ``meta`` is the same resource
    and the first copy is kept. A repeat that differs in data is an error.
    """
    by_ref: dict[tuple[str, str], FhirResource] = {}
    for n, resource in enumerate(resources):
        data = validate_resource(resource, where=f"{system} seed resource #{n}")
        resource_id = data.get("id")
        if not isinstance(resource_id, str):
            raise ConnectorError(
                f"{system} seed resource #{n} ({data['resourceType']}) has no id",
                hint="give every seeded resource an id, so references to it resolve",
            )
        ref = (data["resourceType"], resource_id)
        if ref in by_ref:
            if _substance(by_ref[ref]) != _substance(data):
                raise ConnectorError(
                    f"{system} seed: two different resources are both {ref[0]}/{ref[1]}",
                    hint="give each resource its own id",
                )
            continue
        by_ref[ref] = data
    return list(by_ref.values())


def _substance(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("text", "meta")}
