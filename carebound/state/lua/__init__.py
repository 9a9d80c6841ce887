"""carebound's Lua scripts: one ``.lua`` file per script in this folder, read by one loader.

A script is fetched by name (``script("lease_acquire")``) and run with one ``EVALSHA``
(:meth:`Script.__call__`, :meth:`Script.acall`) or queued on a pipeline
(:meth:`Script.queue`, sent by :func:`carebound.state.pipeline.run`); a server that lost it gets
``SCRIPT LOAD`` and the call again. Each file opens with its KEYS, ARGV and reply; files named
``_<helper>.lua`` hold one Lua function that the scripts calling it get prepended.

This package imports nothing of carebound's, so every store can use it without an import cycle.
"""

from carebound.state.lua._loader import (
    Script,
    helper_names,
    queued_shas,
    queued_source,
    script,
    script_names,
)

__all__ = ["Script", "helper_names", "queued_shas", "queued_source", "script", "script_names"]
