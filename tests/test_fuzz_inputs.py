"""Property: no scenario, case bundle, world file or policy pack, however mutated, makes
``carebound run`` exit outside 0/1/2, print a traceback, or change another run's keys.

Kept short for CI; ``python benchmarks/fuzz_inputs.py`` runs the same property thousands of
times."""

from __future__ import annotations

from typing import Any

import redis
from hypothesis import HealthCheck, example, given, settings

from tests.fuzzing import KNOWN_CRASHERS, Mutation, mutations, run_one, tagged_state


def test_mutated_inputs_never_crash_or_touch_other_runs(
    env: str,
    make_runner: Any,
    redis_client: redis.Redis,
    demo_case: dict[str, Any],
    demo_world: Any,
) -> None:
    bystander = make_runner().start("demo", demo_case, requester="sam", world=demo_world)
    assert bystander.status == "paused"
    before = tagged_state(redis_client, env, bystander.run_id)
    assert before

    @settings(
        max_examples=12,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(mutation=mutations)
    def check(mutation: Mutation) -> None:
        outcome = run_one(
            mutation,
            client=redis_client,
            prefix=env,
            bystander=bystander.run_id,
            before=before,
        )
        assert outcome.problem is None, (mutation, outcome.problem)

    for crasher in KNOWN_CRASHERS:
        check = example(mutation=crasher)(check)
    check()
