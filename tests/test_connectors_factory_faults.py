"""A connectors factory that returns something other than ``Connectors`` is this process's
misconfiguration, not the run's fault: the drive fails (retried, quarantined after repeated
failures) and the run goes on once the factory is fixed, instead of ending ``failed``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from carebound import Approve, Runner
from carebound.tools.connectors import Connectors, RunContext


def _misbuilt(wrong: object) -> Callable[[RunContext], Connectors]:
    def factory(run: RunContext, /) -> Connectors:
        return wrong  # type: ignore[return-value]

    return factory


@pytest.mark.parametrize("wrong", [None, {"ehr": "x"}])
def test_a_factory_returning_no_connectors_leaves_the_run_to_go_on_once_fixed(
    make_runner: Callable[..., Runner], demo_case: Any, demo_world: Any, wrong: object
) -> None:
    started = make_runner().start("demo", demo_case, requester="sam", world=demo_world)
    hold = started.pending.request
    decision = Approve(reviewer="casey", role="intake_coordinator", args_hash=hold.args_hash)
    misconfigured = make_runner(connectors=_misbuilt(wrong))  # another process's Runner

    result = misconfigured.decide(hold.approval_id, decision)

    # It used to end the run 'failed' (an AttributeError inside the fax tool, as if the
    # connector had a bug), for good.
    assert result.outcome == "decided"
    assert result.run.status == "running"
    assert "TypeError" in result.run.record.summary
    assert make_runner().recover_runs().recovered == [started.run_id]  # a fixed process
    run = make_runner().get(started.run_id)
    assert run.status == "waiting"  # the fax went out; the office's reply is awaited
    assert [e.status for e in run.effects] == ["done"]
