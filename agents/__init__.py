"""carebound.agents: one package per agent (``demo``, ``reconciler``, ``referral_chaser``,
``packet_builder``, ``referral_intake``), each holding its private phases; ``_referral`` is what
the referral agents share (settings, the outreach schedule). Agents import tools, tools import
the pure rules in ``carebound.domain``; nothing below imports an agent."""

import logging
from importlib.metadata import EntryPoint, entry_points

from carebound._agent import AgentDefinition, agent_name_problem

ENTRY_POINT_GROUP = "carebound.agents"
"""The entry-point group through which installed packages add agents: each entry point names an
:class:`AgentDefinition` (``my_agents = "my_pkg.agents:INTAKE_BOT"``). Every carebound process
(the CLI, the web inbox, workers, a service's Runner) then knows the agent, so a hold of a
service-defined agent is decided with ``carebound approve`` like any other."""

log = logging.getLogger("carebound.agents")

_warned: set[str] = set()
"""The installed-agent problems this process has logged."""


def _warn(message: str, *args: object) -> None:
    """Log a problem with an installed agent once per process: every Runner reads the registry,
    so a command that made two printed each warning twice."""
    text = message % args
    if text not in _warned:
        _warned.add(text)
        log.warning("%s", text)


def registry() -> dict[str, AgentDefinition]:
    """Every agent carebound ships, then every agent installed through :data:`ENTRY_POINT_GROUP`,
    by name. An installed agent cannot replace a shipped one, and two installed agents of one
    name are both left out (which one won would depend on the order of the installed
    distributions, so two processes could run different code for one run). One that fails to
    load, even by exiting, or whose name is not plain (``agent_name_problem``) is left out too,
    so it cannot stop the others. Each is logged by entry point, target and distribution (and
    error class: its message may hold anything)."""
    from carebound.agents.demo import DEMO
    from carebound.agents.packet_builder import PACKET_BUILDER
    from carebound.agents.reconciler import RECONCILER
    from carebound.agents.referral_chaser import REFERRAL_CHASER
    from carebound.agents.referral_intake import REFERRAL_INTAKE

    shipped = (DEMO, RECONCILER, REFERRAL_CHASER, PACKET_BUILDER, REFERRAL_INTAKE)
    agents = {agent.name: agent for agent in shipped}
    installed: dict[str, dict[str, AgentDefinition]] = {}  # name -> {where: agent}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = _where(point)
        try:
            agent = point.load()
        except (Exception, SystemExit) as exc:
            _warn("agent %s did not load: %s", where, type(exc).__name__)
            continue
        if not isinstance(agent, AgentDefinition):
            _warn("agent %s is %s, not an AgentDefinition", where, type(agent).__name__)
        elif (problem := agent_name_problem(agent.name)) is not None:
            _warn("agent %s is left out: %s", where, problem)
        elif agent.name in agents:
            _warn("agent %s may not replace agent %r", where, agent.name)
        else:
            installed.setdefault(agent.name, {})[where] = agent
    for name, found in installed.items():
        if len({id(agent) for agent in found.values()}) > 1:
            _warn(
                "%s all name agent %r: none of them is loaded (uninstall all but one)",
                " and ".join(found),
                name,
            )
        else:
            agents[name] = next(iter(found.values()))
    return agents


def _where(point: EntryPoint) -> str:
    """An entry point as a warning names it: ``'fax_bot' (svc_agents:FAX_BOT, from svc-agents)``."""
    distribution = point.dist.name if point.dist is not None else "an unknown distribution"
    return f"entry point {point.name!r} ({point.value}, from {distribution})"


__all__ = ["ENTRY_POINT_GROUP", "registry"]
