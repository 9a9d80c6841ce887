"""Runs parked on a system that is down, for the operators' views (the inbox, ``runs``).

A run whose connector call finds a system down waits with the match key ``system-up:<system>``
(:mod:`carebound.engine.outage`) and a reason that starts ``waiting for <system> ``. The wait
index keeps one set per match key (``{prefix}:wait:<match>``, see
:meth:`~carebound.state.runs.RunStore.register_wait`); the systems that ever parked a run are
kept in one small set beside it (``{prefix}:wait-systems``), so the parked runs are found in
two round trips whatever the number of runs: the systems and their sets, then the records.

A run stays in its system's set until it ends, so a record is kept only while it still waits
on that system (status ``waiting``, reason naming it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from carebound.state.keys import (
    DEFAULT_PREFIX,
    SYSTEM_UP,
    run_key,
    text,
    wait_key,
    wait_systems_key,
)
from carebound.state.runs import RunRecord, parse_record, queue_record

PARKED_REASON = "waiting for "
"""How the wait reason of a parked run starts (then the system's name and a space)."""
HANDED_TO = "the case is with "
"""How the wait reason of a parked run handed to a person names the role (then the role and
`` since try N``); see :mod:`carebound.engine.outage`."""
_HANDED = re.compile(re.escape(HANDED_TO) + r"(.+?) since try \d+\)")
_NEVER = datetime.max.replace(tzinfo=UTC)


def system_up_match(system: str) -> str:
    """The match key of ``system`` coming back up."""
    return f"{SYSTEM_UP}{system}"


def parked_on(wait_reason: str | None, system: str) -> bool:
    """Whether a waiting run's reason says it waits for ``system`` to come back."""
    return bool(wait_reason) and str(wait_reason).startswith(f"{PARKED_REASON}{system} ")


@dataclass(frozen=True)
class ParkedRun:
    """A run waiting for a system to come back."""

    system: str
    """The system that is down (``ehr``, ``payer``, ``office``...)."""
    record: RunRecord
    """The run's record: ``wait_reason`` says why, ``wait_until`` when it retries."""

    @property
    def handed_to(self) -> str | None:
        """The role the case was handed to after the pack's limit (None: not yet)."""
        return handed_to(self.record.wait_reason)


def handed_to(wait_reason: str | None) -> str | None:
    """The role a parked run's wait reason says the case is with (None: not handed off)."""
    found = _HANDED.search(wait_reason or "")
    return found.group(1) if found else None


def parked_runs(
    client: redis.Redis,
    *,
    prefix: str = DEFAULT_PREFIX,
    agent: str | None = None,
    handed_to: str | None = None,
) -> list[ParkedRun]:
    """Every run parked on a system now (of ``agent`` only, and handed to the role
    ``handed_to`` only, if given), the next retry first."""
    matches = sorted(text(m) for m in client.smembers(wait_systems_key(prefix)))
    if not matches:
        return []
    pipe = client.pipeline(transaction=False)
    for match in matches:
        pipe.smembers(wait_key(prefix, match))
    candidates: list[tuple[str, str]] = []
    for match, members in zip(matches, pipe.execute(), strict=True):
        system = match.removeprefix(SYSTEM_UP)
        candidates += [(system, text(m)) for m in sorted(members)]
    if not candidates:
        return []
    pipe = client.pipeline(transaction=False)
    for _, run_id in candidates:
        queue_record(pipe, run_key(prefix, run_id, "run"))
    parked = []
    for (system, _), raw in zip(candidates, pipe.execute(), strict=True):
        record = parse_record(raw)
        if (
            record is not None
            and record.status == "waiting"
            and parked_on(record.wait_reason, system)
            and (agent is None or record.agent == agent)
        ):
            run = ParkedRun(system=system, record=record)
            if handed_to is None or run.handed_to == handed_to:
                parked.append(run)
    return sorted(parked, key=lambda p: (p.record.wait_until or _NEVER, p.record.run_id))
