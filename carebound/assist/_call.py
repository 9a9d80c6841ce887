"""The one audited way to ask a model something: :func:`call`.

``call`` builds the prompt from a :class:`PromptTemplate` (id and hash recorded), keeps only the
data the task may see (``MINIMUM``), passes it as delimited DATA, asks the task's model for
structured output (a pydantic model) under a time-out, with retries and fallbacks, and records
one :class:`ModelCall` per call through the caller's context, plus a GenAI span (OpenTelemetry
``gen_ai.*`` attributes) when tracing is on. A reply that is not the requested structure, or
that also proposes tool calls, is refused (outcome ``invalid``); an error or a time-out leaves
the caller on its rules. No PHI reaches the record or the span: names, ids, counts and outcomes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field

from carebound.assist._config import ModelConfig, Task
from carebound.assist._minimum import MINIMUM
from carebound.assist._prompt import PromptTemplate

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel
    from langchain_core.runnables import Runnable

OutputT = TypeVar("OutputT", bound=BaseModel)

Outcome = Literal["ok", "invalid", "timeout", "error"]
"""How a model call ended: a valid structured answer, a refused one (not the structure asked
for, or with tool calls), no answer in time, or an error (after retries and fallbacks)."""

Path = Literal["model", "rules", "both"]
"""Whose answer the caller went with: the model's, the rules' (no model, a failed call, or an
answer overruled), or both (they agreed)."""


class ModelCall(BaseModel):
    """The audit record of one model call. No PHI: names, ids, hashes, counts and outcomes."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    task: Task
    """What the model was asked to do."""
    model: str
    """The model's name (``model_name``/``model`` attribute, else its langchain type)."""
    model_version: str | None = None
    """The version the provider reports answering (``response_metadata.model_name``)."""
    template_id: str
    """The prompt template's id."""
    template_hash: str
    """The prompt template's hash (changes whenever its wording does)."""
    input_tokens: int | None = None
    """Tokens in, from the reply's ``usage_metadata`` (None: not reported)."""
    output_tokens: int | None = None
    """Tokens out, from the reply's ``usage_metadata``."""
    latency_ms: int = Field(ge=0)
    """Wall time of the call, retries and fallbacks included."""
    outcome: Outcome
    """How the call ended."""
    path: Path
    """Whose answer won (the caller's verdict when it cross-checked)."""
    problem: str | None = None
    """Why the outcome is not ``ok``: ``tool_calls``, ``not_structured``, ``timeout`` or the
    error's class name (never its message: it may quote the data)."""
    verdict: str | None = None
    """What the caller's cross-check found when it overruled or trimmed a valid answer: problem
    codes or counts (``numbers,patient_data``; ``kept 3 of 5 sentences: uncited``), never the
    answer's content."""
    dropped_fields: int = 0
    """Data fields the task may not see, dropped before the call."""
    masked: int = 0
    """Identifiers masked inside the data the task kept."""

    def detail(self) -> dict[str, str | int | float | bool | None]:
        """The record as an audit event's detail."""
        return {k: v for k, v in self.model_dump(mode="json").items()}


class AssistContext(Protocol):
    """What :func:`call` needs from its caller (an agent's context satisfies it)."""

    @property
    def models(self) -> ModelConfig | None:
        """The models per task (None or empty: rules only)."""
        ...

    @property
    def record_model_call(self) -> Callable[[ModelCall], None]:
        """Records a call's audit event (the engine appends it to the run's audit trail)."""
        ...


@dataclass(frozen=True)
class Assisted(Generic[OutputT]):
    """What a model said (None when it said nothing usable), and the call's record (None when
    no model does the task: nothing was called and nothing recorded)."""

    output: OutputT | None
    record: ModelCall | None


def model_name(model: BaseChatModel) -> str:
    """A model's name for the audit: its ``model_name`` or ``model``, else its langchain type."""
    for attr in ("model_name", "model", "model_id"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value[:120]
    return str(getattr(model, "_llm_type", type(model).__name__))[:120]


def _chain(
    config: ModelConfig, model: BaseChatModel, output: type[BaseModel]
) -> Runnable[Any, Any]:
    def one(m: BaseChatModel) -> Runnable[Any, Any]:
        structured = m.with_structured_output(output, include_raw=True)
        if config.retries:
            return structured.with_retry(stop_after_attempt=config.retries + 1)
        return structured

    primary = one(model)
    others = [one(m) for m in config.fallbacks if m is not model]
    return primary.with_fallbacks(others) if others else primary


def _invoke_with_timeout(
    chain: Runnable[Any, Any], messages: list[Any], timeout_s: float
) -> tuple[str, Any]:
    """("ok", reply) | ("error", exception) | ("timeout", None). The call runs on a daemon
    thread, so a model that never answers cannot hold the run (nor the process at exit)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["reply"] = chain.invoke(messages)
        except Exception as exc:  # any provider error: the rules take over
            box["error"] = exc

    worker = threading.Thread(target=run, name="carebound-model-call", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("reply")


def _usage(raw: Any) -> tuple[int | None, int | None, str | None]:
    usage = getattr(raw, "usage_metadata", None) or {}
    meta = getattr(raw, "response_metadata", None) or {}
    version = meta.get("model_name") or meta.get("model")
    return (
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        str(version)[:120] if version else None,
    )


def _judge_reply(reply: Any, output: type[OutputT]) -> tuple[OutputT | None, str | None]:
    """The structured answer, or why it is refused."""
    if not isinstance(reply, Mapping):
        return None, "not_structured"
    raw = reply.get("raw")
    calls = getattr(raw, "tool_calls", None) or []
    if any(call.get("name") != output.__name__ for call in calls) or len(calls) > 1:
        return None, "tool_calls"
    parsed = reply.get("parsed")
    if reply.get("parsing_error") is not None or not isinstance(parsed, output):
        return None, "not_structured"
    return parsed, None


def call(
    ctx: AssistContext,
    template: PromptTemplate,
    data: Mapping[str, str],
    output: type[OutputT],
    *,
    judge: Callable[[OutputT], Path | tuple[Path, str]] | None = None,
) -> Assisted[OutputT]:
    """Ask the model of ``template.task`` for an ``output`` about ``data``, audited.

    ``judge`` is the caller's cross-check of a valid answer: it says whose answer wins
    (``model``, ``rules`` or ``both``; without one, a valid answer wins as ``model``), and
    may add why, ``(path, verdict)``: codes or counts, no content (``ModelCall.verdict``). Every
    call that reaches a model is recorded through ``ctx.record_model_call``; with no model for
    the task nothing is called, nothing recorded, and the caller stays on its rules.
    """
    config = ctx.models
    model = config.model_for(template.task) if config is not None else None
    if config is None or model is None:
        return Assisted(output=None, record=None)
    kept = MINIMUM[template.task](data)
    name = model_name(model)
    tracer = trace.get_tracer("carebound")
    with tracer.start_as_current_span(
        f"chat {name}",
        kind=trace.SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": name,
            "carebound.assist.task": template.task,
            "carebound.assist.template_id": template.id,
            "carebound.assist.template_hash": template.hash,
        },
    ) as span:
        started = time.monotonic()
        status, reply = _invoke_with_timeout(
            _chain(config, model, output), template.messages(kept.data), config.timeout_s
        )
        latency_ms = int((time.monotonic() - started) * 1000)
        answer: OutputT | None = None
        problem: str | None = None
        tokens_in = tokens_out = None
        version = None
        if status == "ok":
            tokens_in, tokens_out, version = _usage(
                reply.get("raw") if isinstance(reply, Mapping) else None
            )
            answer, problem = _judge_reply(reply, output)
            outcome: Outcome = "ok" if answer is not None else "invalid"
        elif status == "timeout":
            outcome, problem = "timeout", "timeout"
        else:
            outcome, problem = "error", type(reply).__name__[:80]
        path: Path = "rules"
        verdict: str | None = None
        if answer is not None:
            judged = judge(answer) if judge is not None else "model"
            path, verdict = judged if isinstance(judged, tuple) else (judged, None)
        record = ModelCall(
            task=template.task, model=name, model_version=version,
            template_id=template.id, template_hash=template.hash,
            input_tokens=tokens_in, output_tokens=tokens_out, latency_ms=latency_ms,
            outcome=outcome, path=path, problem=problem, verdict=verdict,
            dropped_fields=kept.dropped_fields, masked=kept.masked,
        )  # fmt: skip
        _annotate(span, record)
    ctx.record_model_call(record)
    return Assisted(output=answer, record=record)


def _annotate(span: trace.Span, record: ModelCall) -> None:
    if record.model_version:
        span.set_attribute("gen_ai.response.model", record.model_version)
    if record.input_tokens is not None:
        span.set_attribute("gen_ai.usage.input_tokens", record.input_tokens)
    if record.output_tokens is not None:
        span.set_attribute("gen_ai.usage.output_tokens", record.output_tokens)
    span.set_attribute("carebound.assist.outcome", record.outcome)
    span.set_attribute("carebound.assist.path", record.path)
    if record.outcome != "ok":
        span.set_attribute("error.type", record.problem or record.outcome)
        span.set_status(trace.StatusCode.ERROR, record.problem or record.outcome)
