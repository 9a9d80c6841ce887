"""The carebound command line (placeholder entry point until the CLI lands)."""

from __future__ import annotations


def main() -> None:
    """Run the carebound command line."""
    raise SystemExit("carebound: the CLI is not built yet")
