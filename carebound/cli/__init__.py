"""The carebound command line, for operators (run scenarios and cases, list runs, run the
worker) and reviewers (the inbox, decision packets, decisions, the audit trail).

Renderers live in the ``carebound.cli._render_*`` modules (rich, no Typer: runs, packet, audit,
server) so a web inbox can reuse them;
exit codes are :class:`carebound.cli._errors.ExitCode`.
"""

from carebound.cli._app import app, main
from carebound.cli._errors import ExitCode

__all__ = ["ExitCode", "app", "main"]
