"""Fixtures of the worker's tests: one tiny bundle and the videos for the whole folder, and
services (settings under a key prefix of their own, store, Celery app) per test module."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.worker_process import Videos, WorkerService, new_prefix, service_settings

MakeService = Callable[..., WorkerService]  # worker settings → a service (no worker yet)


@pytest.fixture(scope="session")
def bundle(service_bundle_dir: Path) -> Path:
    return service_bundle_dir


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Videos:
    return Videos.write(tmp_path_factory.mktemp("videos"))


@pytest.fixture(scope="module")
def make_service(
    redis_url: str, bundle: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MakeService]:
    """Services under prefixes of their own on the tests' Redis; afterwards their workers are
    killed and their keys (the broker's included) deleted, nothing else."""
    made: list[WorkerService] = []

    def make(**worker: Any) -> WorkerService:
        settings = service_settings(redis_url, new_prefix(), bundle, **worker)
        service = WorkerService.create(tmp_path_factory.mktemp("service"), settings)
        made.append(service)
        return service

    yield make
    for service in made:
        service.close()
