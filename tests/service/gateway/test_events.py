"""GET /jobs/{id}/events: server-sent events of a job's progress, set by the test as a worker
would, until the job ends; and the cap on open streams."""

from __future__ import annotations

import time
from http import HTTPStatus
from pathlib import Path

import httpx

from tests.support.gateway import (
    ALICE,
    BOB,
    MakeGateway,
    RunningGateway,
    error_of,
    sse_events,
    upload,
)
from tests.support.redis_server import PrivateRedis

WORKER = "test-host:1:w"
QUIET_IDLE_S = 60.0  # keep-alives this seldom: a client that left must be noticed without one
RELEASE_TIMEOUT_S = 5.0
POLL_S = 0.1


def queued_job(gateway: RunningGateway, video: bytes, who: str = ALICE) -> str:
    with gateway.client(who) as client:
        response = upload(client, video)
    assert response.status_code == HTTPStatus.ACCEPTED, response.text
    job_id: str = response.json()["id"]
    return job_id


def test_progress_events_until_the_job_succeeds(
    gateway: RunningGateway, video: bytes, tmp_path: Path
) -> None:
    job_id = queued_job(gateway, video)
    result = tmp_path / "result.json"
    result.write_text("{}")
    with gateway.client() as client, client.stream("GET", f"/jobs/{job_id}/events") as stream:
        assert stream.status_code == HTTPStatus.OK
        assert stream.headers["content-type"].startswith("text/event-stream")
        received = sse_events(stream)
        # The first event says where the job stands; it comes once the gateway has
        # subscribed, so nothing the worker does from now on is missed.
        assert next(received) == ("state", _event(job_id, "state", "queued"))
        gateway.store.start(job_id, WORKER)
        gateway.store.set_progress(job_id, WORKER, "detect", 2, 5)
        gateway.store.set_progress(job_id, WORKER, "detect", 5, 5)
        gateway.store.finish(job_id, WORKER, {"result.json": result})
        rest = list(received)  # the stream ends after the terminal state
    assert rest == [
        ("state", _event(job_id, "state", "running")),
        ("progress", _event(job_id, "progress", "running", stage="detect", done=2, total=5)),
        ("progress", _event(job_id, "progress", "running", stage="detect", done=5, total=5)),
        ("state", _event(job_id, "state", "succeeded")),
    ]


def test_an_ended_job_answers_one_event(gateway: RunningGateway, video: bytes) -> None:
    job_id = queued_job(gateway, video)
    gateway.store.request_cancel(job_id)  # queued: cancelled at once
    with gateway.client() as client, client.stream("GET", f"/jobs/{job_id}/events") as stream:
        assert list(sse_events(stream)) == [("state", _event(job_id, "state", "cancelled"))]


def test_open_streams_are_capped(make_gateway: MakeGateway, video: bytes) -> None:
    gateway = make_gateway(max_event_streams=1, metrics_port=0)
    assert gateway.metrics_url is not None
    job_id = queued_job(gateway, video)
    with gateway.client() as client:
        with client.stream("GET", f"/jobs/{job_id}/events") as first:
            received = sse_events(first)
            next(received)  # open, and its thread waits for news
            refused = client.get(f"/jobs/{job_id}/events")
            assert error_of(refused) == (HTTPStatus.SERVICE_UNAVAILABLE, "too_many_streams")
            assert int(refused.headers["retry-after"]) > 0
            metrics = httpx.get(gateway.metrics_url).text
            assert "meshcast_gateway_event_streams_open 1.0" in metrics
            assert client.delete(f"/jobs/{job_id}").status_code == HTTPStatus.NO_CONTENT
            # DELETE cancels the job first: that final event ends the stream.
            assert [(name, data["state"]) for name, data in received] == [("state", "cancelled")]
        # Its place is given back: another job's stream opens.
        other = queued_job(gateway, video)
        gateway.store.request_cancel(other)
        with client.stream("GET", f"/jobs/{other}/events") as second:
            assert second.status_code == HTTPStatus.OK
            assert [name for name, _ in sse_events(second)] == ["state"]


def test_head_of_an_event_stream_opens_none(make_gateway: MakeGateway, video: bytes) -> None:
    """A HEAD answers a stream's status and headers without opening it: no place is kept."""
    gateway = make_gateway(max_event_streams=1, metrics_port=0)
    assert gateway.metrics_url is not None
    job_id = queued_job(gateway, video)
    url = f"/jobs/{job_id}/events"
    with gateway.client() as client:
        for _ in range(2):  # the one place, taken by neither
            head = client.head(url)
            assert (head.status_code, head.content) == (HTTPStatus.OK, b"")
            assert head.headers["content-type"].startswith("text/event-stream")
            metrics = httpx.get(gateway.metrics_url).text
            assert "meshcast_gateway_event_streams_open 0.0" in metrics.splitlines()
        with client.stream("GET", url) as stream:
            received = sse_events(stream)  # kept: dropping it would close the stream
            next(received)
            # Full: a HEAD answers what a GET would.
            refused = client.head(url)
            assert refused.status_code == HTTPStatus.SERVICE_UNAVAILABLE
            assert int(refused.headers["retry-after"]) > 0
            gateway.store.request_cancel(job_id)


def test_a_client_that_leaves_gives_its_place_back_at_once(
    make_gateway: MakeGateway, video: bytes
) -> None:
    """The job goes on, but its listener left: Starlette notices the closed connection, and
    the stream's place is given back well before the next keep-alive."""
    gateway = make_gateway(max_event_streams=1, store={"events_idle_s": QUIET_IDLE_S})
    job_id = queued_job(gateway, video)
    with gateway.client() as client:
        with client.stream("GET", f"/jobs/{job_id}/events") as first:
            next(sse_events(first))
        # The response is closed: httpx dropped the connection.
        left = time.monotonic()
        while True:
            with client.stream("GET", f"/jobs/{job_id}/events") as again:
                if again.status_code == HTTPStatus.OK:
                    break
                again.read()
                assert error_of(again) == (HTTPStatus.SERVICE_UNAVAILABLE, "too_many_streams")
            assert time.monotonic() - left < RELEASE_TIMEOUT_S, "the place was not given back"
            time.sleep(POLL_S)


def test_one_key_cannot_take_every_stream(make_gateway: MakeGateway, video: bytes) -> None:
    gateway = make_gateway(max_event_streams=4, max_event_streams_per_key=1)
    alices, bobs = queued_job(gateway, video), queued_job(gateway, video, who=BOB)
    with (
        gateway.client() as alice,
        gateway.client(BOB) as bob,
        alice.stream("GET", f"/jobs/{alices}/events") as first,
    ):
        received = sse_events(first)  # kept: dropping it would close the stream
        next(received)
        refused = alice.get(f"/jobs/{alices}/events")
        assert error_of(refused) == (HTTPStatus.SERVICE_UNAVAILABLE, "too_many_streams")
        assert "this API key" in refused.json()["error"]["message"]
        with bob.stream("GET", f"/jobs/{bobs}/events") as others:
            assert others.status_code == HTTPStatus.OK
            assert next(sse_events(others))[0] == "state"


def test_a_stream_that_loses_redis_ends_with_an_error_event(
    make_gateway: MakeGateway, video: bytes
) -> None:
    private = PrivateRedis.start()
    try:
        gateway = make_gateway(redis_url_override=private.url)
        job_id = queued_job(gateway, video)
        with gateway.client() as client, client.stream("GET", f"/jobs/{job_id}/events") as stream:
            received = sse_events(stream)
            assert next(received)[0] == "state"
            private.stop()
            rest = list(received)  # ends: the server closes the stream
        assert [name for name, _ in rest] == ["error"]
        assert rest[0][1]["error"]["code"] == "store_unavailable"  # type: ignore[index]
    finally:
        private.stop()


def _event(
    job_id: str, kind: str, state: str, stage: str = "", done: int = 0, total: int = 0
) -> dict[str, object]:
    return {
        "kind": kind, "job_id": job_id, "state": state, "stage": stage, "done": done,
        "total": total, "error_code": None, "error_message": None,
    }  # fmt: skip
