"""LangGraph checkpointers on plain Redis 7+ / Valkey (no modules), sync and async.

``RedisSaver`` (blocking ``redis`` client) and ``AsyncRedisSaver`` (``redis.asyncio``) share
one key space: a thread written by one can be resumed by the other, in any process.
"""

from carebound.checkpoint._async import AsyncRedisSaver
from carebound.checkpoint._sync import RedisSaver

__all__ = ["AsyncRedisSaver", "RedisSaver"]
