"""carebound.agents: one package per agent (``demo``, ``reconciler``, ``referral_chaser``,
``packet_builder``, ``referral_intake``), each holding its private phases; ``_referral`` is what
the referral agents share (settings, the outreach schedule). Agents import tools, tools import
the pure rules in ``carebound.domain``; nothing below imports an agent."""

import logging
from dataclasses import dataclass
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

SHIPPED = "carebound"
"""Where :class:`AgentRegistry` says a shipped agent comes from."""


@dataclass(frozen=True)
class AgentRegistry:
    """Every agent this process can run and decide, where each came from, and the installed
    ones left out (see :func:`load_registry`)."""

    agents: dict[str, AgentDefinition]
    """By name: the shipped ones, then the installed ones."""
    sources: dict[str, str]
    """By name: :data:`SHIPPED`, or the entry point, its target and distribution."""
    left_out: tuple[str, ...]
    """Why each installed agent that is not in ``agents`` was left out (one line each)."""


def registry() -> dict[str, AgentDefinition]:
    """Every agent carebound ships, then every agent installed through :data:`ENTRY_POINT_GROUP`,
    by name (:func:`load_registry`'s agents)."""
    return load_registry().agents


def load_registry() -> AgentRegistry:
    """The shipped agents, then those installed through :data:`ENTRY_POINT_GROUP`. An installed
    agent cannot replace a shipped one, and two installed agents of one name are both left out
    (which one won would depend on the order of the installed distributions, so two processes
    could run different code for one run). One that fails to load, even by exiting, or whose
    name is not plain (``agent_name_problem``) is left out too, so it cannot stop the others.
    Each is logged (once a process) by entry point, target and distribution (and error class:
    its message may hold anything)."""
    from carebound.agents.demo import DEMO
    from carebound.agents.packet_builder import PACKET_BUILDER
    from carebound.agents.reconciler import RECONCILER
    from carebound.agents.referral_chaser import REFERRAL_CHASER
    from carebound.agents.referral_intake import REFERRAL_INTAKE

    shipped = (DEMO, RECONCILER, REFERRAL_CHASER, PACKET_BUILDER, REFERRAL_INTAKE)
    agents = {agent.name: agent for agent in shipped}
    sources = dict.fromkeys(agents, SHIPPED)
    left_out: list[str] = []
    installed: dict[str, dict[str, AgentDefinition]] = {}  # name -> {where: agent}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        where = _where(point)
        try:
            agent = point.load()
        except (Exception, SystemExit) as exc:
            left_out.append(_warn("agent %s did not load: %s", where, type(exc).__name__))
            continue
        if not isinstance(agent, AgentDefinition):
            kind = type(agent).__name__
            left_out.append(_warn("agent %s is %s, not an AgentDefinition", where, kind))
        elif (problem := agent_name_problem(agent.name)) is not None:
            left_out.append(_warn("agent %s is left out: %s", where, problem))
        elif agent.name in agents:
            left_out.append(_warn("agent %s may not replace agent %r", where, agent.name))
        else:
            installed.setdefault(agent.name, {})[where] = agent
    for name, found in installed.items():
        if len({id(agent) for agent in found.values()}) > 1:
            left_out.append(
                _warn(
                    "%s all name agent %r: none of them is loaded (uninstall all but one)",
                    " and ".join(found),
                    name,
                )
            )
        else:
            agents[name] = next(iter(found.values()))
            sources[name] = next(iter(found))
    return AgentRegistry(agents, sources, tuple(left_out))


def _warn(message: str, *args: object) -> str:
    """Log a problem with an installed agent once per process (every Runner reads the registry,
    so a command that made two printed each warning twice); the problem's text."""
    text = message % args
    if text not in _warned:
        _warned.add(text)
        log.warning("%s", text)
    return text


def _where(point: EntryPoint) -> str:
    """An entry point as a warning names it: ``'fax_bot' (svc_agents:FAX_BOT, from svc-agents)``."""
    distribution = point.dist.name if point.dist is not None else "an unknown distribution"
    return f"entry point {point.name!r} ({point.value}, from {distribution})"


__all__ = ["ENTRY_POINT_GROUP", "SHIPPED", "AgentRegistry", "load_registry", "registry"]
