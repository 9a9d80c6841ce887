"""Redis key layout shared by every carebound store.

All keys of one run (one LangGraph thread) carry the run id as a Redis Cluster hash tag, so a
run's keys live in one slot and multi-key writes stay atomic on Redis Cluster too::

    {prefix}:{<run_id>}:<part>:<part>...

Keys that span runs (indexes, the thread registry) have no hash tag and are always written on
their own, never inside a multi-key transaction with per-run keys.
"""

from __future__ import annotations

DEFAULT_PREFIX = "cb"


def run_key(prefix: str, run_id: str, *parts: str) -> str:
    """Return the key for ``parts`` under one run's hash tag."""
    return f"{prefix}:{{{run_id}}}:" + ":".join(parts)


def key_registry(prefix: str, run_id: str) -> str:
    """The run's key registry: the run hash itself (:mod:`carebound.state.runs`), whose fields
    that start with ``approval:`` are the suffixes (after ``{prefix}:{<run>}:``) of the keys
    whose names the run id alone does not give (its approvals, each with an empty value; a
    simulated world's keys are listed in its own ``world:meta``), so the retention script
    (:mod:`carebound.state.retention`) finds every key of the run. A key of its own cost a
    parked run 120 bytes and a key; a field of the run hash's listpack costs about 30."""
    return run_key(prefix, run_id, "run")


def global_key(prefix: str, *parts: str) -> str:
    """Return a key that is not tied to any run (no hash tag)."""
    return f"{prefix}:" + ":".join(parts)


def work_key(prefix: str, part: str) -> str:
    """A key of the work queue (:mod:`carebound.state.work_queue`). All of them share the
    ``{<prefix>:work}`` hash tag: the queue is deliberately one Cluster slot, so its scripts
    stay atomic."""
    return f"{prefix}:{{{prefix}:work}}:{part}"


def audit_index_key(prefix: str) -> str:
    """The global audit index across runs (a stream of pointers: run id, seq, and the id of
    the event's entry in the run's stream; see :mod:`carebound.state.audit_index`)."""
    return global_key(prefix, "audit")


def audit_stream_key(prefix: str, run_id: str) -> str:
    """A run's audit stream: its hash-chained events, the source of truth."""
    return run_key(prefix, run_id, "audit")


SYSTEM_UP = "system-up:"
"""Match key prefix a run parked on a system subscribes to (``system-up:<system>``)."""


def wait_key(prefix: str, match: str) -> str:
    """The set of the runs waiting on events with this match key."""
    return global_key(prefix, "wait", match)


def wait_systems_key(prefix: str) -> str:
    """The set of the ``system-up:`` match keys runs ever parked on (one per system)."""
    return global_key(prefix, "wait-systems")


def inbox_key(prefix: str, *parts: str) -> str:
    """The inbox indexes of pending holds: ``all`` and ``role:<role>`` (zsets by deadline)."""
    return global_key(prefix, "inbox", *parts)


def lease_key(prefix: str, run_id: str) -> str:
    """The run's writer lease: a hash with fields ``owner`` and ``token`` (fencing token)."""
    return run_key(prefix, run_id, "lease")


def text(value: object) -> str:
    """A Redis reply as text (clients return bytes unless they decode responses)."""
    if isinstance(value, bytes):
        return value.decode()
    return str(value)


def breaker_key(prefix: str, system: str) -> str:
    """A system's circuit breaker (a hash: state, failures, opens, open_until, ...). Every
    breaker key shares the ``{breakers}`` hash tag, so recording an outcome and flagging the
    system as recovered is one atomic step on Redis Cluster too."""
    return f"{prefix}:{{breakers}}:system:{system}"


def breakers_recovered_key(prefix: str) -> str:
    """The set of systems whose breaker closed and whose parked runs are not woken yet."""
    return f"{prefix}:{{breakers}}:recovered"


def kpi_key(prefix: str, *parts: str) -> str:
    """A key of the process figures (:mod:`carebound.state.kpi`): all in one hash slot
    (``{kpi}``), so a fold is applied atomically with the cursor it advances, on a Redis
    Cluster too. The figures are small (a hash per day), so one slot is no limit."""
    return f"{prefix}:{{kpi}}:" + ":".join(parts)


def notify_key(prefix: str, *parts: str) -> str:
    """A key of the notifier (:mod:`carebound.state.notify`): all in the ``{notify}`` slot."""
    return f"{prefix}:{{notify}}:" + ":".join(parts)
