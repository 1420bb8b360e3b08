"""``/docs``: Swagger UI on the gateway's OpenAPI document, its JavaScript and CSS served by the
gateway itself from the installed ``fastapi-swagger`` package's copy of swagger-ui-dist.

FastAPI's own ``/docs`` (and ``/redoc``) load their assets from a CDN: offline, or behind a
Content-Security-Policy of the gateway alone, they show a blank page.
"""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_PATH = "/docs"
ASSETS_PATH = "/docs/assets"
ASSETS_PACKAGE = "fastapi_swagger"  # its resources/: swagger-ui-bundle.js, swagger-ui.css
JS, CSS, FAVICON = "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"


def install_docs(app: FastAPI) -> None:
    """Serve Swagger UI at ``/docs`` and its assets under ``/docs/assets`` (``app`` made with
    ``docs_url=None`` and ``redoc_url=None``)."""
    folder = resources.files(ASSETS_PACKAGE) / "resources"
    app.mount(ASSETS_PATH, StaticFiles(directory=str(folder)), name="docs-assets")

    @app.get(DOCS_PATH, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        assets = f"{root}{ASSETS_PATH}"
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title}: the API",
            swagger_js_url=f"{assets}/{JS}",
            swagger_css_url=f"{assets}/{CSS}",
            swagger_favicon_url=f"{assets}/{FAVICON}",
        )
