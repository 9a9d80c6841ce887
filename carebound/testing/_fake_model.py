"""A deterministic langchain-core chat model that proposes scripted tool calls."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, Field

Responder = Callable[[Sequence[BaseMessage]], AIMessage]
"""A function from the conversation so far to the model's reply."""


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    """A model reply proposing ``calls``, each ``(tool name, arguments)``."""
    return AIMessage(
        content="",
        tool_calls=[
            {"name": name, "args": dict(args), "id": f"fake-{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(calls)
        ],
    )


def structured(
    schema: type[BaseModel] | str,
    args: Mapping[str, Any],
    *,
    input_tokens: int = 0,
    output_tokens: int = 0,
    model_name: str | None = None,
) -> AIMessage:
    """A model reply answering ``with_structured_output(schema)`` with ``args`` (as the
    tool call a provider's function calling returns), with token counts in ``usage_metadata``
    and the answering model's name in ``response_metadata`` when given."""
    name = schema if isinstance(schema, str) else schema.__name__
    return AIMessage(
        content="",
        tool_calls=[{"name": name, "args": dict(args), "id": "fake-0", "type": "tool_call"}],
        usage_metadata={
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "total_tokens": input_tokens + output_tokens,
        },
        response_metadata={"model_name": model_name} if model_name else {},
    )


def finish(text: str) -> AIMessage:
    """A model reply with no tool call: a carebound model planner ends the run with ``text``."""
    return AIMessage(content=text)


class FakeChatModel(BaseChatModel):
    """A chat model for tests: scripted replies, or replies computed by a function.

    Give exactly one of ``replies`` or ``respond``. With ``replies``, the reply chosen is the one
    whose earlier replies proposed as many tool calls as the conversation holds tool results:
    the first reply opens the run, the second answers the first reply's results, and so on. A
    conversation past the end of the script is an error that names the turn.

    ``bind_tools`` accepts any tools and records their names in ``bound_tools``; ``prompts``
    records every conversation the model was sent (in this process), for assertions.
    """

    replies: list[AIMessage] = Field(default_factory=list)
    """The script: model replies in order (build them with ``tool_calls`` and ``finish``)."""
    respond: Responder | None = None
    """Instead of a script: a function from the conversation to the reply."""
    bound_tools: list[str] = Field(default_factory=list)
    """Names of the tools last bound with ``bind_tools``."""
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    """Every conversation sent to the model, oldest first."""

    def model_post_init(self, context: Any, /) -> None:
        """Check that exactly one of ``replies`` and ``respond`` is given."""
        if bool(self.replies) == (self.respond is not None):
            raise ValueError("FakeChatModel needs exactly one of replies=[...] or respond=...")

    @property
    def _llm_type(self) -> str:
        return "carebound-fake"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeChatModel:
        """Record the tools' names and return this model (a fake needs no schema)."""
        self.bound_tools = [str(getattr(t, "name", t)) for t in tools]
        return self

    def reply_to(self, messages: Sequence[BaseMessage]) -> AIMessage:
        """The reply to ``messages`` (what ``invoke`` returns)."""
        if self.respond is not None:
            return self.respond(messages)
        seen = sum(isinstance(m, ToolMessage) for m in messages)
        proposed = 0
        for reply in self.replies:
            if proposed == seen:
                return reply
            proposed += len(reply.tool_calls)
        raise ValueError(
            f"FakeChatModel's script has no reply after {seen} tool result(s); "
            f"its {len(self.replies)} replies propose {proposed} call(s) in all"
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.prompts.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.reply_to(messages))])
