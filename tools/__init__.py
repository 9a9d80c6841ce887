"""carebound.tools: typed tools and the connectors behind them."""

from carebound.tools._spec import (
    EffectClass,
    FactValue,
    JSONValue,
    ToolContext,
    ToolDefinitionError,
    ToolSpec,
    args_hash,
    tool,
)

__all__ = [
    "EffectClass",
    "FactValue",
    "JSONValue",
    "ToolContext",
    "ToolDefinitionError",
    "ToolSpec",
    "args_hash",
    "tool",
]
