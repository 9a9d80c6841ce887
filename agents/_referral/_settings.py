"""The referral agents' settings in the policy pack, and the pack rule a packet check cites.

Each agent reads its own section of the pack's ``settings`` (``referral_chaser``,
``packet_builder``, ``referral_intake``), validated into a typed model; a bad section is a
``ReferralSettingsError`` that names the field.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from carebound._errors import CareboundError
from carebound.domain.documents import (
    DEFAULT_REQUIREMENTS,
    DocumentRequirement,
)
from carebound.guardrails import HoldRule, PolicyPack, format_validation_error
from carebound.tools.connectors import Channel

# --- settings --------------------------------------------------------------------------------


class ReferralSettingsError(CareboundError):
    """A referral agent's section of the policy pack's ``settings`` is invalid."""


class CitedRequirement(DocumentRequirement):
    """A document requirement with the id and wording a decision packet cites."""

    id: str = Field(min_length=1)
    """Stable id cited in packets, e.g. ``REQ-NOTE``."""
    text: str = Field(min_length=1)
    """The requirement in words, shown to reviewers."""


def _cited_defaults() -> list[CitedRequirement]:
    ids = {"coverage": "REQ-COV", "11506-3": "REQ-NOTE", "prior-auth": "REQ-PA"}
    return [
        CitedRequirement(
            **r.model_dump(), id=ids.get(r.code, f"REQ-{r.code}"), text=f"{r.display} is required."
        )
        for r in DEFAULT_REQUIREMENTS
    ]


def _default_channels() -> list[Channel]:
    return ["fax", "portal", "email", "phone"]


class OutreachSchedule(BaseModel):
    """How the referring office is chased: attempts spread over a window of business days."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    attempts: int = Field(default=3, ge=1, le=10)
    """How many requests go out before a person takes over."""
    window_business_days: int = Field(default=5, ge=1, le=60)
    """Business days (Monday-Friday) from the first attempt to the hand-over. Attempt k (from
    0) goes out floor(k * window / attempts) business days after the first."""
    channels: list[Channel] = Field(default_factory=_default_channels, min_length=1)
    """Channels to reach the office on, in order of preference."""


class ChaseSettings(BaseModel):
    """``settings.referral_chaser`` of a policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    requirements: list[CitedRequirement] = Field(default_factory=_cited_defaults)
    """What every referral must carry (also what the packet builder checks)."""
    outreach: OutreachSchedule = Field(default_factory=OutreachSchedule)
    """The outreach schedule."""
    escalate_to: str = Field(default="Intake coordinators", min_length=1)
    """Owner (display) of the EHR Task that hands an unanswered request to people."""


class Criterion(BaseModel):
    """One acceptance check of the decision packet, with the id and wording it cites."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    id: str = Field(min_length=1)
    """Stable id cited in packets, e.g. ``ACC-ORDER``."""
    check: Literal["order_active", "parties_named", "records_agree", "payer_verified"]
    """What the code checks: ``order_active`` (ServiceRequest.status is active),
    ``parties_named`` (the referral names its requester and the service asked for),
    ``records_agree`` (no high-risk mismatch between records is left open),
    ``payer_verified`` (the payer confirms the member's coverage in force; not verified, neither
    passed nor failed, when no payer is connected)."""
    text: str = Field(min_length=1)
    """The criterion in words, shown to reviewers."""


def _default_criteria() -> list[Criterion]:
    return [
        Criterion(id="ACC-ORDER", check="order_active", text="The order is active."),
        Criterion(id="ACC-PARTIES", check="parties_named", text="Requester and service named."),
        Criterion(id="ACC-RECORDS", check="records_agree", text="No high-risk mismatch open."),
    ]


class PacketSettings(BaseModel):
    """``settings.packet_builder`` of a policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    criteria: list[Criterion] = Field(default_factory=_default_criteria)
    """Acceptance checks besides the document requirements (which come from
    ``settings.referral_chaser.requirements``)."""


class IntakeSettings(BaseModel):
    """``settings.referral_intake`` of a policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    scheduling_owner: str = Field(default="Scheduling", min_length=1)
    """Owner (display) of the EHR Task that routes an accepted referral to scheduling."""


M = TypeVar("M", bound=BaseModel)


_read: dict[tuple[int, str], tuple[PolicyPack, BaseModel]] = {}
"""Sections read lately, by pack object (kept, so its id is not reused while here) and name: a
planner reads its settings on every turn, and a pack (a frozen model) serves many runs."""


def _section(pack: PolicyPack, name: str, model: type[M]) -> M:
    seen = _read.get((id(pack), name))
    if seen is not None and seen[0] is pack and isinstance(seen[1], model):
        return seen[1]
    raw = pack.settings.get(name) or {}
    try:
        section = model.model_validate(raw)
    except ValidationError as exc:
        raise ReferralSettingsError(
            f"policy pack {pack.name!r}: settings.{name} is invalid:\n"
            f"{format_validation_error(exc)}",
            hint=f"correct settings.{name} in the pack (see guardrails/packs/default.yaml)",
        ) from None
    if len(_read) >= 64:
        _read.clear()
    _read[(id(pack), name)] = (pack, section)
    return section


def chase_settings(pack: PolicyPack) -> ChaseSettings:
    """``settings.referral_chaser`` (defaults when absent).

    Raises:
        ReferralSettingsError: the section does not validate.
    """
    return _section(pack, "referral_chaser", ChaseSettings)


def packet_settings(pack: PolicyPack) -> PacketSettings:
    """``settings.packet_builder`` (defaults when absent)."""
    return _section(pack, "packet_builder", PacketSettings)


def intake_settings(pack: PolicyPack) -> IntakeSettings:
    """``settings.referral_intake`` (defaults when absent)."""
    return _section(pack, "referral_intake", IntakeSettings)


def rule_for_fact(pack: PolicyPack, tool: str, scope: str, fact: str) -> HoldRule | None:
    """The first pack rule about ``fact`` that applies to ``tool`` (by name or scope): the rule
    a packet check on that fact cites."""
    for rule in pack.rules:
        when = rule.when
        if fact not in when.facts:
            continue
        if when.tool is not None:
            names = [when.tool] if isinstance(when.tool, str) else when.tool
            if tool not in names:
                continue
        if when.scope is not None and not fnmatchcase(scope, when.scope):
            continue
        return rule
    return None
