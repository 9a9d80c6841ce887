"""The connectors file: where each real system is, how to sign in to it, how patient to be with it.

One TOML file, validated with pydantic and loaded with pydantic-settings, so that an environment
variable overrides any value of it: ``CAREBOUND_CONNECTORS__`` then the dotted path in upper case
with ``__`` between the parts (``CAREBOUND_CONNECTORS__EHR__BASE_URL``,
``CAREBOUND_CONNECTORS__EHR__AUTH__TOKEN``). ``CAREBOUND_CONNECTORS`` names the file itself::

    [ehr]                                  # the EHR: FHIR R4 REST
    base_url = "https://ehr.example.org/fhir/r4"
    auth = { kind = "smart", token_url = "https://ehr.example.org/oauth2/token",
             client_id = "carebound", private_key_file = "keys/ehr.pem", alg = "RS384",
             scopes = ["system/Patient.rs", "system/DocumentReference.crs"] }
    timeouts = { connect_s = 5, read_s = 30 }
    retry = { attempts = 4, backoff_s = 0.5, cap_s = 30 }
    breaker = { failure_threshold = 5, reset_timeout_s = 60 }

    [payer]                                # the payer: FHIR R4 REST (optional)
    base_url = "https://payer.example.org/fhir"

    [office.cdex]                          # referring offices: Da Vinci CDex Task requests
    base_url = "https://office.example.org/fhir"
    [office.smtp]                          # ... Direct-style email
    host = "hisp.example.org"
    from_address = "referrals@direct.example.org"
    password_env = "CAREBOUND_SMTP_PASSWORD"
    [office.fax]                           # ... fax (the simulated gateway)
    provider = "simulated"

A relative ``private_key_file`` is read from the file's folder. Secrets are best kept out of the
file: ``token_env`` / ``password_env`` name the environment variable that holds them.

:func:`load_connectors_config` reads the file and raises :class:`ConnectorsConfigError` naming the
file, the dotted path inside it and the problem.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from carebound._errors import format_validation_error
from carebound.assist import TASKS, ModelConfig
from carebound.tools.connectors._errors import ConnectorsConfigError
from carebound.tools.connectors._url import Url

CONNECTORS_FILE_VAR = "CAREBOUND_CONNECTORS"
"""The environment variable that names the connectors file."""
ENV_PREFIX = "CAREBOUND_CONNECTORS__"
"""Prefix of the environment variables that override values of the file."""

__all__ = [
    "CONNECTORS_FILE_VAR",
    "ENV_PREFIX",
    "Auth",
    "BearerAuth",
    "BreakerSettings",
    "CdexConfig",
    "ConnectorsConfig",
    "EhrConfig",
    "ErpConfig",
    "FaxConfig",
    "FhirServerConfig",
    "NoAuth",
    "OfficeConfig",
    "PayerConfig",
    "RetrySettings",
    "SmartAuth",
    "SmtpConfig",
    "Timeouts",
    "configured_connectors_file",
    "connectors_config",
    "load_connectors_config",
]

_BASE_DIR: ContextVar[Path | None] = ContextVar("carebound_connectors_base_dir", default=None)


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timeouts(_Section):
    """How long one call to a system may take."""

    connect_s: float = Field(default=5.0, gt=0, le=300)
    """Seconds to open a connection."""
    read_s: float = Field(default=30.0, gt=0, le=600)
    """Seconds to wait for each read of the answer."""


class RetrySettings(_Section):
    """Retries of transient failures (timeouts, connection errors, 502/503/504, 429): exponential
    backoff with jitter, capped. Refusals (other 4xx) are never retried."""

    attempts: int = Field(default=4, ge=1, le=20)
    """Tries in all, the first included (1: never retry)."""
    backoff_s: float = Field(default=0.5, gt=0, le=60)
    """Wait before the first retry; each further wait doubles it."""
    cap_s: float = Field(default=30.0, gt=0, le=3600)
    """No wait is longer than this (a 429's Retry-After included)."""
    jitter_s: float = Field(default=0.5, ge=0, le=60)
    """Up to this many seconds are added at random to each wait."""

    @model_validator(mode="after")
    def _cap_covers_backoff(self) -> RetrySettings:
        if self.cap_s < self.backoff_s:
            raise ValueError(f"cap_s ({self.cap_s}) is smaller than backoff_s ({self.backoff_s})")
        return self


class BreakerSettings(_Section):
    """The circuit breaker of one system (its state is shared by every process through Redis)."""

    failure_threshold: int = Field(default=5, ge=1, le=1000)
    """Consecutive failed calls that open the breaker."""
    reset_timeout_s: float = Field(default=60.0, gt=0, le=86_400)
    """Seconds the breaker stays open before one trial call is let through."""


class NoAuth(_Section):
    """No authentication (a local test server)."""

    kind: Literal["none"] = "none"


class BearerAuth(_Section):
    """A static bearer token: ``token``, or better ``token_env`` naming the variable holding it."""

    kind: Literal["bearer"]
    token: SecretStr | None = None
    """The token itself (keep it out of files you share: prefer ``token_env``)."""
    token_env: str | None = None
    """The environment variable that holds the token."""

    @model_validator(mode="after")
    def _one_source(self) -> BearerAuth:
        if (self.token is None) == (self.token_env is None):
            raise ValueError("give exactly one of token and token_env")
        if self.token_env is not None and not os.environ.get(self.token_env):
            raise ValueError(f"the environment variable {self.token_env} (token_env) is not set")
        return self

    def secret(self) -> str:
        """The token to send."""
        if self.token is not None:
            return self.token.get_secret_value()
        return os.environ[self.token_env or ""]


class SmartAuth(_Section):
    """SMART Backend Services: a JWT assertion signed with our private key is traded at the
    token endpoint for a short-lived bearer token (client credentials grant)."""

    kind: Literal["smart"]
    token_url: Url
    """The authorization server's token endpoint."""
    client_id: str = Field(min_length=1)
    """Our client id, as registered with the system (the assertion's ``iss`` and ``sub``)."""
    private_key_file: Path
    """PEM file of the private key the assertion is signed with (relative: to the file's
    folder)."""
    alg: Literal["RS384", "ES384"] = "RS384"
    """Signing algorithm: RS384 (an RSA key) or ES384 (an EC P-384 key)."""
    key_id: str | None = None
    """``kid`` of the key in our registered JWK Set, when the server needs it."""
    scopes: list[str] = Field(min_length=1)
    """Scopes to ask for, e.g. ``system/Patient.rs``."""

    @field_validator("private_key_file")
    @classmethod
    def _readable_key(cls, path: Path) -> Path:
        base = _BASE_DIR.get()
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        if not os.access(path, os.R_OK):
            raise ValueError(f"cannot read {path} (check its permissions)")
        return path

    @field_validator("scopes")
    @classmethod
    def _no_blank_scope(cls, scopes: list[str]) -> list[str]:
        if any(not s.strip() or " " in s for s in scopes):
            raise ValueError("each scope is one word, e.g. 'system/Patient.rs'")
        return scopes


Auth = Annotated[NoAuth | BearerAuth | SmartAuth, Field(discriminator="kind")]
"""How to sign in to a FHIR server: ``kind`` is ``none``, ``bearer`` or ``smart``."""


class FhirServerConfig(_Section):
    """A FHIR R4 REST server: where it is, how to sign in, timeouts, retries, breaker."""

    base_url: Url
    """The FHIR base URL (``[base]/Patient/123`` is a patient)."""
    auth: Auth = NoAuth()
    timeouts: Timeouts = Timeouts()
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()


class EhrConfig(FhirServerConfig):
    """The EHR (patients, documents, referral Tasks and Communications)."""


class PayerConfig(FhirServerConfig):
    """The payer (Coverage, CoverageEligibilityResponse, ClaimResponse)."""

    subscriber_id_search: bool = False
    """The server answers ``Coverage?subscriberid=`` (FHIR R5's parameter, or a custom R4
    SearchParameter), so a member is also found by the id on the card."""


class CdexConfig(FhirServerConfig):
    """Referring offices' FHIR endpoint for Da Vinci CDex Task-based document requests."""

    channels: list[Literal["portal", "fax", "email"]] = Field(default=["portal"], min_length=1)
    """The contacts whose requests go out here as CDex Tasks: ``portal`` (an office's FHIR
    endpoint), and ``fax`` or ``email`` too when the offices chased by fax or mail answer CDex
    instead (as the local test server's office does for every scenario)."""


class SmtpConfig(_Section):
    """Direct-style secure email over SMTP (STARTTLS) through our HISP."""

    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    starttls: bool = True
    """Upgrade the connection with STARTTLS (leave on outside tests)."""
    username: str | None = None
    password: SecretStr | None = None
    """The password itself (prefer ``password_env``)."""
    password_env: str | None = None
    """The environment variable that holds the password."""
    from_address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    """Our Direct address, e.g. ``referrals@direct.example.org``."""
    timeouts: Timeouts = Timeouts()
    retry: RetrySettings = RetrySettings()
    breaker: BreakerSettings = BreakerSettings()

    @model_validator(mode="after")
    def _password_source(self) -> SmtpConfig:
        if self.password is not None and self.password_env is not None:
            raise ValueError("give at most one of password and password_env")
        if self.password_env is not None and not os.environ.get(self.password_env):
            raise ValueError(
                f"the environment variable {self.password_env} (password_env) is not set"
            )
        return self

    def secret(self) -> str | None:
        """The password to sign in with (None: no sign-in)."""
        if self.password is not None:
            return self.password.get_secret_value()
        return os.environ[self.password_env] if self.password_env else None


class FaxConfig(_Section):
    """Fax. Only the simulated gateway ships; a real one would wrap a fax provider's API."""

    provider: Literal["simulated"] = "simulated"


class ErpConfig(_Section):
    """The ERP (purchase orders, goods receipts, invoices). Only the simulated one ships: ERPs
    (SAP, Oracle, Workday) speak their own APIs, not FHIR, and no test server of one runs here;
    with ``provider = "simulated"`` a scenario's ERP records are kept in the run store."""

    provider: Literal["simulated"] = "simulated"


class OfficeConfig(_Section):
    """How we reach referring offices: at least one channel."""

    cdex: CdexConfig | None = None
    smtp: SmtpConfig | None = None
    fax: FaxConfig | None = None

    @model_validator(mode="after")
    def _some_channel(self) -> OfficeConfig:
        if self.cdex is None and self.smtp is None and self.fax is None:
            raise ValueError("configure at least one channel: [office.cdex], [office.smtp] or "
                             "[office.fax]")  # fmt: skip
        served = set(self.cdex.channels) if self.cdex is not None else set()
        for channel, section, name in (("email", self.smtp, "smtp"), ("fax", self.fax, "fax")):
            if channel in served and section is not None:
                raise ValueError(f"{channel} requests cannot go both to [office.cdex] (its "
                                 f"channels) and to [office.{name}]: choose one")  # fmt: skip
        return self


class WebhookTarget(_Section):
    """A chat channel's incoming webhook (Slack or Teams compatible JSON), signed with HMAC."""

    role: str = Field(min_length=1, max_length=64)
    """The role whose holds it announces (``*``: every role)."""
    url: Url
    secret_env: str = Field(min_length=1)
    """The environment variable holding the HMAC-SHA256 signing secret."""

    @model_validator(mode="after")
    def _secret_set(self) -> WebhookTarget:
        if not os.environ.get(self.secret_env):
            raise ValueError(f"the environment variable {self.secret_env} (secret_env) is not set")
        return self


class EmailTarget(_Section):
    """A team mailbox told about a role's holds, over ``[notify.smtp]``."""

    role: str = Field(min_length=1, max_length=64)
    to: list[str] = Field(min_length=1)


class NotifyConfig(_Section):
    """Tell people when a hold waits for them, nears its deadline or is escalated to them."""

    base_url: Url
    """The web inbox's address, for the link in each message (``/approvals/<id>``)."""
    warn_before_s: float = Field(default=3600.0, gt=0, le=7 * 86_400)
    """How long before a hold's deadline the "due soon" message goes out."""
    webhooks: list[WebhookTarget] = []
    email: list[EmailTarget] = []
    smtp: SmtpConfig | None = None
    retry: RetrySettings = RetrySettings()

    @model_validator(mode="after")
    def _smtp_for_email(self) -> NotifyConfig:
        if self.email and self.smtp is None:
            raise ValueError("email targets need [notify.smtp]")
        return self


class ModelsConfig(_Section):
    """``[models]``: the chat models of AI assist (``carebound.assist``), named
    ``provider:model``; a task without its own model uses ``default``. ``CAREBOUND_MODEL`` and
    ``CAREBOUND_MODEL_<TASK>`` (or ``--model``), when set, are used instead of this table."""

    default: str | None = None
    classify: str | None = None
    extract: str | None = None
    draft: str | None = None
    summarise: str | None = None
    fallbacks: list[str] = []
    """Models tried in order when a task's model fails."""
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    """Seconds one model call may take before the rules take over."""
    retries: int = Field(default=1, ge=0, le=5)

    def assist_models(self) -> ModelConfig:
        """The models this table names, loaded (``ModelConfigError`` if one cannot be)."""
        tasks: dict[str, str] = {t: getattr(self, t) for t in TASKS if getattr(self, t)}
        return ModelConfig.from_names(
            self.default, tasks, fallbacks=self.fallbacks, timeout_s=self.timeout_s,
            retries=self.retries,
        )  # fmt: skip


class ConnectorsConfig(BaseSettings):
    """The connectors file, parsed. Environment variables (``CAREBOUND_CONNECTORS__...``)
    override what the file (or the caller) gives."""

    model_config = SettingsConfigDict(
        frozen=True, extra="forbid", env_prefix=ENV_PREFIX, env_nested_delimiter="__",
        case_sensitive=False,
    )  # fmt: skip

    ehr: EhrConfig
    """The EHR (required: every agent reads it)."""
    payer: PayerConfig | None = None
    """The payer; without it, runs treat coverage as "no payer connected"."""
    office: OfficeConfig | None = None
    """Outreach to referring offices; without it, outreach calls are refused."""
    erp: ErpConfig | None = None
    """The ERP; without it, ERP calls are refused."""
    notify: NotifyConfig | None = None
    """Notifications to reviewers (see :func:`load_notify_config`)."""
    models: ModelsConfig | None = None
    """Chat models for AI assist; without it (and without ``CAREBOUND_MODEL``) rules only."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment wins over the file's values (given as init values by the loader).
        return env_settings, init_settings


def load_connectors_config(path: str | Path) -> ConnectorsConfig:
    """Read and check the connectors file at ``path`` (environment overrides applied).

    Raises:
        ConnectorsConfigError: the file cannot be read, is not TOML, or a value is wrong; the
            message names the file, the dotted path inside it and the problem.
    """
    file = Path(path)
    return _validated(_read_toml(file), where=str(file), base_dir=file.resolve().parent)


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConnectorsConfigError(
            f"{file}: cannot read the connectors file: {exc.strerror or exc}",
            hint=f"check the path (--connectors or {CONNECTORS_FILE_VAR})",
        ) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConnectorsConfigError(
            f"{file}: not UTF-8 text (byte {exc.start})", hint="save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConnectorsConfigError(
            f"{file}: not valid TOML: {exc}", hint="fix the TOML syntax at that line and column"
        ) from None


def connectors_config(data: Mapping[str, Any], *, base_dir: Path | None = None) -> ConnectorsConfig:
    """Check a connectors configuration given as data (as the file would hold it)."""
    return _validated(data, where="connectors configuration", base_dir=base_dir)


def load_notify_config(path: str | Path) -> NotifyConfig | None:
    """The ``[notify]`` table alone of the connectors file at ``path``, checked (None: it has
    none); raises ``ConnectorsConfigError`` as :func:`load_connectors_config` does."""
    return _load_table(path, "notify", NotifyConfig, example="'Notifications'")


def load_models_config(path: str | Path) -> ModelsConfig | None:
    """The ``[models]`` table alone, as :func:`load_notify_config` reads ``[notify]`` (a file
    naming no system: its runs use the simulator, with these models)."""
    return _load_table(path, "models", ModelsConfig, example="'AI assist'")


_Table = TypeVar("_Table", bound=BaseModel)


def _load_table(path: str | Path, name: str, model: type[_Table], *, example: str) -> _Table | None:
    file = Path(path)
    table = _read_toml(file).get(name)
    try:
        with _relative_to(file.resolve().parent):
            return None if table is None else model.model_validate(table)
    except ValidationError as exc:
        raise ConnectorsConfigError(
            f"{file}: invalid [{name}] table:\n{format_validation_error(exc)}",
            hint=f"fix the values at those paths; README {example} has an example",
        ) from None


def configured_connectors_file() -> Path | None:
    """The file ``CAREBOUND_CONNECTORS`` names (None: unset or empty)."""
    value = os.environ.get(CONNECTORS_FILE_VAR, "").strip()
    return Path(value) if value else None


def _validated(data: Mapping[str, Any], *, where: str, base_dir: Path | None) -> ConnectorsConfig:
    try:
        with _relative_to(base_dir):
            return ConnectorsConfig(**data)
    except ValidationError as exc:
        raise ConnectorsConfigError(
            f"{where}: invalid connectors configuration:\n{format_validation_error(exc)}",
            hint=f"fix the values at those paths (an environment variable {ENV_PREFIX}<PATH> "
            "overrides the file's value); README 'Connect to your systems' has a complete file",
        ) from None


@contextmanager
def _relative_to(base_dir: Path | None) -> Iterator[None]:
    token = _BASE_DIR.set(base_dir)
    try:
        yield
    finally:
        _BASE_DIR.reset(token)
