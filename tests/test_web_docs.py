"""``/docs``: Swagger UI served from the installed swagger-ui-py package (issue 17); the
browser test (tests/test_web_browser.py) renders it in Chromium."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient


def test_docs_page_and_its_files_come_from_this_server(make_web: Any) -> None:
    web = make_web()
    client = TestClient(web.app)
    page = client.get("/docs")
    assert page.status_code == 200, page.text  # was 404: docs_url=None and no route
    assert "<script>" not in page.text  # no inline script: the CSP allows none
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        answer = client.get(source)
        assert answer.status_code == 200, source
        assert len(answer.content) > 100, source
    policy = page.headers["content-security-policy"]
    assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in client.get("/inbox").headers["content-security-policy"]
    assert "SwaggerUIBundle" in client.get("/static/swagger-init.js").text
    assert client.get("/openapi.json").json()["paths"]["/api/runs"]["get"]
