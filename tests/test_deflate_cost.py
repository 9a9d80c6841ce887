"""The deflated values' bytes do not depend on how cheaply they are made.

Audit events and checkpoint values are deflated on every step of a run; the compressors are
set up for speed (a primed copy for the audit dictionary, a window and hash table sized to a
checkpoint value). These tests pin that the stored bytes stay what they were: the same stream as
a fresh full-size compressor writes for an audit event, and no longer than
``zlib.compress(data, 1)`` for the values a real run stores.
"""

from __future__ import annotations

import binascii
import json
import zlib
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from carebound.checkpoint import _values
from carebound.state import audit_codec, deflate

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _fresh_pack(text: str, *, marker: str, dictionary: bytes) -> str:
    """``deflate.pack`` as it was written first: a new compressor for every value."""
    data = text.encode()
    bits = min(15, max(9, (len(dictionary) + len(data)).bit_length()))
    compressor = zlib.compressobj(
        6, zlib.DEFLATED, -bits, max(1, bits - 7), zlib.Z_DEFAULT_STRATEGY, dictionary
    )
    body = compressor.compress(data) + compressor.flush()
    packed = marker + "." + binascii.b2a_base64(body, newline=False).decode()
    return packed if len(packed) < len(text) else text


@settings(max_examples=200, deadline=None)
@given(text=st.text(min_size=0, max_size=3000).filter(lambda t: not t.startswith("~")))
def test_a_primed_copy_deflates_exactly_as_a_fresh_compressor(text: str) -> None:
    """Values of every size (so every window size) deflate to the same bytes as before, and
    read back."""
    dictionary = audit_codec._DICTIONARY
    packed = deflate.pack(text, marker="~t1:", dictionary=dictionary)
    assert packed == _fresh_pack(text, marker="~t1:", dictionary=dictionary)
    assert deflate.unpack(packed, marker="~t1:", dictionary=dictionary) == text


def _run_values() -> list[bytes]:
    """Serialised values like a run's checkpoints hold: its case bundle's resources and a
    run state grown step by step."""
    serde = JsonPlusSerializer(pickle_fallback=False)
    values: list[bytes] = []
    for name in ("hello_referral.json", "intake_delgado.json"):
        bundle: dict[str, Any] = json.loads((SCENARIOS / "cases" / name).read_text())
        entries = bundle.get("entry", [])
        for size in range(1, len(entries) + 1):
            values.append(serde.dumps_typed(entries[:size])[1])
    results: list[dict[str, Any]] = []
    for i in range(30):
        args = {"recipient": f"fax:+1555000{i:04d}", "items": ["referral"]}
        results.append({"index": i, "tool": "send_document_request", "status": "executed",
                        "args": args})  # fmt: skip
        values.append(serde.dumps_typed({"results": list(results), "steps": i})[1])
    return [v for v in values if len(v) >= _values.COMPRESS_AT]


def test_checkpoint_values_deflate_no_longer_than_zlib_level_one() -> None:
    """A checkpoint value deflated with a window sized to it is exactly as long as
    ``zlib.compress(data, 1)`` makes it, and inflates with ``zlib.decompress``."""
    values = _run_values()
    assert len(values) > 30
    for value in values:
        deflated = _values.deflate(value)
        assert zlib.decompress(deflated) == value
        assert len(deflated) == len(zlib.compress(value, 1))
        assert _values.unpack(_values.pack(("msgpack", value))) == ("msgpack", value)


def test_values_under_256_bytes_are_stored_as_serialized() -> None:
    """Deflating a value under 256 bytes cost about as much as a larger one's and saved a few
    bytes (a parked run's interrupt write: 211 -> 203), so it stays as serialized; from 256
    bytes on, a value that deflates smaller is stored deflated."""
    repetitive = b'{"tool":"send_fax","status":"executed"},' * 10
    assert _values.pack(("msgpack", repetitive[:255])) == b"msgpack\x00" + repetitive[:255]
    stored = _values.pack(("msgpack", repetitive[:256]))
    assert stored.startswith(b"zlib+msgpack\x00")
    assert _values.unpack(stored) == ("msgpack", repetitive[:256])
