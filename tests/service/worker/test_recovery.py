"""Jobs outlive what breaks under them: a worker killed mid-job (SIGKILL to its whole process
group, as a node dies) leaves its job to another worker process, which finishes it with its
own attempt's files only; a Redis restart mid-job (a private server, persisted to disk) is
recovered by the worker itself, which then serves the next job."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.jobs import JobOptions, JobState
from service.scratch_folders import JOB_PREFIX as JOB_FOLDER_PREFIX
from tests.support.redis_server import PrivateRedis
from tests.support.worker_process import (
    Videos,
    WorkerService,
    new_prefix,
    service_settings,
    worker_pid,
)

OPTIONS = JobOptions(formats=["json", "glb"], min_track_length=8)
# Longer than redis-py's own retries of a refused connection (about 2 s), so that the worker's
# calls fail and its own recovery is what the test sees.
REDIS_DOWN_S = 4.0
NO_REAPER_S = 3600.0  # a reaper that never runs within a test


def test_a_job_survives_its_worker_killed_mid_job(
    make_service: Callable[..., WorkerService], videos: Videos
) -> None:
    service = make_service()
    service.start_workers(2, "pair")
    folders_before = job_folders()
    job_id = service.submit(videos.long, OPTIONS)
    running = service.wait_running(job_id)
    assert running.worker is not None
    victim = service.worker_of(worker_pid(running.worker))
    victim.kill()

    record = service.wait(job_id)
    assert record.state is JobState.SUCCEEDED, (record, service.logs())
    assert record.attempts == 2
    assert record.worker is not None
    (survivor,) = (worker for worker in service.workers if worker is not victim)
    assert worker_pid(record.worker) in survivor.pool_pids()

    # One attempt's files, each once: the index, every file in it, and nothing staged left.
    files = service.store.list_files(job_id)
    result = service.store.open_file(job_id, "result.json")
    assert result is not None
    document = json.loads(result.read())
    glbs = {f"tracks/track_{track['track_id']:03d}.glb" for track in document["tracks"]}
    assert set(files) == {"result.json"} | glbs
    prefix = service.settings.store.prefix
    left = [key.decode() for key in service.client.scan_iter(match=f"{prefix}job:*")]
    assert not [key for key in left if ":stage:" in key or key.endswith(":staging")], left
    assert service.running_once_settled() == {}
    # The victim's scratch folder (with its copy of the upload) was swept by the next attempt.
    assert job_folders() - folders_before == set()


def job_folders() -> set[Path]:
    """The workers' scratch folders in the temp folder now."""
    return set(Path(tempfile.gettempdir()).glob(f"{JOB_FOLDER_PREFIX}*"))


@pytest.fixture
def persistent_redis() -> Iterator[PrivateRedis]:
    """A Redis of this test's own (the shared one is never restarted), on disk."""
    server = PrivateRedis.start(persistent=True)
    try:
        yield server
    finally:
        server.stop()


def test_a_redis_restart_mid_job_is_recovered_by_its_own_worker(
    persistent_redis: PrivateRedis, bundle: Path, videos: Videos, tmp_path: Path
) -> None:
    """The worker tries the job again itself, not through the broker (the same Redis, down
    then): with no reaper to fall back on, the job still succeeds."""
    settings = service_settings(
        persistent_redis.url, new_prefix(), bundle, reaper_interval_s=NO_REAPER_S
    )
    service = WorkerService.create(tmp_path, settings)
    try:
        service.start_workers(1)
        job_id = service.submit(videos.long, OPTIONS)
        service.wait_running(job_id)
        persistent_redis.restart(down_s=REDIS_DOWN_S)

        record = service.wait(job_id)
        assert record.state is JobState.SUCCEEDED, (record, service.logs())
        assert service.running_once_settled() == {}
        after = service.wait(service.submit(videos.short, OPTIONS))  # the worker serves on
        assert after.state is JobState.SUCCEEDED, (after, service.logs())
    finally:
        service.close()
