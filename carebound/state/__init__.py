"""Redis state: the keys and multi-store round trips carebound uses.

The Lua scripts the stores run are ``.lua`` files in :mod:`carebound.lua`, read by its one
loader.
"""
