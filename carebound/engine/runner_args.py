"""What a ``Runner`` checks of its arguments when it is made, so a wrong one fails there, with
what to give instead, rather than at the first run."""

from __future__ import annotations

from collections.abc import Mapping

from carebound._agent import AgentDefinition, agent_name_problem
from carebound.assist import ModelConfig, resolve_models


def check_models(model: object, models: object) -> ModelConfig:
    """The Runner's ``model=`` and ``models=`` as one config (``resolve_models``): ``model`` a
    langchain-core chat model; ``models`` a ``ModelConfig`` or a chat model per task
    (``{"classify": cheap, "draft": better}``); with neither, the models ``CAREBOUND_MODEL`` /
    ``CAREBOUND_MODEL_<TASK>`` name, else rules only.

    Raises:
        TypeError: a model is not a langchain-core ``BaseChatModel``.
        ModelConfigError: a model the environment names cannot be loaded.
    """
    check_model(model)
    if isinstance(models, Mapping):
        for task_model in models.values():
            check_model(task_model)
    elif models is not None and not isinstance(models, ModelConfig):
        raise TypeError(
            f"models must be a carebound.assist.ModelConfig or a mapping of task to chat model, "
            f"not {type(models).__name__}"
        )
    return resolve_models(model, models)  # type: ignore[arg-type]


def check_model(model: object) -> None:
    """Refuse a ``model`` that is not a langchain-core chat model (None: run on rules)."""
    if model is None:
        return
    from langchain_core.language_models import BaseChatModel

    if not isinstance(model, BaseChatModel):
        raise TypeError(
            f"model must be a langchain-core BaseChatModel (e.g. ChatOpenAI, ChatAnthropic, or "
            f"carebound.testing.FakeChatModel in tests), not {type(model).__name__}; "
            "leave it out to run the agents on their rules"
        )


def check_runner_args(client: object, drive: object, lease_ttl_ms: object) -> None:
    """Refuse a Runner's ``client``, ``drive`` or ``lease_ttl_ms`` that cannot be used, when the
    Runner is made rather than at its first run.

    Raises:
        TypeError: ``client`` is not a redis client (a URL, say).
        ValueError: ``drive`` is not ``inline`` or ``queue``; ``lease_ttl_ms`` is not positive.
    """
    if not callable(getattr(client, "pipeline", None)):
        raise TypeError(
            f"client must be a redis client (redis.Redis or RedisCluster), not "
            f"{type(client).__name__}: Runner(redis.Redis.from_url(url)), or Runner() for the "
            "store CAREBOUND_REDIS_URL names"
        )
    if drive not in ("inline", "queue"):
        raise ValueError(f"drive must be 'inline' or 'queue', not {drive!r}")
    if not isinstance(lease_ttl_ms, int | float) or lease_ttl_ms <= 0:
        raise ValueError(
            f"lease_ttl_ms must be a positive number of milliseconds, not {lease_ttl_ms!r}"
        )


def check_agents(agents: object) -> None:
    """Refuse a Runner's ``agents`` unless each is an :class:`AgentDefinition` given under its
    own name: a run is recorded under its definition's name, and its holds are decided by the
    agent of that name.

    Raises:
        TypeError: ``agents`` is not a mapping, or one of them is not an ``AgentDefinition``.
        ValueError: one is given under another name than its own.
    """
    if agents is None:
        return
    if not isinstance(agents, Mapping):
        raise TypeError(
            f"agents must be a mapping of name to AgentDefinition, not {type(agents).__name__}: "
            "Runner(agents={definition.name: definition})"
        )
    for name, definition in agents.items():
        if not isinstance(definition, AgentDefinition):
            raise TypeError(
                f"agents[{name!r}] must be a carebound AgentDefinition, not "
                f"{type(definition).__name__}"
            )
        problem = agent_name_problem(definition.name)
        if problem is not None:
            raise ValueError(problem)
        if definition.name != name:
            raise ValueError(
                f"agents[{name!r}] is the agent named {definition.name!r}: give it under its own "
                f"name, or dataclasses.replace(definition, name={name!r})"
            )
