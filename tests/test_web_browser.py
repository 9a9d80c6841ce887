"""End to end in a real headless Chromium: sign in, watch the inbox update by itself, open a
decision packet, reveal its PHI, approve, and see the run move on.

Uses Debian's ``chromium`` (``apt-get install chromium``) driven by the PyPI ``playwright``
package; no browser is downloaded. Skipped, with the reason, where either is missing.
``CAREBOUND_DOCS_SCREENSHOTS=1 pytest tests/test_web_browser.py`` refreshes
docs/screenshots/packet.png (a shipped agent's packet) and the dashboard's.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from carebound.tools.connectors import WorldSpec
from tests.conftest import SCENARIOS
from tests.servers import serve_app
from tests.test_web import PASSWORD, PATIENT, SCRIPT, Web, _make_web

CHROMIUM = os.environ.get("CAREBOUND_CHROMIUM", "/usr/bin/chromium")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]

if not Path(CHROMIUM).is_file() and shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"no Chromium at {CHROMIUM}: apt-get install chromium (or set CAREBOUND_CHROMIUM)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package is not installed (pip install playwright)"
)
uvicorn = pytest.importorskip("uvicorn", reason="uvicorn is not installed (carebound[web])")


@pytest.fixture
def web(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> Web:
    """The app, polling its inbox every half second."""
    return _make_web(
        make_runner, redis_client, key_prefix, demo_case, demo_world, poll_interval_s=0.5
    )


def serving(web: Web) -> contextlib.AbstractContextManager[str]:
    """Serve the app with uvicorn in a thread on a free loopback port."""
    return serve_app(web.app)


@pytest.fixture
def server(web: Web) -> Iterator[str]:
    """The app's URL, served by uvicorn."""
    with serving(web) as url:
        yield url


def sign_in(page: Any, server: str, user: str) -> None:
    """Sign in through the form."""
    page.goto(f"{server}/inbox")
    assert "/login" in page.url
    page.fill("input[name=user]", user)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server}/inbox")


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    """A page in a fresh headless Chromium."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def test_sign_in_reveal_approve_in_a_real_browser(
    web: Web, server: str, page: Any, tmp_path: Path
) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    first = web.park()

    sign_in(page, server, "casey")
    rows = page.locator("#inbox tbody tr")
    assert rows.count() == 1
    link = rows.first.locator("a")
    assert SCRIPT in link.inner_text()  # shown as text, not run

    web.runner.clock.advance(timedelta(minutes=5))
    second = web.park()  # arrives while the page is open: polling picks it up, no reload
    sync_api.expect(rows).to_have_count(2)
    assert second.approval_id in rows.nth(1).inner_text()

    link.click()
    page.wait_for_url(f"{server}/approvals/{first.approval_id}")
    body = page.locator("body")
    assert PATIENT not in body.inner_text() and "•••" in body.inner_text()
    sync_api.expect(page.locator("h1")).to_contain_text("Fax the referring office")

    page.click("#reveal")
    sync_api.expect(body).to_contain_text(PATIENT)
    sync_api.expect(body).to_contain_text("555-010-2000")
    page.screenshot(path=str(tmp_path / "packet-revealed.png"), full_page=True)
    assert [e.action for e in web.runner.audit(first.run_id)].count("view_phi") == 1

    page.fill("input[name=note] >> nth=0", "office confirmed by phone")
    page.click("#approve")
    page.wait_for_url(f"{server}/runs/{first.run_id}?*")
    sync_api.expect(page.locator("#run-status")).to_have_text("waiting")
    sync_api.expect(body).to_contain_text("was recorded (decided)")
    page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
    assert (tmp_path / "run.png").stat().st_size > 10_000

    assert web.runner.get(first.run_id).status == "waiting"
    assert web.runner.approval(second.approval_id).status == "pending"
    assert dialogs == [], f"a script ran in the page: {dialogs}"


def test_docs_screenshot_of_a_packet(make_web: Any, page: Any, tmp_path: Path) -> None:
    """The README's packet screenshot is a shipped agent's packet (the packet builder's, on a
    shipped case), as a reviewer sees it; ``CAREBOUND_DOCS_SCREENSHOTS=1`` writes it to
    docs/screenshots/packet.png, otherwise to a temporary folder (checked either way)."""
    web = make_web()
    case = json.loads((SCENARIOS / "cases" / "packet_complete.json").read_text())
    view = web.runner.start(
        "packet_builder", case, requester="sam", world=WorldSpec.from_bundles(case, None)
    )
    assert view.status == "paused" and view.pending is not None
    request = view.pending.request
    target = DOCS if os.environ.get("CAREBOUND_DOCS_SCREENSHOTS") else tmp_path
    with serving(web) as url:
        sign_in(page, url, "casey")
        page.goto(f"{url}/approvals/{request.approval_id}")
        sync_api.expect(page.locator("#reveal")).to_be_visible()
        body = page.locator("body").inner_text()
        assert request.packet.summary in body  # the shipped agent's own packet
        assert all(f.label in body for f in request.packet.facts)
        target.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target / "packet.png"), full_page=True)
    assert (target / "packet.png").stat().st_size > 10_000


def test_the_supervisors_dashboard_draws_the_figures(
    make_runner: Any,
    redis_client: redis.Redis,
    key_prefix: str,
    demo_case: Any,
    demo_world: Any,
    page: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
) -> None:
    from tests.test_cli import cli

    # Every shipped scenario, on this test's keys, so every chart has figures to draw.
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    cli("--store", "working", "run", str(Path(__file__).resolve().parents[1] / "scenarios"))
    web = _make_web(make_runner, redis_client, key_prefix, demo_case, demo_world)
    with serving(web) as url:
        sign_in(page, url, "jordan")  # intake_coordinator and supervisor
        page.click("text=Dashboard")
        page.wait_for_url(f"{url}/dashboard")
        sync_api.expect(page.locator("#figures")).to_contain_text("Runs started")
        charts = page.locator(".charts svg")
        assert charts.count() == 6
        funnel = page.locator("svg[aria-label='Referral funnel'] rect")
        assert funnel.count() == 5
        assert "no figures yet" not in page.locator(".charts").inner_text()
        page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        if os.environ.get("CAREBOUND_DOCS_SCREENSHOTS"):
            DOCS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)


def test_swagger_ui_renders_from_this_server_alone(server: str, page: Any) -> None:
    """/docs in a real browser: the API's operations are listed, every request the page makes
    goes to this server (no CDN), and the Content-Security-Policy blocks nothing."""
    requested: list[str] = []
    blocked: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: blocked.append(m.text) if "Content Security" in m.text else None)
    page.goto(f"{server}/docs")
    sync_api.expect(page.locator("#swagger-ui")).to_contain_text("/api/runs")
    sync_api.expect(page.locator("#swagger-ui")).to_contain_text("/api/approvals")
    assert requested and all(url.startswith(server) or url.startswith("data:") for url in requested)
    assert blocked == []


def test_runs_waiting_for_a_system_come_and_go_on_the_open_page(
    redis_client: redis.Redis, key_prefix: str, page: Any
) -> None:
    """The inbox page's polling keeps its table of runs waiting for a system current too, not
    only the holds: a run that parks while the page is open appears, and leaves once it ended,
    with no reload."""
    from argon2 import PasswordHasher

    from carebound import load_policy_pack
    from carebound.web import UserStore, WebSettings, create_app
    from tests.servers import free_port
    from tests.test_outage import _case, _runner

    office = f"http://127.0.0.1:{free_port()}/office"  # nothing listens: the office is down
    runner = _runner(redis_client, key_prefix, office)
    hasher = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    users = UserStore(redis_client, load_policy_pack("default"), prefix=key_prefix, hasher=hasher)
    users.set_password("casey", PASSWORD)
    app = create_app(runner, users=users, settings=WebSettings(poll_interval_s=0.5))
    web = Web(runner=runner, users=users, app=app, world=None, case={})
    with serving(web) as url:
        sign_in(page, url, "casey")
        parked = page.locator("#parked tbody tr")
        assert parked.count() == 0

        view = runner.start("referral_chaser", _case(), requester="sam",
                            world=WorldSpec.from_bundles(_case(), None))  # fmt: skip
        assert view.status == "waiting"
        # The page's polling, no reload (a generous deadline: the machine may be busy).
        sync_api.expect(parked).to_have_count(1, timeout=60_000)
        sync_api.expect(page.locator("#parked")).to_be_visible()
        row = parked.first.inner_text()
        assert view.run_id in row and "office" in row
        assert parked.first.locator("a").get_attribute("href") == f"/runs/{view.run_id}"

        runner.cancel(view.run_id, by="ops", reason="test over")
        sync_api.expect(parked).to_have_count(0, timeout=60_000)
        sync_api.expect(page.locator("#parked")).to_be_hidden()
