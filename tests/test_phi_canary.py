"""PHI canary: every masked output of every channel, for every shipped scenario, is PHI-free.

Each scenario in ``scenarios/`` runs on real Redis through the CLI; then every masked view of
its run is collected: the CLI (``run``, ``status``, ``show``, ``audit``, ``runs``, ``inbox``,
text and ``--json``), the web pages (decision packet, run, audit trail) and the JSON API (runs,
audit, holds). None may contain a PHI value of the case: patient names, birth dates in common
formats, phone numbers, address lines and member ids, all read from the scenario's own bundles
(the case, and the EHR and payer the world is seeded with), never listed by hand.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tests.conftest import SCENARIOS

PASSWORD = "canary password for the phi test"
BIRTH_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d/%m/%Y", "%Y%m%d", "%B %d, %Y", "%d.%m.%Y")
SCENARIO_FILES = [p for p in sorted(SCENARIOS.glob("*.yaml")) if not p.stem.startswith("bad_")]


# -- PHI of a case, from its bundles ------------------------------------------------------------


def _resources(bundle: Any) -> Iterator[dict[str, Any]]:
    for entry in bundle.get("entry") or [] if isinstance(bundle, dict) else []:
        resource = entry.get("resource") or {}
        yield resource
        if resource.get("resourceType") == "Bundle":
            yield from _resources(resource)


def _phone_forms(raw: str) -> set[str]:
    digits = re.sub(r"\D", "", raw)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    forms = {raw}
    if len(digits) == 10:
        a, b, c = digits[:3], digits[3:6], digits[6:]
        forms |= {digits, f"+1{digits}", f"{a}-{b}-{c}", f"({a}) {b}-{c}", f"{a}.{b}.{c}"}
    return forms


def _person_phi(resource: dict[str, Any]) -> set[str]:
    values: set[str] = set()
    for name in resource.get("name") or []:
        parts = [*(name.get("given") or []), name.get("family") or "", name.get("text") or ""]
        values |= {p for part in parts for p in (part, *part.split()) if p}
    if resource.get("birthDate"):
        born = date.fromisoformat(resource["birthDate"][:10])
        values |= {born.strftime(f) for f in BIRTH_DATE_FORMATS}
    for telecom in resource.get("telecom") or []:
        if telecom.get("value"):
            raw = str(telecom["value"])
            values |= _phone_forms(raw) if telecom.get("system") in ("phone", "fax") else {raw}
    for address in resource.get("address") or []:
        values |= {str(line) for line in address.get("line") or []}
    for identifier in resource.get("identifier") or []:
        if identifier.get("value"):
            values.add(str(identifier["value"]))
    return values


def case_phi(scenario: Path) -> set[str]:
    """The PHI values of a scenario's case: its patients' (and related persons') names, birth
    dates, phones, address lines and identifiers, and its Coverage member ids, from the case
    bundle and the EHR and payer bundles of its world."""
    spec = yaml.safe_load(scenario.read_text())
    paths = [spec["case"], *((spec.get("world") or {}).get(k) for k in ("ehr", "payer"))]
    values: set[str] = set()
    for rel in paths:
        if not rel:
            continue
        bundle = json.loads((scenario.parent / rel).read_text())
        for resource in _resources(bundle):
            kind = resource.get("resourceType")
            if kind in ("Patient", "RelatedPerson"):
                values |= _person_phi(resource)
            elif kind == "Coverage":
                ids = [resource.get("subscriberId")]
                ids += [i.get("value") for i in resource.get("identifier") or []]
                values |= {str(i) for i in ids if i}
    found = {v.strip() for v in values}
    return found | {v.upper() for v in found if any(c.isalpha() for c in v)}


def leaks(text: str, values: set[str]) -> list[str]:
    """The PHI values found in ``text`` as whole words (case-sensitive; 3+ characters)."""
    found = []
    for value in sorted(values):
        if len(value) < 3:
            continue
        if re.search(rf"(?<![\w]){re.escape(value)}(?![\w])", text):
            found.append(value)
    return found


def test_case_phi_is_read_from_the_bundles() -> None:
    values = case_phi(SCENARIOS / "reconcile_dob_swap.yaml")
    assert {"Kwame", "Osei", "1980-04-07", "04/07/1980", "1980-07-04", "919-555-0178"} <= values
    assert "15 Hillcrest Drive" in values
    assert leaks("born 1980-04-07.", values) == ["1980-04-07"]
    assert leaks("Patient/ref-osei 19800407123", values) == []


# -- the outputs --------------------------------------------------------------------------------


@pytest.fixture(name="env")
def env_fixture(
    monkeypatch: pytest.MonkeyPatch, redis_url: str, key_prefix: str, tmp_path: Path
) -> str:
    """The CLI's environment: the test Redis, this test's key prefix."""
    monkeypatch.setenv("CAREBOUND_REDIS_URL", redis_url)
    monkeypatch.setenv("CAREBOUND_PREFIX", key_prefix)
    monkeypatch.setenv("CAREBOUND_STORE", "working")  # scenario runs where the checks look
    monkeypatch.setenv("CAREBOUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CAREBOUND_UNAUTHENTICATED", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("CAREBOUND_DEBUG", raising=False)
    monkeypatch.delenv("CAREBOUND_TOKEN", raising=False)
    return key_prefix


def cli(*args: str) -> str:
    from carebound.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code in (0, 1), f"carebound {' '.join(args)}: {result.output}"
    return result.stdout


def _hold_ids(audit: dict[str, Any]) -> list[str]:
    ids = [e["detail"].get("approval_id") for e in audit["events"]]
    return list(dict.fromkeys(str(i) for i in ids if i))


def cli_outputs(scenario: Path) -> tuple[str, list[str], list[tuple[str, str]]]:
    """Run the scenario through the CLI; its run id, the approvals, and every masked output.

    The scenario runs once (``run``, text); its ``run --json`` report is the ``report`` that
    ``status --json`` prints (one builder, one masking), so it is read there."""
    text = cli("--store", "working", "run", str(scenario))
    found = re.search(r"^\s*run\s+(r[0-9a-f]{12})\b", text, flags=re.M)
    assert found, f"no run id in the output of carebound run {scenario.name}:\n{text}"
    run_id = found.group(1)
    outputs = [("run", text)]
    audit = json.loads(cli("audit", run_id, "--verify", "--json"))
    outputs.append(("audit --verify --json", json.dumps(audit)))
    approvals = _hold_ids(audit)
    outputs.append(("audit --verify", cli("audit", run_id, "--verify")))
    for args in (("status", run_id), ("runs",), ("inbox",)):
        outputs.append((" ".join(args), cli(*args)))
        outputs.append((" ".join(args) + " --json", cli(*args, "--json")))
    for approval_id in approvals:
        outputs.append((f"show {approval_id}", cli("show", approval_id)))
        outputs.append((f"show {approval_id} --json", cli("show", approval_id, "--json")))
    return run_id, approvals, outputs


@pytest.fixture(name="web_app")
def web_app_fixture(redis_client: redis.Redis, env: str) -> Any:
    """The web inbox and API on the scenarios' store, with the default pack's directory."""
    from carebound import Runner
    from carebound.guardrails import load_policy_pack
    from carebound.web import UserStore, create_app

    runner = Runner(redis_client, prefix=env)
    pack = load_policy_pack("default")
    users = UserStore(
        redis_client,
        pack,
        prefix=env,
        hasher=PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1),
    )
    return runner, users, create_app(runner, users=users)


def _signed_in(web: Any, user: str) -> TestClient:
    """A browser signed in as ``user`` (given a password now)."""
    _, users, app = web
    users.set_password(user, PASSWORD)
    client = TestClient(app, follow_redirects=False)
    form = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf is not None
    answer = client.post(
        "/login", data={"user": user, "password": PASSWORD, "csrf_token": csrf.group(1)}
    )
    assert answer.status_code == 303, answer.text
    return client


def web_outputs(web: Any, run_id: str, approvals: list[str]) -> list[tuple[str, str]]:
    """Every masked page and API answer about the run, seen by someone entitled to see it."""
    runner, users, app = web
    pack = runner.pack_for(run_id)
    outputs: list[tuple[str, str]] = []
    api = TestClient(app, headers={"Authorization": f"Bearer {users.create_token('c', ['*'])}"})
    for path in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/audit", "/api/approvals"):
        answer = api.get(path)
        assert answer.status_code == 200, f"{path}: {answer.text}"
        outputs.append((path, answer.text))
    browsers: dict[str, TestClient] = {}
    for role in sorted({runner.approval(a).required_role for a in approvals}):
        reviewer = next(r.id for r in pack.reviewers if role in r.roles)
        browsers[reviewer] = browsers.get(reviewer) or _signed_in(web, reviewer)
        for path in ("/inbox", "/inbox.json"):
            outputs.append((f"{path} as {reviewer}", browsers[reviewer].get(path).text))
    for approval_id in approvals:
        view = runner.approval(approval_id)
        answer = api.get(f"/api/approvals/{approval_id}")
        assert answer.status_code == 200, answer.text
        outputs.append((f"/api/approvals/{approval_id}", answer.text))
        reviewer = next(r.id for r in pack.reviewers if view.required_role in r.roles)
        if reviewer not in browsers:
            browsers[reviewer] = _signed_in(web, reviewer)
        browser = browsers[reviewer]
        for path in (f"/approvals/{approval_id}", f"/runs/{run_id}", f"/runs/{run_id}/audit"):
            answer = browser.get(path)
            assert answer.status_code == 200, f"{path}: {answer.status_code}"
            outputs.append((f"{path} as {reviewer}", answer.text))
    return outputs


WITH_PHI = [p for p in SCENARIO_FILES if case_phi(p)]
"""The scenarios whose bundles hold patient data (the billing ones hold none)."""


def test_most_scenarios_carry_patient_data() -> None:
    assert len(WITH_PHI) >= len(SCENARIO_FILES) // 2, "the canary would prove little"


@pytest.mark.parametrize("scenario", WITH_PHI, ids=[p.stem for p in WITH_PHI])
def test_no_phi_in_masked_output(scenario: Path, env: str, web_app: Any) -> None:
    values = case_phi(scenario)
    run_id, approvals, outputs = cli_outputs(scenario)
    outputs += web_outputs(web_app, run_id, approvals)
    found = {where: hit for where, text in outputs if (hit := leaks(text, values))}
    assert not found, f"{scenario.name} leaks PHI in masked output: {found}"
