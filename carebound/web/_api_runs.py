"""The JSON API's run management: start runs (idempotently), list and search them, cancel one,
purge ended runs (``POST /api/runs/purge``, the ``purge`` scope).

``POST /api/runs`` with an ``Idempotency-Key`` header, or a client ``run_id`` in the body,
starts at most one run per key and caller: a retry of the same request is answered with the
run the first one started (``200``, header ``Idempotent-Replayed: true``), the same key with a
different request is refused (``422``), and a retry while the first is still starting gets
``409`` with ``Retry-After``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from carebound._errors import NotFoundError, RunIdTakenError
from carebound._principal import normalize_reviewer_id
from carebound.clock import to_ms
from carebound.engine.start import new_run_id
from carebound.fhir import parse_bundle
from carebound.state import idempotency
from carebound.state.retention import PURGE_MAX_DAYS as MAX_DAYS
from carebound.state.run_search import RunFilter
from carebound.state.runs import RunRecord
from carebound.web._api import _ERRORS, Purger, Reader, RunOut, Starter, _requester, _run_out
from carebound.web._context import context
from carebound.web._problems import Problem
from carebound.web._purge import purge_ended

router = APIRouter(prefix="/api", tags=["api"], responses=_ERRORS)

RunStatus = Literal[
    "running", "paused", "waiting", "completed", "failed", "budget_exhausted", "cancelled",
    "quarantined",
]  # fmt: skip


class RunStart(BaseModel):
    """Start an agent on a case."""

    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=100, description="Agent name, e.g. 'demo'.")
    bundle: dict[str, Any] = Field(description="The case: a FHIR R4B Bundle, as JSON.")
    requester: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Who the run is started for; they may not decide its holds. A token bound "
        "to a reviewer starts runs as that reviewer (omit it, or name them); a service token "
        "acting as itself must name the person.",
    )
    run_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Your own id for the run (letters, digits, '.', '_', '-'); a retried "
        "request with the same id starts no second run. Default: carebound makes one.",
    )


class RunQuery(BaseModel):
    """Filters and paging of the runs list."""

    model_config = ConfigDict(extra="forbid")

    status: RunStatus | None = None
    agent: str | None = Field(default=None, max_length=100)
    requester: str | None = Field(default=None, max_length=200)
    patient: str | None = Field(
        default=None, max_length=200, pattern=r"^Patient/.+$", description="Patient/ID."
    )
    created_from: datetime | None = Field(default=None, description="Started at or after.")
    created_to: datetime | None = Field(default=None, description="Started before.")
    limit: int = Field(default=50, ge=1, le=200)
    offset: int = Field(default=0, ge=0)


class RunPageOut(BaseModel):
    """One page of runs, newest first."""

    runs: list[RunRecord] = Field(description="Run records (agents' summaries carry no PHI).")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last.")


class CancelIn(BaseModel):
    """Why a run is cancelled (audited, masked like a reviewer's reason)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=200)


@router.get("/runs")
def list_runs(request: Request, caller: Reader, query: Annotated[RunQuery, Query()]) -> RunPageOut:
    """Runs, newest first, by status, agent, requester, patient reference and start time."""
    for name, when in (("created_from", query.created_from), ("created_to", query.created_to)):
        if when is not None and when.tzinfo is None:
            raise Problem(
                status=422,
                detail=f"query parameter {name!r} has no time zone",
                code="invalid_request",
                hint="give it as 2026-03-02T09:00:00Z (or with +01:00)",
            )
    where = RunFilter(
        status=query.status,
        agent=query.agent,
        # in the form runs store it (as 'carebound runs --requester' does): 'Sam' finds sam's
        requester=normalize_reviewer_id(query.requester, what="requester")
        if query.requester
        else None,
        patient_ref=query.patient,
        created_from=query.created_from,
        created_to=query.created_to,
    )
    page = context(request).runner.search_runs(where, limit=query.limit, offset=query.offset)
    return RunPageOut(
        runs=page.runs,
        limit=query.limit,
        offset=query.offset,
        next_offset=page.next_offset,
    )


def _replay(
    request: Request, claim: idempotency.Claim, digest: str, *, principal: str, key: str
) -> RunOut | None:
    """The answer to a retried start: the run the first request started; None when that
    request died before storing it and this retry took its claim over (it starts the run)."""
    if claim.request != digest:
        raise Problem(
            status=422,
            detail="this idempotency key (or run_id) was used with a different request",
            code="idempotency_key_reused",
            hint="send a new Idempotency-Key (or run_id) for a new run",
        )
    runner = context(request).runner
    try:
        return _run_out(runner.get(claim.run_id))
    except NotFoundError:
        if idempotency.take_over(
            runner.client, runner.prefix, principal=principal, key=key, stale=claim,
            now_ms=to_ms(runner.clock.now()),
        ):  # fmt: skip
            return None
        raise Problem(
            status=409,
            detail=f"run {claim.run_id} is still being started by the first request",
            code="start_in_progress",
            hint="retry in a moment",
            headers={"Retry-After": "1"},
        ) from None


@router.post("/runs", status_code=201)
def start_run(
    request: Request,
    response: Response,
    caller: Starter,
    body: RunStart,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Any unique string; a retry with the same key and request starts no "
            "second run (kept for a day).",
        ),
    ] = None,
) -> RunOut:
    """Start an agent on a FHIR Bundle; the run goes as far as its first hold or wait."""
    ctx = context(request)
    if body.agent not in ctx.runner.agent_names:
        raise Problem(
            status=422,
            detail=f"unknown agent {body.agent!r}",
            code="unknown_agent",
            hint=f"known agents: {', '.join(ctx.runner.agent_names)}",
        )
    requester = _requester(caller, body.requester)
    parse_bundle(body.bundle, source="request body field 'bundle'")
    key = idempotency_key or (f"run:{body.run_id}" if body.run_id else None)
    run_id = body.run_id or new_run_id()
    if key is not None:
        runner = ctx.runner
        digest = idempotency.request_digest(body.model_dump(mode="json"))
        principal = caller.via.principal
        now_ms = to_ms(runner.clock.now())
        claim = idempotency.claim(
            runner.client, runner.prefix, principal=principal, key=key, run_id=run_id,
            request=digest, now_ms=now_ms,
        )  # fmt: skip
        if not claim.new:
            replayed = _replay(request, claim, digest, principal=principal, key=key)
            if replayed is not None:
                response.status_code = 200
                response.headers["Idempotent-Replayed"] = "true"
                return replayed
            run_id = claim.run_id  # its first start died before storing it: this one starts it
    world = ctx.world(body.bundle) if ctx.world is not None else None
    try:
        view = ctx.runner.start(
            body.agent, body.bundle, requester=requester, world=world, run_id=run_id
        )
    except RunIdTakenError:  # the engine's atomic claim: another run (or start) has the id
        if key is not None:  # another run's id: the claim must not answer a retry with it
            idempotency.release(ctx.runner.client, ctx.runner.prefix,
                                principal=caller.via.principal, key=key)  # fmt: skip
        raise Problem(
            status=409,
            detail=f"run id {run_id!r} is taken by another run",
            code="run_id_taken",
            hint="choose another run_id, or leave it out",
        ) from None
    except Exception:
        if key is not None and ctx.runner.runs.get(run_id) is None:
            # refused before anything was stored: a corrected retry may use the key again
            idempotency.release(ctx.runner.client, ctx.runner.prefix,
                                principal=caller.via.principal, key=key)  # fmt: skip
        raise
    return _run_out(view)


@router.post("/runs/{run_id}/cancel")
def cancel_run(request: Request, caller: Starter, run_id: str, body: CancelIn) -> RunOut:
    """Stop a run for good (needs the ``start`` scope); its pending hold leaves the inbox and
    the audit trail records the caller and the reason."""
    view = context(request).runner.cancel(run_id, by=caller.via.principal, reason=body.reason)
    return _run_out(view)


class PurgeIn(BaseModel):
    """Which ended runs to purge."""

    model_config = ConfigDict(extra="forbid")

    # strict: a purge deletes; `true` is not 1 day, nor "30" a number of days
    older_than_days: int = Field(
        ge=1,
        le=MAX_DAYS,
        strict=True,
        description="Purge runs that ended more than this many days ago (a JSON integer).",
    )
    dry_run: bool = Field(
        default=False, strict=True, description="Only list the runs; delete nothing."
    )


class PurgeOut(BaseModel):
    """What a purge removed (or, dry, would remove): ``carebound purge --json``'s report."""

    dry_run: bool
    ended_before: datetime = Field(description="The cutoff: runs that ended before it.")
    purged: list[str] = Field(description="Runs whose keys were deleted (dry run: would be).")
    refused: dict[str, list[str]] = Field(
        description="Runs kept because their audit chain does not verify, with the problems."
    )
    keys_deleted: int
    audit_index_trimmed: int = Field(description="Entries dropped from the global audit index.")
    archive: str = Field(
        description="The server's archive file the audit chains were appended to (verify it "
        "with 'carebound verify-archive FILE'); set by the server, never by the caller."
    )


@router.post("/runs/purge")
def purge_runs(request: Request, caller: Purger, body: PurgeIn) -> PurgeOut:
    """Delete every key of the runs that ended (completed, failed, budget exhausted, cancelled,
    quarantined) more than ``older_than_days`` ago (needs the ``purge`` scope). Each run's
    audit chain is first verified and appended, signed, to the server's archive; a run whose
    chain does not verify is kept and listed under ``refused``."""
    report = purge_ended(
        request, older_than_days=body.older_than_days, dry_run=body.dry_run,
        by=caller.via.principal,
    )  # fmt: skip
    return PurgeOut.model_validate(report.summary())
