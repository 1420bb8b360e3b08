"""Fixtures every test may use: Redis (shared or private) with a key prefix of its own, and
the service's tiny bundle."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.redis_server import (
    SHARED_HOST,
    SHARED_PORT,
    PrivateRedis,
    answers_ping,
    delete_keys_with_prefix,
)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The machine's Redis when it answers, otherwise a private one for this test session."""
    if answers_ping(SHARED_HOST, SHARED_PORT):
        yield f"redis://{SHARED_HOST}:{SHARED_PORT}/0"
        return
    server = PrivateRedis.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix that belongs to one test alone."""
    return f"meshcast-test:{uuid.uuid4().hex}:"


@pytest.fixture
def redis_client(redis_url: str, redis_prefix: str) -> Iterator[redis.Redis]:
    """A client for :func:`redis_url`; afterwards the keys under the test's prefix are deleted,
    and nothing else (no FLUSHDB: the server may be shared)."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        delete_keys_with_prefix(client, redis_prefix)
        client.close()


@contextlib.contextmanager
def torch_on_one_thread() -> Iterator[None]:
    """PyTorch on one thread inside the block, then as it was.

    Tiny networks run faster on one thread than on several that wait on each other and on
    whatever else the machine runs (a tiny training: 7 s on one thread, 115 s on two beside
    two other trainings)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """PyTorch on one thread for a module (``pytestmark = pytest.mark.usefixtures(...)``)."""
    with torch_on_one_thread():
        yield


@pytest.fixture(scope="session")
def service_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny SPS-Net bundle of the service's tests (workers, gateway, fetch), made once a
    session: its export takes seconds. Tests read it and never change it."""
    from tests.support.bundles import service_bundle

    with torch_on_one_thread():
        return service_bundle(tmp_path_factory.mktemp("service_bundle"))
