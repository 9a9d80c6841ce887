"""The error tree of carebound.

Every error a caller can act on derives from one base and says how to fix the problem. Each
class has a stable ``code`` (drawn in brackets), which the CLI, the web API and services can
match on instead of the class or the message; a test checks this tree against the code::

    CareboundError [carebound]
    ├── StoreUnavailableError [store_unavailable]       the Redis/Valkey store is unreachable
    │   └── StoreWriteRefusedError [store_write_refused]   it answers but refuses writes
    ├── LeaseLostError [lease_lost]                     another worker holds the run
    ├── NotFoundError [not_found]                       no run or approval with that id
    ├── RunStateError [run_state]                       the run cannot do that now
    │   └── RunIdTakenError [run_id_taken]              a start named another run's id
    ├── DecisionRefusedError [decision_refused]         a reviewer decision was refused
    │   ├── AlreadyDecidedError [already_decided]       someone else decided first
    │   └── CredentialRefusedError [credential_refused]    the credential does not allow it
    ├── InvalidIdentifierError [invalid_identifier]     an id with look-alike characters
    ├── InputLimitError [input_limit]                   input too large, deep or unusable
    ├── ReadDeniedError [read_denied]                   an agent's read beyond its grant
    ├── CliInputError [cli_input]                       a command-line value (exit code 2)
    ├── FhirInputError [fhir_input]                     FHIR input not valid JSON or R4B
    ├── ScenarioError [scenario]                        a scenario file cannot be used
    ├── PolicyPackError [policy_pack]                   a policy pack is missing or invalid
    ├── ReferralSettingsError [referral_settings]       a referral agent's pack settings
    ├── MatchInputError [match_input]                   three-way match documents differ
    ├── ToolDefinitionError [tool_definition]           a tool declared wrongly (a bug)
    ├── ConnectorError [connector]                      a connector refused a call or data
    │   ├── ResourceNotFoundError [resource_not_found]  no such record in that system
    │   ├── FhirValidationError [fhir_validation]       a resource fails FHIR R4 validation
    │   ├── TaskPermissionError [task_permission]       a Task change the role may not make
    │   ├── ConnectorsConfigError [connectors_config]   the connectors file cannot be used
    │   ├── SystemUnavailableError [system_unavailable]  a system is down: the run waits
    │   ├── SystemRefusedError [system_refused]         a system refused a call (4xx)
    │   ├── VersionConflictError [version_conflict]     the record changed since it was read
    │   └── ConnectorAuthError [connector_auth]         the system refused the credentials
    ├── ModelConfigError [model_config]                 a named chat model cannot be loaded
    ├── AuditDetailError [audit_detail]                 an audit detail looks like PHI
    ├── AuditConflictError [audit_conflict]             the chain head kept moving
    ├── AuditCorruptError [audit_corrupt]               a stored entry cannot be read
    ├── AuditKeyError [audit_key]                       the audit key cannot be used
    ├── AuditExportError [audit_export]                 an anchors file cannot be used
    └── CredentialError [credential]                    a password or token cannot be set

Where they live: the engine's errors here (exported by ``carebound``); the others beside their
subject (``carebound.audit``, ``carebound.tools.connectors``, ``carebound.guardrails``,
``carebound.scenario``, ``carebound.web``, ...). A class's code is its name in snake case without
``Error`` unless it sets ``code`` itself; a renamed class keeps its code by setting it.

``DecisionRefusedError`` instances narrow ``code`` to the reason the decision was refused:
``unknown_reviewer``, ``wrong_role``, ``own_run``, ``stale``, ``same_approver``,
``invalid_edit``, ``edit_beyond_grant``, ``unknown_tool``, ``agent_not_installed``,
``already_decided``, ...

Control signals (a hold for approval, a denied tool call) are *not* errors: they are part of a
run's normal result.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import ValidationError


ECHO_LIMIT = 80
"""The most characters of a caller's id that an error message quotes back."""


def echo_id(value: str) -> str:
    """``value`` quoted (``repr``: control characters escaped) for an error message, cut to
    :data:`ECHO_LIMIT` characters with its length when longer, so a 404 or a refusal never
    hands a caller's megabyte back, in a terminal, a log line or an HTTP answer."""
    if len(value) <= ECHO_LIMIT:
        return repr(value)
    return f"{value[:ECHO_LIMIT]!r}... ({len(value):,} characters)"


def _snake(name: str) -> str:
    """``StoreWriteRefusedError`` -> ``store_write_refused``."""
    stem = name.removesuffix("Error") or name
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", stem).lower()


class CareboundError(Exception):
    """Base class of every carebound error.

    Args:
        message: what went wrong, and where.
        hint: how to fix it.
    """

    code: str = "carebound"
    """Stable code of the error class (see the tree above)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in vars(cls):
            cls.code = _snake(cls.__name__)

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  hint: {hint}" if hint else message)


class StoreUnavailableError(CareboundError):
    """The run store (Redis or the embedded Valkey server) cannot be reached or started."""


class StoreWriteRefusedError(StoreUnavailableError):
    """The store answers but refuses to write: it cannot save to disk (MISCONF), it is a
    read-only replica (READONLY), it is out of memory (OOM), or it lacks the replicas its
    ``min-replicas-to-write`` asks for (NOREPLICAS)."""


class LeaseLostError(CareboundError):
    """This process no longer holds the run's lease; another worker owns its checkpoints."""


class NotFoundError(CareboundError):
    """No run or approval has that id."""


class RunStateError(CareboundError):
    """The run is not in a state that allows the operation."""


class RunIdTakenError(RunStateError):
    """A start named its run id (``Runner.start(run_id=...)``) and another run has it, or
    another start is claiming it now."""


class DecisionRefusedError(CareboundError):
    """A reviewer's decision was refused.

    The instance's ``code`` is the reason, one of: ``unknown_reviewer``, ``wrong_role``,
    ``own_run``, ``stale``, ``same_approver``, ``invalid_edit``, ``edit_beyond_grant``,
    ``unknown_tool``, ``agent_not_installed`` (the hold's agent is not installed in this
    process), ``already_decided``, ``system_unavailable`` (an edit's check needs a system that
    is down; the class's code is ``decision_refused``).
    """

    def __init__(self, message: str, *, code: str, hint: str | None = None) -> None:
        self.code = code
        super().__init__(message, hint=hint)


class ReadDeniedError(CareboundError):
    """A planner or packet builder asked to read through a tool its agent's grant does not hold
    (recorded as a denied read in the audit trail)."""


class AlreadyDecidedError(DecisionRefusedError):
    """Another reviewer decided this approval first."""

    def __init__(self, message: str, *, decided_by: str, decided_at: str) -> None:
        self.decided_by = decided_by
        self.decided_at = decided_at
        super().__init__(message, code="already_decided")


def format_validation_error(exc: ValidationError) -> str:
    """One line per problem: the dotted path inside the document, then the message."""
    lines = []
    for err in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        lines.append(f"  - {loc or '(top level)'}: {err['msg']}")
    return "\n".join(lines)
