"""carebound.agents: one module per agent graph, plus their shared state types."""

from carebound._agent import AgentDefinition


def registry() -> dict[str, AgentDefinition]:
    """Every agent carebound ships, by name."""
    from carebound.agents.demo import DEMO
    from carebound.agents.packet_builder import PACKET_BUILDER
    from carebound.agents.reconciler import RECONCILER
    from carebound.agents.referral_chaser import REFERRAL_CHASER
    from carebound.agents.referral_intake import REFERRAL_INTAKE

    agents = (DEMO, RECONCILER, REFERRAL_CHASER, PACKET_BUILDER, REFERRAL_INTAKE)
    return {agent.name: agent for agent in agents}


__all__ = ["registry"]
