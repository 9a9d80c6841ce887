"""Deflated text values: zlib (optionally against a preset dictionary), then base64, behind a
marker no JSON text starts with. The stored value stays text, so clients that decode replies
read it too; a value without the marker is plain and read as it is.

Base64 (``marker + "." + body``) rather than base85: Python's base85 codec is pure Python and
decoding a page of twenty deflated holds in it took longer than reading them from Redis; base64
is C. Values written before in base85 (``marker`` + body, whose alphabet has no ``.``) still read.

Values only carebound's binary-safe readers see (audit events) are kept as the raw deflate
stream after a one-byte marker (:func:`pack_raw`, :func:`inflate`): base64 adds a third.
"""

from __future__ import annotations

import base64
import binascii
import functools
import zlib
from typing import Any

_BASE64 = "."  # after the marker: the body is base64 (not in base85's alphabet)


def pack(text: str, *, marker: str, dictionary: bytes = b"") -> str:
    """``text`` deflated, after ``marker`` (``marker`` must start with ``~``); ``text`` itself
    when that is no longer (``text`` must not start with ``~``: JSON never does)."""
    data = text.encode()
    # A window just large enough for the dictionary and the value compresses exactly as the
    # full one (every match distance fits), and setting up a small one costs far less: an
    # audit event's compressor took longer to create than the rest of its append. Any such
    # stream inflates with the full window ``unpack`` uses.
    bits = min(15, max(9, (len(dictionary) + len(data)).bit_length()))
    deflate = _primed(dictionary, bits).copy()
    body = deflate.compress(data) + deflate.flush()
    packed = marker + _BASE64 + binascii.b2a_base64(body, newline=False).decode()
    return packed if len(packed) < len(text) else text


def pack_raw(text: str, *, marker: bytes, dictionary: bytes = b"") -> bytes | str:
    """``text`` deflated, as bytes after ``marker`` (a byte no JSON text starts with, and not
    ``~``); ``text`` itself when that is no longer. Only for values read by clients that do not
    decode replies."""
    data = text.encode()
    bits = min(15, max(9, (len(dictionary) + len(data)).bit_length()))  # see ``pack``
    deflate = _primed(dictionary, bits).copy()
    packed = marker + deflate.compress(data) + deflate.flush()
    return packed if len(packed) < len(data) else text


def inflate(body: bytes, *, dictionary: bytes = b"") -> bytes:
    """The bytes of a raw deflate stream (what :func:`pack_raw` wrote after its marker).

    Raises:
        ValueError: ``body`` does not inflate.
    """
    try:
        if dictionary:
            inflater = zlib.decompressobj(-15, dictionary)
            raw = inflater.decompress(body)
            if not inflater.eof:
                raise zlib.error("the stream is cut short")
            return raw
        return zlib.decompress(body, -15)
    except zlib.error as exc:
        raise ValueError(f"stored value does not inflate: {exc}") from exc


@functools.lru_cache(maxsize=64)
def _primed(dictionary: bytes, bits: int) -> Any:
    """A compressor of ``bits`` with ``dictionary`` set, never used itself: each value is
    deflated by a copy of it (the same stream as a fresh compressor's), which skips reading
    the dictionary in again for every value."""
    return zlib.compressobj(
        6, zlib.DEFLATED, -bits, max(1, bits - 7), zlib.Z_DEFAULT_STRATEGY, dictionary
    )


def unpack(stored: bytes | str, *, marker: str, dictionary: bytes = b"") -> bytes | str:
    """The text of a stored value (a plain one as it is), as bytes or text like ``stored``.

    Raises:
        ValueError: the value carries the marker but does not inflate.
    """
    head = marker.encode() if isinstance(stored, bytes) else marker
    if not stored.startswith(head):  # type: ignore[arg-type]
        return stored
    body = stored[len(marker) :]  # bytes or text alike: the codecs below take both
    try:
        data = (
            binascii.a2b_base64(body[1:])
            if body[:1] in (b".", _BASE64)
            else base64.b85decode(body)  # written before base64
        )
        if dictionary:
            inflate = zlib.decompressobj(-15, dictionary)
            raw = inflate.decompress(data) + inflate.flush()
        else:
            raw = zlib.decompress(data, -15)
    except (ValueError, binascii.Error, zlib.error) as exc:
        raise ValueError(f"stored value does not inflate: {exc}") from exc
    return raw if isinstance(stored, bytes) else raw.decode()
