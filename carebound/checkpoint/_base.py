"""What the sync and async savers share: settings, key helpers, versions, the thread registry."""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
)
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from carebound._errors import LeaseLostError
from carebound.checkpoint._codec import Codec, PutArgs
from carebound.checkpoint._layout import (
    NamespaceKeys,
    ThreadKeys,
    namespace_keys,
    registry_key,
    thread_keys,
)
from carebound.state.keys import DEFAULT_PREFIX

# A registry entry is refreshed at most this often per thread and process (with a TTL), and
# entries older than ttl + _REGISTRY_GRACE are surely expired threads and may be dropped.
VERSION_DIGITS = 10
"""Digits of a channel version's counter (zero-padded, so versions sort as strings)."""

_REGISTRY_REFRESH = 60.0
_REGISTRY_GRACE = 600.0
_REGISTRY_CACHE_MAX = 50_000


def keep_signatures(*methods: Callable[..., Any]) -> None:
    """Store each method's signature on it (``__signature__``): LangGraph asks for the
    signature of a saver's ``put_writes`` / ``aput_writes`` at every invoke (does it take
    ``task_path``?), and ``inspect`` then reads it instead of rebuilding it from the code."""
    for method in methods:
        method.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]


class SaverCore(BaseCheckpointSaver[str]):
    """Settings and pure helpers of :class:`RedisSaver` and :class:`AsyncRedisSaver`."""

    def __init__(
        self, *, prefix: str = DEFAULT_PREFIX, ttl: int | None = None, compress: bool = False
    ) -> None:
        super().__init__(serde=JsonPlusSerializer(pickle_fallback=False))
        if not prefix:
            raise ValueError("prefix must be a non-empty string")
        if ttl is not None and (isinstance(ttl, bool) or int(ttl) != ttl or ttl <= 0):
            raise ValueError(f"ttl must be a positive number of seconds or None, got {ttl!r}")
        self.prefix = prefix
        self.ttl = int(ttl) if ttl is not None else None
        self.compress = compress
        self._codec_cache = Codec(self.serde, compress=compress)
        self._registry = registry_key(prefix)
        # thread id -> monotonic time this process last wrote its registry entry
        self._registered: dict[str, float] = {}
        self._thread_keys: dict[str, ThreadKeys] = {}
        self._ns_keys: dict[tuple[str, str], NamespaceKeys] = {}

    @property
    def _codec(self) -> Codec:
        # ``with_allowlist`` (called by ``compile``) clones the saver with a new serde
        codec = self._codec_cache
        if codec.serde is not self.serde:
            codec = self._codec_cache = Codec(self.serde, compress=self.compress)
        return codec

    @property
    def _ttl_arg(self) -> int:
        return self.ttl or 0

    def _keys(self, thread_id: str, checkpoint_ns: str) -> tuple[ThreadKeys, NamespaceKeys]:
        nkeys = self._ns_keys.get((thread_id, checkpoint_ns))
        if nkeys is not None:
            return self._thread_keys[thread_id], nkeys
        tkeys = self._thread(thread_id)
        nkeys = namespace_keys(tkeys, checkpoint_ns)
        if len(self._ns_keys) > _REGISTRY_CACHE_MAX:
            self._ns_keys.clear()
        self._ns_keys[(thread_id, checkpoint_ns)] = nkeys
        return tkeys, nkeys

    def _thread(self, thread_id: str) -> ThreadKeys:
        tkeys = self._thread_keys.get(thread_id)
        if tkeys is None:
            if len(self._thread_keys) > _REGISTRY_CACHE_MAX:
                self._thread_keys.clear()
                self._ns_keys.clear()
            tkeys = self._thread_keys[thread_id] = thread_keys(self.prefix, thread_id)
        return tkeys

    def _registry_due(self, thread_id: str) -> bool:
        """Whether this write should also (re)write the thread's registry entry."""
        last = self._registered.get(thread_id)
        if last is None:
            return True
        return self.ttl is not None and time.monotonic() - last > _REGISTRY_REFRESH

    def _registry_written(self, thread_id: str) -> None:
        if len(self._registered) > _REGISTRY_CACHE_MAX:
            self._registered.clear()
        self._registered[thread_id] = time.monotonic()

    def _register_command(self, thread_id: str) -> list[str | bytes | int]:
        """The ZADD that (re)registers ``thread_id`` in the global registry."""
        return ["ZADD", self._registry, repr(time.time()), thread_id]

    def _put_call(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        serialized: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> tuple[PutArgs, RunnableConfig]:
        """The ``put`` script's KEYS and ARGV for ``checkpoint``, and the config ``put`` returns
        (what :meth:`RedisSaver.put` and :meth:`AsyncRedisSaver.aput` share)."""
        conf = config["configurable"]
        thread_id: str = conf["thread_id"]
        checkpoint_ns: str = conf.get("checkpoint_ns", "")
        tkeys, nkeys = self._keys(thread_id, checkpoint_ns)
        call = self._codec.put_args(
            tkeys,
            nkeys,
            config=config,
            checkpoint=checkpoint,
            metadata=metadata,
            new_versions=new_versions,
            ttl=self._ttl_arg,
            serialized=serialized,
        )
        return call, self._stored_config(config, checkpoint)

    @staticmethod
    def _stored_config(config: RunnableConfig, checkpoint: Checkpoint) -> RunnableConfig:
        """The config ``put`` returns for ``checkpoint``."""
        conf = config["configurable"]
        return {
            "configurable": {
                "thread_id": conf["thread_id"],
                "checkpoint_ns": conf.get("checkpoint_ns", ""),
                "checkpoint_id": checkpoint["id"],
            }
        }

    def _put_writes_call(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
    ) -> PutArgs:
        """The ``put_writes`` script's KEYS and ARGV (shared by both savers)."""
        conf = config["configurable"]
        tkeys, nkeys = self._keys(conf["thread_id"], conf.get("checkpoint_ns", ""))
        return self._codec.put_writes_args(
            tkeys,
            nkeys,
            config=config,
            writes=writes,
            task_id=task_id,
            task_path=task_path,
            ttl=self._ttl_arg,
        )

    def _registry_stale_before(self) -> float | None:
        """Registry scores below this belong to threads whose keys have surely expired."""
        if self.ttl is None:
            return None
        return time.time() - self.ttl - _REGISTRY_GRACE

    def _lease_lost(self, thread_id: str, config_token: str, current: Any) -> LeaseLostError:
        held = current.decode() if isinstance(current, bytes) and current else "none"
        return LeaseLostError(
            f"checkpoint write refused for thread {thread_id!r}: fencing token {config_token} "
            f"does not match the run's lease token ({held})",
            hint="another worker owns the run now; stop this worker's run, or re-acquire the "
            "lease and resume from the last checkpoint",
        )

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Next channel version: a zero-padded counter and a random tie-breaker.

        InMemorySaver's scheme (versions sort as strings; the tie-breaker keeps two forks of
        a thread from sharing a blob), shorter: ten digits and eight hex digits instead of 32
        and 18 characters. Every checkpoint lists each channel's version several times, so
        this is a fair part of what a checkpoint weighs. A thread written with the long form
        goes on correctly: its counter's first ten digits are zeros, so any short version
        sorts after every long one.
        """
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(current.split(".")[0])
        return f"{current_v + 1:0{VERSION_DIGITS}}.{random.getrandbits(32):08x}"
