"""The real FHIR server of the test suite: testing/fhir-server (Medplum's FhirRouter under Node).

Tests never mock the FHIR server. The suite uses, in order of preference:

* the server named by ``CAREBOUND_TEST_FHIR_URL`` (``.ci/run`` starts one and sets it);
* ``node testing/fhir-server/server.mjs``, started here on a free loopback port (after
  ``npm ci`` when its ``node_modules`` are missing).

Without ``node`` (or when ``npm ci`` cannot run) the tests that need the server skip with the
reason, except in CI (``CI=true``), where they fail: CI must never silently test less.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, stop_process

SERVER_DIR = Path(__file__).resolve().parents[1] / "testing" / "fhir-server"
SERVER_SCRIPT = SERVER_DIR / "server.mjs"
BASES = ("ehr", "payer", "office")


def in_ci() -> bool:
    """True when running under CI (``CI=true``), where a missing server is a failure."""
    return os.environ.get("CI", "").lower() in {"true", "1", "yes"}


def unavailable(reason: str) -> None:
    """Skip the test with ``reason`` on a user's machine; fail it in CI."""
    if in_ci():
        pytest.fail(f"the FHIR test server is required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def node_ready() -> str | None:
    """Why the Node server cannot start here (None when it can), installing its packages once."""
    if shutil.which("node") is None:
        return (
            "node is not on PATH: install Node.js 20.19+ and npm to run the tests against the "
            "real FHIR server (testing/fhir-server)"
        )
    if (SERVER_DIR / "node_modules" / "@medplum" / "fhir-router").is_dir():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not on PATH: needed once for 'npm --prefix testing/fhir-server ci'"
    result = subprocess.run(
        [npm, "--prefix", str(SERVER_DIR), "ci", "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        return f"'npm --prefix testing/fhir-server ci' failed: {' '.join(tail)}"
    return None


@dataclass
class FhirServerProcess:
    """One ``server.mjs`` child process on a loopback port.

    ``kill()`` then ``start()`` restarts it on the same port; with ``persist`` set (a JSON file)
    the restarted server keeps every resource it had acknowledged, since the server rewrites the
    file before it answers a write. Without ``persist`` a restart starts empty (MemoryRepository).
    """

    port: int = field(default_factory=free_port)
    persist: Path | None = None
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path = field(
        default_factory=lambda: Path(tempfile.mkdtemp(prefix="cb-fhir-")) / "server.log"
    )

    @property
    def url(self) -> str:
        """The server's root URL (bases are URL/ehr, URL/payer, URL/office)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until ``/ehr/metadata`` answers."""
        args = ["node", str(SERVER_SCRIPT), "--port", str(self.port)]
        if self.persist is not None:
            args += ["--persist", str(self.persist)]
        args += list(self.extra_args)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{self.url}/ehr/metadata", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log_text = self.log_path.read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"the FHIR test server did not start on {self.url}:\n{log_text}")
            time.sleep(0.05)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): no goodbye, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        """Stop the server politely (SIGTERM), killing it if it lingers."""
        stop_process(self.proc)
        self.proc = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port (and persistence file)."""
        self.kill()
        self.start()


@contextmanager
def running_server(
    persist: Path | None = None, extra_args: tuple[str, ...] = ()
) -> Iterator[FhirServerProcess]:
    """A started FHIR test server, stopped afterwards (see ``FhirServerProcess``).

    Skips (fails under CI=true) when node is missing.
    """
    reason = node_ready()
    if reason is not None:
        unavailable(reason)
    server = FhirServerProcess(persist=persist, extra_args=extra_args)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class FhirBases:
    """A test's own FHIR bases on the shared server (a namespace nobody else writes to)."""

    root: str
    """URL whose /ehr, /payer and /office are this test's bases (what ``--fhir-server`` takes)."""

    @property
    def ehr(self) -> str:
        """The EHR's FHIR base URL."""
        return f"{self.root}/ehr"

    @property
    def payer(self) -> str:
        """The payer's FHIR base URL."""
        return f"{self.root}/payer"

    @property
    def office(self) -> str:
        """The referring office's FHIR base URL (CDex Tasks)."""
        return f"{self.root}/office"


def new_bases(server_url: str) -> FhirBases:
    """Fresh, empty bases under a random namespace of the server at ``server_url``."""
    return FhirBases(root=f"{server_url.rstrip('/')}/t{uuid.uuid4().hex[:12]}")


def fhir_json(response: httpx.Response) -> dict[str, object]:
    """The JSON body of a FHIR response, as a dict."""
    body = json.loads(response.content)
    assert isinstance(body, dict), body
    return body
