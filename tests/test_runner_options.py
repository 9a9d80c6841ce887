"""``Runner(agents=...)`` adds to the shipped and installed agents (it used to replace them),
and ``Runner(model=...)`` takes a langchain-core chat model and nothing else."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from carebound import Runner
from carebound.agents import registry
from carebound.agents.demo import DEMO
from carebound.testing import FakeChatModel, finish

ECHO = dataclasses.replace(DEMO, name="echo", description="The demo agent under another name.")


def test_given_agents_add_to_the_shipped_ones(
    make_runner: Callable[..., Runner], demo_case: Any, demo_world: Any
) -> None:
    runner = make_runner(agents={"echo": ECHO})
    assert set(runner.agent_names) == {*registry(), "echo"}
    assert runner.agent("echo") is ECHO
    assert runner.agent("reconciler").name == "reconciler"
    view = runner.start("demo", demo_case, requester="sam", world=demo_world)
    assert view.status == "paused" and view.record.agent == "demo"
    # the given agent runs too (the default pack grants it nothing: its first read is denied)
    echo = runner.start("echo", demo_case, requester="sam", world=demo_world)
    assert echo.record.agent == "echo" and echo.results[0].status == "denied"


def test_a_given_agent_takes_a_shipped_ones_place_in_that_runner_only(
    make_runner: Callable[..., Runner],
) -> None:
    quiet = dataclasses.replace(DEMO, version="test-double")
    runner = make_runner(agents={"demo": quiet})
    assert runner.agent("demo") is quiet
    assert make_runner().agent("demo") is DEMO
    assert set(runner.agent_names) == set(registry())


@pytest.mark.parametrize("model", ["gpt-4o", object(), {"model": "x"}])
def test_a_model_that_is_not_a_chat_model_is_refused(
    make_runner: Callable[..., Runner], model: object
) -> None:
    with pytest.raises(TypeError, match="model must be a langchain-core BaseChatModel"):
        make_runner(model=model)


def test_a_chat_model_is_accepted(make_runner: Callable[..., Runner]) -> None:
    model = FakeChatModel(replies=[finish("done")])
    assert make_runner(model=model)._core.services.model is model


@pytest.mark.parametrize("given", [{"echo": 42}, {"echo": "carebound.agents.demo:DEMO"}])
def test_a_given_agent_that_is_not_an_agent_definition_is_refused(
    make_runner: Callable[..., Runner], given: dict[str, Any]
) -> None:
    # It used to be accepted, and the run's start then failed with an AttributeError.
    with pytest.raises(TypeError, match=r"agents\['echo'\] must be a carebound AgentDefinition"):
        make_runner(agents=given)


def test_a_given_agent_under_another_name_than_its_own_is_refused(
    make_runner: Callable[..., Runner],
) -> None:
    # It used to start a run recorded under the definition's name ('demo'), so the run's holds
    # were then decided with the shipped agent of that name, not the one given.
    with pytest.raises(ValueError, match=r"agents\['alias'\] is the agent named 'demo'"):
        make_runner(agents={"alias": DEMO})


def test_given_agents_must_be_a_mapping(make_runner: Callable[..., Runner]) -> None:
    with pytest.raises(TypeError, match=r"agents must be a mapping of name to AgentDefinition"):
        make_runner(agents=[ECHO])


@pytest.mark.parametrize("client", ["redis://127.0.0.1:6379/0", b"redis://x", 42])
def test_a_client_that_is_not_a_redis_client_is_refused(client: object) -> None:
    # A URL used to fail with "'str' object has no attribute 'get_connection_kwargs'".
    with pytest.raises(TypeError, match=r"client must be a redis client \(redis\.Redis"):
        Runner(client)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"drive": "bogus"}, r"drive must be 'inline' or 'queue', not 'bogus'"),
        ({"drive": "Queue"}, r"drive must be 'inline' or 'queue', not 'Queue'"),
        ({"lease_ttl_ms": 0}, r"lease_ttl_ms must be a positive number of milliseconds, not 0"),
        ({"lease_ttl_ms": -5}, r"lease_ttl_ms must be a positive number of milliseconds, not -5"),
    ],
)
def test_a_drive_mode_or_lease_that_cannot_be_used_is_refused_when_the_runner_is_made(
    make_runner: Callable[..., Runner], options: dict[str, Any], message: str
) -> None:
    # drive='bogus' used to drive inline, silently ('Queue' too); a lease of 0 failed at the
    # first start.
    with pytest.raises(ValueError, match=message):
        make_runner(**options)


@pytest.mark.parametrize("name", [42, "", "echo\u200b", " echo"])
def test_a_given_agent_without_a_plain_name_is_refused(
    make_runner: Callable[..., Runner], name: Any
) -> None:
    # A name of 42 used to be accepted, and Runner.agent_names then failed (sorted).
    with pytest.raises(ValueError, match=r"agent name .* must be"):
        make_runner(agents={name: dataclasses.replace(DEMO, name=name)})
