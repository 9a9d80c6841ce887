"""``carebound login``, ``logout`` and ``whoami``: the command line's credential.

``login`` checks a token against the store and keeps it for that store in the user's config
directory (mode 0600); every later decision and PHI view is made as its principal. See
:mod:`carebound.cli._credential`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from carebound.cli._errors import CliInputError
from carebound.cli._session import open_runner, print_json

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]


def login(
    token_stdin: Annotated[
        bool, typer.Option("--token-stdin", help="Read the token from stdin (scripts).")
    ] = False,
) -> None:
    """Sign in with your personal token: decisions and PHI views are then made as you.

    An admin creates the token with 'carebound tokens create NAME --as YOU --scope read
    --scope decide --scope reveal'. It is checked against the store and kept for this store
    in your config directory (credentials.json, mode 0600); CAREBOUND_TOKEN overrides it."""
    from carebound.cli._credential import save_token, token_principal

    if token_stdin:
        token = sys.stdin.readline().strip()
    else:
        token = typer.prompt("token", hide_input=True).strip()
    if not token:
        raise CliInputError("no token given", hint="paste the token 'carebound tokens create' made")
    who = token_principal(open_runner(), token, "the token given")
    assert who.token is not None
    path = save_token(token)
    typer.echo(
        f"signed in as {who.reviewer} (token {who.token.name}; scopes "
        f"{', '.join(who.token.scopes) or 'none'})"
    )
    typer.secho(f"token kept in {path}", err=True, dim=True)


def logout() -> None:
    """Forget the token 'carebound login' kept for this store (it stays valid until revoked:
    carebound tokens revoke NAME)."""
    from carebound.cli._credential import forget_token

    typer.echo("signed out" if forget_token() else "not signed in to this store")


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
