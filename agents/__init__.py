"""carebound.agents: one package per agent (``demo``, ``reconciler``, ``referral_chaser``,
``packet_builder``, ``referral_intake``), each holding its private phases; ``_referral`` is what
the referral agents share (settings, the outreach schedule). Agents import tools, tools import
the pure rules in ``carebound.domain``; nothing below imports an agent."""

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
