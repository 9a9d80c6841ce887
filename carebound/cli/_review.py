"""The reviewer's commands: ``inbox``, ``show``, ``approve``/``reject``/``edit``/``escalate``,
and ``reviewers`` (the directory of a policy pack)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from carebound.cli._errors import CliInputError
from carebound.cli._session import JsonOpt, open_reader, open_runner, phi_policy, print_json, stdout

if TYPE_CHECKING:
    from carebound.approvals import ApprovalView, ArgChange, Decision

ApprovalArg = Annotated[
    str, typer.Argument(metavar="APPROVAL_ID", help="The approval id (see 'carebound inbox').")
]
ReviewerOpt = Annotated[
    str | None,
    typer.Option(
        "--reviewer",
        help="Your reviewer id in the policy pack's directory. Signed in (carebound login or "
        "CAREBOUND_TOKEN) it defaults to you and must be you; needed in the unauthenticated "
        "development mode.",
    ),
]
RoleOpt = Annotated[str, typer.Option("--role", help="The role you decide in.")]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="With workers (CAREBOUND_DRIVE=queue): wait for the run's next stop (up to "
        "--wait-timeout seconds) instead of returning once the decision is stored.",
    ),
]
WaitTimeoutOpt = Annotated[
    float, typer.Option("--wait-timeout", min=0.0, help="Seconds --wait waits at most.")
]
NoteOpt = Annotated[str | None, typer.Option("--note", help="A note for the audit trail.")]
HashOpt = Annotated[
    str | None,
    typer.Option(
        "--args-hash",
        help="The args hash you reviewed (as 'show' prints it); the decision is refused if the "
        "call changed since. Default: the call as fetched now.",
    ),
]


def inbox(
    role: Annotated[str | None, typer.Option("--role", help="Only holds for this role.")] = None,
    agent: Annotated[str | None, typer.Option("--agent", help="Only holds of this agent.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only holds past due.")] = False,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Paused steps across runs, most urgent first; then the runs waiting for a system that is
    down (the system, the retry time, why): with --role, those handed to that role after the
    pack's limit; none with --overdue."""
    from carebound._format import inbox_row, parked_row

    reader = open_reader()
    views = reader.pending(role=role, agent=agent, overdue=overdue, limit=limit)
    parked = [] if overdue else reader.parked(agent=agent, handed_to=role)[:limit]
    if role is not None and not views:
        _note_unknown_role(role)
    now = reader.clock.now()
    if as_json:
        waiting = [parked_row(p, now) for p in parked]
        items = [
            {**row, "deadline": row["deadline"].isoformat()}
            for row in (inbox_row(v, now) for v in views)
        ]
        print_json({"approvals": items, "parked": waiting})
        return
    from carebound.cli._render_packet import inbox_table, parked_table

    stdout().print(inbox_table(views, now))
    if parked:
        stdout().print(parked_table(parked, now))


def _note_unknown_role(role: str) -> None:
    """Say so on stderr when no reviewer of the default pack holds ``role`` (a typo shows an
    empty inbox otherwise; the web inbox refuses such a role)."""
    from carebound.guardrails import load_policy_pack

    pack = load_policy_pack("default")
    roles = sorted({r for reviewer in pack.reviewers for r in reviewer.roles})
    if role not in roles:
        typer.secho(
            f"note: no reviewer of policy pack {pack.name} holds role {role!r} (roles: "
            f"{', '.join(roles)}); check its spelling",
            err=True,
            fg="yellow",
        )


def show(
    approval_id: ApprovalArg,
    reveal: Annotated[
        bool,
        typer.Option("--reveal", help="Show the PHI too (recorded in the audit trail)."),
    ] = False,
    reviewer: Annotated[
        str | None,
        typer.Option(
            "--reviewer",
            help="Who reveals the PHI: you, when signed in; needed with --reveal in the "
            "development mode.",
        ),
    ] = None,
    role: Annotated[
        str | None, typer.Option("--role", help="The role you view it in (for the audit).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """The decision packet of a hold, for the person deciding it.

    What is decided, facts and their sources, checks passed and failed (with the rule), what
    is missing, the recommendation, what approve and reject will do, and the proposed call.
    PHI is masked as ••• unless --reveal is given by a signed-in reviewer (or with --reviewer in
    the development mode); the view is audited."""
    from carebound.cli._credential import cli_principal

    if reveal:
        # Every view of PHI is recorded with who saw it: a signed-in reviewer, or --reviewer in
        # the development mode.
        runner = open_runner()
        viewer = cli_principal(runner, reviewer, scope="reveal", action="see PHI", flag="--reveal")
        viewer.check_role(role)
        runner.approval(approval_id)
        shown = runner.reveal(approval_id, viewer=viewer.reviewer, role=role, via=viewer.via)
        now = runner.clock.now()
    else:
        reader = open_reader()  # a masked look needs no Runner (see _reader)
        view = reader.approval(approval_id)
        policy = phi_policy(reader, view.request.run_id, view.request.agent)
        shown = policy.approval(view)
        now = reader.clock.now()
    if as_json:
        print_json({"approval": shown.model_dump(mode="json"), "phi_masked": not reveal})
        return
    from carebound.cli._render_packet import packet_view

    stdout().print(packet_view(shown, now, masked=not reveal))


# -- decisions ----------------------------------------------------------------------------


def parse_set(items: list[str]) -> dict[str, tuple[str, Any]]:
    """``field=value`` pairs; a value is JSON when it parses as JSON, else text.

    A dotted field (``address.city=Boston``) names a key inside a mapping argument.
    """
    from carebound._limits import MAX_DEPTH, InputLimitError, check_tree

    out: dict[str, tuple[str, Any]] = {}
    for item in items:
        field, sep, raw = item.partition("=")
        field = field.strip()
        if not sep or not field or any(not part for part in field.split(".")):
            raise CliInputError(
                f"--set {item!r} is not field=value",
                hint="e.g. --set note='call first' --set count=2 --set 'codes=[\"11506-3\"]'",
            )
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        except RecursionError:
            raise InputLimitError(
                f"--set {field}",
                "",
                f"nested deeper than {MAX_DEPTH} levels (the limit)",
                hint="give a flat value",
            ) from None
        check_tree(value, source=f"--set {field}")  # as for files: depth, usable text
        out[field] = (raw, value)
    return out


def apply_set(args: dict[str, Any], changes: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """The call's arguments with ``changes`` (from :func:`parse_set`) applied.

    Where the argument is text now, a value that parses as a number, true/false or null stays
    text (``--set to=5552010100`` keeps a fax number a string).
    """
    result = json.loads(json.dumps(args))
    for field, (raw, value) in changes.items():
        *parents, leaf = field.split(".")
        node = result
        for i, part in enumerate(parents):
            child = node.get(part) if isinstance(node, dict) else None
            if not isinstance(child, dict):
                where = ".".join(parents[: i + 1])
                raise CliInputError(
                    f"--set {field}: {where} is not a mapping in the call's arguments",
                    hint=f"the arguments are: {', '.join(sorted(args)) or '(none)'}",
                )
            node = child
        keep_text = isinstance(node.get(leaf), str) and not isinstance(value, str | list | dict)
        node[leaf] = raw if keep_text else value
    return dict(result)


def _args_hash(view: ApprovalView, given: str | None) -> str:
    actual = view.request.args_hash
    if given is None:
        return actual
    given = given.strip().lower()
    if len(given) < 8:
        raise CliInputError(
            "--args-hash needs at least 8 characters", hint="copy it from 'carebound show'"
        )
    # A prefix of the current hash means "the call I reviewed"; anything else is sent as given
    # and refused as stale by the store.
    return actual if actual.startswith(given) else given


def _decide(
    approval_id: str,
    as_json: bool,
    build: Callable[[ApprovalView, str], Decision],
    args_hash: str | None = None,
    *,
    reviewer: str | None,
    role: str,
    wait: float | None = None,
) -> None:
    from carebound._format import short_hash
    from carebound._phi import mask_report
    from carebound._report import run_report
    from carebound.cli._credential import cli_principal

    runner = open_runner()
    who = cli_principal(runner, reviewer, scope="decide", action="decide holds")
    who.check_role(role)
    view = runner.approval(approval_id)
    decision = build(view, _args_hash(view, args_hash))
    decision = decision.model_copy(update={"reviewer": who.reviewer, "via": who.via})
    if not as_json:
        typer.secho(
            f"{decision.kind} {approval_id}: {view.request.tool} (args "
            f"{short_hash(decision.args_hash)}) as {decision.reviewer} ({decision.role})",
            err=True,
            dim=True,
        )
    result = runner.decide(approval_id, decision)
    if wait is not None and result.outcome == "decided" and runner.drive_mode == "queue":
        run = runner.wait(result.run.record.run_id, past=approval_id, timeout_s=wait)
        result = result.model_copy(update={"run": run})
    if as_json:
        print_json(
            {
                "approval_id": approval_id,
                "decision": decision.kind,
                "outcome": result.outcome,
                "changes": [_shown_change(c) for c in result.changes],
                "run": mask_report(run_report(result.run)).model_dump(mode="json"),
            }
        )
        return
    from carebound.cli._render_packet import decision_result

    stdout().print(
        decision_result(approval_id, decision.kind, result.outcome, result.run, runner.clock.now())
    )
    _print_changes(approval_id, result.changes)


def _shown_change(change: ArgChange) -> dict[str, Any]:
    """An edit's change as printed: a PHI value stays masked (``show --reveal`` shows it)."""
    from carebound._format import MASK

    shown = change.model_dump(mode="json")
    if change.phi:
        shown.update(before=MASK, after=MASK)
    return shown


def _print_changes(approval_id: str, changes: list[ArgChange]) -> None:
    """The before -> after of an edit, one argument a line, under the decision's outcome."""
    if not changes:
        return
    from rich.text import Text

    from carebound._format import inline

    out = stdout()
    out.print("changed (before -> after):")
    for change in changes:
        shown = _shown_change(change)
        line = f"  {change.field}: {inline(shown['before'])} -> {inline(shown['after'])}"
        out.print(Text(line + ("  (PHI: carebound show --reveal)" if change.phi else "")))


def approve(
    approval_id: ApprovalArg,
    *,
    reviewer: ReviewerOpt = None,
    role: RoleOpt,
    note: NoteOpt = None,
    args_hash: HashOpt = None,
    wait: WaitOpt = False,
    wait_timeout: WaitTimeoutOpt = 120.0,
    as_json: JsonOpt = False,
) -> None:
    """Approve a hold: the call runs as proposed. With workers (CAREBOUND_DRIVE=queue) the
    run is queued; --wait waits for its next stop."""
    from carebound.approvals import Approve

    def build(view: ApprovalView, h: str) -> Approve:
        return Approve(reviewer=reviewer or "", role=role, args_hash=h, note=note)

    _decide(
        approval_id, as_json, build, args_hash, reviewer=reviewer, role=role,
        wait=wait_timeout if wait else None,
    )  # fmt: skip


def reject(
    approval_id: ApprovalArg,
    *,
    reviewer: ReviewerOpt = None,
    role: RoleOpt,
    reason: Annotated[
        str, typer.Option("--reason", help="Why not (told to the agent and audited).")
    ],
    note: NoteOpt = None,
    args_hash: HashOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reject a hold: the call is not made; the reason goes back to the agent."""
    from carebound.approvals import Reject

    if not reason.strip():
        raise CliInputError("--reason is empty", hint="say why the call should not be made")

    def build(view: ApprovalView, h: str) -> Reject:
        return Reject(reviewer=reviewer or "", role=role, args_hash=h, note=note, reason=reason)

    _decide(approval_id, as_json, build, args_hash, reviewer=reviewer, role=role)


def edit(
    approval_id: ApprovalArg,
    *,
    reviewer: ReviewerOpt = None,
    role: RoleOpt,
    set_: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="field=value to change in the call's arguments (repeatable). The value is "
            "JSON when it parses as JSON, else text; a text argument stays text.",
        ),
    ],
    note: NoteOpt = None,
    args_hash: HashOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Edit a hold: the call runs with changed arguments (checked again against the grant)."""
    from carebound.approvals import Edit

    changes = parse_set(set_)
    if not changes:
        raise CliInputError("edit needs at least one --set field=value")

    def build(view: ApprovalView, h: str) -> Edit:
        args = apply_set(view.request.args, changes)
        return Edit(reviewer=reviewer or "", role=role, args_hash=h, note=note, args=args)

    _decide(approval_id, as_json, build, args_hash, reviewer=reviewer, role=role)


def escalate(
    approval_id: ApprovalArg,
    *,
    reviewer: ReviewerOpt = None,
    role: RoleOpt,
    to_role: Annotated[str, typer.Option("--to-role", help="The role to hand the hold to.")],
    note: NoteOpt = None,
    args_hash: HashOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Escalate a hold to another role."""
    from carebound.approvals import Escalate

    def build(view: ApprovalView, h: str) -> Escalate:
        return Escalate(reviewer=reviewer or "", role=role, args_hash=h, note=note, to_role=to_role)

    _decide(approval_id, as_json, build, args_hash, reviewer=reviewer, role=role)


def reviewers(
    policy: Annotated[
        str, typer.Option("--policy", help="Policy pack: a built-in name or a YAML path.")
    ] = "default",
    as_json: JsonOpt = False,
) -> None:
    """The reviewer directory of a policy pack: who may decide holds, in which roles."""
    from carebound.guardrails import load_policy_pack

    pack = load_policy_pack(policy)
    if as_json:
        print_json(
            {
                "policy": f"{pack.name}@{pack.version}",
                "reviewers": [r.model_dump(mode="json") for r in pack.reviewers],
            }
        )
        return
    from carebound.cli._render_packet import reviewers_table

    stdout().print(reviewers_table(pack))


def register(app: typer.Typer) -> None:
    """Add the reviewer commands to the app."""
    app.command("inbox")(inbox)
    app.command("show")(show)
    app.command("approve")(approve)
    app.command("reject")(reject)
    app.command("edit")(edit)
    app.command("escalate")(escalate)
    app.command("reviewers")(reviewers)
