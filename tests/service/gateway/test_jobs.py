"""GET and DELETE /jobs/{id}, and who may see a job: API keys, ownership, the rate limit, and
errors in one shape for FastAPI's own refusals too."""

from __future__ import annotations

from http import HTTPStatus
from pathlib import Path

import httpx
import pytest
import yaml

from service.settings import hash_api_key
from tests.support.gateway import (
    ALICE,
    BOB,
    SECRETS,
    MakeGateway,
    RunningGateway,
    error_of,
    upload,
)

WORKER = "test-host:1:w"
UNKNOWN_ID = "AAAAAAAAAAAAAAAAAAAAAA"  # the shape of an id, of no job


@pytest.fixture
def job_id(gateway: RunningGateway, video: bytes) -> str:
    """A job of alice's, queued."""
    with gateway.client() as client:
        response = upload(client, video)
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_get_shows_state_progress_and_timings(gateway: RunningGateway, job_id: str) -> None:
    with gateway.client() as client:
        queued = client.get(f"/jobs/{job_id}").json()
        assert queued["state"] == "queued"
        assert queued["progress"] == {"stage": "", "done": 0, "total": 0}
        assert queued["error"] is None
        gateway.store.start(job_id, WORKER)
        gateway.store.set_progress(job_id, WORKER, "encoder", 3, 10)
        running = client.get(f"/jobs/{job_id}").json()
        assert (running["state"], running["attempts"]) == ("running", 1)
        assert running["progress"] == {"stage": "encoder", "done": 3, "total": 10}
        assert running["started_at"] >= running["created_at"]
        gateway.store.fail(job_id, "out_of_memory", "the video is too large", worker=WORKER,
                           timings={"detect": 1.5})  # fmt: skip
        failed = client.get(f"/jobs/{job_id}").json()
    assert failed["state"] == "failed"
    assert failed["error"] == {"code": "out_of_memory", "message": "the video is too large"}
    assert failed["timings"] == {"detect": 1.5}
    assert failed["finished_at"] is not None


def test_the_list_holds_a_keys_own_jobs_newest_first(gateway: RunningGateway, video: bytes) -> None:
    made = []
    with gateway.client() as alice, gateway.client(BOB) as bob:
        for _ in range(3):
            made.append(upload(alice, video).json()["id"])
        bobs = upload(bob, video).json()["id"]
        assert alice.delete(f"/jobs/{made[1]}").status_code == HTTPStatus.NO_CONTENT
        listed = alice.get("/jobs").json()["jobs"]
        assert [job["id"] for job in listed] == [made[2], made[0]]
        assert listed[0] == alice.get(f"/jobs/{made[2]}").json()  # each as GET gives it
        assert [job["id"] for job in alice.get("/jobs", params={"limit": 1}).json()["jobs"]] == [
            made[2]
        ]
        assert [job["id"] for job in bob.get("/jobs").json()["jobs"]] == [bobs]
        assert error_of(alice.get("/jobs", params={"limit": 0}))[1] == "invalid_request"


def test_delete_cancels_and_removes_every_key(gateway: RunningGateway, job_id: str) -> None:
    gateway.store.start(job_id, WORKER)  # a worker runs it
    assert gateway.job_keys(job_id)
    with gateway.client() as client:
        assert client.delete(f"/jobs/{job_id}").status_code == HTTPStatus.NO_CONTENT
        assert gateway.job_keys(job_id) == []
        assert error_of(client.get(f"/jobs/{job_id}")) == (HTTPStatus.NOT_FOUND, "job_not_found")
        assert error_of(client.delete(f"/jobs/{job_id}")) == (
            HTTPStatus.NOT_FOUND, "job_not_found",
        )  # fmt: skip
    # The worker finds out at its next write, which changes nothing.
    assert not gateway.store.set_progress(job_id, WORKER, "encoder", 1, 2)
    assert gateway.job_keys(job_id) == []


def test_another_keys_job_answers_exactly_as_an_unknown_one(
    gateway: RunningGateway, job_id: str
) -> None:
    with gateway.client(BOB) as bob:
        unknown = bob.get(f"/jobs/{UNKNOWN_ID}")
        answers = [
            bob.get(f"/jobs/{job_id}"),
            bob.delete(f"/jobs/{job_id}"),
            bob.get(f"/jobs/{job_id}/events"),
            bob.get(f"/jobs/{job_id}/result.json"),
            bob.get(f"/jobs/{job_id}/tracks/1/frames/0.obj"),
        ]
    assert error_of(unknown) == (HTTPStatus.NOT_FOUND, "job_not_found")
    for answer in answers:
        assert (answer.status_code, answer.json()) == (unknown.status_code, unknown.json())
    assert gateway.store.get(job_id) is not None  # bob's DELETE did nothing


@pytest.mark.parametrize("path", ["/jobs/not%20an%20id", f"/jobs/{'x' * 200}"])
def test_a_malformed_id_is_an_unknown_job(gateway: RunningGateway, path: str) -> None:
    with gateway.client() as client:
        response = client.get(path)
    assert error_of(response) == (HTTPStatus.NOT_FOUND, "job_not_found")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no key"),
        pytest.param({"Authorization": "Bearer not-a-key"}, id="a bad key"),
        pytest.param({"Authorization": "Basic YWxpY2U6c2VjcmV0"}, id="not a bearer key"),
    ],
)
def test_a_request_without_a_valid_key_is_unauthorized(
    gateway: RunningGateway, video: bytes, headers: dict[str, str]
) -> None:
    with gateway.client(None, **headers) as client:
        answers = [client.get(f"/jobs/{UNKNOWN_ID}"), upload(client, video)]
    for answer in answers:
        assert error_of(answer) == (HTTPStatus.UNAUTHORIZED, "unauthorized")
        assert answer.headers["www-authenticate"] == "Bearer"
    assert gateway.leftovers() == []


def test_the_keys_file_s_keys_are_accepted_beside_the_settings_keys(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    keys = tmp_path / "api-keys.yaml"
    keys.write_text(yaml.safe_dump([{"id": "carol", "sha256": hash_api_key("carol-key")}]))
    gateway = make_gateway(api_keys_file=str(keys))
    for key in ("carol-key", SECRETS[ALICE]):
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=gateway.url, headers=headers) as client:
            answer = client.get(f"/jobs/{UNKNOWN_ID}")
        assert error_of(answer) == (HTTPStatus.NOT_FOUND, "job_not_found")


def test_the_rate_limit_answers_429_with_retry_after(make_gateway: MakeGateway) -> None:
    window_s = 60.0
    gateway = make_gateway(rate_limit={"requests": 3, "window_s": window_s})
    with gateway.client() as alice, gateway.client(BOB) as bob:
        statuses = [alice.get(f"/jobs/{UNKNOWN_ID}").status_code for _ in range(3)]
        refused = alice.get(f"/jobs/{UNKNOWN_ID}")
        other_key = bob.get(f"/jobs/{UNKNOWN_ID}")
    assert statuses == [HTTPStatus.NOT_FOUND] * 3
    assert error_of(refused) == (HTTPStatus.TOO_MANY_REQUESTS, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= window_s
    assert other_key.status_code == HTTPStatus.NOT_FOUND  # each key has its own window


def test_fastapis_own_errors_have_the_same_shape(gateway: RunningGateway) -> None:
    with gateway.client() as client:
        answers = {
            "no route": client.get("/nothing/here"),
            "wrong method": client.put("/jobs"),
            "a track id that is not a number": client.get(f"/jobs/{UNKNOWN_ID}/tracks/x.glb"),
            "an unknown mesh format": client.get(f"/jobs/{UNKNOWN_ID}/tracks/1/frames/0.stl"),
        }
    assert {name: error_of(answer) for name, answer in answers.items()} == {
        "no route": (HTTPStatus.NOT_FOUND, "not_found"),
        "wrong method": (HTTPStatus.METHOD_NOT_ALLOWED, "method_not_allowed"),
        "a track id that is not a number": (HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_request"),
        "an unknown mesh format": (HTTPStatus.UNPROCESSABLE_ENTITY, "invalid_request"),
    }


def test_an_unreachable_redis_is_a_503(make_gateway: MakeGateway, unused_port: int) -> None:
    gateway = make_gateway(redis_url_override=f"redis://127.0.0.1:{unused_port}/0")
    with gateway.client() as client:
        response = client.get(f"/jobs/{UNKNOWN_ID}")
        health = client.get("/healthz")
    assert error_of(response) == (HTTPStatus.SERVICE_UNAVAILABLE, "store_unavailable")
    assert health.status_code == HTTPStatus.OK  # alive all the same
