"""The edit form of a held call, generated from the tool's args JSON schema.

Each top-level argument becomes one field: text, number, a checkbox, a choice, or JSON for
anything structured. The form only shapes the values; :meth:`Runner.decide` validates the
edited arguments against the tool's schema, the agent's grant and the policy, server-side.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from carebound.web._problems import Problem

FieldKind = Literal["text", "integer", "number", "checkbox", "choice", "json"]
FIELD_PREFIX = "arg."
"""Form field names of the arguments: ``arg.<name>``."""


@dataclass(frozen=True, kw_only=True)
class ArgField:
    """One argument in the edit form."""

    name: str
    label: str
    kind: FieldKind
    required: bool
    description: str = ""
    choices: tuple[str, ...] = ()
    value: str = ""
    checked: bool = False

    @property
    def form_name(self) -> str:
        """The field's name in the form."""
        return FIELD_PREFIX + self.name


def _kind(prop: Mapping[str, Any]) -> tuple[FieldKind, tuple[str, ...]]:
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    if len(options) != 1:
        return "json", ()
    only = options[0]
    if "enum" in only and all(isinstance(v, str) for v in only["enum"]):
        return "choice", tuple(only["enum"])
    kind = {"string": "text", "integer": "integer", "number": "number", "boolean": "checkbox"}
    return kind.get(str(only.get("type")), "json"), ()  # type: ignore[return-value]


def arg_fields(schema: type[BaseModel], args: Mapping[str, Any]) -> list[ArgField]:
    """The form fields of ``schema``, filled with the current ``args``."""
    spec = schema.model_json_schema()
    required = set(spec.get("required", []))
    fields = []
    for name, prop in spec.get("properties", {}).items():
        kind, choices = _kind(prop)
        current = args.get(name, prop.get("default"))
        if kind == "json":
            value = json.dumps(current, indent=1) if current is not None else ""
        else:
            value = "" if current is None or isinstance(current, bool) else str(current)
        fields.append(
            ArgField(
                name=name,
                label=str(prop.get("title", name)),
                kind=kind,
                required=name in required,
                description=str(prop.get("description", "")),
                choices=choices,
                value=value,
                checked=current is True,
            )
        )
    return fields


def parse_arg_fields(fields: list[ArgField], form: Mapping[str, Any]) -> dict[str, Any]:
    """The arguments a submitted edit form gives (shapes only; the runner validates them).

    Raises:
        Problem: a JSON field does not parse.
    """
    args: dict[str, Any] = {}
    for f in fields:
        raw = form.get(f.form_name)
        if f.kind == "checkbox":
            args[f.name] = raw is not None
            continue
        text = "" if raw is None else str(raw)
        if text == "" and not f.required:
            continue  # cleared: the argument takes its default
        if f.kind == "integer":
            args[f.name] = _number(text, int)
        elif f.kind == "number":
            args[f.name] = _number(text, float)
        elif f.kind == "json":
            try:
                args[f.name] = json.loads(text)
            except ValueError:
                raise Problem(
                    status=422,
                    detail=f"edited argument {f.name!r} is not valid JSON",
                    code="invalid_edit",
                    hint='write it as JSON, e.g. ["a", "b"] or {"key": 1}',
                ) from None
        else:
            args[f.name] = text
    return args


def _number(text: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(text)
    except ValueError:
        return text  # the schema check names the field and says what it expected
