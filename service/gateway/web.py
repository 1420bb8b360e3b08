"""The web page at ``/``: enter an API key, upload a video with the job's options, follow the
job, view the people in 3D beside the preview, download every file; the key's jobs, with
delete.

Static files from the package (``web/static``, three.js vendored from its npm package by
``web/vendor.sh``), no build step and nothing from another host: the page's
Content-Security-Policy allows the gateway itself, plus the page's one inline import map by
its hash and ``blob:`` media (the preview, fetched with the key, plays from memory). The page
is the API's client: every call carries the key in its ``Authorization`` header, as any
client's would, so nothing about the API changes for it.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from service.jobs.records import MAX_MIN_TRACK_LENGTH
from service.outputs import OUTPUT_FORMATS
from service.settings import UploadLimits

WEB_FOLDER = Path(__file__).parent / "web"
PAGE_FILE = WEB_FOLDER / "index.html"
STATIC_PATH = "/ui"
IMPORT_MAP = re.compile(r'<script type="importmap">(.*?)</script>', re.DOTALL)


def page_policy(page: str) -> str:
    """The Content-Security-Policy of ``page``: the gateway's own scripts, styles, images
    and requests; the inline import map by its sha256; media from blobs the page made."""
    match = IMPORT_MAP.search(page)
    if match is None:
        raise ValueError(f"{PAGE_FILE} has no import map")
    digest = base64.b64encode(hashlib.sha256(match.group(1).encode()).digest()).decode()
    return "; ".join([
        "default-src 'self'", f"script-src 'self' 'sha256-{digest}'", "style-src 'self'",
        "img-src 'self' data: blob:", "media-src 'self' blob:", "connect-src 'self'",
        "object-src 'none'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ])  # fmt: skip


def install_web(app: FastAPI, limits: UploadLimits) -> None:
    """Serve the page at ``/`` (told the upload limits it checks before sending, and the job
    options it offers) and its files under ``/ui``."""
    values = {
        "max_bytes": str(limits.max_bytes),
        "content_types": ",".join(limits.content_types),
        "formats": ",".join(OUTPUT_FORMATS),
        "max_min_track_length": str(MAX_MIN_TRACK_LENGTH),
    }
    page = PAGE_FILE.read_text()
    for name, value in values.items():
        page = page.replace(f"{{{{{name}}}}}", html.escape(value))
    headers = {
        "Content-Security-Policy": page_policy(page),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }
    app.mount(STATIC_PATH, StaticFiles(directory=WEB_FOLDER / "static"), name="web")

    @app.get("/", include_in_schema=False)
    def web_page() -> HTMLResponse:
        return HTMLResponse(page, headers=headers)
