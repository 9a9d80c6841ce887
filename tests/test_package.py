"""The public surface is pinned, and every sub-package is shipped by the distribution."""

from __future__ import annotations

import tomllib

import carebound
from tests.conftest import PROJECT

PUBLIC = {
    "AgentContext",
    "AgentDefinition",
    "AlreadyDecidedError",
    "ApprovalRequest",
    "ApprovalView",
    "Approve",
    "AsyncRunner",
    "CallResult",
    "CareboundError",
    "Clock",
    "DecideResult",
    "Decision",
    "DecisionPacket",
    "DecisionRefusedError",
    "Edit",
    "EffectClass",
    "Escalate",
    "FinishSpec",
    "Grant",
    "LeaseLostError",
    "NotFoundError",
    "Plan",
    "PlannerView",
    "PolicyPack",
    "ProposedCall",
    "Reject",
    "RunEvent",
    "RecoverReport",
    "RunReport",
    "RunStateError",
    "RunView",
    "Runner",
    "StoreUnavailableError",
    "StoreWriteRefusedError",
    "SweepReport",
    "SystemClock",
    "ToolContext",
    "ToolSpec",
    "VirtualClock",
    "WaitSpec",
    "load_policy_pack",
    "run_report",
    "tool",
}

MAPPED = {
    "carebound": "carebound",
    "carebound.agents": "agents",
    "carebound.tools": "tools",
    "carebound.guardrails": "guardrails",
}


def test_public_api_is_pinned() -> None:
    assert set(carebound.__all__) == PUBLIC
    for name in carebound.__all__:
        assert getattr(carebound, name) is not None


def test_every_package_is_listed_in_pyproject() -> None:
    config = tomllib.loads((PROJECT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    found = set()
    for package, folder in MAPPED.items():
        root = PROJECT / folder
        for init in root.rglob("__init__.py"):
            rel = init.parent.relative_to(root)
            if (
                rel.parts
                and rel.parts[0] in {"agents", "tools", "guardrails"}
                and package == ("carebound")
            ):
                continue
            found.add(".".join([package, *rel.parts]))
    assert found == listed, f"add to / remove from pyproject packages: {found ^ listed}"
