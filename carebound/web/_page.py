"""What every reviewer page shares: rendering a template, and the signed-in reviewer."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from carebound.web._context import Viewer, context, viewer

SignedIn = Annotated[Viewer, Depends(viewer)]


def render(
    request: Request,
    template: str,
    values: dict[str, Any],
    *,
    who: Viewer | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render a page (autoescaped); PHI-bearing pages are never cached."""
    ctx = context(request)
    page = {"viewer": who, "csrf": who.session.csrf if who else "", "error": None, **values}
    response = ctx.templates.TemplateResponse(
        request, template, page, status_code=status, headers=headers
    )
    response.headers["Cache-Control"] = "no-store"
    return response
