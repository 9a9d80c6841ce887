"""AI assist behind the gate: chat models that propose, rules and people that dispose.

- :class:`ModelConfig`: which langchain-core chat model does which :data:`Task` (``classify``,
  ``extract``, ``draft``, ``summarise``), by instance or by ``provider:model`` name
  (:func:`load_model`, ``CAREBOUND_MODEL`` / ``CAREBOUND_MODEL_<TASK>``), with a time-out,
  retries and a fallback order.
- :func:`call`: the one audited call: a :class:`PromptTemplate` (id and hash), the task's
  minimum-necessary data (``MINIMUM``), delimited DATA, structured output, one
  :class:`ModelCall` audit record and a GenAI span.

A model's answer is a proposal: the caller cross-checks it against its rules, and the gate and a
person decide. With no model, or a failing one, everything runs on rules.
"""

from carebound.assist._call import (
    AssistContext,
    Assisted,
    ModelCall,
    Outcome,
    Path,
    call,
    model_name,
)
from carebound.assist._config import (
    ENV_MODEL,
    TASKS,
    ModelConfig,
    Task,
    load_model,
    resolve_models,
)
from carebound.assist._errors import ModelConfigError
from carebound.assist._minimum import (
    MINIMUM,
    REDACTED,
    Minimised,
    minimum_for_classify,
    minimum_for_draft,
    minimum_for_extract,
    minimum_for_summarise,
)
from carebound.assist._prompt import DATA_RULES, PromptTemplate, data_block

__all__ = [
    "DATA_RULES",
    "ENV_MODEL",
    "MINIMUM",
    "REDACTED",
    "TASKS",
    "AssistContext",
    "Assisted",
    "Minimised",
    "ModelCall",
    "ModelConfig",
    "ModelConfigError",
    "Outcome",
    "Path",
    "PromptTemplate",
    "Task",
    "call",
    "data_block",
    "load_model",
    "minimum_for_classify",
    "minimum_for_draft",
    "minimum_for_extract",
    "minimum_for_summarise",
    "model_name",
    "resolve_models",
]
