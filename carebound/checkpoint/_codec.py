"""Turning checkpoints into script arguments and script replies back into checkpoints.

No I/O happens here: the sync and async savers send what this module builds, so both share
one storage format. Values are serialised with ``JsonPlusSerializer(pickle_fallback=False)``
(msgpack), never pickle; values of ``COMPRESS_AT`` bytes or more are stored deflated (zlib).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import ormsgpack
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from carebound.checkpoint._layout import NamespaceKeys, ThreadKeys
from carebound.checkpoint._values import COMPRESS_AT, SEP, unpack
from carebound.checkpoint._values import pack as _pack

_SEP = SEP
_EMPTY = b"empty\x00"


class PutArgs(NamedTuple):
    """KEYS and ARGV of the ``put`` script."""

    keys: list[str]
    args: list[str | bytes | int]


def text(raw: bytes | str) -> str:
    """A reply item as text (the savers read with ``decode_responses=False``)."""
    return raw.decode() if isinstance(raw, bytes) else raw


def fencing_token(config: RunnableConfig) -> str:
    """The ``fencing_token`` of ``config`` as the scripts compare it, or ``""`` for none."""
    token = config["configurable"].get("fencing_token")
    if token is None:
        return ""
    if isinstance(token, bool) or not isinstance(token, int):
        raise TypeError(f"configurable.fencing_token must be an int, got {token!r}")
    return str(token)


class Codec:
    """Builds script arguments and decodes script replies with one serializer."""

    def __init__(self, serde: SerializerProtocol, *, compress: bool = False) -> None:
        self.serde = serde
        self.compress = compress
        self._compress_at = COMPRESS_AT if compress else None

    # -- writing -----------------------------------------------------------------------

    def put_args(
        self,
        thread: ThreadKeys,
        ns_keys: NamespaceKeys,
        *,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        ttl: int,
        serialized: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> PutArgs:
        """KEYS/ARGV that store ``checkpoint`` and the blobs of its ``new_versions`` (a value
        in ``serialized`` is stored as the serializer's ``(type, bytes)`` there, taken when it
        was put, instead of the checkpoint's current value)."""
        conf = config["configurable"]
        checkpoint_ns: str = conf.get("checkpoint_ns", "")
        stored = checkpoint.copy()
        values: dict[str, Any] = stored.pop("channel_values")  # type: ignore[misc]
        full_metadata = get_checkpoint_metadata(config, metadata)
        record = _pack(
            self.serde.dumps_typed(
                {"c": stored, "m": full_metadata, "p": conf.get("checkpoint_id")}
            ),
            self._compress_at,
        )
        refs = [
            f"{channel}\x00{version}" for channel, version in stored["channel_versions"].items()
        ]
        run_id = full_metadata.get("run_id")
        run = "" if run_id is None else str(run_id)
        meta = ormsgpack.packb([run, *refs])
        cid = checkpoint["id"]
        args: list[str | bytes | int] = [
            checkpoint_ns,
            cid,
            record,
            meta,
            fencing_token(config),
            ttl,
            thread.base,
            f"{run}\x00{checkpoint_ns}\x00{cid}" if run else "",
        ]
        for channel, version in new_versions.items():
            args.append(f"{channel}\x00{version}")
            if serialized is not None and channel in serialized:
                args.append(_pack(serialized[channel], self._compress_at))
            else:
                args.append(self.pack_value(values[channel]) if channel in values else _EMPTY)
        keys = [
            thread.namespaces,
            ns_keys.ids,
            ns_keys.records,
            ns_keys.blobs,
            thread.lease,
            thread.runs,
        ]
        return PutArgs(keys, args)

    def pack_value(self, value: Any) -> bytes:
        """A channel value as a blob stores it (serialized, deflated when large)."""
        return _pack(self.serde.dumps_typed(value), self._compress_at)

    def put_writes_args(
        self,
        thread: ThreadKeys,
        ns_keys: NamespaceKeys,
        *,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str,
        ttl: int,
    ) -> PutArgs:
        """KEYS/ARGV that store ``writes``; special writes overwrite, regular ones do not."""
        conf = config["configurable"]
        cid: str = conf["checkpoint_id"]
        args: list[str | bytes | int] = [
            conf.get("checkpoint_ns", ""),
            fencing_token(config),
            ttl,
            thread.base,
        ]
        prefix = task_path.encode() + _SEP
        for idx, (channel, value) in enumerate(writes):
            write_idx = WRITES_IDX_MAP.get(channel, idx)
            args.append(f"{cid}\x00{task_id}\x00{write_idx}")
            args.append(
                prefix
                + channel.encode()
                + _SEP
                + _pack(self.serde.dumps_typed(value), self._compress_at)
            )
            args.append(1 if write_idx < 0 else 0)
        keys = [thread.namespaces, ns_keys.writes, ns_keys.write_index, thread.lease, thread.runs]
        return PutArgs(keys, args)

    # -- reading -----------------------------------------------------------------------

    def decode_tuple(
        self,
        thread_id: str,
        checkpoint_ns: str,
        entry: Sequence[Any],
        config: RunnableConfig | None = None,
    ) -> CheckpointTuple:
        """Turn one entry of the ``load`` script's reply into a :class:`CheckpointTuple`.

        ``config`` is returned as the tuple's config when given (as InMemorySaver does for a
        lookup by checkpoint id); otherwise the config is built from the ids.
        """
        raw_cid, raw_record, raw_meta, blobs, write_fields, write_values = entry
        cid = raw_cid.decode()
        body = self.serde.loads_typed(unpack(raw_record))
        refs: list[str] = ormsgpack.unpackb(raw_meta)[1:]
        values: dict[str, Any] = {}
        for ref, blob in zip(refs, blobs, strict=True):
            if blob is None or blob.startswith(_EMPTY):
                continue
            values[ref.rpartition("\x00")[0]] = self.serde.loads_typed(unpack(blob))
        checkpoint: Checkpoint = body["c"]
        checkpoint["channel_values"] = values
        parent_id: str | None = body["p"]
        return CheckpointTuple(
            config=config
            if config is not None
            else {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": checkpoint_ns,
                    "checkpoint_id": cid,
                }
            },
            checkpoint=checkpoint,
            metadata=body["m"],
            parent_config=(
                {
                    "configurable": {
                        "thread_id": thread_id,
                        "checkpoint_ns": checkpoint_ns,
                        "checkpoint_id": parent_id,
                    }
                }
                if parent_id
                else None
            ),
            pending_writes=self._pending_writes(write_fields, write_values),
        )

    def _pending_writes(
        self, fields: Sequence[bytes], values: Sequence[bytes | None]
    ) -> list[PendingWrite]:
        rows: list[tuple[str, str, int, str, bytes]] = []
        for field, value in zip(fields, values, strict=True):
            if value is None:
                continue
            _, task_id, idx = field.decode().rsplit("\x00", 2)
            task_path, channel, typed = value.split(_SEP, 2)
            rows.append((task_path.decode(), task_id, int(idx), channel.decode(), typed))
        # writes_sort_key order: (task_path, task_id, idx)
        rows.sort(key=lambda row: (row[0], row[1], row[2]))
        return [
            (task_id, channel, self.serde.loads_typed(unpack(typed)))
            for _, task_id, _, channel, typed in rows
        ]

    def metadata_matches(self, entry: Sequence[Any], filter: dict[str, Any]) -> bool:
        """Whether the checkpoint in ``entry`` has every ``filter`` key with an equal value."""
        metadata = self.serde.loads_typed(unpack(entry[1]))["m"]
        return all(metadata.get(key) == value for key, value in filter.items())


def restore_args(base: str, ttl: int, dump: Sequence[Any]) -> list[str | bytes | int]:
    """ARGV of the ``restore_thread`` script that recreates a ``dump_thread`` reply."""
    args: list[str | bytes | int] = [base, ttl]
    for raw_ns, records, blobs, writes in dump:
        checkpoint_ns = raw_ns.decode()
        fields = dict(zip(records[::2], records[1::2], strict=True))
        checkpoints: list[str | bytes | int] = []
        n_checkpoints = 0
        for field, record in fields.items():
            if field.endswith(b"\x00r"):
                continue
            meta = fields.get(field + b"\x00r")
            if meta is None:
                continue
            run: str = ormsgpack.unpackb(meta)[0]
            cid = field.decode()
            member = f"{run}\x00{checkpoint_ns}\x00{cid}" if run else ""
            checkpoints += [cid, record, meta, member]
            n_checkpoints += 1
        args += [checkpoint_ns, n_checkpoints, len(blobs) // 2, len(writes) // 2]
        args += checkpoints
        args += blobs
        args += writes
    return args
