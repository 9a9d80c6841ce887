"""Starting a run: every input checked before the first write, then the run's world, drive
mark, ``create`` event and record stored in one round trip (with the run's lease, taken after
the record, when the run is driven here), and the run driven to its first stop
(:meth:`carebound.engine.runner.Runner.start` is the public door)."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from carebound._agent import AgentDefinition
from carebound._errors import RunIdTakenError
from carebound._input_checks import check_start_input
from carebound._phi_table import table_json
from carebound._principal import normalize_reviewer_id
from carebound.audit import Actor
from carebound.engine.core import Core
from carebound.engine.drive import Driver
from carebound.engine.node_kit import patient_ref_of
from carebound.engine.results import RunView
from carebound.engine.tracing import start_trace
from carebound.guardrails import PolicyPack
from carebound.state.run_ids import claim_run_id, release_run_id
from carebound.state.runs import RunRecord, case_json
from carebound.state.segment_reads import prefetching
from carebound.state.stored_json import pack_digest
from carebound.state.trips import LeaseReads
from carebound.tools.connectors import WorldSpec


def new_run_id() -> str:
    """A short, unique, URL- and shell-safe run id."""
    return "r" + uuid.uuid4().hex[:12]


def start_run(
    core: Core,
    driver: Driver,
    agent: str,
    case: Mapping[str, Any],
    *,
    requester: str,
    policy: str | Path | PolicyPack | None,
    world: WorldSpec | None,
    run_id: str | None,
) -> RunView:
    """Start ``agent`` on ``case`` and drive it to its first stop (see ``Runner.start``)."""
    # Driven here (not by a worker): the lease is taken in the round trip that stores the run,
    # and the world the start seeds is read in it too, for the drive's first segment
    # (carebound.state.segment_reads.prefetching).
    take_lease = core.drive_mode != "queue"
    with prefetching() if take_lease else nullcontext():
        definition = core.agent(agent)
        pack = core.resolve_pack(policy)
        # Everything is checked before the first write: a refused start leaves no key.
        policy_json = check_start_input(
            case, requester=requester, pack=pack, world=world, run_id=run_id
        )
        # Stored in its normal form: separation of duties compares it with reviewer ids.
        requester = normalize_reviewer_id(requester, what="requester")
        core.audit_log.load_keys()  # a bad audit key is refused before the first write too
        if run_id is None:
            run_id = new_run_id()
            reads = _store_run(core, run_id, fresh=True, definition=definition, pack=pack,
                               case=case, policy_json=policy_json, requester=requester,
                               world=world, take_lease=take_lease)  # fmt: skip
        else:
            identity = start_identity(definition.name, requester, policy_json, case)
            if not claim_run_id(core.client, core.prefix, run_id, identity):
                raise RunIdTakenError(
                    f"run id {run_id} is taken by another run "
                    "(or another start is claiming it now)",
                    hint="choose another run id, or leave it out and carebound makes one",
                )
            try:
                reads = _store_run(core, run_id, fresh=False, definition=definition, pack=pack,
                                   case=case, policy_json=policy_json, requester=requester,
                                   world=world, take_lease=take_lease)  # fmt: skip
            except BaseException:
                release_run_id(core.client, core.prefix, run_id)  # refused: the id is free again
                raise
        if reads is None:
            return driver.dispatch(run_id, "start")
        return driver.drive(run_id, lease_wait_s=5.0, acquired=driver.accept(run_id, reads))


def start_identity(agent: str, requester: str, policy_json: str, case: Mapping[str, Any]) -> str:
    """A digest of what a start is (agent, requester, pack, case): the same start sent again
    has the same one (see :mod:`carebound.state.run_ids`)."""
    pack = pack_digest(policy_json)  # the digest the run pins its pack under, already kept
    body = json.dumps([agent, requester, pack, case], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _store_run(
    core: Core,
    run_id: str,
    *,
    fresh: bool,
    definition: AgentDefinition,
    pack: PolicyPack,
    case: Mapping[str, Any],
    policy_json: str,
    requester: str,
    world: WorldSpec | None,
    take_lease: bool,
) -> LeaseReads | None:
    """Seed the run's world and store the run (``fresh``: its id was made just now); with
    ``take_lease``, take the run's lease in the same round trip, after the run, and return
    what that read (the run's pinned pack, case and world are remembered from what was
    stored, not read back)."""
    now = core.clock.now()
    record = RunRecord(
        run_id=run_id,
        agent=definition.name,
        requester=requester,
        status="running",
        policy=f"{pack.name}@{pack.version}",
        created_at=now,
        updated_at=now,
        patient_ref=patient_ref_of(case),
        trace=start_trace(run_id, definition.name),
        connectors=core.connectors_identity,
    )
    # Crash-safe order: the world, the drive mark, then the record (with its case and pack).
    # A start that dies half-way leaves no run (start it again) or a marked one (recovered).
    seed = core.world_seeding(run_id, definition.name, world, fresh=fresh)
    with core.trips.starting(run_id, seed) as ride:  # the world, mark, event, record: one trip
        core.audit_log.record(
            run_id,
            once="create",
            time=now,
            actor=Actor(kind="person", id=requester, role=None),
            action="create",
            category=definition.category,
            outcome="success",
            patient_ref=None,
            detail={"agent": definition.name, "policy": record.policy},
            ride=ride,
        )
        stored_case = case_json(case)
        reads = core.runs.create(
            record, case=stored_case, policy_json=policy_json,
            world_seeded=world is not None, phi_json=table_json(definition.tools),
            claimed=not fresh,
            then=(lambda pipe: core.trips.queue_take_lease(
                pipe, run_id, cold=False, new_thread=fresh))
            if take_lease else None,
        )  # fmt: skip
    core.remember_started(run_id, policy_json, stored_case, world_seeded=world is not None)
    return reads
