"""The graph's call execution: a gated call made through the effect ledger, and audited.

A read runs each time; an effect is reserved in the ledger first, so a replayed step gets the
recorded result instead of calling again. The grant is checked again (an edit never widens it).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from langchain_core.runnables import RunnableConfig
from pydantic import BaseModel

from carebound._agent import CallResult, ProposedCall
from carebound._errors import CareboundError, LeaseLostError
from carebound._phi_table import effect_detail_refs
from carebound.engine.node_kit import NodeKit, config_run_id, jsonable
from carebound.engine.run_state import CurrentCall, RunState
from carebound.engine.tracing import tool_failed, tool_span
from carebound.guardrails import judge
from carebound.state.errors import STORE_FAILURE
from carebound.state.trips import Pipeline
from carebound.tools import EffectClass, FactValue, ToolContext, ToolSpec
from carebound.tools.connectors import SystemUnavailableError, VersionConflictError

_log = logging.getLogger("carebound.graph")


@dataclass(frozen=True)
class _ToolOutcome:
    """What one tool call gave: its output, or the error it ended with."""

    output: Any = None
    error: str | None = None
    error_class: str | None = None
    crashed: bool = False
    """It raised something no tool is expected to raise (a bug or a broken connector): the
    run stops as ``failed`` instead of letting the agent plan on."""
    rebase: dict[str, Any] | None = None
    """The record changed since the call was decided (``VersionConflictError``): nothing was
    written, and these argument values would apply it to the record as it is now. The call is
    held again for a person instead of being retried or overwritten."""


class Rehold(Protocol):
    """Holds a call again for a person (the gate's ``hold_again``)."""

    def __call__(
        self,
        state: RunState,
        config: RunnableConfig,
        current: CurrentCall,
        *,
        spec: ToolSpec[Any],
        args: BaseModel,
        reason: str,
    ) -> dict[str, Any]:
        """The state update that parks ``current`` (with ``args``) on a new approval."""
        ...


class Executor:
    """Makes one gated call (the ``execute`` node, and ``hold`` once approved)."""

    def __init__(self, kit: NodeKit, rehold: Rehold | None = None) -> None:
        self.kit = kit
        self.rehold = rehold

    def perform(
        self, state: RunState, config: RunnableConfig, current: CurrentCall
    ) -> dict[str, Any]:
        run_id = config_run_id(config)
        token = config.get("configurable", {}).get("fencing_token")
        call = ProposedCall.model_validate(current["call"])
        index = int(current["index"])
        pack = self.kit.svc.pack_for(run_id)
        # Judged again: an edit never widens the grant. The policy judged the call already
        # (a held call that runs was approved), so only the grant is asked.
        verdict = judge(
            call.tool,
            current["args"],
            tools=self.kit.agent.tools,
            grant=pack.agent_policy(self.kit.agent.name).grant,
        )
        if verdict.kind != "allowed":
            self.kit.audit(
                run_id,
                once=f"recheck:{index}",
                action="permission_check",
                outcome="denied",
                detail={"tool": verdict.tool[:100], "reason": verdict.reason[:200]},
            )
            result = CallResult(
                index=index,
                tool=verdict.tool,
                args=current["args"],
                status="denied",
                reason=verdict.reason,
            )
            return self.kit.finish_call(state, result)
        spec, args = verdict.spec, verdict.args
        ctx = self.kit.svc.tool_context(run_id, self.kit.agent.name, spec, args)
        key = ctx.idempotency_key  # spec.idempotency_key(run_id, args), made once
        now = ctx.now
        detail: dict[str, FactValue] = {"tool": spec.name, "key": key, "effect": spec.effect.value}
        if spec.effect is EffectClass.READ:
            outcome = self._call(spec, ctx, args, token)
            output, error = outcome.output, outcome.error
            self.kit.audit(
                run_id,
                action="read",
                outcome="failed" if error else "success",
                detail={**detail, **_error_detail(outcome)},
                once=f"read:{index}",
            )
        else:
            # The checkpoint this step runs from rides ahead of the reserve, both fenced: it is
            # durable before the effect, and a driver that lost the run makes no effect.
            self.kit.svc.flush_checkpoint()
            entry = self.kit.svc.ledger.reserve(
                run_id, key, spec.name, now,
                fencing_token=None if token is None else int(token),
            )  # fmt: skip
            record_result: Callable[[Pipeline], object] | None = None
            if entry is not None and entry.status != "reserved":
                outcome = _ToolOutcome(  # a replay: the recorded result
                    output=entry.result,
                    error=entry.error,
                    error_class=entry.error_class,
                    crashed=(entry.error or "").startswith(_CRASH_PREFIX),
                    rebase=_recorded_rebase(entry.error_class, entry.result),
                )
                output, error = outcome.output, outcome.error
            else:
                attempts = entry.attempts if entry else 1
                outcome = self._call(spec, ctx, args, token)
                output, error = outcome.output, outcome.error
                done_at = self.kit.svc.clock.now()

                def record_result(pipe: Pipeline) -> None:
                    self.kit.svc.ledger.complete(
                        run_id,
                        key,
                        spec.name,
                        output,
                        reserved_at=entry.reserved_at if entry else now,
                        now=done_at,
                        attempts=attempts,
                        error=error,
                        error_class=outcome.error_class,
                        pipe=pipe,
                    )

            if spec.audit_detail is not None and not error:
                shown = spec.audit_detail(args, output)
                detail.update(effect_detail_refs(bool(spec.phi), key, shown))
            # The ledger's result goes first, in the same round trip. The audit append is
            # idempotent on the key: a replay after a crash between the two records it once.
            self.kit.audit(
                run_id,
                once=f"effect:{key}",
                action="effect",
                outcome="failed" if error else "success",
                detail={**detail, "decided": current.get("decided"), **_error_detail(outcome)},
                before=record_result,
            )
        if outcome.rebase is not None and self.rehold is not None:
            rebased = spec.validate({**current["args"], **outcome.rebase})
            return self.rehold(state, config, current, spec=spec, args=rebased, reason=error or "")
        result = CallResult(
            index=index,
            tool=spec.name,
            args=current["args"],
            status="error" if error else "executed",
            result=output,
            reason=error,
        )
        if outcome.crashed:
            return self.kit.finish_call(
                state,
                result,
                status="failed",
                summary=f"stopped: {error}; see the run's audit trail",
            )
        return self.kit.finish_call(state, result)

    def _call(
        self, spec: ToolSpec[Any], ctx: ToolContext, args: BaseModel, token: int | None
    ) -> _ToolOutcome:
        """Run the tool, keeping the run's lease alive meanwhile (a slow connector must not
        let another process take the run and call it again)."""
        with tool_span(spec.name, spec.effect.value) as span:
            if self.kit.svc.heartbeat is None or token is None:
                outcome = _run_tool(spec, ctx, args)
            else:
                with self.kit.svc.heartbeat(ctx.run_id, int(token)):
                    outcome = _run_tool(spec, ctx, args)
            tool_failed(span, outcome.error_class)
            return outcome


_CRASH_PREFIX = "unexpected "


def _run_tool(spec: ToolSpec[Any], ctx: ToolContext, args: BaseModel) -> _ToolOutcome:
    """Run one tool call; whatever it raises ends the call as a recorded error.

    Errors tools are expected to raise (carebound's, and bad values or lookups) go back to
    the agent. Anything else is a bug or a broken connector: recorded by class only (an
    exception message can carry PHI) and the run stops as ``failed``. Only a store outage
    or a lost lease stops the step itself: it resumes when the store is back.
    """
    try:
        return _ToolOutcome(output=jsonable(spec.run(ctx, args)))
    except STORE_FAILURE:
        raise
    except (LeaseLostError, SystemUnavailableError):
        raise  # a lost lease stops the step; a system down parks the run (engine.outage)
    except VersionConflictError as exc:
        rebase = exc.rebase
        return _ToolOutcome(
            output={_REBASE: rebase} if rebase is not None else None,
            error=exc.message,
            error_class=type(exc).__name__,
            rebase=rebase,
        )
    except CareboundError as exc:
        return _ToolOutcome(error=exc.message, error_class=type(exc).__name__)
    except (ValueError, LookupError, TypeError) as exc:
        return _ToolOutcome(error=f"{type(exc).__name__}: {exc}", error_class=type(exc).__name__)
    except Exception as exc:
        name = type(exc).__name__
        _log.warning("run %s: tool %s raised %s", ctx.run_id, spec.name, name)
        return _ToolOutcome(
            error=f"{_CRASH_PREFIX}{name} from tool {spec.name} (its message is not kept: "
            "it may hold PHI)",
            error_class=name,
            crashed=True,
        )


_REBASE = "rebase"


def _recorded_rebase(error_class: str | None, result: Any) -> dict[str, Any] | None:
    """The rebase a version conflict recorded in the ledger (so a replay holds again too)."""
    if error_class != VersionConflictError.__name__ or not isinstance(result, dict):
        return None
    rebase = result.get(_REBASE)
    return rebase if isinstance(rebase, dict) else None


def _error_detail(outcome: _ToolOutcome) -> dict[str, FactValue]:
    return {"error_class": outcome.error_class} if outcome.error_class else {}
