"""carebound's Lua scripts: one ``.lua`` file per script in this folder, read by one loader.

A script is fetched by name (``script("lease_acquire")``) and run with one ``EVALSHA``
(:meth:`Script.__call__`, :meth:`Script.acall`) or queued on a pipeline
(:meth:`Script.queue`, sent by :func:`carebound.state.pipeline.run`); a server that lost it gets
``SCRIPT LOAD`` and the call again. Each file opens with its KEYS, ARGV and reply; files named
``_<helper>.lua`` hold one Lua function that the scripts calling it get prepended.

The checkpoint savers send scripts on their own wire (``carebound._wire``) through the same
:class:`Script` objects: :func:`eval_script`, :func:`eval_many` (scripts and idempotent
companions in one trip) and :func:`eval_batched`, with asyncio twins (``aeval_*``).

This package imports nothing of carebound's at run time, so every store can use it without an
import cycle.
"""

from carebound.state.lua._loader import (
    Script,
    helper_names,
    queued_shas,
    queued_source,
    script,
    script_names,
    shas_queued_on,
)
from carebound.state.lua._on_wire import (
    aeval_batched,
    aeval_many,
    aeval_script,
    eval_batched,
    eval_many,
    eval_script,
)

__all__ = [
    "Script",
    "aeval_batched",
    "aeval_many",
    "aeval_script",
    "eval_batched",
    "eval_many",
    "eval_script",
    "helper_names",
    "queued_shas",
    "queued_source",
    "script",
    "script_names",
    "shas_queued_on",
]
