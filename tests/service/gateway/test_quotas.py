"""An API key's quotas against a real server and Redis: jobs queued or running, bytes stored,
worker time this hour. Each refusal is a 429 with its own code and a Retry-After, stores
nothing, and leaves other keys alone."""

from __future__ import annotations

from http import HTTPStatus

from tests.support.gateway import ALICE, BOB, MakeGateway, error_of, upload


def test_a_key_with_its_most_active_jobs_is_refused_another(
    make_gateway: MakeGateway, video: bytes
) -> None:
    gateway = make_gateway(quotas={"max_active_jobs": 1})
    with gateway.client(ALICE) as alice, gateway.client(BOB) as bob:
        first = upload(alice, video)
        assert first.status_code == HTTPStatus.ACCEPTED
        keys = gateway.leftovers()
        refused = upload(alice, video)
        assert error_of(refused) == (HTTPStatus.TOO_MANY_REQUESTS, "too_many_jobs")
        assert int(refused.headers["retry-after"]) > 0
        assert gateway.leftovers() == keys  # the refused upload stored nothing
        assert upload(bob, video).status_code == HTTPStatus.ACCEPTED
        # Once the first job ends (here: cancelled), the key may send another.
        assert alice.delete(f"/jobs/{first.json()['id']}").status_code == HTTPStatus.NO_CONTENT
        assert upload(alice, video).status_code == HTTPStatus.ACCEPTED


def test_a_key_whose_jobs_hold_its_most_bytes_is_refused_another(
    make_gateway: MakeGateway, video: bytes
) -> None:
    gateway = make_gateway(quotas={"max_stored_bytes": len(video) * 3 // 2})
    with gateway.client(ALICE) as alice:
        first = upload(alice, video)
        assert first.status_code == HTTPStatus.ACCEPTED
        refused = upload(alice, video)  # counted once its video is whole: 2 videos pass it
        assert error_of(refused) == (HTTPStatus.TOO_MANY_REQUESTS, "storage_quota_exceeded")
        assert "DELETE /jobs/" in refused.json()["error"]["message"]
        assert alice.delete(f"/jobs/{first.json()['id']}").status_code == HTTPStatus.NO_CONTENT
        assert upload(alice, video).status_code == HTTPStatus.ACCEPTED


def test_a_key_whose_jobs_took_its_worker_time_this_hour_is_refused_until_the_next(
    make_gateway: MakeGateway, video: bytes
) -> None:
    gateway = make_gateway(quotas={"max_worker_seconds_per_hour": 60})
    gateway.store.add_work(ALICE, 61.0)  # as workers record each attempt
    with gateway.client(ALICE) as alice, gateway.client(BOB) as bob:
        refused = upload(alice, video)
        assert error_of(refused) == (HTTPStatus.TOO_MANY_REQUESTS, "worker_time_quota_exceeded")
        assert 0 < int(refused.headers["retry-after"]) <= 3601
        assert upload(bob, video).status_code == HTTPStatus.ACCEPTED
