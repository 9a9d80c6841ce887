"""Helpers for your own tests of carebound agents: a deterministic fake chat model.

No network, no API key, the same replies every time::

    from carebound import Approve, Runner
    from carebound.testing import FakeChatModel, finish, tool_calls

    model = FakeChatModel(
        replies=[
            tool_calls(("read_referral", {})),
            tool_calls(("send_document_request", {"to": "555-010-2000",
                                                   "document_code": "11506-3"})),
            finish("progress note requested"),
        ]
    )
    runner = Runner(redis_client, prefix="my-tests", model=model)
    view = runner.start("demo", case, requester="sam")  # the fax is held for a coordinator
    request = view.pending.request
    runner.decide(request.approval_id, Approve(reviewer="casey", role="intake_coordinator",
                                               args_hash=request.args_hash))

Which scripted reply comes next is read from the conversation the planner sends (how many tool
results it holds), not from a counter in the model, so a run resumed in another process, or a
planning step LangGraph re-runs after a crash, gets the same reply again.

``structured(Schema, {...})`` is a reply to ``with_structured_output(Schema)`` (what
``carebound.assist.call`` asks for), e.g.
``FakeChatModel(respond=lambda messages: structured(DocumentOpinion, {...}))``.

``FaultProxy`` sits between carebound's connectors and a FHIR server and injects seeded faults
(drops, delays, 500, 503, 429 with Retry-After, a reset half-way through a reply), to test that
your setup rides out a failing system.
"""

from carebound.testing._fake_model import FakeChatModel, finish, structured, tool_calls
from carebound.testing._fault_proxy import Fault, FaultProxy, FaultSchedule, ProxiedRequest

__all__ = [
    "FakeChatModel",
    "Fault",
    "FaultProxy",
    "FaultSchedule",
    "ProxiedRequest",
    "finish",
    "structured",
    "tool_calls",
]
