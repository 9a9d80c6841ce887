"""carebound.agents: one module per agent graph, plus their shared state types."""

from carebound._agent import AgentDefinition


def registry() -> dict[str, AgentDefinition]:
    """Every agent carebound ships, by name."""
    from carebound.agents.demo import DEMO

    return {DEMO.name: DEMO}


__all__ = ["registry"]
