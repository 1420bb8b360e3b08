"""The task's retries, in this process on a real Redis: a store that fails (a connection error)
sends the task again no sooner than the job's lock lapses, and once the retries are spent the
job is failed with ``store_unavailable``, not left queued or running."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import redis

from service.bundle import CPU_PROVIDER, load_bundle
from service.jobs import JobState, JobStore, StoreConfig
from service.settings import ServiceSettings, WorkerSettings
from service.worker import WorkerRuntime, tasks

LOCK_TTL_S, BACKOFF_S, MAX_RETRIES = 3.0, 0.2, 2


class RetryError(Exception):
    """What the fake task's retry() gives, for process_job to raise."""


class FakeTask:
    """The bound task as process_job sees it: its delivery's retries, and retry()."""

    def __init__(self, retries: int) -> None:
        self.request = SimpleNamespace(retries=retries)
        self.retried: dict[str, Any] | None = None

    def retry(self, **options: Any) -> RetryError:
        self.retried = options
        return RetryError()


@pytest.fixture
def current(
    redis_client: redis.Redis, redis_prefix: str, bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> WorkerRuntime:
    """A worker runtime whose store's start() fails as an unreachable Redis does."""
    settings = ServiceSettings(
        store=StoreConfig(prefix=redis_prefix, lock_ttl_s=LOCK_TTL_S),
        worker=WorkerSettings(
            bundle=bundle, threads=1, max_retries=MAX_RETRIES, retry_backoff_s=BACKOFF_S
        ),
    )
    loaded = load_bundle(bundle)
    store = JobStore(redis_client, settings.store)

    def unreachable(*_: object) -> None:
        raise redis.ConnectionError("Error 111 connecting to Redis. Connection refused.")

    monkeypatch.setattr(store, "start", unreachable)
    runtime = WorkerRuntime(
        settings=settings,
        bundle=loaded,
        providers=[CPU_PROVIDER],
        sessions=loaded.sessions("fp32", [CPU_PROVIDER], 1),
        store=store,
        worker_id="host:1:ab",
        pid=0,
    )
    monkeypatch.setattr(tasks, "runtime", lambda: runtime)
    return runtime


def queued_job(store: JobStore) -> str:
    job_id = store.create("owner").id
    store.append_video(job_id, b"video")
    return job_id


def test_a_failing_store_retries_the_task_once_the_lock_can_lapse(current: WorkerRuntime) -> None:
    job_id = queued_job(current.store)
    task = FakeTask(retries=0)
    with pytest.raises(RetryError):
        tasks.process_job(task, job_id)
    assert task.retried is not None
    assert task.retried["countdown"] >= LOCK_TTL_S
    assert task.retried["max_retries"] == MAX_RETRIES
    assert isinstance(task.retried["exc"], redis.ConnectionError)


def test_spent_retries_fail_the_job(current: WorkerRuntime) -> None:
    job_id = queued_job(current.store)
    task = FakeTask(retries=MAX_RETRIES)
    assert tasks.process_job(task, job_id) == "failed"
    assert task.retried is None
    record = current.store.get(job_id)
    assert record is not None
    assert (record.state, record.error_code) == (JobState.FAILED, "store_unavailable")
    assert record.error_message
