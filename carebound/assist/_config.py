"""Which chat model does which task: by instance, or by name through langchain's
``init_chat_model``, with a time-out, retries and a fallback order.

Tasks are ``classify``, ``extract``, ``draft`` and ``summarise``. Each task uses its own model
when one is given, else the default model; with neither, the task runs on rules only. Names are
``provider:model`` (``openai:gpt-4o-mini``, ``ollama:llama3.1``) and need the ``models`` extra
(``pip install 'carebound[models]'``) plus the provider's langchain package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from carebound.assist._errors import ModelConfigError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

Task = Literal["classify", "extract", "draft", "summarise"]
"""What a model is asked to do: classify a document, extract a referral, draft outreach text,
summarise a packet."""

TASKS: tuple[Task, ...] = get_args(Task)
"""Every task, in order."""

#: Environment variables: the default model, and one per task (``CAREBOUND_MODEL_CLASSIFY``...).
ENV_MODEL = "CAREBOUND_MODEL"
#: Comma-separated fallback models, tried in order after the task's model fails.
ENV_FALLBACKS = "CAREBOUND_MODEL_FALLBACKS"
#: Seconds a model call may take before the rules take over.
ENV_TIMEOUT = "CAREBOUND_MODEL_TIMEOUT"

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 1


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """The chat models carebound may ask, per task. Build it with instances, or with
    :meth:`from_names` / :meth:`from_env`; an empty config means rules only."""

    default: BaseChatModel | None = None
    """The model for every task without one of its own (None: those tasks run on rules)."""
    tasks: Mapping[Task, BaseChatModel] = field(default_factory=dict)
    """A model per task, e.g. a cheap one for ``classify`` and another for ``draft``."""
    fallbacks: Sequence[BaseChatModel] = ()
    """Models tried in order when the task's model fails (an error, not a time-out)."""
    timeout_s: float = DEFAULT_TIMEOUT_S
    """Seconds one call (retries and fallbacks included) may take; then the rules take over."""
    retries: int = DEFAULT_RETRIES
    """Extra attempts of each model on an error, with exponential back-off."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.tasks) - set(TASKS))
        if unknown:
            raise ModelConfigError(
                f"unknown model task(s) {unknown}", hint=f"the tasks are {', '.join(TASKS)}"
            )
        if self.timeout_s <= 0:
            raise ModelConfigError(
                f"model timeout must be positive, got {self.timeout_s}",
                hint="give seconds, e.g. 30",
            )
        if self.retries < 0:
            raise ModelConfigError(
                f"model retries must be 0 or more, got {self.retries}", hint="e.g. 1"
            )

    def model_for(self, task: Task) -> BaseChatModel | None:
        """The model that does ``task`` (None: the task runs on rules)."""
        return self.tasks.get(task, self.default)

    @property
    def configured(self) -> bool:
        """Whether any task has a model."""
        return self.default is not None or bool(self.tasks)

    @classmethod
    def from_names(
        cls,
        default: str | None = None,
        tasks: Mapping[str, str] | None = None,
        *,
        fallbacks: Sequence[str] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        retries: int = DEFAULT_RETRIES,
    ) -> ModelConfig:
        """A config of models named ``provider:model`` (see :func:`load_model`).

        Raises:
            ModelConfigError: a name cannot be loaded, or a task is unknown.
        """
        per_task = dict(tasks or {})
        unknown = sorted(set(per_task) - set(TASKS))
        if unknown:
            raise ModelConfigError(
                f"unknown model task(s) {unknown}", hint=f"the tasks are {', '.join(TASKS)}"
            )
        return cls(
            default=load_model(default) if default else None,
            tasks={task: load_model(per_task[task]) for task in TASKS if per_task.get(task)},
            fallbacks=[load_model(name) for name in fallbacks],
            timeout_s=timeout_s,
            retries=retries,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ModelConfig:
        """The config the environment names: ``CAREBOUND_MODEL``, ``CAREBOUND_MODEL_<TASK>``,
        ``CAREBOUND_MODEL_FALLBACKS`` (comma-separated) and ``CAREBOUND_MODEL_TIMEOUT``
        (seconds). Nothing set: an empty config (rules only).

        Raises:
            ModelConfigError: a named model cannot be loaded, or the time-out is not a number.
        """
        env = os.environ if environ is None else environ
        raw_timeout = env.get(ENV_TIMEOUT, "").strip()
        try:
            timeout_s = float(raw_timeout) if raw_timeout else DEFAULT_TIMEOUT_S
        except ValueError:
            raise ModelConfigError(
                f"{ENV_TIMEOUT}={raw_timeout!r} is not a number of seconds",
                hint=f"set {ENV_TIMEOUT}=30, or unset it",
            ) from None
        fallbacks = [n.strip() for n in env.get(ENV_FALLBACKS, "").split(",") if n.strip()]
        return cls.from_names(
            env.get(ENV_MODEL, "").strip() or None,
            {t: env.get(f"{ENV_MODEL}_{t.upper()}", "").strip() for t in TASKS},
            fallbacks=fallbacks,
            timeout_s=timeout_s,
        )


def load_model(name: str) -> BaseChatModel:
    """The chat model named ``provider:model``, through ``langchain.chat_models.init_chat_model``.

    Raises:
        ModelConfigError: langchain (the ``models`` extra) or the provider's package is not
            installed, or the name does not say a known provider.
    """
    provider, sep, model = name.partition(":")
    if not sep or not provider.strip() or not model.strip():
        raise ModelConfigError(
            f"model name {name!r} does not say its provider",
            hint="write provider:model, e.g. openai:gpt-4o-mini or ollama:llama3.1",
        )
    try:
        from langchain.chat_models import init_chat_model
    except ImportError:
        raise ModelConfigError(
            f"naming a model ({name!r}) needs langchain, which is not installed",
            hint="pip install 'carebound[models]', or pass a chat model instance as model=",
        ) from None
    try:
        return init_chat_model(model.strip(), model_provider=provider.strip())
    except ImportError as exc:
        package = getattr(exc, "name", None) or "the provider's langchain package"
        raise ModelConfigError(
            f"model {name!r} needs {package}, which is not installed",
            hint=f"pip install langchain-{provider.strip().lower().replace('_', '-')}",
        ) from None
    except ValueError as exc:
        raise ModelConfigError(
            f"model {name!r} cannot be loaded: {str(exc).splitlines()[0][:200]}",
            hint="check the provider's name (openai, anthropic, ollama, ...) and the model's",
        ) from None


def resolve_models(
    model: BaseChatModel | None = None,
    models: ModelConfig | Mapping[Task, BaseChatModel] | None = None,
) -> ModelConfig:
    """One ``ModelConfig`` from a Runner's ``model=`` and ``models=`` (a config, or a model per
    task); with neither, the environment's (:meth:`ModelConfig.from_env`)."""
    if isinstance(models, ModelConfig):
        if model is not None and models.default is None:
            return ModelConfig(
                default=model, tasks=models.tasks, fallbacks=models.fallbacks,
                timeout_s=models.timeout_s, retries=models.retries,
            )  # fmt: skip
        return models
    if model is None and not models:
        return ModelConfig.from_env()
    return ModelConfig(default=model, tasks=dict(models or {}))
