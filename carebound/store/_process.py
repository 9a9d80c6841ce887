"""Is a recorded server process still there, and is it really a server?"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (an exited child nobody has reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return not _is_zombie(pid)


def is_server_process(pid: int) -> bool:
    """True if ``pid`` is alive and runs a valkey-server or redis-server of this user.

    A pidfile left behind by a crash may name a pid the system has since given to an
    unrelated process; that one must be neither waited for nor signalled.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False  # gone, or another user's process
    if _is_zombie(pid):
        return False
    command = _command_line(pid)
    return command is None or "server" in command


def _is_zombie(pid: int) -> bool:
    if sys.platform.startswith("linux"):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        # The state follows the parenthesised command name, which may itself hold spaces.
        return stat.rpartition(")")[2].split()[:1] == ["Z"]
    state = _ps(pid, "stat=")
    return state is not None and state.startswith("Z")


def _command_line(pid: int) -> str | None:
    """The process's command line, or None when it cannot be read on this platform."""
    if sys.platform.startswith("linux"):
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        return raw.replace(b"\0", b" ").decode(errors="replace")
    return _ps(pid, "command=")


def _ps(pid: int, field: str) -> str | None:
    try:
        done = subprocess.run(
            ["ps", "-p", str(pid), "-o", field],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out or None
