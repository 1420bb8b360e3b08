"""The job store against a real Redis: a job's life, its keys' TTLs, locks and attempts,
idempotent results, cancellation, events, deletion, expiry, the index of running jobs and the
reaper's requeue, and the rate limit."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from pydantic import ValidationError

from service.jobs import (
    EventKind,
    JobClosedError,
    JobOptions,
    JobRecord,
    JobState,
    JobStore,
    Keys,
    OwnerUsage,
    ProgressEvent,
    RateLimiter,
    ResultsTooLargeError,
    StoreConfig,
    VideoTooLargeError,
)
from service.jobs.keys import new_job_id
from service.outputs import OUTPUT_FORMATS
from tests.support.jobs import upload_job

OWNER = "key-1"
WORKER_A, WORKER_B = "host-a:101:aa", "host-b:202:bb"
LOCK_TTL_S = 0.5  # short, so that a test sees a lock lapse; long enough for a loaded machine
LAPSE_S = LOCK_TTL_S * 1.2  # a little past it
CHUNK_BYTES = 1000  # small: transfers take many chunks, and odd sizes split unevenly
SHORT_TTL_S = 0.3

MakeStore = Callable[..., JobStore]


@pytest.fixture
def make_store(redis_client: redis.Redis, redis_prefix: str) -> MakeStore:
    """A store under the test's prefix (cleaned up after it), with the settings given."""

    def make(**settings: object) -> JobStore:
        config = StoreConfig.model_validate(
            {"prefix": redis_prefix, "lock_ttl_s": LOCK_TTL_S, "chunk_bytes": CHUNK_BYTES}
            | settings
        )
        return JobStore(redis_client, config)

    return make


@pytest.fixture
def store(make_store: MakeStore) -> JobStore:
    return make_store()


def keys_under(client: redis.Redis, prefix: str) -> list[str]:
    return sorted(key.decode() for key in client.scan_iter(match=f"{prefix}*"))


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def queued_with_video(store: JobStore, video: bytes = b"video bytes") -> str:
    return upload_job(store, OWNER, video).id


def results(tmp_path: Path, tag: bytes) -> dict[str, Path]:
    """One attempt's result files, their contents marked with ``tag``."""
    (tmp_path / "tracks").mkdir(exist_ok=True)
    return {
        "result.json": write(tmp_path / "result.json", b'{"attempt": "' + tag + b'"}'),
        "tracks/track_001.glb": write(tmp_path / "tracks" / "t1.glb", tag * 2500),
        "preview.mp4": write(tmp_path / "preview.mp4", os.urandom(3 * CHUNK_BYTES + 17) + tag),
        "empty.txt": write(tmp_path / "empty.txt", b""),
    }


class Killed(BaseException):
    """The worker's process dying (SIGKILL) at a chosen point."""


def finish_killed_before_commit(store: JobStore, job_id: str, files: dict[str, Path]) -> None:
    """``finish`` by worker A that dies after staging every file, before the commit."""

    def die(**_: object) -> None:
        raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "_commit", die)
        with pytest.raises(Killed):
            store.finish(job_id, WORKER_A, files)


def stored(store: JobStore, job_id: str) -> dict[str, bytes]:
    found = {}
    for name in store.list_files(job_id):
        opened = store.open_file(job_id, name)
        assert opened is not None
        found[name] = opened.read()
    return found


def test_job_ids_are_unguessable_and_unique(store: JobStore) -> None:
    ids = [store.create(OWNER).id for _ in range(200)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22,}", job_id) for job_id in ids)  # ≥ 128 bits
    assert store.get("A" * 22) is None
    assert store.get("../../etc") is None  # malformed: no Redis call, no error


def test_a_job_from_upload_to_results(store: JobStore, tmp_path: Path) -> None:
    options = JobOptions(smooth=True, formats=["json", "glb", "json"], min_track_length=5)
    video = os.urandom(5 * CHUNK_BYTES + 3)
    created = upload_job(store, OWNER, video, options, chunk_bytes=777)
    assert created.state is JobState.QUEUED
    assert store.video_size(created.id) == len(video)

    running = store.start(created.id, WORKER_A)
    assert running is not None
    assert (running.state, running.worker, running.attempts) == (JobState.RUNNING, WORKER_A, 1)
    assert running.options == JobOptions(smooth=True, formats=["json", "glb"], min_track_length=5)
    assert running.owner == OWNER
    assert running.started_at is not None
    assert store.copy_video_to(created.id, tmp_path / "in.mp4") == len(video)
    assert (tmp_path / "in.mp4").read_bytes() == video
    assert store.set_progress(created.id, WORKER_A, "detect", 10, 40)
    assert store.heartbeat(created.id, WORKER_A)
    assert not store.is_stale(running)

    files = results(tmp_path, b"A")
    assert store.finish(created.id, WORKER_A, files, {"detect+track": 1.5, "regress": 2.0})
    done = store.get(created.id)
    assert done is not None
    assert done.state is JobState.SUCCEEDED
    assert done.timings == {"detect+track": 1.5, "regress": 2.0}
    assert done.finished_at is not None
    assert done.finished_at >= done.created_at
    assert (done.done, done.total) == (10, 40)
    assert store.list_files(created.id) == {n: p.stat().st_size for n, p in files.items()}
    assert stored(store, created.id) == {n: p.read_bytes() for n, p in files.items()}
    preview = store.open_file(created.id, "preview.mp4")
    assert preview is not None
    whole = files["preview.mp4"].read_bytes()
    assert b"".join(preview.chunks(1500, 2600)) == whole[1500:2600]  # a ranged read
    assert store.open_file(created.id, "missing.json") is None
    assert store.video_size(created.id) == 0  # the upload goes as the job ends
    assert not store.is_stale(done)


def test_every_key_has_a_ttl(
    store: JobStore, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    def all_expire() -> None:
        keys = keys_under(redis_client, redis_prefix)
        assert keys
        assert all(redis_client.pttl(key) > 0 for key in keys), keys

    job_id = queued_with_video(store)
    all_expire()
    store.start(job_id, WORKER_A)
    store.request_cancel(job_id)
    store.set_progress(job_id, WORKER_A, "detect", 1, 2)
    finish_killed_before_commit(store, job_id, {"result.json": write(tmp_path / "r", b"{}")})
    assert any(":stage:" in key for key in keys_under(redis_client, redis_prefix))
    all_expire()
    assert store.finish(job_id, WORKER_A, results(tmp_path, b"A"))
    all_expire()
    RateLimiter(redis_client, store.keys).allow(OWNER, 5, 60)
    all_expire()


def test_uploads_are_bounded_and_closed_once_their_job_exists(make_store: MakeStore) -> None:
    store = make_store(max_video_bytes=10)
    upload = new_job_id()
    assert store.append_video(upload, b"12345678", 0) == 8
    with pytest.raises(VideoTooLargeError):
        store.append_video(upload, b"abc", 8)
    assert store.video_size(upload) == 8  # the refused chunk was not appended
    with pytest.raises(JobClosedError, match="expired"):
        store.append_video(upload, b"9", 0)  # not where the stored part ends
    job = store.create(OWNER, upload=upload)
    assert store.video_size(job.id) == 8
    with pytest.raises(JobClosedError):
        store.append_video(job.id, b"9", 8)
    with pytest.raises(JobClosedError):
        store.create(OWNER, upload=upload)  # one job per upload
    with pytest.raises(JobClosedError, match="gone"):
        store.create(OWNER, upload=new_job_id())  # nothing was uploaded under it
    with pytest.raises(ValidationError):
        make_store(max_video_bytes=1 << 40)  # more than one Redis string holds


def test_an_upload_cut_short_expires_and_leaves_no_job(
    make_store: MakeStore, redis_client: redis.Redis, redis_prefix: str
) -> None:
    """A gateway that died mid-upload runs no cleanup: its part expires by itself."""
    store = make_store(upload_ttl_s=0.3)
    upload = new_job_id()
    store.append_video(upload, b"part", 0)
    assert 0 < redis_client.pttl(store.keys.video(upload)) <= 300
    assert store.get(upload) is None
    time.sleep(0.5)
    assert keys_under(redis_client, redis_prefix) == []
    with pytest.raises(JobClosedError, match="expired"):
        store.append_video(upload, b"rest", 4)


def test_an_owners_usage_counts_its_active_jobs_bytes_and_worker_time(
    store: JobStore, redis_client: redis.Redis, tmp_path: Path
) -> None:
    assert store.owner_usage(OWNER) == OwnerUsage(0, 0, 0.0)
    first = queued_with_video(store, b"x" * 100)
    second = queued_with_video(store, b"y" * 50)
    upload_job(store, "someone-else", b"z" * 1000)
    assert store.owner_usage(OWNER) == OwnerUsage(2, 150, 0.0)
    assert store.start(first, WORKER_A) is not None
    store.finish(first, WORKER_A, {"result.json": write(tmp_path / "r.json", b"{}" * 10)})
    assert store.owner_usage(OWNER) == OwnerUsage(1, 50 + 20, 0.0)  # the upload went, results came
    store.add_work(OWNER, 2.5)
    store.add_work(OWNER, 1.0)
    store.add_work(OWNER, 100.0, now=time.time() - 3600)  # the last hour's: not counted
    assert store.owner_usage(OWNER).worker_seconds == pytest.approx(3.5)
    store.delete(second)
    assert store.owner_usage(OWNER) == OwnerUsage(0, 20, 3.5)
    index = redis_client.zrange(store.keys.owner_jobs(OWNER), 0, -1)
    assert index == [first.encode()]  # the deleted job left the index


def test_progress_is_in_the_hash_and_published(store: JobStore, tmp_path: Path) -> None:
    job_id = queued_with_video(store)
    events = store.events(job_id)
    first = next(events)  # subscribed, then where the job stands
    assert first is not None
    assert (first.kind, first.state) == (EventKind.STATE, JobState.QUEUED)
    store.start(job_id, WORKER_A)
    store.set_progress(job_id, WORKER_A, "regress", 3, 7)
    record = store.get(job_id)
    assert record is not None
    assert (record.stage, record.done, record.total) == ("regress", 3, 7)
    assert next(events) == ProgressEvent(kind=EventKind.STATE, job_id=job_id,
                                         state=JobState.RUNNING)  # fmt: skip
    assert next(events) == ProgressEvent(kind=EventKind.PROGRESS, job_id=job_id,
                                         state=JobState.RUNNING, stage="regress", done=3,
                                         total=7)  # fmt: skip
    store.finish(job_id, WORKER_A, results(tmp_path, b"A"))
    final = next(events)
    assert final is not None
    assert final.final
    assert final.state is JobState.SUCCEEDED
    assert list(events) == []  # the stream ends after a final event
    assert [e.state for e in store.events(job_id) if e] == [JobState.SUCCEEDED]


def test_a_quiet_stream_keeps_alive_and_notices_an_expired_job(
    make_store: MakeStore,
) -> None:
    idle_s = 0.4
    store = make_store(ttl_s=idle_s * 1.5, events_idle_s=idle_s)  # expires between two idles
    job_id = store.create(OWNER).id
    events = store.events(job_id)
    assert next(events) is not None
    assert next(events) is None  # a keep-alive: nothing said, the job still there
    last = next(events)  # the job expired while nothing was said
    assert last == ProgressEvent(kind=EventKind.DELETED, job_id=job_id)


def test_cancel_a_queued_job_at_once(store: JobStore) -> None:
    job_id = queued_with_video(store)
    assert store.request_cancel(job_id) is JobState.CANCELLED
    assert store.start(job_id, WORKER_A) is None  # the task still in the queue does nothing
    record = store.get(job_id)
    assert record is not None
    assert record.state is JobState.CANCELLED
    assert store.video_size(job_id) == 0
    assert store.request_cancel(job_id) is JobState.CANCELLED
    assert store.request_cancel("A" * 22) is None


def test_cancel_a_running_job_through_its_worker(store: JobStore) -> None:
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    assert not store.cancel_requested(job_id)
    assert store.request_cancel(job_id) is JobState.RUNNING
    assert store.cancel_requested(job_id)
    assert store.mark_cancelled(job_id, WORKER_A, {"detect+track": 0.5})
    record = store.get(job_id)
    assert record is not None
    assert (record.state, record.timings) == (JobState.CANCELLED, {"detect+track": 0.5})
    assert not store.heartbeat(job_id, WORKER_A)


def test_a_cancel_asked_of_a_dead_worker_is_settled_by_the_redelivery(store: JobStore) -> None:
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    store.request_cancel(job_id)
    time.sleep(LAPSE_S)  # worker A died
    assert store.start(job_id, WORKER_B) is None
    record = store.get(job_id)
    assert record is not None
    assert record.state is JobState.CANCELLED


def test_start_refuses_a_live_lock_and_takes_a_lapsed_one(store: JobStore, tmp_path: Path) -> None:
    job_id = queued_with_video(store)
    assert store.start(job_id, WORKER_A) is not None
    assert store.start(job_id, WORKER_B) is None
    for _ in range(2):  # heartbeats keep A's lock past its TTL
        time.sleep(LOCK_TTL_S * 0.6)
        assert store.heartbeat(job_id, WORKER_A)
    assert store.start(job_id, WORKER_B) is None

    time.sleep(LAPSE_S)  # A stops heartbeating: it died
    record = store.get(job_id)
    assert record is not None
    assert store.is_stale(record)
    taken = store.start(job_id, WORKER_B)
    assert taken is not None
    assert (taken.worker, taken.attempts, taken.state) == (WORKER_B, 2, JobState.RUNNING)
    assert not store.is_stale(taken)
    # A comes back (a long pause, not death): every write of it is refused.
    assert not store.heartbeat(job_id, WORKER_A)
    assert not store.set_progress(job_id, WORKER_A, "detect", 5, 9)
    assert not store.finish(job_id, WORKER_A, results(tmp_path, b"A"))
    assert not store.fail(job_id, "boom", "A's error", worker=WORKER_A)
    assert store.finish(job_id, WORKER_B, results(tmp_path, b"B"))


def test_a_lapsed_lock_is_taken_back_while_nobody_else_took_the_job(store: JobStore) -> None:
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    time.sleep(LAPSE_S)
    assert store.heartbeat(job_id, WORKER_A)
    assert store.start(job_id, WORKER_B) is None


def test_a_late_duplicate_finish_changes_nothing(
    store: JobStore, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    (tmp_path / "a").mkdir()
    assert store.finish(job_id, WORKER_A, results(tmp_path / "a", b"A"), {"regress": 1.0})
    before = (store.get(job_id), stored(store, job_id), keys_under(redis_client, redis_prefix))

    (tmp_path / "b").mkdir()
    assert not store.finish(job_id, WORKER_A, results(tmp_path / "b", b"B"), {"regress": 9.0})
    assert not store.finish(job_id, WORKER_B, results(tmp_path / "b", b"B"))
    assert not store.fail(job_id, "late", "a late failure")
    assert not store.mark_cancelled(job_id, WORKER_A)
    assert store.start(job_id, WORKER_B) is None
    assert not store.set_progress(job_id, WORKER_A, "detect", 1, 1)
    assert store.request_cancel(job_id) is JobState.SUCCEEDED
    after = (store.get(job_id), stored(store, job_id), keys_under(redis_client, redis_prefix))
    assert after == before


def test_a_killed_attempts_files_never_show(
    store: JobStore, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    (tmp_path / "a").mkdir()
    finish_killed_before_commit(store, job_id, results(tmp_path / "a", b"A"))
    assert any(":stage:1:" in key for key in keys_under(redis_client, redis_prefix))
    assert store.list_files(job_id) == {}
    assert store.open_file(job_id, "result.json") is None

    time.sleep(LAPSE_S)
    store.start(job_id, WORKER_B)
    (tmp_path / "b").mkdir()
    redo = results(tmp_path / "b", b"B")
    del redo["tracks/track_001.glb"]  # B's set differs: nothing of A's may fill the gap
    assert store.finish(job_id, WORKER_B, redo)
    assert stored(store, job_id) == {name: path.read_bytes() for name, path in redo.items()}
    assert not any(":stage:" in key for key in keys_under(redis_client, redis_prefix))


def test_a_failed_attempts_files_are_dropped(
    store: JobStore, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    finish_killed_before_commit(store, job_id, {"result.json": write(tmp_path / "r", b"{}")})
    assert store.fail(job_id, "write_failed", "could not write the results", worker=WORKER_A)
    record = store.get(job_id)
    assert record is not None
    assert (record.state, record.error_code) == (JobState.FAILED, "write_failed")
    assert store.list_files(job_id) == {}
    assert keys_under(redis_client, redis_prefix) == sorted(
        [store.keys.job(job_id), store.keys.owner_jobs(OWNER)]
    )


def test_running_jobs_are_indexed_from_start_to_end(
    store: JobStore, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    finished, failed, cancelled, deleted = (queued_with_video(store) for _ in range(4))
    for job_id in (finished, failed, cancelled, deleted):
        store.start(job_id, WORKER_A)
    assert store.running_jobs() == dict.fromkeys([finished, failed, cancelled, deleted], 1)
    assert store.finish(finished, WORKER_A, results(tmp_path, b"A"))
    assert store.fail(failed, "boom", "it broke", worker=WORKER_A)
    store.request_cancel(cancelled)
    assert store.mark_cancelled(cancelled, WORKER_A)
    assert store.delete(deleted)
    assert store.running_jobs() == {}
    assert store.keys.running() not in keys_under(redis_client, redis_prefix)


def test_the_reaper_requeues_a_dead_workers_job_once(store: JobStore) -> None:
    dead, live = queued_with_video(store), queued_with_video(store)
    store.start(dead, WORKER_A)
    store.start(live, WORKER_B)
    assert store.requeue_stale() == []  # both locks are live
    events = store.events(dead)
    first = next(events)
    assert first is not None
    assert first.state is JobState.RUNNING
    for _ in range(2):  # B heartbeats, A has died
        time.sleep(LOCK_TTL_S * 0.6)
        assert store.heartbeat(live, WORKER_B)

    assert store.requeue_stale() == [dead]
    event = next(events)
    assert event is not None
    assert (event.kind, event.state) == (EventKind.STATE, JobState.QUEUED)
    assert store.requeue_stale() == []  # once: a second reaper finds nothing to do
    record = store.get(dead)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.QUEUED, 1)
    assert store.running_jobs() == {live: 1}
    # A comes back (a long pause, not death): the job is no longer its own.
    assert not store.heartbeat(dead, WORKER_A)
    assert not store.set_progress(dead, WORKER_A, "detect", 1, 2)
    retaken = store.start(dead, WORKER_B)
    assert retaken is not None
    assert (retaken.state, retaken.attempts) == (JobState.RUNNING, 2)
    assert store.running_jobs() == {live: 1, dead: 2}


def test_the_reaper_drops_entries_of_jobs_that_are_gone(
    store: JobStore, redis_client: redis.Redis
) -> None:
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    redis_client.delete(store.keys.job(job_id), store.keys.lock(job_id))  # as if expired
    assert store.requeue_stale() == []
    assert store.running_jobs() == {}


def test_results_are_bounded(make_store: MakeStore, tmp_path: Path) -> None:
    store = make_store(max_result_bytes=100)
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    with pytest.raises(ResultsTooLargeError):
        store.finish(job_id, WORKER_A, {"big.bin": write(tmp_path / "big", bytes(101))})


def test_a_job_that_keeps_killing_workers_fails(make_store: MakeStore) -> None:
    store = make_store(max_attempts=1)
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    time.sleep(LAPSE_S)
    assert store.start(job_id, WORKER_B) is None
    record = store.get(job_id)
    assert record is not None
    assert (record.state, record.error_code) == (JobState.FAILED, "attempts_exhausted")


def test_delete_removes_every_key_and_says_so(
    store: JobStore, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    job_id = queued_with_video(store, os.urandom(4 * CHUNK_BYTES))
    assert store.memory_usage(job_id) > 4 * CHUNK_BYTES
    store.start(job_id, WORKER_A)
    store.finish(job_id, WORKER_A, results(tmp_path, b"A"))
    other = queued_with_video(store)  # another job's keys stay
    used = store.memory_usage(job_id)
    assert used > sum(store.list_files(job_id).values())
    pubsub = redis_client.pubsub()
    pubsub.subscribe(store.keys.events(job_id))
    assert pubsub.get_message(timeout=1)  # the confirmation

    assert store.delete(job_id)
    assert all(job_id not in key for key in keys_under(redis_client, redis_prefix))
    assert store.get(other) is not None
    assert store.memory_usage(job_id) == 0
    assert store.get(job_id) is None
    message = pubsub.get_message(timeout=1)
    assert message is not None
    assert ProgressEvent.model_validate_json(message["data"]).kind is EventKind.DELETED
    pubsub.close()
    assert not store.delete(job_id)


def test_a_stream_ends_when_its_job_is_deleted(store: JobStore) -> None:
    job_id = queued_with_video(store)
    store.start(job_id, WORKER_A)
    events = store.events(job_id)
    assert next(events) is not None
    store.delete(job_id)
    assert next(events) == ProgressEvent(kind=EventKind.DELETED, job_id=job_id)
    assert list(events) == []
    assert not store.set_progress(job_id, WORKER_A, "detect", 1, 2)  # nothing comes back
    assert store.get(job_id) is None


def test_expired_jobs_leave_nothing(
    make_store: MakeStore, redis_client: redis.Redis, redis_prefix: str, tmp_path: Path
) -> None:
    store = make_store(ttl_s=SHORT_TTL_S)
    ended = queued_with_video(store)
    store.start(ended, WORKER_A)
    store.finish(ended, WORKER_A, results(tmp_path, b"A"))
    waiting = queued_with_video(store)
    assert keys_under(redis_client, redis_prefix)
    time.sleep(SHORT_TTL_S * 2)
    assert keys_under(redis_client, redis_prefix) == []
    assert store.get(ended) is None
    assert store.get(waiting) is None


def test_the_rate_limit_allows_n_per_window(redis_client: redis.Redis, redis_prefix: str) -> None:
    limiter = RateLimiter(redis_client, Keys(redis_prefix))
    window_s = 0.5
    answers = [limiter.allow(OWNER, 3, window_s) for _ in range(4)]
    assert [a.allowed for a in answers] == [True, True, True, False]
    assert [a.remaining for a in answers] == [2, 1, 0, 0]
    assert 0 < answers[-1].reset_s <= window_s
    assert limiter.allow("key-2", 3, window_s).allowed  # keys are counted apart
    time.sleep(window_s * 1.2)
    assert limiter.allow(OWNER, 3, window_s).allowed


def test_the_store_wants_bytes(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        JobStore(client)
    client.close()


def test_options_and_records_round_trip_through_a_hash() -> None:
    assert JobOptions().formats == list(OUTPUT_FORMATS)
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"formats": ["json", "gif"]})
    with pytest.raises(ValidationError):
        JobOptions(formats=[])
    record = JobRecord(
        id="abc", owner=OWNER, created_at=1.5, options=JobOptions(smooth=True),
        timings={"regress": 2.0}, error_code="x", error_message="y", cancel_requested=True,
    )  # fmt: skip
    fields = {name.encode(): value.encode() for name, value in record.to_hash().items()}
    assert JobRecord.from_hash(fields) == record
    with pytest.raises(ValidationError):  # a field the record does not know: a misspelt one
        JobRecord.from_hash({**fields, b"stat": b"queued"})
