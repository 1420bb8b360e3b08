"""The HTTP surface fuzzed from its own OpenAPI document (schemathesis, on Hypothesis) against a
real server and Redis: every operation, with data that fits its schema and data that does not
(paths, queries, headers such as Range, multipart uploads), a bounded number of cases each. No
answer may be a 500, and every answer must be one the document describes: a documented status
(the only 5xx are 503s the document names: /readyz with no worker here, a queue or store
down), its content type, and a body of its schema (an error's code among those it lists)."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.gateway import ALICE, SECRETS, MakeGateway, RunningGateway, upload
from tests.support.video_results import write_stored_outputs
from training.body import load_body_model

CASES_PER_OPERATION = 25  # per generation mode: the whole surface in well under a minute


@schemathesis.check
def no_internal_error(ctx: CheckContext, response: Response, case: Case) -> bool:
    """Never a 500: the gateway failed on the request (a bug)."""
    assert response.status_code != HTTPStatus.INTERNAL_SERVER_ERROR, response.text
    return True


CHECKS = [
    no_internal_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


WORKER = "fuzz-host:1:w"


@pytest.fixture
def gateway(make_gateway: MakeGateway) -> RunningGateway:
    # A rate limit the fuzzing does not reach: its 429 is documented, but would stop the rest.
    return make_gateway(rate_limit={"requests": 100_000}, quotas={"max_active_jobs": 1000})


@pytest.fixture
def finished_job(gateway: RunningGateway, video: bytes, tmp_path: Path) -> str:
    """A job of the gateway's key that succeeded with every stored file, as a worker stores
    them: its downloads are fuzzed with their real id."""
    _, files = write_stored_outputs(load_body_model("standin"), tmp_path)
    with gateway.client() as client:
        response = upload(client, video)
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    job_id: str = response.json()["id"]
    assert gateway.store.start(job_id, WORKER) is not None
    assert gateway.store.finish(job_id, WORKER, files, timings={})
    return job_id


@pytest.mark.parametrize("known_job", [False, True])
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_500_or_an_undocumented_answer(
    gateway: RunningGateway, finished_job: str, mode: GenerationMode, known_job: bool
) -> None:
    """Each operation with any id, and (``known_job``) with the id of a job that has every
    file, so that ranges, tracks, frames and formats reach the downloads themselves."""
    schema = schemathesis.openapi.from_url(f"{gateway.url}/openapi.json")
    auth = {"Authorization": f"Bearer {SECRETS[ALICE]}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # the document lists the whole surface
    operations.sort(key=lambda operation: operation.method.upper() == "DELETE")  # the job last
    for operation in operations:
        pinned = {"job_id": finished_job} if "{job_id}" in operation.path else None
        if known_job and pinned is None:
            continue

        @settings(
            max_examples=CASES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(
            case=operation.as_strategy(
                generation_mode=mode, path_parameters=pinned if known_job else None
            )
        )
        def fuzz(case: Case) -> None:
            case.call_and_validate(base_url=gateway.url, headers=auth, checks=CHECKS)

        try:
            fuzz()
        except Unsatisfiable:  # an operation with nothing to send wrong (no parameters)
            assert mode is GenerationMode.NEGATIVE, operation.label
