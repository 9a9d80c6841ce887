"""Key names of the checkpoint store, all built with :mod:`carebound.state.keys`.

One thread's keys share the hash tag ``{thread_id}`` (one Redis Cluster slot); the thread
registry is the only global key and is always written on its own.
"""

from __future__ import annotations

from typing import NamedTuple

from carebound.state.keys import global_key, lease_key, run_key


class ThreadKeys(NamedTuple):
    """The keys of one thread that do not depend on the namespace."""

    base: str
    """``<prefix>:{<thread_id>}:cp:``; the Lua scripts derive per-namespace keys from it."""
    namespaces: str
    runs: str
    lease: str
    packed: str
    """``<base>pk``: the whole thread in one value once the engine compacted it (see
    :mod:`carebound.checkpoint._scripts`)."""


class NamespaceKeys(NamedTuple):
    """The keys of one (thread, checkpoint namespace)."""

    ids: str
    records: str
    blobs: str
    writes: str
    write_index: str
    packed: str
    """The thread's packed key (the load script reads a packed thread from it)."""


def thread_keys(prefix: str, thread_id: str) -> ThreadKeys:
    """Keys of ``thread_id`` that are shared by all its namespaces."""
    return ThreadKeys(
        base=run_key(prefix, thread_id, "cp", ""),
        namespaces=run_key(prefix, thread_id, "cp", "ns"),
        runs=run_key(prefix, thread_id, "cp", "runs"),
        lease=lease_key(prefix, thread_id),
        packed=run_key(prefix, thread_id, "cp", "pk"),
    )


def namespace_keys(thread: ThreadKeys, checkpoint_ns: str) -> NamespaceKeys:
    """Keys of one namespace of a thread (the same names the Lua scripts derive)."""
    base = thread.base
    return NamespaceKeys(
        ids=f"{base}ids:{checkpoint_ns}",
        records=f"{base}rec:{checkpoint_ns}",
        blobs=f"{base}blob:{checkpoint_ns}",
        writes=f"{base}w:{checkpoint_ns}",
        write_index=f"{base}wx:{checkpoint_ns}",
        packed=thread.packed,
    )


def registry_key(prefix: str) -> str:
    """The global sorted set of thread ids (score: last registration, unix seconds)."""
    return global_key(prefix, "cp", "threads")
