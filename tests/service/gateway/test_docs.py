"""``/docs`` works with the gateway as the only host reachable: Swagger UI's page names only
the gateway's own URLs, and the gateway serves each of them."""

from __future__ import annotations

import re
from http import HTTPStatus

from tests.support.gateway import RunningGateway

MIN_ASSET_BYTES = 256  # the icon is 628 bytes, the script 1.7 MB


def test_the_docs_page_loads_everything_from_the_gateway(gateway: RunningGateway) -> None:
    with gateway.client(None) as client:
        page = client.get("/docs")
        assert page.status_code == HTTPStatus.OK
        assert "SwaggerUIBundle" in page.text
        assert not re.search(r"https?://", page.text)  # no CDN, no other host
        assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert {asset.rsplit(".", 1)[-1] for asset in assets} == {"js", "css", "png"}
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == HTTPStatus.OK, asset
            assert len(response.content) > MIN_ASSET_BYTES, asset
        assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
        # FastAPI's ReDoc page loads from a CDN: not served.
        assert client.get("/redoc").status_code == HTTPStatus.NOT_FOUND
