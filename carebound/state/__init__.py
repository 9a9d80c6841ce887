"""Redis state: every key, Lua script and multi-store round trip carebound uses.

* :mod:`~carebound.state.keys`: every key name (one hash tag per run).
* :mod:`~carebound.state.lua`: the Lua scripts as ``.lua`` files, read by one loader.
* :mod:`~carebound.state.pipeline`: one round trip of several scripts and commands.
* :mod:`~carebound.state.runs`, :mod:`~carebound.state.ledger`,
  :mod:`~carebound.state.lease`, :mod:`~carebound.state.inline_writes`: the run, effect-ledger,
  lease and inline-write stores.
* :mod:`~carebound.state.trips`: the multi-store round trips the engine composes (typed
  operations carrying their own reply parsers).
* :mod:`~carebound.state.errors`: how Redis failures become carebound errors.

The engine (:mod:`carebound.engine`) imports no ``redis``; everything it asks of Redis goes
through here.
"""
