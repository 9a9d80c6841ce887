"""Showing PHI: who may see a hold's or a run's PHI, and the ``view_phi`` audit event."""

from __future__ import annotations

from carebound._errors import DecisionRefusedError
from carebound._principal import Provenance
from carebound.audit import Actor
from carebound.engine.core import Core, agent_not_installed


def phi_viewer(
    core: Core,
    run_id: str,
    viewer: str,
    entitled: set[str],
    *,
    role: str | None,
    via: Provenance | None,
) -> tuple[str, str | None]:
    """Who sees PHI entitled to ``entitled`` roles (their directory id), and in which role."""
    if via is not None and via.kind == "service":
        return viewer, role  # a service token: the channel has checked its roles
    pack = core.pack_for(run_id)
    person = pack.reviewer(viewer)
    if person is None:
        raise DecisionRefusedError(
            f"{viewer!r} is not in the reviewer directory of policy pack {pack.name}",
            code="unknown_reviewer",
            hint="see 'carebound reviewers' for the ids that may view and decide holds",
        )
    usable = set(person.roles) & entitled
    if role is not None:
        usable &= {role}
    if not usable:
        needed = ", ".join(sorted(entitled)) or "(none: the run has no holds)"
        raise DecisionRefusedError(
            f"{viewer!r} may not see this PHI: it is for role {needed}",
            code="wrong_role",
            hint=f"{person.id} holds: {', '.join(person.roles)}; ask a reviewer of {needed}",
        )
    return person.id, sorted(usable)[0]


def record_phi_view(
    core: Core,
    run_id: str,
    *,
    agent: str,
    viewer: str,
    role: str | None,
    via: Provenance | None,
    patient_ref: str | None,
    detail: dict[str, str | bool | None],
) -> None:
    """Append the ``view_phi`` event: ``viewer`` (in ``role``) was shown a run's PHI.

    Raises:
        DecisionRefusedError: ``agent_not_installed``: the event's data category is the
            agent's, so a run's PHI is shown only where its agent is installed.
    """
    if agent not in core.agents:
        raise agent_not_installed(agent, "its PHI is not shown here")
    if via is not None:
        detail = {
            **detail,
            "channel": via.channel,
            "principal": via.principal or viewer,
            "authenticated": via.authenticated,
            "token": via.token,
        }
    core.audit_log.record(
        run_id,
        time=core.clock.now(),
        actor=Actor(kind="person", id=viewer, role=role),
        action="view_phi",
        category=core.category(agent),
        outcome="success",
        patient_ref=patient_ref,
        detail=detail,
    )
