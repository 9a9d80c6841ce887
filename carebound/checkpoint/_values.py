"""How one checkpoint value is stored: ``<type>\\0<bytes>``, deflated (zlib) from ``COMPRESS_AT``
bytes on. No LangGraph import: the read-only CLI peeks at stored values with this alone."""

from __future__ import annotations

import zlib

SEP = b"\x00"

COMPRESS_AT = 192
"""Serialised values of at least this many bytes are stored deflated (zlib): a run's
results, memory and checkpoint record shrink to about a third."""

DEFLATED = "zlib+"
"""Marks a deflated value's type: ``zlib+msgpack\\0<zlib bytes>``."""


def pack(typed: tuple[str, bytes]) -> bytes:
    """The serializer's ``(type, bytes)`` as stored (deflated when that is smaller)."""
    type_, data = typed
    if len(data) >= COMPRESS_AT:
        deflated = zlib.compress(data, 1)
        if len(deflated) < len(data):
            return (DEFLATED + type_).encode() + SEP + deflated
    return type_.encode() + SEP + data


def unpack(raw: bytes) -> tuple[str, bytes]:
    """A stored ``<type>\\0<bytes>`` value as the serializer's ``(type, bytes)`` (inflated
    when it was stored deflated)."""
    raw_type, _, data = raw.partition(SEP)
    type_ = raw_type.decode()
    if type_.startswith(DEFLATED):
        return type_[len(DEFLATED) :], zlib.decompress(data)
    return type_, data
