"""carebound.agents: one package per agent (``demo``, ``reconciler``, ``referral_chaser``,
``packet_builder``, ``referral_intake``), each holding its private phases; ``_referral`` is what
the referral agents share (settings, the outreach schedule). Agents import tools, tools import
the pure rules in ``carebound.domain``; nothing below imports an agent."""

import logging
from importlib.metadata import entry_points

from carebound._agent import AgentDefinition

ENTRY_POINT_GROUP = "carebound.agents"
"""The entry-point group through which installed packages add agents: each entry point names an
:class:`AgentDefinition` (``my_agents = "my_pkg.agents:INTAKE_BOT"``). Every carebound process
(the CLI, the web inbox, workers, a service's Runner) then knows the agent, so a hold of a
service-defined agent is decided with ``carebound approve`` like any other."""

log = logging.getLogger("carebound.agents")


def registry() -> dict[str, AgentDefinition]:
    """Every agent carebound ships, then every agent installed through :data:`ENTRY_POINT_GROUP`,
    by name. An installed agent cannot replace a shipped one; one that fails to load is logged
    (by entry-point name and error class) and left out, so it cannot stop the others."""
    from carebound.agents.demo import DEMO
    from carebound.agents.packet_builder import PACKET_BUILDER
    from carebound.agents.reconciler import RECONCILER
    from carebound.agents.referral_chaser import REFERRAL_CHASER
    from carebound.agents.referral_intake import REFERRAL_INTAKE

    shipped = (DEMO, RECONCILER, REFERRAL_CHASER, PACKET_BUILDER, REFERRAL_INTAKE)
    agents = {agent.name: agent for agent in shipped}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            agent = point.load()
        except Exception as exc:
            log.warning("agent entry point %r did not load: %s", point.name, type(exc).__name__)
            continue
        if not isinstance(agent, AgentDefinition):
            log.warning("agent entry point %r is not an AgentDefinition", point.name)
        elif agent.name in agents and agents[agent.name] is not agent:
            log.warning("agent entry point %r may not replace agent %r", point.name, agent.name)
        else:
            agents[agent.name] = agent
    return agents


__all__ = ["ENTRY_POINT_GROUP", "registry"]
