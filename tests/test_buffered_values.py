"""A drive's buffered checkpoint stores the values as LangGraph put them.

LangGraph hands the saver a checkpoint whose ``channel_values`` are the channels' own objects
(``copy_checkpoint`` copies the mapping, not the values), and a node reads those same objects:
carebound's planner view copies ``findings`` and ``memory`` one level deep only, so a planner
that changes a nested list in place changes the value of a checkpoint already put. A buffer
that serialized its values when it sends them (the next effect, hold or settle) would store a
state the run never had at that checkpoint; a replay from it would see the change twice.

In carebound's graph today the code that runs in a step before its flush is the gate's (tool
facts, the packet builder) and the planner runs a step earlier, so the window is narrow; the
buffer no longer depends on how steps are composed.
"""

from __future__ import annotations

from typing import Any

import redis
from langgraph.checkpoint.base import empty_checkpoint

from carebound.checkpoint import RedisSaver, _values
from carebound.checkpoint._layout import namespace_keys, thread_keys
from carebound.checkpoint._values import DEFLATED


def _config(thread_id: str, checkpoint_id: str | None = None) -> Any:
    conf = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def test_values_changed_in_place_after_a_buffered_put_are_stored_as_put(
    redis_url: str, key_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    saver = RedisSaver(client, prefix=key_prefix)
    checkpoint = empty_checkpoint()
    memory: dict[str, Any] = {"notes": ["first"]}
    checkpoint["channel_values"] = {"memory": memory}
    checkpoint["channel_versions"] = {"memory": 1}
    with saver.buffered_writes("t-1"):
        saver.put(_config("t-1"), checkpoint, {"source": "loop", "step": 0}, {"memory": 1})
        # the next step's node changes the channel's objects in place, before any flush
        memory["notes"].append("second")
    found = saver.get_tuple(_config("t-1"))
    assert found is not None
    assert found.checkpoint["channel_values"]["memory"] == {"notes": ["first"]}
    saver.close()
    client.close()


def test_a_buffered_value_is_deflated_only_when_flushed(
    redis_url: str, key_prefix: str, monkeypatch: Any
) -> None:
    """Superseded puts are never sent, so their large values are never deflated either; the
    value that is flushed is still stored deflated. (A warm referral_intake start at 24a57f8
    supersedes no large value between two flushes: its 23 deflates, 17 values, 5 records and
    1 write, stay 23; a drive that moves a large channel twice before a flush saves one.)"""
    deflated: list[bytes] = []
    deflate = _values.deflate

    def counting(data: bytes) -> bytes:
        deflated.append(data)
        return deflate(data)

    monkeypatch.setattr(_values, "deflate", counting)
    client = redis.Redis.from_url(redis_url)
    saver = RedisSaver(client, prefix=key_prefix, compress=True)
    config = _config("t-1")
    with saver.buffered_writes("t-1"):
        for step in range(3):
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"memory": {"notes": [f"note-{step} " * 40]}}
            checkpoint["channel_versions"] = {"memory": step + 1}
            config = saver.put(
                config, checkpoint, {"source": "loop", "step": step}, {"memory": step + 1}
            )
    values_deflated = [data for data in deflated if b"note-" in data]
    assert len(values_deflated) == 1, "only the flushed put's value is deflated"
    assert b"note-2" in values_deflated[0]
    blobs = namespace_keys(thread_keys(key_prefix, "t-1"), "").blobs
    stored = list(client.hgetall(blobs).values())
    assert len(stored) == 1 and stored[0].startswith(DEFLATED.encode())
    found = saver.get_tuple(_config("t-1"))
    assert found is not None
    assert found.checkpoint["channel_values"]["memory"] == {"notes": ["note-2 " * 40]}
    saver.close()
    client.close()
