"""Audited reads: how a planner or a packet builder reads the outside world.

They never touch the run's connectors: they call typed *read* tools (``effect="read"``) through
:class:`AuditedReader`, which checks the agent's grant (the tool's scope), runs the tool, and
appends a ``read`` event to the run's audit trail (tool, scope, outcome; the patient of the run),
so every read a reviewer's packet rests on is in the trail. The events are idempotent per
``(namespace, n)``: a node that LangGraph runs again after a resume records its reads once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from carebound._errors import CareboundError, ReadDeniedError
from carebound.guardrails import check_permission
from carebound.tools import EffectClass, ToolDefinitionError, ToolSpec

if TYPE_CHECKING:
    from carebound.engine.node_kit import NodeKit

ArgsT = TypeVar("ArgsT", bound=BaseModel)


class AuditedReader:
    """Runs read tools for one node invocation of one run (see the module docstring)."""

    def __init__(self, kit: NodeKit, run_id: str, namespace: str) -> None:
        self._kit = kit
        self._run_id = run_id
        self._namespace = namespace
        self._count = 0

    def __call__(self, tool: ToolSpec[ArgsT], args: ArgsT, /) -> Any:
        """The result of the read tool ``tool`` on ``args``.

        Raises:
            ReadDeniedError: the agent's grant lacks the tool's scope (recorded as denied).
            ToolDefinitionError: ``tool`` is not a read.
            CareboundError: the read failed (recorded as failed).
        """
        kit, run_id = self._kit, self._run_id
        if tool.effect is not EffectClass.READ:
            raise ToolDefinitionError(
                f"{tool.name} is not a read tool ({tool.effect.value})",
                hint="packets and planners read through effect='read' tools; propose effects",
            )
        self._count += 1
        once = f"read:{self._namespace}:{self._count}"
        detail: dict[str, str | int | float | bool | None] = {
            "tool": tool.name, "scope": tool.scope, "for": self._namespace,
        }  # fmt: skip
        grant = kit.svc.pack_for(run_id).agent_policy(kit.agent.name).grant
        permission = check_permission(grant, tool, args)
        if not permission.allowed:
            kit.audit(run_id, action="read", outcome="denied", detail=detail, once=once)
            raise ReadDeniedError(
                f"{kit.agent.name} may not read through {tool.name}: {permission.reason}",
                hint=f"grant the agent {tool.scope!r} in the policy pack",
            )
        ctx = kit.svc.tool_context(run_id, kit.agent.name, tool, args)
        try:
            result = tool.run(ctx, args)
        except CareboundError:
            kit.audit(run_id, action="read", outcome="failed", detail=detail, once=once)
            raise
        kit.audit(run_id, action="read", outcome="success", detail=detail, once=once)
        return result
