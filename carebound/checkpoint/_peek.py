"""The newest checkpoint's channel values as plain data, read without LangGraph.

``carebound status`` shows a run's steps and findings: two channel values of its newest
checkpoint. Loading LangGraph to read them costs a command about a second, so this reads the
stored shape directly (see :mod:`carebound.checkpoint._scripts`) with the ``load`` script the
savers use. Only plain values are read: a value LangGraph serialised with an extension type
(a model, a datetime object), a format this module does not know, or a pending write from
outside a task (which ``get_state`` would apply on top) makes :func:`latest_values` answer
None, and the caller asks LangGraph (``graph.get_state``) instead. A test compares the two
readings for every shipped scenario.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import ormsgpack
import redis

from carebound.checkpoint._layout import namespace_keys, thread_keys
from carebound.checkpoint._scripts import LOAD
from carebound.checkpoint._values import unpack

_NULL_TASK = "00000000-0000-0000-0000-000000000000"
"""LangGraph's task id for writes made outside a task (``update_state``)."""


class _NotPlainError(Exception):
    """A stored value needs LangGraph's serializer."""


def _no_extensions(code: int, data: bytes) -> Any:
    raise _NotPlainError(code)


def _plain(raw: bytes) -> Any:
    """One stored ``<type>\\0<bytes>`` value, if it is plain data."""
    name, data = unpack(raw)
    type_ = name.encode()
    if type_ == b"null":
        return None
    if type_ == b"json":
        return json.loads(data)
    if type_ == b"msgpack":
        return ormsgpack.unpackb(data, ext_hook=_no_extensions, option=ormsgpack.OPT_NON_STR_KEYS)
    raise _NotPlainError(type_)


def latest_values(
    client: redis.Redis, prefix: str, thread_id: str, channels: Sequence[str]
) -> dict[str, Any] | None:
    """``channels``' values in the newest root checkpoint of ``thread_id`` (a channel that
    holds no value is left out; no checkpoint at all: ``{}``), or None when they cannot be
    read as plain data (see the module's docstring). ``client`` must not decode replies."""
    nkeys = namespace_keys(thread_keys(prefix, thread_id), "")
    entries = LOAD(client, list(nkeys), ["", "+", 1])
    if not entries:
        return {}
    _, _, raw_meta, blobs, write_fields, _ = entries[0]
    if any(bytes(f).split(b"\x00")[1].decode() == _NULL_TASK for f in write_fields):
        return None
    refs: list[str] = ormsgpack.unpackb(raw_meta)[1:]
    wanted = set(channels)
    values: dict[str, Any] = {}
    try:
        for ref, blob in zip(refs, blobs, strict=True):
            channel = ref.rpartition("\x00")[0]
            if channel in wanted and blob is not None and not blob.startswith(b"empty\x00"):
                values[channel] = _plain(blob)
    except (_NotPlainError, ValueError, ormsgpack.MsgpackDecodeError):
        return None
    return values
