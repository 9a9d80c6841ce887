"""What :meth:`Runner.start` and :meth:`Runner.deliver` check before they write anything: a
refused start or event leaves no key.

A start writes the world, the drive mark, the create audit event and the run record, in that
(crash-safe) order. Anything that could make a later write fail (a lone surrogate that cannot
be encoded, a case nested too deep, a run id that would break the key layout) is found here
first, so a refusal never leaves a half-started run behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from carebound._errors import echo_id
from carebound._limits import InputLimitError, check_tree, limits, text_problem
from carebound.guardrails import PolicyPack
from carebound.tools.connectors import WorldSpec

_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_REQUESTER = 256
"""Longest requester id accepted."""


def check_start_input(
    case: Mapping[str, Any],
    *,
    requester: str,
    pack: PolicyPack,
    world: object,
    run_id: str | None,
) -> str:
    """Refuse a start that could not be stored whole; return the pack's JSON (stored as is).

    Data from other systems (case, world, pack) may hold control characters (terminal output
    strips them); nothing may hold a lone surrogate or break the depth and size limits.

    Raises:
        InputLimitError: which input, where in it, and the limit or problem.
    """
    if run_id is not None and not _RUN_ID.fullmatch(run_id):
        raise InputLimitError(
            "run_id",
            "",
            f"{echo_id(run_id)} is not a run id (1-64 letters, digits, '.', '_' or '-')",
            hint="leave run_id out and carebound makes one",
        )
    problem = text_problem(requester) if isinstance(requester, str) else "is not a string"
    if problem is None and not 0 < len(requester) <= MAX_REQUESTER:
        problem = f"must have 1 to {MAX_REQUESTER} characters"
    if problem is not None:
        raise InputLimitError("requester", "", problem, hint="give the starting person's id")
    if not isinstance(case, Mapping):
        raise InputLimitError(
            "case", "", "is not a JSON object", hint="give the FHIR Bundle as a dict"
        )
    lenient = replace(limits(), controls=True)
    check_tree(case, source="case", limit=lenient)  # a case is free-form: walk all of it
    _encodable(lambda: json.dumps(case, allow_nan=False), None, "case")
    # The pack and the world are typed models: serialising them finds what cannot be stored
    # (cheaper than a walk on every start); a walk then says where.
    policy_json = _pack_json(pack)
    if world is not None:
        if not isinstance(world, WorldSpec):
            raise InputLimitError(
                "world", "", f"is a {type(world).__name__}, not a WorldSpec",
                hint="build it with WorldSpec(...) or WorldSpec.from_bundles(ehr, payer)",
            )  # fmt: skip
        _encodable(world.model_dump_json, world, "world")
    return policy_json


_PACK_JSON: dict[int, tuple[PolicyPack, str]] = {}
"""The stored JSON of the packs started on lately, by identity (the pack is kept, so its id is
not reused while it is here): a pack is a frozen model, used for many starts, and encoding it
again was a third of the checks of a start."""


def _pack_json(pack: PolicyPack) -> str:
    seen = _PACK_JSON.get(id(pack))
    if seen is not None and seen[0] is pack:
        return seen[1]
    text = _encodable(pack.model_dump_json, pack, f"policy pack {pack.name}")
    if len(_PACK_JSON) >= 16:
        _PACK_JSON.clear()
    _PACK_JSON[id(pack)] = (pack, text)
    return text


def _encodable(dump: Callable[[], str], model: BaseModel | None, source: str) -> str:
    try:
        text = dump()
        text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # PydanticSerializationError too
        if model is not None:
            check_tree(model.model_dump(), source=source, limit=replace(limits(), controls=True))
        raise InputLimitError(
            source,
            "",
            f"cannot be stored as JSON ({type(exc).__name__})",
            hint="give JSON values only: strings, numbers, booleans, null, lists and objects",
        ) from None
    return text


MAX_MATCH = 512
"""Longest event match key (and event id) accepted."""


def check_event_input(match: str, payload: Mapping[str, Any] | None, event_id: str | None) -> None:
    """Refuse an event that could not be stored whole (checked before the drive mark).

    Raises:
        InputLimitError: which part of the event, where in it, and the limit or problem.
    """
    for name, value in (("event match", match), ("event id", event_id)):
        if value is None:
            continue
        problem = text_problem(value) if isinstance(value, str) else "is not a string"
        if problem is None and not 0 < len(value) <= MAX_MATCH:
            problem = f"must have 1 to {MAX_MATCH} characters"
        if problem is not None:
            raise InputLimitError(name, "", problem, hint=f"give the {name} as plain text")
    if payload is None:
        return
    if not isinstance(payload, Mapping):
        raise InputLimitError(
            "event payload", "", "is not a JSON object", hint="give the payload as a dict"
        )
    check_tree(payload, source="event payload", limit=replace(limits(), controls=True))
    _encodable(lambda: json.dumps(payload, default=str), None, "event payload")
