"""The web page at ``/`` as the gateway serves it: every file it names is the gateway's own,
its policy allows nothing else, and it is told the upload limits it checks. (The page at
work, in a browser against a worker: tests/service/test_integration.py.)"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from http import HTTPStatus

from service.gateway.web import IMPORT_MAP
from tests.support.gateway import MakeGateway

MAX_BYTES = 123_456
IMPORT = re.compile(r"""^\s*import .*? from '([^']+)';""", re.MULTILINE)


def test_the_page_names_only_the_gateways_files_and_its_policy_only_the_gateway(
    make_gateway: MakeGateway,
) -> None:
    gateway = make_gateway(upload={"max_bytes": MAX_BYTES})
    with gateway.client(None) as client:
        page = client.get("/")
        assert page.status_code == HTTPStatus.OK
        assert page.headers["content-type"].startswith("text/html")
        assert f'data-max-bytes="{MAX_BYTES}"' in page.text
        assert "video/mp4" in page.text  # the content types it takes
        assert not re.search(r"(?:src|href)=\"https?:", page.text)  # no other host
        policy = dict(
            part.split(" ", 1) for part in page.headers["content-security-policy"].split("; ")
        )
        assert policy["default-src"] == "'self'"
        assert policy["connect-src"] == "'self'"
        inline = IMPORT_MAP.search(page.text)
        assert inline is not None
        digest = base64.b64encode(hashlib.sha256(inline.group(1).encode()).digest()).decode()
        assert policy["script-src"] == f"'self' 'sha256-{digest}'"
        # Every file the page names, and every module the import map and the app import.
        names = re.findall(r'(?:src|href)="(ui/[^"]+)"', page.text)
        imports = json.loads(inline.group(1))["imports"]
        assert {"ui/style.css", "ui/app.js"} <= set(names)
        for name in names:
            assert client.get(f"/{name}").status_code == HTTPStatus.OK, name
        three = client.get("/" + imports["three"].removeprefix("./"))
        assert three.status_code == HTTPStatus.OK
        app = client.get("/ui/app.js").text
        for module in IMPORT.findall(app):
            # as a browser resolves it: the exact key, else the longest "…/" key before it
            folders = [key for key in imports if key.endswith("/") and module.startswith(key)]
            prefix = module if module in imports else max(folders, key=len)
            path = imports[prefix] + module.removeprefix(prefix)
            assert client.get("/" + path.removeprefix("./")).status_code == HTTPStatus.OK, module
        assert "eval(" not in app  # the policy forbids it


def test_the_page_needs_no_key_and_is_not_in_the_api_document(make_gateway: MakeGateway) -> None:
    with make_gateway().client(None) as client:
        assert client.get("/").status_code == HTTPStatus.OK
        assert client.head("/").status_code == HTTPStatus.OK
        assert "/" not in client.get("/openapi.json").json()["paths"]
        assert client.get("/ui/no-such-file.js").status_code == HTTPStatus.NOT_FOUND
