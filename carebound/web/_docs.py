"""``/docs``: Swagger UI for the JSON API, served from this server alone.

The UI's files (Swagger UI 5, which reads OpenAPI 3.1) come from the installed
``swagger-ui-py`` package (a dependency of the ``web`` extra), mounted at ``/docs/static``;
the page and its initializer are carebound's own (``static/swagger-init.js``: no inline
script). Nothing is fetched from a CDN, so the docs work on a network with no way out. The
page's Content-Security-Policy is the app's, except that Swagger UI may set inline styles
(``style-src 'unsafe-inline'``); scripts stay same-origin only, and the page holds no data.
"""

from __future__ import annotations

import importlib.util

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from carebound.web._headers import CSP

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>carebound API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/swagger-ui-standalone-preset.js"></script>
<script src="/static/swagger-init.js"></script>
</body>
</html>
"""


DOCS_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
"""The app's policy with inline styles allowed (Swagger UI sets some); scripts unchanged."""


def install(app: FastAPI) -> bool:
    """Serve ``/docs`` on ``app``; False (and no route) when swagger-ui-py is missing."""
    if importlib.util.find_spec("swagger_ui") is None:
        return False
    files = StaticFiles(packages=[("swagger_ui", "static")])
    app.mount("/docs/static", files, name="docs-static")

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    def docs() -> HTMLResponse:
        """Swagger UI for /openapi.json."""
        return HTMLResponse(PAGE, headers={"content-security-policy": DOCS_CSP})

    return True
