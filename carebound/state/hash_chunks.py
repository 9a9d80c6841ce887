"""A long text value kept in a hash as several short fields, so the hash stays small.

Redis keeps a hash in its compact listpack encoding only while every field and value is at
most ``hash-max-listpack-value`` bytes (64 by default); one longer value turns the whole hash
into a hashtable, several times larger (a parked demo hold: 1,296 bytes as a hashtable, about
850 as a listpack). A value is stored as ``name.0``, ``name.1``, ... (64 characters each);
a value stored whole in ``name`` (before, or one that is not split) is read first, so a writer
of the whole form still wins over chunks it did not know to drop.

Only ASCII values up to ``MAX_CHUNKS`` chunks are split (a chunk must never cut a character);
any other value is stored whole, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

CHUNK = 64
"""Characters per chunk: Redis's default ``hash-max-listpack-value``."""

MAX_CHUNKS = 24
"""The most chunks a value is split into (longer values are stored whole)."""


def chunk_names(name: str) -> tuple[str, ...]:
    """Every field a value stored under ``name`` may occupy: ``name`` (the value whole), then
    its chunks in order (to read with HMGET)."""
    return (name, *(f"{name}.{i}" for i in range(MAX_CHUNKS)))


def chunk_fields(name: str, value: str) -> list[str]:
    """Field/value pairs (flat, as HSET takes them) storing ``value`` under ``name``."""
    if len(value) <= CHUNK or len(value) > CHUNK * MAX_CHUNKS or not value.isascii():
        return [name, value]
    fields: list[str] = []
    for i, start in enumerate(range(0, len(value), CHUNK)):
        fields += [f"{name}.{i}", value[start : start + CHUNK]]
    return fields


def join_chunks(values: Sequence[bytes | str | None]) -> bytes | str | None:
    """The value from the replies of :func:`chunk_names` (None: it is not stored)."""
    if values[0] is not None:
        return values[0]
    chunks = [v for v in values[1:] if v is not None]
    if not chunks:
        return None
    if isinstance(chunks[0], bytes):
        return b"".join(v if isinstance(v, bytes) else v.encode() for v in chunks)
    return "".join(v if isinstance(v, str) else v.decode() for v in chunks)
