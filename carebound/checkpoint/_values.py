"""How one checkpoint value is stored: ``<type>\\0<bytes>``, deflated (zlib) from ``COMPRESS_AT``
bytes on. No LangGraph import: the read-only CLI peeks at stored values with this alone."""

from __future__ import annotations

import zlib

SEP = b"\x00"

COMPRESS_AT = 256
"""Serialised values of at least this many bytes are stored deflated (zlib) by a saver made
with ``compress=True`` (carebound's runs): a run's results, memory and checkpoint record shrink
to about a third. Below it, deflating cost as much as a larger value's (mostly setting up the
compressor, from cold caches: about 20 us inside a decide) and saved a few bytes: a parked
run's interrupt write (211 bytes) lost 8."""

DEFLATED = "zlib+"
"""Marks a deflated value's type: ``zlib+msgpack\\0<zlib bytes>``."""


_LOOKAHEAD = 262
"""zlib's MIN_LOOKAHEAD: a window of ``w`` bytes finds matches up to ``w - 262`` back."""


def deflate(data: bytes) -> bytes:
    """``data`` as a zlib stream, compressed as ``zlib.compress(data, 1)`` compresses it, with
    a window and hash table sized to the value: every match distance still fits, and setting
    up (zeroing) zlib's default 256 KB of state took longer than compressing a typical value.
    ``zlib.decompress`` reads it like any zlib stream (its header names its window). The hash
    table has two heads per byte of window: with eight (as before), zeroing it was a fair part
    of a decide's deflating, and it found no match more (``tests/test_deflate_cost.py``
    compares lengths with ``zlib.compress(data, 1)``)."""
    bits = min(15, max(9, (len(data) + _LOOKAHEAD).bit_length()))
    compressor = zlib.compressobj(1, zlib.DEFLATED, bits, max(1, min(8, bits - 6)))
    return compressor.compress(data) + compressor.flush()


def pack(typed: tuple[str, bytes], compress_at: int | None = COMPRESS_AT) -> bytes:
    """The serializer's ``(type, bytes)`` as stored: deflated when it has ``compress_at``
    bytes or more and deflating makes it smaller; never deflated when ``compress_at`` is None."""
    type_, data = typed
    if compress_at is not None and len(data) >= compress_at:
        deflated = deflate(data)
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
