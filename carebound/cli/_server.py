"""``carebound server status|stop`` (the embedded store); registers ``carebound worker``
(:mod:`carebound.cli._worker`)."""

from __future__ import annotations

from typing import Any

import typer

from carebound.cli._group import JsonGroup
from carebound.cli._session import JsonOpt, print_json, stdout

server_app = typer.Typer(
    cls=JsonGroup,
    name="server",
    help="The embedded store (a Valkey server kept in CAREBOUND_HOME).",
    no_args_is_help=True,
)


def _external_url() -> str | None:
    from carebound.store import StoreSettings, mask_url

    url = StoreSettings.from_env().redis_url
    return mask_url(url) if url else None


@server_app.command("status")
def server_status(as_json: JsonOpt = False) -> None:
    """Where the embedded server is: running or not, pid, socket or port, data dir, size."""
    from carebound.store import StoreSettings
    from carebound.store import server_status as read_status

    settings = StoreSettings.from_env()
    status = read_status(settings)
    external = _external_url()
    if as_json:
        embedded: dict[str, Any] | None = None
        if status is not None:
            embedded = {
                "running": status.running,
                "pid": status.pid,
                "url": status.url,
                "socket": str(status.socket) if status.socket is not None else None,
                "port": status.port,
                "data_dir": str(status.data_dir),
                "data_bytes": status.data_bytes,
                "version": status.version,
                "binary": status.binary,
            }
        print_json({"data_dir": str(settings.home), "external_url": external, "embedded": embedded})
        return
    from carebound.cli._render_server import server_view

    stdout().print(server_view(status, settings.home, external))


@server_app.command("stop")
def server_stop(as_json: JsonOpt = False) -> None:
    """Shut the embedded server down cleanly (it writes its data out first)."""
    from carebound.store import StoreSettings, stop_server

    settings = StoreSettings.from_env()
    stopped = stop_server(settings)
    if as_json:
        print_json({"stopped": stopped, "data_dir": str(settings.home)})
        return
    if stopped:
        typer.echo(f"stopped the embedded server in {settings.home}")
    else:
        typer.echo(f"no embedded server running in {settings.home}")


def register(app: typer.Typer) -> None:
    """Add ``server`` and ``worker`` to the app."""
    from carebound.cli._worker import worker_app

    app.add_typer(server_app)
    app.add_typer(worker_app)
