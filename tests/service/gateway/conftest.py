"""Fixtures of the gateway's tests: a real uvicorn server per test on a loopback port, on the
real Redis under the test's own prefix, with two API keys, posing meshes with the stand-in body
(training's, in torch: no bundle to export); a small video to upload; a bundle for the command.

The store's prefix is the test's, and so is the broker's (:func:`service.queue.broker_prefix`
puts the Celery queue under the store's prefix): a job queued here sits in a queue that no
real worker reads, and the ``redis_client`` fixture deletes it with everything else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis

from service.gateway import create_app
from service.gateway.frame_meshes import FrameBody
from service.jobs import JobStore
from tests.support.gateway import (
    MakeGateway,
    RunningGateway,
    gateway_settings,
    serve,
    write_test_video,
)
from tests.support.redis_server import free_loopback_port
from tests.support.video_results import torch_mesh_vertices
from training.body import load_body_model


@pytest.fixture(scope="session")
def frame_body() -> FrameBody:
    """The stand-in body as the gateway poses with it (the bundles' is its export)."""
    body = load_body_model("standin")
    return FrameBody(body.name, torch_mesh_vertices(body), body.faces.numpy())


@pytest.fixture(scope="session")
def bundle(service_bundle_dir: Path) -> Path:
    return service_bundle_dir


@pytest.fixture
def make_gateway(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, frame_body: FrameBody
) -> Iterator[MakeGateway]:
    """Start a gateway with the test's prefix and the ``gateway`` settings given (and the
    stand-in body, unless another ``body`` is given)."""
    with ExitStack() as servers:

        def make(
            redis_url_override: str | None = None, body: FrameBody | None = None, **gateway: Any
        ) -> RunningGateway:
            settings = gateway_settings(redis_url_override or redis_url, redis_prefix, **gateway)
            app = create_app(settings, body or frame_body)
            url = servers.enter_context(serve(app))
            store = JobStore(redis_client, settings.store)
            metrics_url = getattr(app.state, "metrics_url", None)
            return RunningGateway(url, settings, store, redis_client, redis_prefix, metrics_url)

        yield make


@pytest.fixture
def gateway(make_gateway: MakeGateway) -> RunningGateway:
    return make_gateway()


@pytest.fixture(scope="session")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_test_video(tmp_path_factory.mktemp("videos") / "clip.mp4")


@pytest.fixture(scope="session")
def video(video_file: Path) -> bytes:
    """A small valid H.264 MP4 (96 × 64, 5 frames at 25 fps)."""
    return video_file.read_bytes()


@pytest.fixture
def unused_port() -> int:
    """A loopback port where nothing listens (a Redis that is down)."""
    return free_loopback_port()
