"""Deterministic fake chat models (langchain-core) for tests. No test reaches a real model."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult


class ToolCallingFake(GenericFakeChatModel):
    """A fake chat model whose reply is computed from the conversation by a function.

    ``bind_tools`` is accepted (and ignored) so agents can bind their tools as with a real model.
    """

    respond: Callable[[Sequence[BaseMessage]], AIMessage]
    messages: Any = iter(())

    def bind_tools(self, tools: Any, **kwargs: Any) -> ToolCallingFake:  # type: ignore[override]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])


INJECTED = re.compile(r"CALL (\w+) (\{.*?\})")


def adversary(out_of_grant: list[tuple[str, dict[str, Any]]]) -> ToolCallingFake:
    """A model that first reads the fax, then obeys every instruction injected into tool
    results ("CALL tool {json}") and also tries each out-of-grant call it was given."""

    def respond(messages: Sequence[BaseMessage]) -> AIMessage:
        tool_results = [m for m in messages if isinstance(m, ToolMessage)]
        if not tool_results:
            return _calls([("read_fax", {})])
        if len(tool_results) > 1:
            return AIMessage(content="done")
        text = json.loads(str(tool_results[0].content)).get("text", "")
        injected = [(name, json.loads(args)) for name, args in INJECTED.findall(text)]
        return _calls([*injected, *out_of_grant])

    return ToolCallingFake(respond=respond)


def _calls(calls: list[tuple[str, dict[str, Any]]]) -> AIMessage:
    return AIMessage(
        content="",
        tool_calls=[
            {"name": name, "args": args, "id": f"c{i}", "type": "tool_call"}
            for i, (name, args) in enumerate(calls)
        ],
    )


def failing_model() -> Any:
    """A carebound FakeChatModel whose provider is down: every call raises."""
    from carebound.testing import FakeChatModel

    def down(_messages: Sequence[BaseMessage]) -> AIMessage:
        raise ConnectionError("provider down")

    return FakeChatModel(respond=down)


@contextlib.contextmanager
def stuck_model() -> Iterator[Any]:
    """A carebound FakeChatModel that never answers while the block runs (released at its end,
    so no thread outlives the test): a call under a time-out ends as ``timeout``."""
    from carebound.testing import FakeChatModel

    release = threading.Event()

    def stuck(_messages: Sequence[BaseMessage]) -> AIMessage:
        release.wait(30)
        raise TimeoutError("released")

    try:
        yield FakeChatModel(respond=stuck)
    finally:
        release.set()
