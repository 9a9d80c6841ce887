"""The decision protocol through the JSON API (FastAPI TestClient, real Redis): an unknown edit
field is refused with code invalid_edit naming the fields, escalation off the declared paths is
refused with wrong_role, and one service token cannot give both approvals of a two-person hold
by naming two reviewers."""

from __future__ import annotations

import re
from typing import Any

import pytest
import redis

from carebound.guardrails import HoldRule, load_policy_pack
from carebound.tools.connectors.simulated import World
from tests.test_web import ROLE, Web, _make_web, sign_in


@pytest.fixture
def site(make_web: Any) -> Web:
    """The web app and API with the default pack."""
    return make_web()


def _url(request: Any) -> str:
    return f"/api/approvals/{request.approval_id}/decision"


def test_an_unknown_edit_field_is_refused_with_invalid_edit(site: Web) -> None:
    web = site
    request = web.park()
    api = web.api(roles=(ROLE,), name="casey-app", reviewer="casey")
    body = {"kind": "edit", "args_hash": request.args_hash, "args": {**request.args, "nonsense": 1}}
    refused = api.post(_url(request), json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "invalid_edit"
    assert "unknown field 'nonsense'" in refused.json()["detail"]
    assert "document_code, note, to" in refused.json()["detail"]
    assert web.runner.approval(request.approval_id).status == "pending"


def test_escalation_off_the_declared_paths_is_refused(site: Web) -> None:
    web = site
    request = web.park()
    api = web.api(roles=(ROLE,), name="casey-app", reviewer="casey")
    body = {"kind": "escalate", "args_hash": request.args_hash, "to_role": "billing"}
    refused = api.post(_url(request), json=body)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "wrong_role"
    assert "supervisor" in refused.json()["detail"]
    assert web.runner.approval(request.approval_id).required_role == ROLE


def test_one_service_token_cannot_approve_twice_by_naming_two_reviewers(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    pack = load_policy_pack("default")
    rule = HoldRule(
        id="TWO-1", text="Two coordinators confirm.", decision="hold", role=ROLE,
        two_person=True, when={"tool": "send_document_request"},  # type: ignore[arg-type]
    )  # fmt: skip
    options = {"policy": pack.model_copy(update={"rules": [rule]})}
    web = _make_web(
        make_runner, redis_client, key_prefix, demo_case, demo_world, runner_options=options
    )
    request = web.park()
    bridge = web.api(roles=(ROLE,), name="bridge")  # a service token acting as itself
    approve = {"kind": "approve", "args_hash": request.args_hash}
    first = bridge.post(_url(request), json=approve)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "awaiting_second_approver"
    again = bridge.post(_url(request), json=approve)
    assert again.status_code == 409 and again.json()["code"] == "same_approver", again.text
    named = bridge.post(_url(request), json={**approve, "reviewer": "jordan"})
    assert named.status_code == 403, named.text  # naming someone else changes nothing
    outreach = World.attach(web.runner.client, request.run_id, prefix=web.runner.prefix).outreach
    assert outreach.effects() == []
    assert web.runner.approval(request.approval_id).status == "pending"
    # A person with their own bound token gives the second approval.
    casey = web.api(roles=(ROLE,), name="casey-app", reviewer="casey")
    answer = casey.post(_url(request), json=approve)
    assert answer.status_code == 200 and answer.json()["outcome"] == "decided", answer.text
    assert web.runner.approval(request.approval_id).status == "approved"
    assert len(outreach.effects()) == 1


def test_the_packet_page_offers_only_the_declared_escalation_paths(site: Web) -> None:
    request = site.park()
    browser = site.browser()
    sign_in(browser, "casey")
    page = browser.get(f"/approvals/{request.approval_id}").text
    offered = re.findall(r'<option value="([^"]+)"', page.split('name="to_role"', 1)[1])
    assert offered[:1] == ["supervisor"] and "billing" not in offered
    assert set(offered) <= {"supervisor"}


def test_the_packet_page_shows_a_first_reviewers_edit_beside_the_proposal(
    make_runner: Any, redis_client: redis.Redis, key_prefix: str, demo_case: Any, demo_world: Any
) -> None:
    from carebound import Edit

    pack = load_policy_pack("default")
    rule = HoldRule(
        id="TWO-1", text="Two coordinators confirm.", decision="hold", role=ROLE,
        two_person=True, when={"tool": "send_document_request"},  # type: ignore[arg-type]
    )  # fmt: skip
    options = {"policy": pack.model_copy(update={"rules": [rule]})}
    web = _make_web(
        make_runner, redis_client, key_prefix, demo_case, demo_world, runner_options=options
    )
    request = web.park()
    edit = Edit(reviewer="casey", role=ROLE, args_hash=request.args_hash,
                args={**request.args, "note": "Fax it today."})  # fmt: skip
    assert web.runner.decide(request.approval_id, edit).outcome == "awaiting_second_approver"
    browser = web.browser()
    sign_in(browser, "jordan")
    page = browser.get(f"/approvals/{request.approval_id}").text
    assert "Edited by a reviewer" in page
    assert "Fax it today." in page
    assert "agent proposed: Please fax the most recent progress note." in page


def test_a_service_token_with_capitals_in_its_name_decides_as_itself(site: Web) -> None:
    web = site
    request = web.park()
    bridge = web.api(roles=(ROLE,), name="EHR-Bridge")
    answer = bridge.post(_url(request), json={"kind": "approve", "args_hash": request.args_hash})
    assert answer.status_code == 200, answer.text
    view = web.runner.approval(request.approval_id)
    assert view.record is not None and view.record.decided_by == "token:ehr-bridge"
