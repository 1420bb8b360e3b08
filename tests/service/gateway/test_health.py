"""/healthz, /readyz, /metrics, the OpenAPI schema, and the `meshcast gateway` command."""

from __future__ import annotations

import os
import subprocess
import sys
from http import HTTPStatus
from pathlib import Path

import httpx
import yaml
from click.testing import CliRunner

from meshcast.cli import cli
from service.gateway.errors import ErrorCode
from service.pipeline.landmarks import LANDMARK_NAMES
from service.settings import hash_api_key
from tests.support.gateway import (
    BOB,
    MakeGateway,
    RunningGateway,
    error_of,
    gateway_command,
    gateway_settings,
    upload,
)
from tests.support.redis_server import PrivateRedis, free_loopback_port

PING_TIMEOUT_S = 0.2
COMMAND_START_TIMEOUT_S = 60.0
ERROR_SCHEMA = "#/components/schemas/ErrorResponse"
RESULT_SCHEMA = "#/components/schemas/ResultDocument"


def test_healthz_answers_while_the_process_runs(gateway: RunningGateway) -> None:
    with gateway.client(None) as client:
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (HTTPStatus.OK, {"status": "alive"})


def test_readyz_is_503_without_a_worker(make_gateway: MakeGateway) -> None:
    """No worker runs in these tests: the broker's keys are under the test's own prefix, where
    no worker listens, so Celery's ping has no one to answer it. (A gateway ready with a live
    worker is for the integration tests, which start one.)"""
    gateway = make_gateway(worker_ping_timeout_s=PING_TIMEOUT_S)
    with gateway.client(None) as client:
        response = client.get("/readyz")
    assert error_of(response) == (HTTPStatus.SERVICE_UNAVAILABLE, "not_ready")
    assert "no worker answered" in response.json()["error"]["message"]


def test_readyz_after_a_redis_restart_asks_the_queue_afresh(make_gateway: MakeGateway) -> None:
    """A connection to the broker kept from before the restart is dead; the first probe after
    it once answered "the job queue does not answer" from that connection."""
    private = PrivateRedis.start()
    try:
        gateway = make_gateway(redis_url_override=private.url, worker_ping_timeout_s=PING_TIMEOUT_S)
        with gateway.client(None) as client:
            before = client.get("/readyz").json()["error"]["message"]
            private.restart()
            after = client.get("/readyz").json()["error"]["message"]
        assert "no worker answered" in before
        assert "no worker answered" in after, after
    finally:
        private.stop()


def test_readyz_asks_redis_alone_where_told_not_to_require_a_worker(
    make_gateway: MakeGateway, unused_port: int
) -> None:
    ready = make_gateway(readyz_requires_worker=False)
    with ready.client(None) as client:
        response = client.get("/readyz")
    assert (response.status_code, response.json()) == (
        HTTPStatus.OK, {"status": "ready", "workers": None}
    )  # fmt: skip
    down = make_gateway(
        redis_url_override=f"redis://127.0.0.1:{unused_port}/0", readyz_requires_worker=False
    )
    with down.client(None) as client:
        assert error_of(client.get("/readyz")) == (HTTPStatus.SERVICE_UNAVAILABLE, "not_ready")


def test_readyz_is_503_without_redis(make_gateway: MakeGateway, unused_port: int) -> None:
    gateway = make_gateway(
        redis_url_override=f"redis://127.0.0.1:{unused_port}/0",
        worker_ping_timeout_s=PING_TIMEOUT_S,
    )
    with gateway.client(None) as client:
        response = client.get("/readyz")
    assert error_of(response) == (HTTPStatus.SERVICE_UNAVAILABLE, "not_ready")
    assert "Redis does not answer" in response.json()["error"]["message"]


def test_metrics_count_requests_jobs_refusals_and_streams_on_their_own_port(
    make_gateway: MakeGateway, video: bytes
) -> None:
    gateway = make_gateway(metrics_port=0)  # a free port
    assert gateway.metrics_url is not None
    with gateway.client() as client:
        assert upload(client, video).status_code == HTTPStatus.ACCEPTED
        assert upload(client, b"not a video").status_code == HTTPStatus.UNPROCESSABLE_ENTITY
        assert upload(client, b"").status_code == HTTPStatus.UNPROCESSABLE_ENTITY
        with gateway.client(BOB) as bob:
            assert bob.get("/jobs/AAAAAAAAAAAAAAAAAAAAAA").status_code == HTTPStatus.NOT_FOUND
        assert client.get("/no/such/route").status_code == HTTPStatus.NOT_FOUND
        # Not on the API's port, which an Ingress exposes.
        assert error_of(client.get("/metrics")) == (HTTPStatus.NOT_FOUND, "not_found")
    text = httpx.get(gateway.metrics_url).text
    lines = set(text.splitlines())
    assert "meshcast_gateway_jobs_created_total 1.0" in lines
    assert 'meshcast_gateway_uploads_refused_total{code="not_a_video"} 1.0' in lines
    assert 'meshcast_gateway_uploads_refused_total{code="empty_upload"} 1.0' in lines
    assert 'meshcast_gateway_requests_total{method="POST",route="/jobs",status="202"} 1.0' in lines
    assert (
        'meshcast_gateway_requests_total{method="GET",route="/jobs/{job_id}",status="404"} 1.0'
        in lines
    )  # the route's template, not the path: ids make no series
    assert (
        'meshcast_gateway_requests_total{method="GET",route="unmatched",status="404"} 2.0' in lines
    )  # /no/such/route and /metrics
    assert any(
        line.startswith('meshcast_gateway_request_duration_seconds_count{method="POST"')
        for line in lines
    )
    assert "meshcast_gateway_event_streams_open 0.0" in lines


def test_two_gateways_serve_their_own_metrics(make_gateway: MakeGateway) -> None:
    """Each app has its registry and its server (port 0: a free port each): neither clashes
    with the other, and each counts its own requests."""
    first, second = make_gateway(metrics_port=0), make_gateway(metrics_port=0)
    assert first.metrics_url is not None
    assert second.metrics_url is not None
    assert first.metrics_url != second.metrics_url
    healthz = 'meshcast_gateway_requests_total{method="GET",route="/healthz",status="200"}'

    def count(gateway: RunningGateway) -> float:
        assert gateway.metrics_url is not None
        response = httpx.get(gateway.metrics_url)
        assert response.headers["content-type"].startswith("text/plain")
        counts = [line.rsplit(" ", 1) for line in response.text.splitlines()]
        return next((float(value) for name, value in counts if name == healthz), 0.0)

    with first.client(None) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == HTTPStatus.OK
    assert (count(first), count(second)) == (3.0, 0.0)


def test_the_openapi_schema_documents_the_error_model_on_every_route(
    gateway: RunningGateway,
) -> None:
    with gateway.client(None) as client:
        schema = client.get("/openapi.json").json()
        docs = client.get("/docs")
    assert docs.status_code == HTTPStatus.OK
    assert "HTTPValidationError" not in str(schema)  # FastAPI's own 422 model is replaced
    codes = schema["components"]["schemas"]["ErrorCode"]["enum"]
    assert set(codes) == {code.value for code in ErrorCode}
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            errors = {int(status): answer for status, answer in operation["responses"].items()
                      if int(status) >= HTTPStatus.BAD_REQUEST}  # fmt: skip
            assert HTTPStatus.INTERNAL_SERVER_ERROR in errors, (method, path)
            for answer in errors.values():
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == ERROR_SCHEMA, (method, path)
            if path.startswith("/jobs"):
                assert {HTTPStatus.UNAUTHORIZED, HTTPStatus.TOO_MANY_REQUESTS} <= set(errors)
                assert operation["security"] == [{"ApiKey": []}]
    upload_errors = schema["paths"]["/jobs"]["post"]["responses"]
    for status in (HTTPStatus.REQUEST_ENTITY_TOO_LARGE, HTTPStatus.UNSUPPORTED_MEDIA_TYPE):
        assert str(int(status)) in upload_errors
    assert "`not_a_video`" in upload_errors["422"]["description"]
    form = schema["paths"]["/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert list(form["schema"]["properties"])[-1] == "video"  # options first


def test_the_openapi_schema_documents_result_json_with_the_landmark_names(
    gateway: RunningGateway,
) -> None:
    with gateway.client(None) as client:
        schema = client.get("/openapi.json").json()
    answers = schema["paths"]["/jobs/{job_id}/result.{fmt}"]["get"]["responses"]
    whole = answers[str(int(HTTPStatus.OK))]["content"]
    assert whole["application/json"]["schema"]["$ref"] == RESULT_SCHEMA
    assert "schema" not in whole["application/octet-stream"]  # result.npz
    part = answers[str(int(HTTPStatus.PARTIAL_CONTENT))]["content"]
    assert "schema" not in part["application/json"]  # a range is not a document
    document = schema["components"]["schemas"][RESULT_SCHEMA.rsplit("/", 1)[-1]]
    names = document["properties"]["landmark_names"]
    listed = ", ".join(f"{index} {name}" for index, name in enumerate(LANDMARK_NAMES))
    assert listed in names["description"]


def test_hash_key_prints_the_digest_for_the_configuration() -> None:
    result = CliRunner().invoke(cli, ["gateway", "hash-key", "my-key"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == hash_api_key("my-key")
    piped = subprocess.run(
        [sys.executable, "-m", "meshcast", "gateway", "hash-key"],
        input="my-key\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == hash_api_key("my-key") + "\n"
    assert piped.stderr == ""  # no GetPassWarning, no prompt


def test_the_command_serves_the_gateway(
    redis_url: str, redis_prefix: str, bundle: Path, tmp_path: Path
) -> None:
    settings = gateway_settings(redis_url, redis_prefix).model_copy(update={"bundle": bundle})
    config = tmp_path / "meshcast.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    port = free_loopback_port()
    with gateway_command(config, port):
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == HTTPStatus.OK


def test_a_missing_bundle_stops_the_command_before_it_listens(
    redis_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Its body poses every mesh served: the gateway does not start without it."""
    missing = tmp_path / "no-bundle"
    settings = gateway_settings(redis_url, redis_prefix).model_copy(update={"bundle": missing})
    config = tmp_path / "meshcast.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    command = [sys.executable, "-m", "meshcast", "gateway", "--config", str(config),
               "--port", str(free_loopback_port())]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True,
                            timeout=COMMAND_START_TIMEOUT_S)  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"meshcast: error: {missing} is not a model bundle: it has no manifest.json"
    ]


def test_the_gateway_imports_no_torch_and_no_training() -> None:
    code = (
        "import sys, service.gateway, meshcast.commands.gateway; "
        "assert not {'torch', 'training'} & set(sys.modules), 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
