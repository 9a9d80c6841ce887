"""``carebound agents``: the agents this process can run and decide, where each comes from,
and the installed ones left out, with why (an operator's check after installing a package)."""

from __future__ import annotations

import typer

from carebound.cli._session import JsonOpt, print_json, stdout


def agents(as_json: JsonOpt = False) -> None:
    """List the agents this process knows: shipped, and installed through the
    'carebound.agents' entry points; installed ones left out are listed with why.

    Every process that drives or decides an agent's runs (the CLI, the web inbox, workers)
    needs the agent installed: run this where a hold says 'agent not installed'.
    """
    from rich.table import Table

    from carebound.agents import SHIPPED, load_registry

    found = load_registry()
    if as_json:
        print_json(
            {
                "agents": [
                    {
                        "name": name,
                        "version": agent.version,
                        "description": agent.description,
                        "source": found.sources[name],
                    }
                    for name, agent in sorted(found.agents.items())
                ],
                "left_out": list(found.left_out),
            }
        )
        return
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("agent", "version", "from", "what it does"):
        table.add_column(column, overflow="fold")
    for name, agent in sorted(found.agents.items()):
        source = found.sources[name]
        table.add_row(name, agent.version, "shipped" if source == SHIPPED else source,
                      agent.description)  # fmt: skip
    console = stdout()
    console.print(table)
    for problem in found.left_out:
        console.print(f"left out: {problem}", style="yellow", markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    """Add ``agents`` to the app."""
    app.command("agents")(agents)
