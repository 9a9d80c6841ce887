"""Policy packs: one YAML file per organisation holding grants, budgets, hold rules and the
reviewer directory. Loaded and validated with pydantic; a bad pack names the file, the path
inside it and the problem."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from carebound._errors import CareboundError, format_validation_error
from carebound._limits import BoundedDuration, InputLimitError, load_document
from carebound._principal import InvalidIdentifierError, normalize_reviewer_id
from carebound.guardrails._grants import Grant
from carebound.guardrails._policy import HoldRule


class PolicyPackError(CareboundError):
    """A policy pack could not be found, parsed or validated."""


class Reviewer(BaseModel):
    """A person who may decide holds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Reviewer id used on the command line and in the audit trail.")
    name: str = Field(description="Display name.")
    roles: list[str] = Field(description="Roles the reviewer holds, e.g. 'intake_coordinator'.")

    @field_validator("id", mode="before")
    @classmethod
    def _normal_id(cls, value: object) -> object:
        # Stored and compared in one normal form: 'Casey' and 'casey ' are one reviewer.
        if not isinstance(value, str):
            return value
        try:
            return normalize_reviewer_id(value)
        except InvalidIdentifierError as exc:
            raise ValueError(exc.message) from None


class Budgets(BaseModel):
    """Limits on one run; exhausting one ends the run as ``budget_exhausted``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: int = Field(default=200, gt=0, description="Graph steps (planner turns + calls).")
    tool_calls: int = Field(default=50, gt=0, description="Tool calls proposed to the gate.")
    elapsed: BoundedDuration = Field(
        default=timedelta(days=30), description="Run-clock time from start (ISO 8601, e.g. P30D)."
    )


class AgentPolicy(BaseModel):
    """What one agent may do under this pack."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    grant: Grant = Field(default_factory=Grant, description="The agent's permission grant.")
    budgets: Budgets = Field(default_factory=Budgets, description="The agent's run budgets.")


class PolicyPack(BaseModel):
    """An organisation's policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Pack name, e.g. 'default'.")
    version: str = Field(description="Pack version, pinned into every approval request.")
    description: str = Field(default="", description="What the pack is for.")
    reviewers: list[Reviewer] = Field(default_factory=list, description="Reviewer directory.")
    agents: dict[str, AgentPolicy] = Field(
        default_factory=dict, description="Agent name -> grant and budgets."
    )
    rules: list[HoldRule] = Field(default_factory=list, description="Hold rules, in order.")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="Per-agent domain settings (document requirements, tolerances, schedules); "
        "each agent validates its own section with its own model.",
    )

    @model_validator(mode="after")
    def _unique_ids(self) -> PolicyPack:
        for label, ids in (
            ("rule", [r.id for r in self.rules]),
            ("reviewer", [r.id for r in self.reviewers]),
        ):
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"duplicate {label} id(s): {', '.join(dupes)}")
        return self

    def rule(self, rule_id: str) -> HoldRule | None:
        """The rule with id ``rule_id``, or None."""
        return next((r for r in self.rules if r.id == rule_id), None)

    def agent_policy(self, agent: str) -> AgentPolicy:
        """The grant and budgets of ``agent``; an agent the pack does not name may do nothing."""
        policy = self.agents.get(agent)
        return AgentPolicy() if policy is None else policy

    def reviewer(self, reviewer_id: str) -> Reviewer | None:
        """Look a reviewer up in the directory by any spelling of their id (normalised; an id
        holding invisible characters raises :class:`InvalidIdentifierError`)."""
        wanted = normalize_reviewer_id(reviewer_id)
        return next((r for r in self.reviewers if r.id == wanted), None)

    @property
    def fingerprint(self) -> str:
        """Short hash of the pack's content, pinned into approvals with its version."""
        dumped = self.model_dump_json().encode()
        return hashlib.sha256(dumped).hexdigest()[:12]


def _builtin_pack(name: str) -> Path | None:
    candidate = resources.files("carebound.guardrails").joinpath("packs", f"{name}.yaml")
    return Path(str(candidate)) if candidate.is_file() else None


_PARSED: dict[str, PolicyPack] = {}
"""Packs parsed so far, by the sha256 of their file's bytes: every load reads the file again
(it may have been edited) but parses and validates each distinct content once."""
_PARSED_MAX = 64


def load_policy_pack(ref: str | Path = "default") -> PolicyPack:
    """Load a pack by built-in name (``default``) or by path to a YAML file (a content seen
    before is not parsed again: the same pack object is returned)."""
    path = _builtin_pack(str(ref)) if isinstance(ref, str) and "/" not in ref else None
    if path is None:
        path = Path(ref)
    if not path.is_file():
        raise PolicyPackError(
            f"policy pack {str(ref)!r} not found",
            hint="give a built-in pack name (default) or the path to a policy YAML file",
        )
    try:
        digest: str | None = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = None  # load_document says what is wrong
    cached = _PARSED.get(digest) if digest is not None else None
    if cached is not None:
        return cached
    pack = _parse_pack(path)
    if digest is not None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[digest] = pack
    return pack


def _parse_pack(path: Path) -> PolicyPack:
    try:
        data = load_document(path, "yaml")  # size, depth and text limits (carebound._limits)
    except InputLimitError as exc:
        raise PolicyPackError(exc.message, hint=exc.hint) from None
    if not isinstance(data, dict):
        raise PolicyPackError(
            f"{path}: a policy pack must be a YAML mapping",
            hint="start with 'name:' and 'version:'",
        )
    try:
        return PolicyPack.model_validate(data)
    except ValidationError as exc:
        raise PolicyPackError(
            f"{path}: invalid policy pack:\n{format_validation_error(exc)}",
            hint="correct the fields named above; see README 'Policy packs'",
        ) from None
