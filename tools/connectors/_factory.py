"""Choosing a Runner's connectors: the simulator, a connectors file, or the caller's factory.

:func:`connectors_factory` is called where a Runner is composed (the engine imports no
implementation): a path or a parsed :class:`~carebound.tools.connectors.config.ConnectorsConfig`
gives :class:`ConfiguredConnectors`; a callable is used as it is; nothing means the file
``CAREBOUND_CONNECTORS`` names, else the simulator. Whatever cannot be loaded fails loudly here,
before any run starts.

:class:`ConfiguredConnectors` imports the real implementations lazily, from these modules and
with these signatures (the breakers keep their state in the run store, so every process agrees)::

    carebound.tools.connectors.fhir_rest       (once per factory: they serve every run)
        build_ehr(config: EhrConfig, *, breakers: BreakerStore, clock=...) -> EHRConnector
        build_payer(config: PayerConfig, *, breakers: BreakerStore, clock=...) -> PayerConnector
    carebound.tools.connectors.outreach_channels   (per run)
        build_outreach(config: OfficeConfig, run: RunContext, clock=...) -> OutreachConnector

Every one reads the run's clock (``RunContext.clock``, the Runner's) for its breakers, so a
scenario on a virtual clock sees a breaker's cool-down end when its retry timers say.
        close_clients(config: OfficeConfig) -> None    (optional: when the factory closes)

A scenario's world is seeded into the configured (test) servers by
``carebound.tools.connectors.fhir_world.seed_configured_world(config, run, spec)``. A system the
file leaves out is not connected (see ``_unconnected``).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import threading
import tomllib
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

from carebound.state.breaker import BreakerStore
from carebound.tools.connectors._bundle import Connectors, ConnectorsFactory, RunContext
from carebound.tools.connectors._ehr import EHRConnector
from carebound.tools.connectors._erp import ERPConnector
from carebound.tools.connectors._errors import ConnectorsConfigError
from carebound.tools.connectors._outreach import OutreachConnector
from carebound.tools.connectors._payer import PayerConnector
from carebound.tools.connectors._unconnected import (
    UnconnectedERP,
    UnconnectedOutreach,
    UnconnectedPayer,
)
from carebound.tools.connectors._world_spec import WorldSpec
from carebound.tools.connectors.config import (
    ENV_PREFIX,
    ConnectorsConfig,
    ModelsConfig,
    configured_connectors_file,
    load_connectors_config,
    load_models_config,
)

if TYPE_CHECKING:
    import httpx

FHIR_REST = "carebound.tools.connectors.fhir_rest"
"""The module of the FHIR R4 REST connectors (EHR, payer)."""
OUTREACH_CHANNELS = "carebound.tools.connectors.outreach_channels"
"""The module of the real outreach channels (CDex, SMTP, fax)."""
FHIR_WORLD = "carebound.tools.connectors.fhir_world"
"""The module that seeds a scenario's world into FHIR servers."""
SIMULATED = "carebound.tools.connectors.simulated"
"""The simulator's package."""

ConnectorsSource = str | os.PathLike[str] | ConnectorsConfig | ConnectorsFactory
"""What ``Runner(connectors=...)`` takes: a connectors file, a parsed one, or a factory."""


def connectors_factory(source: ConnectorsSource | None = None) -> ConnectorsFactory:
    """The factory ``source`` stands for (None: ``CAREBOUND_CONNECTORS``'s file, else the
    simulator).

    Raises:
        ConnectorsConfigError: the file is wrong, an implementation cannot be loaded, or
            ``source`` is none of the accepted kinds.
    """
    if source is None:
        source = configured_connectors_file()
        if source is None:
            return simulated_connectors()
    if isinstance(source, str | os.PathLike):
        if not names_systems(source):  # a file of [notify] / [models] only
            return simulated_connectors(models_table=load_models_config(Path(source)))
        source = load_connectors_config(Path(source))
    if isinstance(source, ConnectorsConfig):
        return ConfiguredConnectors(source)
    if callable(source):
        return source
    raise ConnectorsConfigError(
        f"connectors: expected a connectors file path, a ConnectorsConfig or a factory, got "
        f"{type(source).__name__}",
        hint="pass Runner(connectors=...) a path, load_connectors_config(path), or a callable "
        "(RunContext) -> Connectors",
    )


def connectors_identity(factory: ConnectorsFactory) -> str | None:
    """What a factory's runs record as the connectors they need: its ``identity`` string
    (``simulator``, or ``config:<digest>`` for a connectors file), None for a factory without
    one (it is trusted to serve any run)."""
    identity = getattr(factory, "identity", None)
    return identity if isinstance(identity, str) and identity else None


SYSTEMS = ("ehr", "payer", "office", "erp")
"""The connectors file's tables that name systems (the others: ``notify``, ``models``)."""


def names_systems(path: str | os.PathLike[str]) -> bool:
    """Whether the connectors file at ``path`` (or an environment override) names any system;
    a file holding only ``[notify]`` or ``[models]`` does not, and runs then use the
    simulator. A file that cannot be read counts as naming some (loading it says why)."""
    if any(
        name.upper().startswith(f"{ENV_PREFIX}{system.upper()}__")
        for name in os.environ
        for system in SYSTEMS
    ):
        return True
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return True
    return any(system in data for system in SYSTEMS)


def simulated_connectors(*, models_table: ModelsConfig | None = None) -> ConnectorsFactory:
    """The simulator's factory (the default); ``models_table``: the ``[models]`` of a
    connectors file that names no system, which a Runner built on it uses."""
    module = _load(SIMULATED, "SimulatedConnectors", needed_for="the simulated connectors")
    return cast(ConnectorsFactory, module.SimulatedConnectors(models_table=models_table))


def connectors_models(factory: ConnectorsFactory) -> ModelsConfig | None:
    """The ``[models]`` table of the connectors file ``factory`` was made from (None: no file,
    or a file without one)."""
    table = getattr(factory, "models_table", None)
    return table if isinstance(table, ModelsConfig) else None


class ConfiguredConnectors:
    """Builds each run's connectors from a connectors file (see the module docstring)."""

    def __init__(self, config: ConnectorsConfig, *, transport: httpx.BaseTransport | None = None):
        """``transport``: the ``httpx`` transport of every FHIR call (EHR, payer, CDex), e.g. one
        that counts or proxies in tests; default: pooled HTTP."""
        self.config = config
        self.transport = transport
        self._rest = _load(FHIR_REST, "build_ehr", needed_for="[ehr]")
        if config.payer is not None:
            _load(FHIR_REST, "build_payer", needed_for="[payer]")
        self._outreach: ModuleType | None = None
        if config.office is not None:
            self._outreach = _load(OUTREACH_CHANNELS, "build_outreach", needed_for="[office]")
        self._lock = threading.Lock()
        self._shared: tuple[EHRConnector, PayerConnector] | None = None

    @property
    def models_table(self) -> ModelsConfig | None:
        """The file's ``[models]`` table (None: it has none)."""
        return self.config.models

    @property
    def identity(self) -> str:
        """``config:`` and a digest of where the file's systems are (the EHR's, payer's and
        CDex endpoint's base URLs, the SMTP host and port, the fax and ERP providers): a run
        records it at start, and a Runner whose connectors reach other systems leaves the run
        alone (time-outs, retries and credentials may differ between processes)."""
        c = self.config
        office = c.office
        places = {
            "ehr": str(c.ehr.base_url),
            "payer": None if c.payer is None else str(c.payer.base_url),
            "cdex": None if office is None or office.cdex is None else str(office.cdex.base_url),
            "smtp": None
            if office is None or office.smtp is None
            else f"{office.smtp.host}:{office.smtp.port}",
            "fax": None if office is None or office.fax is None else office.fax.provider,
            "erp": None if c.erp is None else c.erp.provider,
        }
        digest = hashlib.sha256(json.dumps(places, sort_keys=True).encode()).hexdigest()
        return f"config:{digest[:12]}"

    def __call__(self, run: RunContext, /) -> Connectors:
        """The run's connectors: the configured systems, the others not connected."""
        ehr, payer = self._fhir_servers(run)
        outreach: OutreachConnector = (
            self._outreach.build_outreach(
                self.config.office, run, clock=run.clock, **self._wire("http_transport")
            )
            if self._outreach is not None
            else UnconnectedOutreach()
        )
        erp: ERPConnector = UnconnectedERP()
        if self.config.erp is not None:  # provider "simulated", the only one (see ErpConfig)
            simulated = _load(SIMULATED, "SimulatedERP", needed_for="[erp]")
            erp = simulated.SimulatedERP(run.client, run.run_id, prefix=run.prefix)
        return Connectors(ehr=ehr, outreach=outreach, payer=payer, erp=erp)

    def _fhir_servers(self, run: RunContext) -> tuple[EHRConnector, PayerConnector]:
        """The EHR and payer connectors, built on first use (their HTTP pools, SMART tokens and
        breakers serve every run of this process, on the first run's clock: the Runner's)."""
        with self._lock:
            if self._shared is None:
                breakers = BreakerStore(run.client, prefix=run.prefix)
                config = self.config
                wire: dict[str, Any] = {**self._wire("transport"), "clock": run.clock}
                ehr: EHRConnector = self._rest.build_ehr(config.ehr, breakers=breakers, **wire)
                payer: PayerConnector = (
                    self._rest.build_payer(config.payer, breakers=breakers, **wire)
                    if config.payer is not None
                    else UnconnectedPayer()
                )
                self._shared = (ehr, payer)
            return self._shared

    def close(self) -> None:
        """Close the HTTP connections of the EHR, the payer and the CDex endpoint (built on
        first use; a factory that serves a process to its end need not be closed)."""
        with self._lock:
            shared, self._shared = self._shared, None
        for connector in shared or ():
            close = getattr(getattr(connector, "client", None), "close", None)
            if callable(close):
                close()
        release = getattr(self._outreach, "close_clients", None)
        if callable(release) and self.config.office is not None:
            release(self.config.office)

    def _wire(self, name: str) -> dict[str, httpx.BaseTransport]:
        """The transport as the keyword argument ``name`` (none given: the builder's default)."""
        return {} if self.transport is None else {name: self.transport}

    def seed_world(self, run: RunContext, spec: WorldSpec, /) -> None:
        """Write a scenario's world into the configured servers (test servers: see
        ``fhir_world.seed_configured_world``).

        Raises:
            ConnectorsConfigError: the seeder cannot be loaded, or the file cannot take the world.
            ConnectorError: a server refused the world or could not be reached.
        """
        world = _load(FHIR_WORLD, "seed_configured_world", needed_for="seeding a world")
        world.seed_configured_world(self.config, run, spec)
        if self.config.erp is not None and spec.erp is not None:
            simulated = _load(SIMULATED, "World", needed_for="[erp]")
            simulated.World.seed(run.client, run.run_id, WorldSpec(erp=spec.erp), prefix=run.prefix)


def _load(module_name: str, attribute: str, *, needed_for: str) -> ModuleType:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConnectorsConfigError(
            f"{needed_for}: cannot load {module_name}: {exc}",
            hint="install carebound with its dependencies (pip install carebound), or leave "
            "that section out of the connectors file",
        ) from exc
    if not callable(getattr(module, attribute, None)):
        raise ConnectorsConfigError(
            f"{needed_for}: {module_name} has no {attribute}()",
            hint="this carebound installation is incomplete or mismatched: reinstall it",
        )
    return module
