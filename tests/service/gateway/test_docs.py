"""``/docs`` works with the gateway as the only host reachable: Swagger UI's page names only
the gateway's own URLs, and the gateway serves each of them."""

from __future__ import annotations

import re
from http import HTTPStatus

from service.gateway.errors import STATUS, ErrorCode, ErrorResponse
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


def test_the_openapi_document_has_an_example_of_every_request_and_error(
    gateway: RunningGateway,
) -> None:
    """Every parameter and request body has an example; every error status lists its codes
    and has an example answer of each, in the API's error shape."""
    with gateway.client(None) as client:
        document = client.get("/openapi.json").json()
    errors_seen: set[str] = set()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                assert parameter.get("examples") or parameter["schema"].get("examples"), (
                    where,
                    parameter["name"],
                )
            if "requestBody" in operation:
                for media, content in operation["requestBody"]["content"].items():
                    assert content.get("examples"), (where, media)
            for status, response in operation["responses"].items():
                if int(status) < HTTPStatus.BAD_REQUEST:
                    continue
                listed = set(re.findall(r"`([a-z_]+)`", response["description"]))
                examples = response["content"]["application/json"]["examples"]
                assert set(examples) == listed, (where, status)
                for code, example in examples.items():
                    body = ErrorResponse.model_validate(example["value"])
                    assert body.error.code == code
                    assert STATUS[ErrorCode(code)] == int(status)
                    assert body.error.message
                errors_seen |= listed
    assert errors_seen  # the document lists errors at all
