"""The gate: one judgement of a proposed call, returned as a tagged verdict.

Every call is judged here, wherever it is judged: when an agent proposes it (the graph's gate
node), again just before it runs (execution's recheck: an edit never widens the grant), and when
a reviewer edits its arguments. The checks run in one order and the first that fails decides:

1. the call budget (:class:`OverBudget`), when one is given;
2. a tool the agent has (:class:`UnknownTool`);
3. arguments its schema accepts (:class:`InvalidArgs`);
4. the agent's grant (:class:`Denied`, ``by="grant"``);
5. the hold policy, when a :class:`PolicyCheck` is given: a deny rule (:class:`Denied`,
   ``by="rule"``) or a hold rule (:class:`Held`);
6. otherwise :class:`Allowed`.

The gate only judges. Parking a hold, auditing and running the call are the engine's, so the
verdict carries what they need: the tool, the validated arguments and the facts the rules saw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from carebound.guardrails._grants import Grant, check_permission
from carebound.guardrails._policy import HoldRule, PolicyVerdict, evaluate_rules
from carebound.tools import FactValue, ToolSpec

FactsOf = Callable[[ToolSpec[Any], BaseModel], Mapping[str, FactValue]]
"""How the engine computes a call's facts (``ToolSpec.compute_facts`` with the run's context)."""


@dataclass(frozen=True, kw_only=True)
class CallBudget:
    """The run's tool-call budget: ``used`` calls judged so far out of ``limit``."""

    used: int
    limit: int


@dataclass(frozen=True, kw_only=True)
class PolicyCheck:
    """Ask the hold policy too: the pack's ``rules`` on the facts ``facts_of`` computes.

    Left out for execution's recheck: the policy judged the call when it was proposed (a held
    call that runs was approved), so only the grant is asked again."""

    rules: Sequence[HoldRule]
    facts_of: FactsOf


@dataclass(frozen=True, kw_only=True)
class OverBudget:
    """The run used up its tool-call budget: the run stops."""

    kind: Literal["over_budget"] = "over_budget"
    tool: str
    limit: int

    @property
    def reason(self) -> str:
        """Why, for the run's summary."""
        return f"tool-call budget of {self.limit} used up"


@dataclass(frozen=True, kw_only=True)
class UnknownTool:
    """The agent has no tool of that name (a model may propose anything)."""

    kind: Literal["unknown_tool"] = "unknown_tool"
    tool: str

    @property
    def reason(self) -> str:
        """Why, for the planner."""
        return f"unknown tool {self.tool!r}: the agent has no such tool"


@dataclass(frozen=True, kw_only=True)
class InvalidArgs:
    """The arguments do not validate against the tool's schema."""

    kind: Literal["invalid_args"] = "invalid_args"
    spec: ToolSpec[Any]
    problems: tuple[str, ...]
    """One line per problem (see :func:`arg_problems`)."""
    unknown_fields: tuple[str, ...]
    """Fields the schema does not have."""

    @property
    def tool(self) -> str:
        """The tool's name."""
        return self.spec.name

    @property
    def reason(self) -> str:
        """Why, for the planner."""
        return f"invalid arguments for {self.spec.name}: {'; '.join(self.problems)}"


@dataclass(frozen=True, kw_only=True)
class _Validated:
    """What every verdict past argument validation carries."""

    spec: ToolSpec[Any]
    args: BaseModel
    """The validated arguments."""
    permission: str
    """The grant's answer: the scope that covers the call, or (denied by it) its refusal."""

    @property
    def tool(self) -> str:
        """The tool's name."""
        return self.spec.name


@dataclass(frozen=True, kw_only=True)
class Denied(_Validated):
    """The grant does not cover the call, or a policy rule denies it."""

    kind: Literal["denied"] = "denied"
    by: Literal["grant", "rule"]
    reason: str
    """What was missing or exceeded (grant), or the rule's id and wording (rule)."""
    rule_id: str | None = None


@dataclass(frozen=True, kw_only=True)
class Held(_Validated):
    """A hold rule fired: a reviewer of ``policy.role`` must decide the call."""

    kind: Literal["held"] = "held"
    facts: Mapping[str, FactValue]
    policy: PolicyVerdict
    """The rule that fired, with its role, risk, deadline and timeout behaviour."""

    @property
    def reason(self) -> str:
        """Why, for the planner."""
        return f"held by policy rule {self.policy.rule_id}: {self.policy.rule_text}"


@dataclass(frozen=True, kw_only=True)
class Allowed(_Validated):
    """The call may run."""

    kind: Literal["allowed"] = "allowed"
    facts: Mapping[str, FactValue]
    """The facts the policy saw (empty when it was not asked)."""

    @property
    def reason(self) -> str:
        """Why: the grant's reason."""
        return self.permission


GateVerdict = OverBudget | UnknownTool | InvalidArgs | Denied | Held | Allowed
"""What the gate decided, tagged by ``kind``; every kind names its ``tool`` and ``reason``."""


def judge(
    tool: str,
    args: Mapping[str, Any],
    *,
    tools: Mapping[str, ToolSpec[Any]],
    grant: Grant,
    policy: PolicyCheck | None = None,
    budget: CallBudget | None = None,
) -> GateVerdict:
    """Judge one call of ``tool`` with the raw ``args`` (see the module's docstring)."""
    if budget is not None and budget.used + 1 > budget.limit:
        return OverBudget(tool=tool, limit=budget.limit)
    spec = tools.get(tool)
    if spec is None:
        return UnknownTool(tool=tool)
    try:
        validated: BaseModel = spec.validate(args)
    except ValidationError as exc:
        problems, unknown = arg_problems(exc)
        return InvalidArgs(spec=spec, problems=problems, unknown_fields=unknown)
    permission = check_permission(grant, spec, validated)
    if not permission.allowed:
        return Denied(
            spec=spec,
            args=validated,
            by="grant",
            reason=permission.reason,
            permission=permission.reason,
        )
    if policy is None:
        return Allowed(spec=spec, args=validated, facts={}, permission=permission.reason)
    facts = dict(policy.facts_of(spec, validated))
    verdict = evaluate_rules(list(policy.rules), spec.name, facts)
    if verdict.decision == "deny":
        reason = f"policy rule {verdict.rule_id}: {verdict.rule_text}"
        return Denied(
            spec=spec,
            args=validated,
            by="rule",
            reason=reason,
            permission=permission.reason,
            rule_id=verdict.rule_id,
        )
    if verdict.decision == "hold":
        return Held(
            spec=spec, args=validated, facts=facts, policy=verdict, permission=permission.reason
        )
    return Allowed(spec=spec, args=validated, facts=facts, permission=permission.reason)


def arg_problems(exc: ValidationError) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Tool arguments that did not validate, one line per problem (``path: message``, or
    ``unknown field 'x'``), and the unknown fields by themselves. The one formatter of a
    call's argument errors: for the planner, for reviewers' edits and for the audit trail."""
    problems: list[str] = []
    unknown: list[str] = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            unknown.append(where)
            problems.append(f"unknown field {where!r}")
        else:
            problems.append(f"{where}: {err['msg']}")
    return tuple(problems), tuple(unknown)
