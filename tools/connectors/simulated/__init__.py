"""carebound.tools.connectors.simulated: the simulator, one implementation of the connectors.

Each simulated system keeps its state in Redis under the run's hash tag, so a run paused in one
process resumes in another: :class:`SimulatedEHR`, :class:`SimulatedOutreach` (replies come from
the scenario's reply scripts, on the virtual clock), :class:`SimulatedPayer`,
:class:`SimulatedERP`. :class:`World` bundles them for one run (a
:class:`~carebound.tools.connectors.Connectors`) and seeds them from a
:class:`~carebound.tools.connectors.WorldSpec`; :class:`SimulatedConnectors` is the factory a
Runner uses when no connectors are configured. Every effectful call is applied at most once per
idempotency key and recorded (:class:`EffectRecord`).

The engine imports none of this: it is chosen where a Runner is composed
(:func:`carebound.tools.connectors.connectors_factory`).
"""

from carebound.tools.connectors.simulated._ehr import SimulatedEHR
from carebound.tools.connectors.simulated._erp import SimulatedERP
from carebound.tools.connectors.simulated._outreach import SimulatedOutreach
from carebound.tools.connectors.simulated._payer import SimulatedPayer
from carebound.tools.connectors.simulated._redis_state import EffectRecord, System
from carebound.tools.connectors.simulated._world import SimulatedConnectors, World

__all__ = [
    "EffectRecord",
    "SimulatedConnectors",
    "SimulatedEHR",
    "SimulatedERP",
    "SimulatedOutreach",
    "SimulatedPayer",
    "System",
    "World",
]
