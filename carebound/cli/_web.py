"""The CLI's commands for the web inbox: ``serve``, ``users set-password|remove-password|list``
and ``tokens create|list|revoke``.

:func:`register` adds them to the ``carebound`` Typer app. They live with the CLI (the web
package imports nothing of the CLI's; both share :mod:`carebound._format`). Only Typer is
imported up front, so ``carebound --help`` stays fast and works without the ``web`` extra.
"""

from __future__ import annotations

import errno
import os
import socket
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from carebound._errors import CareboundError, NotFoundError, echo_id
from carebound.cli._group import JsonGroup
from carebound.cli._heap import freeze_startup_heap
from carebound.cli._session import ConnectorsOpt, JsonOpt, ModelOpt, real_connectors, use_model

METRICS_TOKEN_VAR = "CAREBOUND_METRICS_TOKEN"
"""The bearer token ``carebound serve``'s ``/metrics`` asks for (unset: none)."""

if TYPE_CHECKING:
    import redis

    from carebound._tokens import ServiceToken
    from carebound.guardrails import PolicyPack
    from carebound.web._users import UserStore

PolicyOpt = Annotated[
    str,
    typer.Option(
        "--policy",
        help="Policy pack whose reviewer directory may sign in: a built-in name or a YAML path.",
    ),
]


def _require_web_extra() -> None:
    from importlib.util import find_spec

    modules = {
        "fastapi": ("fastapi",),
        "uvicorn": ("uvicorn",),
        "jinja2": ("jinja2",),
        "argon2-cffi": ("argon2",),
        "python-multipart": ("python_multipart", "multipart"),
    }
    missing = [
        package
        for package, names in modules.items()
        if not any(find_spec(name) is not None for name in names)
    ]
    if missing:
        raise CareboundError(
            f"the web inbox needs the 'web' extra (missing: {', '.join(missing)})",
            hint="pip install 'carebound[web]'",
        )


def _store(policy: str) -> tuple[redis.Redis, str, PolicyPack, UserStore]:
    _require_web_extra()
    from carebound.cli._session import key_prefix, open_client
    from carebound.guardrails import load_policy_pack
    from carebound.web._users import UserStore

    pack = load_policy_pack(policy)
    client = open_client()
    prefix = key_prefix()
    return client, prefix, pack, UserStore(client, pack, prefix=prefix)


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port.")] = 8000,
    *,
    policy: PolicyOpt = "default",
    secure_cookies: Annotated[
        bool,
        typer.Option(
            "--secure-cookies",
            help="Always mark the session cookie Secure (set it when TLS ends at a proxy).",
        ),
    ] = False,
    session_idle: Annotated[
        int,
        typer.Option(
            "--session-idle-minutes",
            min=1,
            max=24 * 60,
            envvar="CAREBOUND_SESSION_IDLE_MINUTES",
            help="Sign a reviewer out after this many minutes without a request.",
        ),
    ] = 15,
    session_max: Annotated[
        int,
        typer.Option(
            "--session-max-hours",
            min=1,
            max=7 * 24,
            envvar="CAREBOUND_SESSION_MAX_HOURS",
            help="End every session this many hours after sign-in.",
        ),
    ] = 12,
    trusted_proxy: Annotated[
        list[str] | None,
        typer.Option(
            "--trusted-proxy",
            envvar="CAREBOUND_TRUSTED_PROXIES",
            help="Address or network (CIDR) of a reverse proxy whose X-Forwarded-For/-Proto "
            "headers are believed; repeat for several. Default: none (headers ignored).",
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON document on stdout once listening (url, reviewers who can "
            "sign in); a failure to start prints an error document.",
        ),
    ] = False,
    connectors: ConnectorsOpt = None,
    model: ModelOpt = None,
) -> None:
    """Serve the reviewer web inbox and the JSON API (uvicorn).

    Reviewers sign in with a password set by 'carebound users set-password ID'; services use a
    token from 'carebound tokens create NAME'. Run 'carebound worker' beside it for timers and
    deadlines."""
    use_model(model)
    proxies = tuple(p for item in trusted_proxy or [] for p in item.replace(",", " ").split())
    _check_networks(proxies)
    client, prefix, pack, users = _store(policy)
    import uvicorn

    from carebound.cli._session import drive_mode, retention_days
    from carebound.engine.runner import Runner
    from carebound.logs import configure as configure_logs
    from carebound.web._app import create_app, simulated_world
    from carebound.web._settings import WebSettings

    runner = Runner(
        client, prefix=prefix, policy=pack, drive=drive_mode(), connectors=connectors,
        retention_days=retention_days(),
    )  # fmt: skip
    configure_logs()  # after what can refuse to start (a bad connectors file)
    settings = WebSettings(
        secure_cookies=True if secure_cookies else None,
        session_idle_s=session_idle * 60,
        session_max_s=session_max * 3600,
        trusted_proxies=proxies,
        metrics_token=os.environ.get(METRICS_TOKEN_VAR, "").strip() or None,
    )
    # Runs started over the API get a simulated world from their case, unless they reach real
    # systems (which hold their own data).
    world = None if real_connectors(connectors) else simulated_world
    app = create_app(runner, users=users, settings=settings, world=world)
    ready = [r.id for r in pack.reviewers if users.has_password(r.id)]
    listener = _listen(host, port)  # a busy port is refused here, before anything is said
    url = f"http://{host}:{port}/"
    if as_json:
        from carebound.cli._session import print_json

        print_json({"url": url, "host": host, "port": port, "reviewers_ready": ready})
    typer.secho(f"carebound review inbox on {url}", err=True, bold=True)
    if ready:
        typer.secho(f"reviewers who can sign in: {', '.join(ready)}", err=True, dim=True)
    else:
        typer.secho(
            "no reviewer has a password yet: carebound users set-password ID", err=True, fg="yellow"
        )
    # Proxy headers are handled by the app, from --trusted-proxy only (uvicorn's own default
    # would believe any X-Forwarded-For sent from 127.0.0.1).
    config = uvicorn.Config(
        app, host=host, port=port, server_header=False, log_level="info", proxy_headers=False
    )
    server = uvicorn.Server(config)
    freeze_startup_heap()
    server.run(sockets=[listener])
    if not server.started:
        raise CareboundError(
            f"the web inbox on {url} did not start (see the log above)",
            hint="check the --host and --port, and the log lines uvicorn printed",
        )


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port`` for uvicorn, or a clear refusal (exit code 2) when
    the port is taken or the address cannot be used (uvicorn itself would exit 3, the code of
    a refused decision)."""
    from carebound.cli._errors import CliInputError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise CliInputError(
            f"--host {host!r} is not an address this machine can listen on: {exc.strerror}",
            hint="use an IP address of this machine, e.g. 127.0.0.1 or 0.0.0.0",
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        busy = exc.errno == errno.EADDRINUSE
        raise CliInputError(
            f"cannot listen on {host}:{port}: "
            + ("the port is already in use" if busy else str(exc.strerror or exc)),
            hint="stop whatever uses it (another 'carebound serve'?) or choose another --port"
            if busy
            else "choose another --host or --port (ports below 1024 need privileges)",
        ) from None
    sock.set_inheritable(True)
    return sock


def _check_networks(values: tuple[str, ...]) -> None:
    """Refuse a --trusted-proxy that is not an address or network."""
    import ipaddress

    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r} is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)",
                param_hint="--trusted-proxy",
            ) from None


# -- users ----------------------------------------------------------------------------------

users_app = typer.Typer(
    cls=JsonGroup, name="users", help="Reviewer sign-in for the web inbox.", no_args_is_help=True
)


@users_app.command("set-password")
def set_password(
    reviewer: Annotated[str, typer.Argument(metavar="ID", help="Reviewer id in the directory.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
    policy: PolicyOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Set a reviewer's web password (stored as an argon2id hash)."""
    _, _, _, users = _store(policy)
    users.require_reviewer(reviewer)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    users.set_password(reviewer, password)
    _say(as_json, {"reviewer": reviewer, "password_set": True}, f"password set for {reviewer}")


@users_app.command("remove-password")
def remove_password(
    reviewer: Annotated[str, typer.Argument(metavar="ID", help="Reviewer id.")],
    policy: PolicyOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Stop a reviewer from signing in to the web inbox."""
    _, _, _, users = _store(policy)
    removed = users.remove_password(reviewer)
    _say(
        as_json,
        {"reviewer": reviewer, "removed": removed},
        f"password removed for {reviewer}; their web sessions are ended"
        if removed
        else f"{reviewer} had no password",
    )


@users_app.command("list")
def list_users(policy: PolicyOpt = "default", as_json: JsonOpt = False) -> None:
    """The reviewer directory, and who can sign in."""
    _, _, pack, users = _store(policy)
    if as_json:
        from carebound.cli._session import print_json

        listed = [
            {
                "id": r.id,
                "name": r.name,
                "roles": list(r.roles),
                "can_sign_in": users.has_password(r.id),
            }
            for r in pack.reviewers
        ]
        print_json({"reviewers": listed})
        return
    from carebound.cli._session import stdout

    # One block per reviewer: fixed-width columns ran past 80 columns and wrapped mid-field.
    out = stdout()
    for r in pack.reviewers:
        state = "can sign in" if users.has_password(r.id) else "no password"
        out.print(f"{r.id}  {r.name}  ({state})", markup=False, highlight=False)
        out.print(f"  roles  {', '.join(r.roles)}", markup=False, highlight=False)


# -- tokens ---------------------------------------------------------------------------------

tokens_app = typer.Typer(
    cls=JsonGroup,
    name="tokens",
    help="API tokens for services, and personal tokens for reviewers ('carebound login').",
    no_args_is_help=True,
)


@tokens_app.command("create")
def create_token(
    name: Annotated[str, typer.Argument(help="Name of the service, e.g. ehr-bridge.")],
    *,
    role: Annotated[
        list[str] | None,
        typer.Option(
            "--role",
            help="A role whose holds the token may list and decide (repeatable; '*' for all). "
            "With --as: default the reviewer's roles.",
        ),
    ] = None,
    scope: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            help="What the token may do (repeatable): read, start, deliver, decide, reveal, purge. "
            "Default: read, plus decide with --role or --as.",
        ),
    ] = None,
    as_reviewer: Annotated[
        str | None,
        typer.Option(
            "--as",
            metavar="REVIEWER",
            help="Bind the token to this directory reviewer (a personal token, for "
            "'carebound login'): it decides as them only. Without it the token acts as "
            "itself, 'token:NAME'.",
        ),
    ] = None,
    policy: PolicyOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Create an API or personal token; it is printed once, on stdout, and stored only as a
    hash."""
    from carebound._tokens import SCOPES

    unknown = [s for s in scope or [] if s not in SCOPES]
    if unknown:
        raise typer.BadParameter(
            f"unknown scope(s) {', '.join(map(repr, unknown))}; scopes: {', '.join(SCOPES)}",
            param_hint="--scope",
        )
    _, _, _, users = _store(policy)
    scopes = [s for s in SCOPES if s in (scope or [])] if scope else None
    token = users.create_token(name, role or [], scopes=scopes, reviewer=as_reviewer)
    typer.secho(f"token for {name} (shown once; keep it secret):", err=True, dim=True)
    if as_json:
        from carebound.cli._session import print_json

        record = next(t for t in users.tokens() if t.name == name)
        print_json({"token": token, **_token_fields(record)})
        return
    typer.echo(token)


@tokens_app.command("list")
def list_tokens(policy: PolicyOpt = "default", as_json: JsonOpt = False) -> None:
    """Tokens: name, who they act as, roles, scopes, created."""
    _, _, _, users = _store(policy)
    if as_json:
        from carebound.cli._session import print_json

        print_json({"tokens": [_token_fields(t) for t in users.tokens()]})
        return
    from carebound.cli._session import stdout

    # One block per token, its name whole on its own line (fixed-width columns ran past 80).
    out = stdout()
    for t in users.tokens():
        out.print(t.name, markup=False, highlight=False)
        for label, value in (
            ("acts as", t.principal),
            ("roles", ", ".join(t.roles) or "-"),
            ("scopes", ", ".join(t.scopes) or "-"),
            ("created", f"{t.created_at:%Y-%m-%d %H:%M} UTC"),
        ):
            out.print(f"  {label:<8} {value}", markup=False, highlight=False)


@tokens_app.command("revoke")
def revoke_token(
    name: Annotated[str, typer.Argument(help="The token's name.")],
    policy: PolicyOpt = "default",
    as_json: JsonOpt = False,
) -> None:
    """Revoke a service's token."""
    _, _, _, users = _store(policy)
    if not users.revoke_token(name):
        raise NotFoundError(f"no token named {echo_id(name)}", hint="see 'carebound tokens list'")
    _say(as_json, {"revoked": name}, f"revoked {name}")


def _token_fields(token: ServiceToken) -> dict[str, object]:
    """A token as ``tokens list --json`` shows it (never the token itself)."""
    return {**token.model_dump(mode="json"), "principal": token.principal}


def _say(as_json: bool, data: dict[str, object], line: str) -> None:
    """Print ``data`` as one JSON document, or ``line``."""
    if as_json:
        from carebound.cli._session import print_json

        print_json(data)
    else:
        typer.echo(line)


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``users`` and ``tokens`` to a Typer app (the ``carebound`` command)."""
    app.command("serve")(serve)
    app.add_typer(users_app)
    app.add_typer(tokens_app)
