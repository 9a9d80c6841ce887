"""Work a ``referral_intake`` start does once, not again (issue 17: start -> park CPU).

Each test counts one piece of work over a real start (real Redis, the scenario's case and
simulated world) and pins the count; a count may go down, never up.
"""

from __future__ import annotations

from typing import Any

import pytest

from carebound import Runner
from carebound.tools import ToolSpec
from tests.intake_scenario import intake_case_and_world


def test_an_executed_call_makes_its_idempotency_key_once(
    make_runner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The executor makes a call's key once, for the call's own context, which its ledger
    reserve and audit detail then reuse; the gate makes it once more only for a tool with
    facts of its own, computed on a context (it made one for every call: 18 keys per start
    where 13 do; the executor made a third: 27)."""
    made: list[str] = []
    idempotency_key = ToolSpec.idempotency_key

    def counting(self: ToolSpec[Any], run_id: str, args: Any) -> str:
        made.append(self.name)
        return idempotency_key(self, run_id, args)

    monkeypatch.setattr(ToolSpec, "idempotency_key", counting)
    runner: Runner = make_runner()
    case, world = intake_case_and_world()
    view = runner.start("referral_intake", case, requester="sam", world=world)
    assert view.status == "waiting"
    executed = [e for e in runner.audit(view.run_id) if e.action in ("read", "effect")]
    assert executed, "the start made no call"
    tools = runner._core.agent("referral_intake").tools
    with_facts = [name for name in made if tools[name].facts is not None]
    assert len(made) == len(executed) + len(with_facts) // 2  # 9 calls, 13 keys (18, 27 before)
