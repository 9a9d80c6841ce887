"""The gate makes a call's ToolContext (its idempotency key hashed, the run's connectors
opened) only for a tool with facts of its own: the policy judges the others on their effect
class and scope alone. The facts themselves are unchanged."""

from __future__ import annotations

from collections import Counter
from typing import Any

import redis
from pydantic import BaseModel

from carebound import Runner, VirtualClock
from carebound.tools import ToolContext, ToolSpec
from carebound.tools.referral import list_documents_on_file, send_request_attempt
from tests.intake_scenario import intake_case_and_world


def test_a_start_makes_a_context_per_call_run_and_per_gate_of_a_tool_with_facts(
    redis_client: redis.Redis, key_prefix: str
) -> None:
    runner = Runner(redis_client, prefix=key_prefix, clock=VirtualClock())
    services = runner._core.services  # private: counting the contexts the engine makes
    made: Counter[str] = Counter()
    make = services.tool_context

    def counted(run_id: str, agent: str, spec: ToolSpec[Any], args: BaseModel) -> ToolContext:
        made[spec.name] += 1
        return make(run_id, agent, spec, args)

    object.__setattr__(services, "tool_context", counted)  # a frozen dataclass
    case, world = intake_case_and_world()
    view = runner.start("referral_intake", case, requester="sam", world=world)
    assert view.status == "waiting"
    ran = Counter(r.tool for r in view.results if r.status == "executed")
    tools = runner._core.agent("referral_intake").tools
    gated_with_facts = Counter({t: n for t, n in ran.items() if tools[t].facts is not None})
    assert made == ran + gated_with_facts
    assert list_documents_on_file.facts is None and made[list_documents_on_file.name] == 1
    assert send_request_attempt.facts is not None and made[send_request_attempt.name] == 2


def test_facts_need_a_context_only_for_a_tool_with_its_own() -> None:
    asked = []

    def context() -> ToolContext:
        asked.append(1)
        raise AssertionError("not needed")

    args = list_documents_on_file.args_schema()
    facts = list_documents_on_file.compute_facts(context, args)
    assert facts == {"effect": "read", "scope": list_documents_on_file.scope}
    assert asked == []
