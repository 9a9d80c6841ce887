"""The world seeder a connectors file's factory looks for in this package."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carebound.tools.connectors._bundle import RunContext
    from carebound.tools.connectors._world_spec import WorldSpec
    from carebound.tools.connectors.config import ConnectorsConfig


def seed_world(config: ConnectorsConfig, run: RunContext, spec: WorldSpec) -> None:
    """Seed a scenario's world into the file's test servers
    (:func:`carebound.tools.connectors.fhir_world.seed_configured_world`)."""
    # Imported here: fhir_world reaches the outreach channels, which import this package.
    from carebound.tools.connectors.fhir_world import seed_configured_world

    seed_configured_world(config, run, spec)
