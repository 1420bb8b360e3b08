"""One attempt's liveness and reports against a real Redis: the heartbeat keeps the lock past
its TTL and notices a job taken away; progress is written at most every interval (besides each
stage's first and last report); a cancel or a lost job stops the pipeline from its callback;
the reaper sends a dead worker's job once, and again at its next pass if sending failed."""

from __future__ import annotations

import time

import pytest
import redis

from service.jobs import JobState, JobStore, StoreConfig
from service.worker.attempt import (
    CancelRequestedError,
    Heartbeat,
    JobLostError,
    ProgressReporter,
)
from service.worker.reaper import Reaper
from tests.support.jobs import upload_job

WORKER_A, WORKER_B = "host-a:101:aa", "host-b:202:bb"
LOCK_TTL_S = 0.5
LAPSE_S = LOCK_TTL_S * 1.5
INTERVAL_S = 1.0


class Clock:
    """A clock a test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(redis_client: redis.Redis, redis_prefix: str) -> JobStore:
    return JobStore(redis_client, StoreConfig(prefix=redis_prefix, lock_ttl_s=LOCK_TTL_S))


def running_job(store: JobStore, worker: str = WORKER_A) -> str:
    job_id = upload_job(store, "owner", b"video").id
    assert store.start(job_id, worker) is not None
    return job_id


def stage_of(store: JobStore, job_id: str) -> tuple[str, int, int]:
    record = store.get(job_id)
    assert record is not None
    return record.stage, record.done, record.total


def test_the_heartbeat_keeps_the_lock_past_its_ttl(store: JobStore) -> None:
    job_id = running_job(store)
    with Heartbeat(store, job_id, WORKER_A) as heartbeat:
        time.sleep(LOCK_TTL_S * 3)
        record = store.get(job_id)
        assert record is not None
        assert not store.is_stale(record)
        assert not heartbeat.lost.is_set()
    time.sleep(LAPSE_S)  # the attempt ended without a word: its lock lapses
    record = store.get(job_id)
    assert record is not None
    assert store.is_stale(record)


def test_the_heartbeat_notices_a_job_taken_away(store: JobStore) -> None:
    job_id = running_job(store)
    with Heartbeat(store, job_id, WORKER_A) as heartbeat:
        store.delete(job_id)
        assert heartbeat.lost.wait(LOCK_TTL_S * 2)


def test_progress_is_written_at_most_every_interval(store: JobStore) -> None:
    job_id = running_job(store)
    clock = Clock()
    report = ProgressReporter(
        store, job_id, WORKER_A, Heartbeat(store, job_id, WORKER_A), INTERVAL_S, clock
    )
    report("detect", 8, 40)  # a stage's first report
    assert stage_of(store, job_id) == ("detect", 8, 40)
    clock.now += INTERVAL_S / 2
    report("detect", 16, 40)  # too soon
    assert stage_of(store, job_id) == ("detect", 8, 40)
    clock.now += INTERVAL_S
    report("detect", 24, 40)
    assert stage_of(store, job_id) == ("detect", 24, 40)
    report("detect", 40, 40)  # a stage's last report, however soon
    assert stage_of(store, job_id) == ("detect", 40, 40)
    report("encoder", 1, 9)  # a new stage, however soon
    assert stage_of(store, job_id) == ("encoder", 1, 9)


def test_a_cancel_stops_the_attempt_at_the_next_report(store: JobStore) -> None:
    job_id = running_job(store)
    report = ProgressReporter(
        store, job_id, WORKER_A, Heartbeat(store, job_id, WORKER_A), INTERVAL_S
    )
    report("detect", 8, 40)
    assert store.request_cancel(job_id) is JobState.RUNNING
    with pytest.raises(CancelRequestedError):
        report("detect", 16, 40)


def test_a_job_no_longer_the_workers_stops_the_attempt(store: JobStore) -> None:
    job_id = running_job(store)
    heartbeat = Heartbeat(store, job_id, WORKER_A)
    report = ProgressReporter(store, job_id, WORKER_A, heartbeat, INTERVAL_S)
    heartbeat.lost.set()  # the heartbeat was refused
    with pytest.raises(JobLostError):
        report("detect", 8, 40)
    taken = running_job(store)
    time.sleep(LAPSE_S)
    assert store.start(taken, WORKER_B) is not None  # A was taken for dead
    report = ProgressReporter(store, taken, WORKER_A, Heartbeat(store, taken, WORKER_A), INTERVAL_S)
    with pytest.raises(JobLostError):
        report("detect", 8, 40)  # the write was refused


def test_the_reaper_sends_a_dead_workers_job_once(store: JobStore) -> None:
    dead, live = running_job(store, WORKER_A), running_job(store, WORKER_B)
    sent: list[str] = []
    reaper = Reaper(store, sent.append, INTERVAL_S)
    with Heartbeat(store, live, WORKER_B):
        time.sleep(LAPSE_S)
        assert reaper.sweep() == [dead]
        assert reaper.sweep() == []
    assert sent == [dead]
    record = store.get(dead)
    assert record is not None
    assert record.state is JobState.QUEUED


def test_a_task_the_reaper_could_not_send_is_sent_at_its_next_pass(store: JobStore) -> None:
    dead = running_job(store)
    sent: list[str] = []

    def send(job_id: str) -> None:
        if not sent:
            sent.append("refused")
            raise ConnectionError("the broker is down")
        sent.append(job_id)

    reaper = Reaper(store, send, INTERVAL_S)
    time.sleep(LAPSE_S)
    with pytest.raises(ConnectionError):
        reaper.sweep()
    assert reaper.sweep() == [dead]
    assert sent == ["refused", dead]


def test_the_reapers_thread_runs_every_interval(store: JobStore) -> None:
    dead = running_job(store)
    sent: list[str] = []
    reaper = Reaper(store, sent.append, interval_s=LOCK_TTL_S / 5)
    reaper.start()
    try:
        deadline = time.monotonic() + LAPSE_S * 4
        while not sent and time.monotonic() < deadline:
            time.sleep(LOCK_TTL_S / 10)
    finally:
        reaper.stop()
    assert sent == [dead]
