"""Typed tools: a pydantic args schema plus the metadata the gate needs.

A tool is declared on a typed function::

    class SendFaxArgs(BaseModel):
        model_config = ConfigDict(extra="forbid")  # required: unknown fields are refused
        to: str
        document_code: str

    @tool(scope="outreach:fax.send", effect="external", phi={"contact"},
          public=("document_code",), key=("to", "document_code"),
          constraints={"recipient": "to"})
    def send_fax(ctx: ToolContext, args: SendFaxArgs) -> dict[str, JSONValue]:
        '''Fax a document request to the referring office.'''
        ...

A tool that declares PHI classes has every argument masked on reviewers' screens until a
reveal, except those it lists as ``public`` (codes, statuses, field names, references).

Agents never call ``run`` themselves: every call goes through the gate, which checks the
agent's grant and the hold policy, then executes through the effect ledger.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, get_type_hints

from pydantic import BaseModel

from carebound._errors import CareboundError

if TYPE_CHECKING:  # langchain-core is loaded only when a model binds the tools
    from langchain_core.tools import StructuredTool

    # the connectors (and FHIR models behind them) load with the agents that use them, not
    # with every reader of a tool's or a policy pack's types
    from carebound.tools.connectors import Connectors

JSONValue = str | int | float | bool | None | list[Any] | dict[str, Any]
FactValue = str | int | float | bool | None
ArgsT = TypeVar("ArgsT", bound=BaseModel)


class EffectClass(StrEnum):
    """What calling a tool does to the world."""

    READ = "read"
    """Reads only; safe to repeat."""
    REVERSIBLE = "reversible"
    """Changes a system of ours in a way that can be undone (e.g. a demographic fix)."""
    EXTERNAL = "external"
    """Reaches outside (fax, payer, ERP posting); cannot be taken back."""


class ToolDefinitionError(CareboundError):
    """A tool was declared wrongly (a programming error in the tool's module)."""


@dataclass(frozen=True, kw_only=True)
class ToolContext:
    """What a tool sees when the gate runs it."""

    run_id: str
    """The run (LangGraph thread) the call belongs to."""
    agent: str
    """Name of the agent that proposed the call."""
    now: datetime
    """The run clock's time at the call."""
    idempotency_key: str
    """Key the connector must de-duplicate on: the same key never causes a second effect."""
    connectors: Connectors
    """The run's connectors: the only way a tool reaches the outside world."""
    case: Mapping[str, Any] = field(default_factory=dict)
    """The run's case (a FHIR Bundle as JSON)."""


@dataclass(frozen=True, kw_only=True)
class ToolSpec(Generic[ArgsT]):
    """A typed tool and the metadata the gate enforces."""

    name: str
    """Unique tool name, as models and policies refer to it."""
    description: str
    """What the tool does (shown to models and reviewers)."""
    args_schema: type[ArgsT]
    """Pydantic model the arguments must satisfy."""
    scope: str
    """Permission scope a grant must hold, e.g. ``outreach:fax.send``."""
    effect: EffectClass
    """Effect class; ``reversible`` and ``external`` calls go through the effect ledger."""
    phi: frozenset[str] = frozenset()
    """PHI categories the call touches (e.g. ``demographics``)."""
    public_args: frozenset[str] = frozenset()
    """Arguments that never hold PHI (codes, statuses, field names, references): shown while
    the other arguments of a PHI tool are masked (``carebound._phi``)."""
    key_fields: tuple[str, ...] = ()
    """Argument names that, with the run id and tool name, form the idempotency key."""
    constraints: Mapping[str, str] = field(default_factory=dict)
    """Grant constraint kind (``field``, ``amount``, ``recipient``) -> argument name."""
    facts: Callable[[ToolContext, ArgsT], Mapping[str, FactValue]] | None = None
    """Trusted facts for the hold policy, computed from the run's data, never from the model."""
    run: Callable[[ToolContext, ArgsT], Any]
    """The implementation; returns JSON-serialisable data or a pydantic model."""
    audit_detail: Callable[[ArgsT, Any], Mapping[str, FactValue]] | None = None
    """Extra audit detail for an executed call (e.g. before/after of a low-risk fix), from
    the args and the result. Keep values short; they are checked to be at most 200 chars."""

    def validate(self, raw: Mapping[str, Any]) -> ArgsT:
        """Validate raw arguments against the schema (raises pydantic.ValidationError)."""
        return self.args_schema.model_validate(dict(raw))

    def args_hash(self, args: ArgsT) -> str:
        """A stable hash of tool name and arguments; decisions are bound to it."""
        return args_hash(self.name, args.model_dump(mode="json"))

    def idempotency_key(self, run_id: str, args: ArgsT) -> str:
        """The effect-ledger key: run, tool, and the declared key arguments (or all args)."""
        dumped = args.model_dump(mode="json")
        parts = {k: dumped.get(k) for k in self.key_fields} if self.key_fields else dumped
        digest = hashlib.sha256(_canonical(parts).encode()).hexdigest()[:16]
        return f"{run_id}:{self.name}:{digest}"

    def compute_facts(
        self, ctx: ToolContext | Callable[[], ToolContext], args: ArgsT
    ) -> dict[str, FactValue]:
        """Facts the policy may use: the effect class and scope plus the tool's own facts.

        ``ctx`` may be a function that makes the context: it is called only for a tool with
        facts of its own (a context carries the call's idempotency key, hashed to make it)."""
        facts: dict[str, FactValue] = {"effect": self.effect.value, "scope": self.scope}
        if self.facts is not None:
            facts.update(self.facts(ctx if isinstance(ctx, ToolContext) else ctx(), args))
        return facts

    def as_langchain_tool(self) -> StructuredTool:
        """The tool as langchain-core sees it, for ``model.bind_tools``.

        Invoking it directly is refused: execution only ever happens through the gate.
        """
        from langchain_core.tools import StructuredTool

        def _refuse(**_: Any) -> str:
            raise ToolDefinitionError(
                f"tool {self.name!r} was invoked outside the carebound gate",
                hint="propose the call to the runner; the gate executes allowed calls",
            )

        return StructuredTool.from_function(
            func=_refuse,
            name=self.name,
            description=self.description,
            args_schema=self.args_schema,
        )


def _models_allowing_extra(schema: type[BaseModel]) -> list[str]:
    """Names of ``schema`` and the models nested in its fields that accept unknown fields."""
    loose: list[str] = []
    seen: set[type[BaseModel]] = set()
    stack: list[Any] = [schema]
    while stack:
        ann = stack.pop()
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            if ann in seen:
                continue
            seen.add(ann)
            if ann.model_config.get("extra") != "forbid":
                loose.append(ann.__name__)
            stack.extend(f.annotation for f in ann.model_fields.values())
        else:
            stack.extend(getattr(ann, "__args__", ()))
    return loose


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def args_hash(tool_name: str, args: Mapping[str, Any]) -> str:
    """Hash of a tool call: what a decision is bound to."""
    return hashlib.sha256(_canonical({"tool": tool_name, "args": dict(args)}).encode()).hexdigest()


def tool(
    *,
    scope: str,
    effect: EffectClass | str,
    phi: set[str] | frozenset[str] = frozenset(),
    public: tuple[str, ...] = (),
    key: tuple[str, ...] = (),
    constraints: Mapping[str, str] | None = None,
    facts: Callable[[ToolContext, Any], Mapping[str, FactValue]] | None = None,
    name: str | None = None,
    audit_detail: Callable[[Any, Any], Mapping[str, FactValue]] | None = None,
) -> Callable[[Callable[[ToolContext, ArgsT], Any]], ToolSpec[ArgsT]]:
    """Declare a typed tool from a function ``(ctx: ToolContext, args: SomeModel) -> result``."""

    def decorate(fn: Callable[[ToolContext, ArgsT], Any]) -> ToolSpec[ArgsT]:
        hints = get_type_hints(fn)
        params = list(inspect.signature(fn).parameters)
        if len(params) != 2:
            raise ToolDefinitionError(
                f"tool function {fn.__name__} must take (ctx, args)",
                hint="declare it as def f(ctx: ToolContext, args: YourArgsModel) -> ...",
            )
        schema = hints.get(params[1])
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise ToolDefinitionError(
                f"tool function {fn.__name__}: the args parameter must be a pydantic model",
                hint="annotate the second parameter with a BaseModel subclass",
            )
        loose = _models_allowing_extra(schema)
        if loose:
            raise ToolDefinitionError(
                f"tool {fn.__name__}: {', '.join(loose)} must refuse unknown fields, or a "
                "reviewer's typo in an edit would be dropped silently and the call run as proposed",
                hint='give the model model_config = ConfigDict(extra="forbid")',
            )
        spec_constraints = dict(constraints or {})
        for arg in [*key, *spec_constraints.values(), *public]:
            if arg not in schema.model_fields:
                raise ToolDefinitionError(
                    f"tool {fn.__name__}: {arg!r} is not a field of {schema.__name__}",
                    hint="key, constraints and public must name fields of the args schema",
                )
        return ToolSpec(
            name=name or fn.__name__,
            description=inspect.cleandoc(fn.__doc__ or fn.__name__),
            args_schema=cast("type[ArgsT]", schema),
            scope=scope,
            effect=EffectClass(effect),
            phi=frozenset(phi),
            public_args=frozenset(public),
            key_fields=key,
            constraints=spec_constraints,
            facts=facts,
            run=fn,
            audit_detail=audit_detail,
        )

    return decorate
