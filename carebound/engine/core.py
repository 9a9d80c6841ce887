"""What the engine's parts share for one Runner: the stores, the round trips, the caches.

A :class:`Core` is built once per :class:`~carebound.Runner`. It knows the agents, the
policy packs, cases and connectors of the runs this process has seen (small bounded caches: a
long-lived worker sees many runs), the compiled graphs, and how to read a run's view.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, Literal

from carebound._agent import (
    AgentContext,
    AgentDefinition,
    Plan,
    PlannerView,
)
from carebound._errors import AlreadyDecidedError, DecisionRefusedError, NotFoundError, echo_id
from carebound.approvals import ApprovalStore, ApprovalView
from carebound.assist import ModelConfig
from carebound.audit import Actor, AuditLog
from carebound.checkpoint import RedisSaver
from carebound.clock import Clock, SystemClock
from carebound.engine.graph import Services, build_graph
from carebound.engine.results import RunView
from carebound.fhir import fixed_case
from carebound.guardrails import PolicyPack, load_policy_pack
from carebound.state.keys import DEFAULT_PREFIX, text
from carebound.state.lease import Lease, RunLease
from carebound.state.ledger import EffectLedger
from carebound.state.runs import RunRecord, RunStore
from carebound.state.stored_json import pack_digest
from carebound.state.trips import Client, Pinned, Trips
from carebound.state.work_queue import WorkQueue
from carebound.tools.connectors import (
    ConnectorError,
    Connectors,
    ConnectorsFactory,
    RunContext,
    WorldSeeder,
    WorldSpec,
    connectors_identity,
    connectors_models,
)

DriveMode = Literal["inline", "queue"]
"""Who drives a woken run: the caller, in its own process (``inline``), or a worker of the
pool, through the work queue (``queue``)."""


class Lru(OrderedDict[str, Any]):
    """A small bounded cache: a long-lived worker sees many runs."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def put(self, key: str, value: Any) -> Any:
        """Store ``value`` at ``key`` (the newest), dropping the oldest beyond the size."""
        self[key] = value
        self.move_to_end(key)
        while len(self) > self._size:
            self.popitem(last=False)
        return value


class Core:
    """The stores, round trips, caches and graphs one Runner's parts share."""

    def __init__(
        self,
        client: Client,
        *,
        prefix: str = DEFAULT_PREFIX,
        policy: str | Path | PolicyPack = "default",
        clock: Clock | None = None,
        models: ModelConfig,
        agents: Mapping[str, AgentDefinition] | None = None,
        connectors: ConnectorsFactory,
        lease_ttl_ms: int = 30_000,
        drive: DriveMode = "inline",
        retention_s: int = 0,
    ) -> None:
        self.client = client
        self.drive_mode: DriveMode = drive
        self.work = WorkQueue(client, prefix=prefix)
        self.prefix = prefix
        self.clock: Clock = clock or SystemClock()
        self.default_policy = policy
        # The given agents add to the shipped and installed ones (by name: one given here
        # takes a shipped one's place in this Runner only).
        self.agents = {**_default_agents(), **(agents or {})}
        self.connectors = connectors
        self.connectors_identity = connectors_identity(connectors)
        """What runs started here record, and what a run's record must name to be driven here
        (None: this factory serves any run)."""
        if not models.configured:  # the connectors file's [models], when the caller named none
            file_models = connectors_models(connectors)
            models = file_models.assist_models() if file_models is not None else models
        self.lease_ttl_ms = lease_ttl_ms
        self._owner_base = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.approvals = ApprovalStore(client, prefix=prefix)
        self.ledger = EffectLedger(client, prefix=prefix)
        self.audit_log = AuditLog(client, prefix=prefix)
        self.runs = RunStore(client, prefix=prefix)
        self.leases = RunLease(client, prefix=prefix)
        self.saver = RedisSaver(client, prefix=prefix, compress=True)
        self.trips = Trips(
            client, prefix=prefix, clock=self.clock, owner=lambda: self.owner,
            lease_ttl_ms=lease_ttl_ms, runs=self.runs, approvals=self.approvals,
            ledger=self.ledger, audit_log=self.audit_log, leases=self.leases, saver=self.saver,
            retention_s=retention_s,
        )  # fmt: skip
        self._packs = Lru(1024)
        self._packs_by_digest = Lru(64)
        self._cases = Lru(1024)
        self._run_connectors = Lru(1024)
        self.seeded_worlds = Lru(1024)
        self.decided: dict[str, ApprovalView] = {}
        """Approvals this process just decided and is resuming runs past (final)."""
        self.services = Services(
            prefix=prefix, clock=self.clock, approvals=self.approvals, ledger=self.ledger,
            audit=self.audit_log, pack_for=self.pack_for, case_for=self.case_for,
            connectors_for=self.connectors_for, model=models.default, models=models,
            decided=self.decided,
            heartbeat=self.heartbeat, flush_checkpoint=self.saver.flush_ahead,
        )  # fmt: skip
        self._graphs: dict[str, Any] = {}
        self._stand_in_graph: Any = None  # see state_graph

    @property
    def owner(self) -> str:
        """Who takes run leases: this Runner *and thread*, so two threads of one process (a
        worker's slots, a web server's requests) never both hold one run's lease (a lease is
        re-entrant for its owner)."""
        return f"{self._owner_base}:{threading.get_ident()}"

    def heartbeat(self, run_id: str, token: int) -> Any:
        """Keep this process's lease of ``run_id`` (``token``) alive during a tool call."""
        lease = Lease(run_id, self.owner, token, 0, self.lease_ttl_ms)
        return self.leases.heartbeat(lease)

    # -- lookups -------------------------------------------------------------------------

    def agent(self, name: str) -> AgentDefinition:
        """The agent definition called ``name``."""
        try:
            return self.agents[name]
        except KeyError:
            raise NotFoundError(
                f"unknown agent {echo_id(name)}",
                hint=f"known agents: {', '.join(sorted(self.agents)) or '(none)'}",
            ) from None

    def category(self, agent: str) -> str:
        """The audit category of ``agent``."""
        return self.agent(agent).category

    def pack_for(self, run_id: str) -> PolicyPack:
        """The policy pack a run was started with (pinned at start)."""
        pack: PolicyPack | None = self._packs.get(run_id)
        if pack is None:
            raw = self.runs.pinned_policy(run_id)
            if raw is None:
                raise no_run(run_id, older=self.runs.stored_in_an_older_format(run_id))
            pack = self._remember_pack(run_id, text(raw))
        return pack

    def _remember_pack(
        self, run_id: str, digest: str, data: str | bytes | None = None
    ) -> PolicyPack:
        """Cache the pack a run's ``pack`` field names (its content digest; ``data``: its JSON
        when the caller has it, else it is read); most runs share a pack: each distinct one is
        read and parsed once."""
        pack: PolicyPack | None = self._packs_by_digest.get(digest)
        if pack is None:
            data = data if data is not None else self.runs.pack_json(digest)
            if data is None:
                raise no_run(run_id)
            pack = self._packs_by_digest.put(digest, PolicyPack.model_validate_json(data))
        return self._packs.put(run_id, pack)  # type: ignore[no-any-return]

    def is_cold(self, run_id: str) -> bool:
        """Whether this process has not cached the run's pinned pack and case yet."""
        return run_id not in self._packs or run_id not in self._cases

    def remember_pinned(self, run_id: str, pinned: Pinned | None) -> None:
        """Cache a run's pinned data as a round trip read it (nothing for an unknown run)."""
        if pinned is None:
            return
        policy, case, world = pinned
        if world is not None:
            self.seeded_worlds.put(run_id, True)
        if policy is not None and run_id not in self._packs:
            self._remember_pack(run_id, text(policy))
        if case is not None and run_id not in self._cases:
            fixed_case(self._cases.put(run_id, dict(json.loads(case))))

    def remember_started(
        self, run_id: str, policy_json: str, case_json: str, *, world_seeded: bool
    ) -> None:
        """Cache the pinned data of a run this process just stored (its pack's JSON and its
        case's, as stored), as :meth:`remember_pinned` caches what a round trip read."""
        if world_seeded:
            self.seeded_worlds.put(run_id, True)
        self._remember_pack(run_id, pack_digest(policy_json), policy_json)
        fixed_case(self._cases.put(run_id, json.loads(case_json)))

    def case_for(self, run_id: str) -> dict[str, Any]:
        """The case (a FHIR Bundle as JSON) a run was started on."""
        case: dict[str, Any] | None = self._cases.get(run_id)
        if case is None:
            case = self._cases.put(run_id, self.runs.case(run_id))
            fixed_case(case)  # the run's case as stored: never changed in place
        return case

    def connectors_for(self, run_id: str, agent: str) -> Connectors:
        """The run's connectors, built by the factory once per run and process.

        Raises:
            TypeError: the factory returned something else than ``Connectors``: this
                process's misconfiguration, so the drive fails (and is retried) rather than a
                tool call, which would end the run ``failed``.
        """
        connectors: Connectors | None = self._run_connectors.get(run_id)
        if connectors is None:
            built: object = self.connectors(self._run_context(run_id, agent))
            if not isinstance(built, Connectors):
                raise TypeError(
                    f"the connectors factory {type(self.connectors).__name__} returned "
                    f"{type(built).__name__}, not carebound.tools.connectors.Connectors"
                )
            connectors = self._run_connectors.put(run_id, built)
        return connectors

    def seed_world(self, run_id: str, agent: str, spec: WorldSpec, *, fresh: bool = False) -> None:
        """Write a scenario's world for a run about to start (before any of its keys; ``fresh``:
        the run's id was made just now, see ``RunContext.fresh``).

        Raises:
            ConnectorError: this Runner's connectors cannot seed a world, or seeding failed.
        """
        if not isinstance(self.connectors, WorldSeeder):
            raise ConnectorError(
                "this Runner's connectors cannot seed a scenario's world (start(world=...))",
                hint="start the run without a world, or give the Runner connectors that seed one "
                "(the simulator does)",
            )
        self.connectors.seed_world(self._run_context(run_id, agent, fresh=fresh), spec)

    def world_seeding(
        self, run_id: str, agent: str, spec: WorldSpec | None, *, fresh: bool
    ) -> Callable[[], None] | None:
        """Seed ``spec`` for a start now, or, for a run id made just now (``fresh``), return the
        seeding for the start to send ahead of the run's first round trip (see
        :meth:`carebound.state.trips.Trips.starting`)."""
        if spec is None:
            return None
        seed = partial(self.seed_world, run_id, agent, spec, fresh=fresh)
        if fresh:
            return seed
        seed()
        return None

    def _run_context(self, run_id: str, agent: str, *, fresh: bool = False) -> RunContext:
        return RunContext(
            run_id=run_id, agent=agent, prefix=self.prefix, client=self.client,
            world_seeded=run_id in self.seeded_worlds, clock=self.clock.now, fresh=fresh,
        )  # fmt: skip

    def graph(self, agent: str) -> Any:
        """The compiled graph of ``agent`` (built once per process)."""
        graph = self._graphs.get(agent)
        if graph is None:
            graph = build_graph(self.agent(agent), self.services, self.saver)
            self._graphs[agent] = graph
        return graph

    def state_graph(self, agent: str) -> Any:
        """A graph to read a run of ``agent``'s state with: its own, else (an agent not installed
        in this process) a stand-in's. Every agent's graph has the same channels
        (``RunState``) and reading a state runs no node, so a run stays readable where its
        agent is not installed."""
        if agent in self.agents:
            return self.graph(agent)
        if self._stand_in_graph is None:
            self._stand_in_graph = build_graph(_NOT_INSTALLED, self.services, self.saver)
        return self._stand_in_graph

    def resolve_pack(self, policy: str | Path | PolicyPack | None) -> PolicyPack:
        """A policy pack from a name, a path or a pack (None: the default)."""
        policy = self.default_policy if policy is None else policy
        return policy if isinstance(policy, PolicyPack) else load_policy_pack(policy)

    # -- reading -------------------------------------------------------------------------

    def record(self, run_id: str) -> RunRecord:
        """A run's record; raises :class:`NotFoundError` for an unknown run."""
        record = self.runs.get(run_id)
        if record is None:
            raise no_run(run_id, older=self.runs.stored_in_an_older_format(run_id))
        return record

    def get(self, run_id: str) -> RunView:
        """A run's view, read from the store and its latest checkpoint."""
        record = self.record(run_id)
        config: Any = {"configurable": {"thread_id": run_id}}
        snapshot = self.state_graph(record.agent).get_state(config)
        pending = self.approvals.get(record.pending_approval) if record.pending_approval else None
        return RunView.of(record, snapshot.values or {}, self.ledger.entries(run_id), pending)

    def serves(self, record: RunRecord) -> bool:
        """Whether this process can drive the run: it has the run's agent, and its connectors
        reach the systems the run was started with (a run or a factory that names none is
        served by any)."""
        if record.agent not in self.agents:
            return False
        wanted, mine = record.connectors, self.connectors_identity
        return wanted is None or mine is None or wanted == mine

    def system_event(self, run_id: str, category: str, outcome: Any, detail: Any) -> None:
        """Append an event the runner itself records (a failed drive, a quarantine)."""
        self.audit_log.record(
            run_id,
            time=self.clock.now(),
            actor=Actor(kind="system", id="runner", role=None),
            action="event",
            category=category,
            outcome=outcome,
            detail=detail,
        )


def _plans_nothing(ctx: AgentContext, view: PlannerView) -> Plan:
    raise RuntimeError("the stand-in of an agent not installed here reads runs, it plans none")


_NOT_INSTALLED = AgentDefinition(
    name="(not installed)",
    version="0",
    description="Stands in for an agent not installed in this process, to read its runs.",
    tools={},
    planner=_plans_nothing,
)


def no_run(run_id: str, *, older: bool = False) -> NotFoundError:
    """The error for an unknown run (``older``: one an older carebound stored in a form this
    version does not read)."""
    if older:
        return NotFoundError(
            f"run {echo_id(run_id)} was stored by an older carebound, in a form this version "
            "does not read",
            hint="decide, cancel or finish it with the carebound version that started it",
        )
    return NotFoundError(f"no run {echo_id(run_id)}", hint="list runs with 'carebound runs'")


def no_approval(approval_id: str) -> NotFoundError:
    """The error for an unknown approval."""
    return NotFoundError(
        f"no approval {echo_id(approval_id)}", hint="list paused steps with 'carebound inbox'"
    )


def agent_not_installed(agent: str, what: str) -> DecisionRefusedError:
    """The refusal of a decision or a PHI view (``what`` became of it) on a run of an agent
    this process does not have."""
    return DecisionRefusedError(
        f"unknown agent {echo_id(agent)} (not installed in this process): {what}",
        code="agent_not_installed",
        hint=install_hint(agent, "do this where it is installed"),
    )


def install_hint(agent: str, otherwise: str) -> str:
    """The hint of a refusal because ``agent`` is not installed in this process."""
    return (
        f"install the package that declares {echo_id(agent)} in the 'carebound.agents' "
        f"entry-point group, or {otherwise}"
    )


def already(approval_id: str, by: str, at: datetime | None) -> AlreadyDecidedError:
    """The error for a decision that came second."""
    when = at.isoformat() if at else "?"
    return AlreadyDecidedError(
        f"approval {approval_id} was already decided by {by} at {when}",
        decided_by=by,
        decided_at=when,
    )


def default_client() -> Client:
    """A client of the store ``CAREBOUND_REDIS_URL`` names, else the embedded one."""
    from carebound.store import connect

    return connect().client()


def _default_agents() -> dict[str, AgentDefinition]:
    from carebound.agents import registry

    return registry()
