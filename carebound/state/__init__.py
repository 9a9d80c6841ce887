"""Redis state: every key, Lua script and multi-store round trip carebound uses.

The Lua scripts live as ``.lua`` files in :mod:`carebound.state.lua` and are loaded by one
module, :mod:`carebound.state._scripts`.
"""
