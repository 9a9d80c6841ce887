"""``carebound login``, ``logout`` and ``whoami``: the command line's credential.

``login`` checks a token against the store and keeps it for that store in the user's config
directory (mode 0600); every later decision and PHI view is made as its principal. See
:mod:`carebound.cli._credential`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from carebound.cli._errors import CliInputError
from carebound.cli._session import JsonOpt, open_runner, print_json

if TYPE_CHECKING:
    from carebound._tokens import Scope
    from carebound.engine.runner import Runner


LOGIN_TOKEN_PREFIX = "login-"
"""Name prefix of the personal tokens ``carebound login --reviewer`` makes (logout revokes them)."""
LOGIN_SCOPES: tuple[Scope, ...] = ("read", "decide", "reveal")
"""What a token made by signing in with a password may do: what the reviewer may do in the web
inbox (never start runs or deliver events)."""


def login(
    reviewer: Annotated[
        str | None,
        typer.Option(
            "--reviewer",
            help="Sign in with your web password instead of a token: a personal token (read, "
            "decide, reveal) is made for you and kept.",
        ),
    ] = None,
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from stdin (scripts).")
    ] = False,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin (scripts).")
    ] = False,
    policy: Annotated[
        str, typer.Option("--policy", help="Policy pack whose reviewer directory you are in.")
    ] = "default",
    as_json: JsonOpt = False,
) -> None:
    """Sign in: decisions and PHI views from this account are then made as you.

    Either paste the personal token an admin made ('carebound tokens create NAME --as YOU
    --scope read --scope decide --scope reveal'), or give --reviewer and your web password.
    The token is checked against the store and kept for this store in your config directory
    (credentials.json, mode 0600); CAREBOUND_TOKEN overrides it."""
    from carebound.cli._credential import save_token, token_principal

    runner = open_runner()
    if reviewer is not None:
        token = _token_for_password(runner, reviewer, password_stdin, policy)
    else:
        if password_stdin:
            raise CliInputError(
                "--password-stdin needs --reviewer", hint="carebound login --reviewer YOUR_ID"
            )
        if token_stdin:
            token = sys.stdin.readline().strip()
        else:
            token = typer.prompt("token", hide_input=True).strip()
        if not token:
            raise CliInputError(
                "no token given", hint="paste the token 'carebound tokens create' made"
            )
    who = token_principal(runner, token, "the token given")
    assert who.token is not None
    path = save_token(token)
    if as_json:
        print_json(
            {
                "principal": who.reviewer,
                "token": who.token.name,
                "scopes": list(who.token.scopes),
                "saved_to": str(path),
            }
        )
        return
    typer.echo(
        f"signed in as {who.reviewer} (token {who.token.name}; scopes "
        f"{', '.join(who.token.scopes) or 'none'})"
    )
    typer.secho(f"token kept in {path}", err=True, dim=True)


def _token_for_password(runner: Runner, reviewer: str, from_stdin: bool, policy: str) -> str:
    """Check a reviewer's web password and make them a personal token."""
    import secrets
    import socket

    from carebound._tokens import CredentialRefusedError
    from carebound.cli._web import _require_web_extra
    from carebound.guardrails import load_policy_pack

    _require_web_extra()  # passwords are argon2id hashes
    from carebound.web._users import UserStore

    users = UserStore(runner.client, load_policy_pack(policy), prefix=runner.prefix)
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("password", hide_input=True)
    person = users.verify(reviewer, password)
    if person is None:
        raise CredentialRefusedError(
            "wrong reviewer id or password",
            code="not_authenticated",
            hint="the password is the one set by 'carebound users set-password ID'",
        )
    host = "".join(c for c in socket.gethostname() if c.isalnum() or c in "-.")[:40] or "cli"
    name = f"{LOGIN_TOKEN_PREFIX}{person.id}-{host}-{secrets.token_hex(3)}"
    return users.create_token(name, scopes=LOGIN_SCOPES, reviewer=person.id)


def logout(as_json: JsonOpt = False) -> None:
    """Forget the token 'carebound login' kept for this store. A token it made from a password
    is revoked too; a pasted token stays valid until revoked (carebound tokens revoke NAME)."""
    from carebound._tokens import find_token, token_digest, token_names_key, tokens_key
    from carebound.cli._credential import forget_token, saved_token

    token = saved_token() or ""
    if not forget_token():
        _said(as_json, {"signed_out": False, "revoked": None}, "not signed in to this store")
        return
    runner = open_runner()
    record = find_token(runner.client, runner.prefix, token) if token else None
    if record is not None and record.name.startswith(LOGIN_TOKEN_PREFIX):
        runner.client.hdel(tokens_key(runner.prefix), token_digest(token))
        runner.client.hdel(token_names_key(runner.prefix), record.name)
        said = f"signed out (token {record.name} revoked)"
        _said(as_json, {"signed_out": True, "revoked": record.name}, said)
        return
    _said(as_json, {"signed_out": True, "revoked": None}, "signed out")


def _said(as_json: bool, data: dict[str, object], line: str) -> None:
    if as_json:
        print_json(data)
    else:
        typer.echo(line)


def whoami(as_json: JsonOpt = False) -> None:
    """Who decisions made from this shell are attributed to, and how that is known."""
    from carebound._tokens import store_has_credentials
    from carebound.cli._credential import presented_token, token_principal, unauthenticated_mode

    runner = open_runner()
    presented = presented_token()
    data: dict[str, object]
    if presented is not None:
        who = token_principal(runner, *presented)
        assert who.token is not None
        data = {
            "principal": who.reviewer,
            "kind": who.via.kind,
            "authenticated": True,
            "token": who.token.name,
            "scopes": list(who.token.scopes),
            "source": presented[1],
        }
    else:
        open_store = unauthenticated_mode() or not store_has_credentials(
            runner.client, runner.prefix
        )
        data = {
            "principal": None,
            "kind": "unauthenticated" if open_store else None,
            "authenticated": False,
            "token": None,
            "scopes": [],
            "source": None,
        }
    if as_json:
        print_json(data)
    elif data["principal"] is not None:
        scopes = ", ".join(who.token.scopes) if who.token is not None else ""
        typer.echo(
            f"{data['principal']} ({data['kind']}; token {data['token']} from {data['source']}; "
            f"scopes {scopes or 'none'})"
        )
    elif data["kind"] == "unauthenticated":
        typer.echo("nobody: development mode, --reviewer is taken as given (not authenticated)")
    else:
        typer.echo("nobody: sign in with 'carebound login' to decide or reveal PHI")


def register(app: typer.Typer) -> None:
    """Add ``login``, ``logout`` and ``whoami`` to the app."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
