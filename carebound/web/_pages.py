"""The reviewer's pages: sign-in, the inbox, a hold's decision packet, a run and its audit trail.

Every page needs a signed-in reviewer; every form that changes something carries the session's
CSRF token and is checked, server-side, before anything else happens.

Each concept has its own module (``_pages_signin``, ``_pages_review``, ``_pages_runs``; what
they share in ``_page``); this one is the route table, and the one router built from it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from carebound.web import (
    _pages_dashboard,
    _pages_review,
    _pages_runs,
    _pages_runs_list,
    _pages_signin,
)

ROUTES: tuple[tuple[str, str, Callable[..., Any]], ...] = (
    ("GET", "/", _pages_signin.home),
    ("GET", "/login", _pages_signin.login_form),
    ("POST", "/login", _pages_signin.login),
    ("POST", "/logout", _pages_signin.logout),
    ("GET", "/inbox", _pages_review.inbox),
    ("GET", "/inbox.json", _pages_review.inbox_json),
    ("GET", "/approvals/{approval_id}", _pages_review.approval_page),
    ("POST", "/approvals/{approval_id}/reveal", _pages_review.reveal),
    ("POST", "/approvals/{approval_id}/decision", _pages_review.decide),
    ("GET", "/dashboard", _pages_dashboard.dashboard),
    ("GET", "/runs", _pages_runs_list.runs_page),
    ("POST", "/runs/purge", _pages_runs_list.purge_runs),
    ("GET", "/runs/purged/{report_id}", _pages_runs_list.purge_report),
    ("POST", "/runs/{run_id}/cancel", _pages_runs_list.cancel_run),
    ("GET", "/runs/{run_id}", _pages_runs.run_page),
    ("POST", "/runs/{run_id}/reveal", _pages_runs.reveal_run),
    ("GET", "/runs/{run_id}/audit", _pages_runs.audit_page),
    ("POST", "/runs/{run_id}/audit/reveal", _pages_runs.reveal_audit),
)
"""Every page, in the order the router matches them: method, path, endpoint."""

router = APIRouter(include_in_schema=False)
for _method, _path, _endpoint in ROUTES:
    router.add_api_route(_path, _endpoint, methods=[_method])
