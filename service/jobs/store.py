"""The job store: jobs, their uploads, results and events in Redis (key layout: :mod:`.keys`).

One :class:`JobStore` serves both sides:

- the gateway: :meth:`~JobStore.append_video` as the upload streams in, under a fresh id,
  then :meth:`~JobStore.create` once it is whole (so that an upload cut short, even by the
  gateway's death, leaves no job: its part expires after ``upload_ttl_s``),
  :meth:`~JobStore.owner_usage` for an API key's quotas, :meth:`~JobStore.get`,
  :meth:`~JobStore.events`, :meth:`~JobStore.list_files` and :meth:`~JobStore.open_file`,
  :meth:`~JobStore.request_cancel`, :meth:`~JobStore.delete`;
- the worker: :meth:`~JobStore.start` (takes the job's lock), :meth:`~JobStore.copy_video_to`,
  :meth:`~JobStore.add_work` (the seconds an attempt took, on its owner's account),
  :meth:`~JobStore.heartbeat` and :meth:`~JobStore.set_progress` while it runs (either says
  ``False`` once the job is no longer its own: stop then), :meth:`~JobStore.cancel_requested`
  between batches, and one of :meth:`~JobStore.finish`, :meth:`~JobStore.fail`,
  :meth:`~JobStore.mark_cancelled`;
- the workers' reaper: :meth:`~JobStore.requeue_stale` puts the jobs of dead workers back in
  the queue (and says which, for it to send their tasks again).

Idempotent results: a worker's files go to keys of its attempt first and become visible in one
script with the state ``succeeded`` (:data:`.scripts.COMMIT`); a redelivered task whose first
worker was killed starts attempt 2 once attempt 1's lock has lapsed, and whichever commits
first wins while the other's commit changes nothing.

Recovery from a dead worker does not wait for the broker: with Redis as broker, Celery hands an
unacknowledged message out again only after its visibility timeout (longer than a job may run).
Every start enters the job in the ``running`` index, every end takes it out; a reaper that finds
one there whose lock has lapsed puts it back to ``queued`` (:data:`.scripts.REQUEUE`, which
only one reaper can win) and sends its task again. The broker's redelivery stays as a backstop:
it finds the job started or ended, and does nothing. A worker id must be unique per process
(host, pid, a random part): the lock and every write are checked against it.

Memory per job is bounded: the upload by ``max_video_bytes``, an attempt's files by
``max_result_bytes``, and attempts by ``max_attempts``; the upload and staged files are deleted
as the job ends, everything else when its TTL lapses or it is deleted.

The client is the synchronous ``redis.Redis``, for both sides: the worker is synchronous
(Celery), and the gateway runs these calls in its thread pool, as FastAPI does for plain
``def`` endpoints and Starlette's ``StreamingResponse`` does for a plain iterator such as
:meth:`~JobStore.events`. An event stream thus holds a thread while it is open; the gateway
caps how many it keeps open. An asyncio twin of every method would double this module for that.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import redis
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from service.jobs import scripts
from service.jobs.keys import DEFAULT_PREFIX, Keys, is_job_id, new_job_id
from service.jobs.records import EventKind, JobOptions, JobRecord, JobState, ProgressEvent

MIB = 1 << 20
REDIS_STRING_MAX_BYTES = 512 * MIB  # Redis's limit on one string (proto-max-bulk-len)
DAY_S = 24 * 3600.0
MS_PER_S = 1000
# How often a quiet event stream looks whether its reader asked it to stop.
STOP_POLL_S = 0.5
# start()'s script's answers: started, or (with the lock taken, to settle the job) a cancel
# was asked for, or the job has had max_attempts starts.
_STARTED, _START_CANCEL, _START_EXHAUSTED = "started", "cancel", "exhausted"
ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # the error code of a job that killed its workers
_APPEND_CLOSED, _APPEND_TOO_LARGE, _APPEND_LOST = -1, -2, -3
_CREATE_EXISTS, _CREATE_UPLOAD_LOST = 0, -1
HOUR_S = 3600
USAGE_TTL_S = 2 * HOUR_S  # an hour's usage counter outlives its hour
_COMMIT_STAGING_LOST = -1
_REQUEUE_LIVE = 0  # REQUEUE's answer for a job that a live worker holds
VideoBytes = Annotated[int, Field(gt=0, le=REDIS_STRING_MAX_BYTES)]


class StoreConfig(BaseModel):
    """Where the store keeps its keys, how long, and how much."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]*$")] = DEFAULT_PREFIX
    # A job's keys live this long after its last write (results included: a day to fetch them).
    ttl_s: PositiveFloat = DAY_S
    # A worker that has not refreshed its lock for this long is taken for dead; it
    # heartbeats a few times per lock TTL (say every third).
    lock_ttl_s: PositiveFloat = 30.0
    # Starts of one job before it is failed: a video that kills its worker (out of memory)
    # is redelivered, and must not be forever.
    max_attempts: PositiveInt = 3
    # An upload in progress (its job not created yet) is kept this long after its last chunk:
    # longer than the gateway waits for the next one (gateway.upload.read_timeout_s).
    upload_ttl_s: PositiveFloat = 120.0
    # The upload's hard limit (one Redis string); the gateway enforces a lower one of its own.
    max_video_bytes: VideoBytes = REDIS_STRING_MAX_BYTES
    max_result_bytes: PositiveInt = 256 * MIB  # all of one attempt's files together
    chunk_bytes: PositiveInt = MIB  # one round trip of a video or file transfer
    # An event stream that hears nothing for this long re-reads the job (and yields a
    # keep-alive): it notices a job that expired, or an event it missed.
    events_idle_s: PositiveFloat = 15.0


class JobStoreError(RuntimeError):
    """A job store operation that cannot be done; ``code`` is stable (for HTTP errors)."""

    code = "job_store_error"


class VideoTooLargeError(JobStoreError):
    """The upload would pass ``max_video_bytes``."""

    code = "video_too_large"


class JobClosedError(JobStoreError):
    """The job is gone, or no longer takes what was sent (an upload once it started)."""

    code = "job_closed"


class ResultsTooLargeError(JobStoreError):
    """An attempt's files together pass ``max_result_bytes``."""

    code = "results_too_large"


@dataclass(frozen=True)
class OwnerUsage:
    """What one API key's jobs hold now (:meth:`JobStore.owner_usage`)."""

    active_jobs: int  # queued or running
    stored_bytes: int  # uploads and published result files of every job still stored
    worker_seconds: float  # spent on its jobs in the current hour (since the epoch)


@dataclass(frozen=True)
class StoredFile:
    """A published result file: its size, and its bytes a chunk at a time (GETRANGE)."""

    name: str
    size: int
    key: str
    client: redis.Redis
    chunk_bytes: int

    def chunks(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """Bytes ``start`` to ``stop`` (exclusive; default: the end), ``chunk_bytes`` at a time.

        Raises:
            JobClosedError: the file vanished while being read (deleted, or expired).
        """
        stop = self.size if stop is None else min(stop, self.size)
        yield from _read_range(self.client, self.key, start, stop, self.chunk_bytes)

    def read(self) -> bytes:
        """The whole file (for small ones: the JSON result)."""
        return b"".join(self.chunks())


class JobStore:
    """Jobs in Redis: see the module's docstring for who calls what."""

    def __init__(self, client: redis.Redis, config: StoreConfig | None = None) -> None:
        """Use ``client`` (which must return bytes: videos and files are binary).

        Raises:
            ValueError: a client made with ``decode_responses=True``.
        """
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("the job store needs a Redis client with decode_responses=False")
        self.config = config or StoreConfig()
        self.keys = Keys(self.config.prefix)
        self._redis = client
        self._ttl_ms = _ms(self.config.ttl_s)
        self._lock_ms = _ms(self.config.lock_ttl_s)
        self._upload_ms = _ms(self.config.upload_ttl_s)
        register = client.register_script
        self._append_video = register(scripts.APPEND_VIDEO)
        self._create = register(scripts.CREATE)
        self._start = register(scripts.START)
        self._heartbeat = register(scripts.HEARTBEAT)
        self._set_progress = register(scripts.SET_PROGRESS)
        self._request_cancel = register(scripts.REQUEST_CANCEL)
        self._stage_chunk = register(scripts.STAGE_CHUNK)
        self._commit = register(scripts.COMMIT)
        self._settle = register(scripts.SETTLE)
        self._requeue = register(scripts.REQUEUE)
        self._forget_running = register(scripts.FORGET_RUNNING)

    # --- the gateway: create, upload, read -------------------------------------------------

    def create(
        self, owner: str, options: JobOptions | None = None, *, upload: str | None = None
    ) -> JobRecord:
        """A new queued job of ``owner`` (an API key's id). With ``upload``, the id an upload
        was appended under (:meth:`append_video`), the job takes that id and that video;
        without, a fresh unguessable id and no video.

        Raises:
            JobClosedError: the upload is gone (it expired, or was never sent), or a job with
                its id exists already.
        """
        record = JobRecord(
            id=upload or new_job_id(),
            owner=owner,
            options=options or JobOptions(),
            created_at=time.time(),
        )
        fields = [item for pair in record.to_hash().items() for item in pair]
        answer = int(
            self._create(
                keys=[self.keys.job(record.id), self.keys.video(record.id)],
                args=[self._ttl_ms, "1" if upload else "0", *fields],
            )
        )
        if answer == _CREATE_UPLOAD_LOST:
            raise JobClosedError(
                f"the upload {record.id} is gone: it paused longer than "
                f"{self.config.upload_ttl_s:g} s, or was never sent"
            )
        if answer == _CREATE_EXISTS:
            raise JobClosedError(f"job {record.id} exists already")
        index = self.keys.owner_jobs(owner)
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(index, {record.id: record.created_at})
            pipe.pexpire(index, self._ttl_ms)
            pipe.execute()
        return record

    def append_video(self, upload: str, chunk: bytes, offset: int) -> int:
        """Append ``chunk`` to the upload under id ``upload`` (a :func:`~.keys.new_job_id`),
        whose stored size is ``offset`` before it; returns the upload's size after it. The
        upload lives ``upload_ttl_s`` after its last chunk, until :meth:`create` makes it a
        job's.

        Raises:
            VideoTooLargeError: the upload would pass ``max_video_bytes`` (nothing appended).
            JobClosedError: its job exists already, or the part stored before expired.
        """
        size = int(
            self._append_video(
                keys=[self.keys.job(upload), self.keys.video(upload)],
                args=[chunk, offset, self.config.max_video_bytes, self._upload_ms],
            )
        )
        if size == _APPEND_TOO_LARGE:
            raise VideoTooLargeError(
                f"the video passes {self.config.max_video_bytes} bytes: send a shorter one"
            )
        if size == _APPEND_CLOSED:
            raise JobClosedError(f"job {upload} exists: its video takes no more bytes")
        if size == _APPEND_LOST:
            raise JobClosedError(
                f"the upload {upload} paused longer than {self.config.upload_ttl_s:g} s: "
                "its stored part expired"
            )
        return size

    def owner_usage(self, owner: str, now: float | None = None) -> OwnerUsage:
        """What the jobs of ``owner`` (an API key's id) hold now, for its quotas. Drops the
        index's entries of jobs that are gone."""
        index = self.keys.owner_jobs(owner)
        members = cast(list[bytes], self._redis.zrange(index, 0, -1))  # without scores
        job_ids = [_text(job_id) for job_id in members]
        with self._redis.pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.hget(self.keys.job(job_id), "state")
                pipe.strlen(self.keys.video(job_id))
                pipe.hvals(self.keys.files(job_id))
            pipe.get(self.keys.usage(owner, _hour(now)))
            replies = pipe.execute()
        active, stored, gone = 0, 0, []
        for position, job_id in enumerate(job_ids):
            state, video, sizes = replies[3 * position : 3 * position + 3]
            if state is None:
                gone.append(job_id)
                continue
            active += not JobState(_text(state)).terminal
            stored += int(video) + sum(int(size) for size in sizes)
        if gone:
            self._redis.zrem(index, *gone)
        return OwnerUsage(active, stored, float(replies[-1] or 0.0))

    def add_work(self, owner: str, seconds: float, now: float | None = None) -> None:
        """Count ``seconds`` of a worker's time against ``owner`` in the current hour."""
        key = self.keys.usage(owner, _hour(now))
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.incrbyfloat(key, seconds)
            pipe.expire(key, USAGE_TTL_S)
            pipe.execute()

    def video_size(self, job_id: str) -> int:
        """The upload's size in bytes (0 when there is none, or no longer)."""
        return self._redis.strlen(self.keys.video(job_id))

    def get(self, job_id: str) -> JobRecord | None:
        """The job's record; ``None`` when there is no such job (or ``job_id`` is malformed)."""
        if not is_job_id(job_id):
            return None
        fields = self._redis.hgetall(self.keys.job(job_id))
        return JobRecord.from_hash(fields) if fields else None

    def owner_jobs(self, owner: str, limit: int) -> list[tuple[JobRecord, dict[str, int]]]:
        """The newest ``limit`` jobs of ``owner`` (an API key's id), newest first, each with
        its published files (as :meth:`list_files`), read in one round trip. Drops the
        index's entries of jobs that are gone."""
        index = self.keys.owner_jobs(owner)
        members = cast(list[bytes], self._redis.zrevrange(index, 0, limit - 1))
        with self._redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hgetall(self.keys.job(_text(member)))
                pipe.hgetall(self.keys.files(_text(member)))
            replies = pipe.execute()
        jobs, gone = [], []
        for position, member in enumerate(members):
            fields, files = replies[2 * position : 2 * position + 2]
            if not fields:
                gone.append(member)
                continue
            jobs.append((JobRecord.from_hash(fields), _file_sizes(files)))
        if gone:
            self._redis.zrem(index, *gone)
        return jobs

    def is_stale(self, job: JobRecord) -> bool:
        """Whether ``job`` is ``running`` but its worker's lock lapsed: the worker died, and
        the job waits for a redelivery (or to be failed)."""
        return job.state is JobState.RUNNING and not self._redis.exists(self.keys.lock(job.id))

    def list_files(self, job_id: str) -> dict[str, int]:
        """The published result files: name → size in bytes (empty before success)."""
        return _file_sizes(self._redis.hgetall(self.keys.files(job_id)))

    def open_file(self, job_id: str, name: str) -> StoredFile | None:
        """A published result file, to stream; ``None`` when there is no such file.

        Raises:
            ValueError: a malformed file name.
        """
        size = self._redis.hget(self.keys.files(job_id), name)
        if size is None:
            return None
        return StoredFile(
            name, int(size), self.keys.file(job_id, name), self._redis, self.config.chunk_bytes
        )

    def request_cancel(self, job_id: str) -> JobState | None:
        """Ask for the job to stop: a queued job is cancelled now, a running one once its
        worker sees the flag. Returns the job's state after the request; ``None``: no job."""
        state = _text(self._request_cancel(keys=[self.keys.job(job_id)], args=[self._ttl_ms]))
        if not state:
            return None
        if state == JobState.QUEUED and self._end(job_id, JobState.CANCELLED, worker=None):
            return JobState.CANCELLED
        return JobState(state)

    def events(
        self, job_id: str, stop: threading.Event | None = None
    ) -> Iterator[ProgressEvent | None]:
        """The job's events as they come: first where it stands, then each change, until a
        final one (an ended or deleted job) or until ``stop`` is set (looked at every
        :data:`STOP_POLL_S`: a reader in another thread that leaves sets it, and this ends
        soon, rather than at the next keep-alive). ``None`` is a keep-alive, every
        ``events_idle_s`` without news. Nothing when there is no such job.

        The subscription is confirmed before the job is read, so no event falls between.
        """
        pubsub = self._redis.pubsub()
        try:
            pubsub.subscribe(self.keys.events(job_id))
            self._await_subscription(pubsub)
            record = self.get(job_id)
            if record is None:
                return
            yield ProgressEvent.of_record(record)
            if record.state.terminal:
                return
            stop = stop or threading.Event()
            quiet_since = time.monotonic()
            while not stop.is_set():
                quiet_for = time.monotonic() - quiet_since
                wait = min(self.config.events_idle_s - quiet_for, STOP_POLL_S)
                message = pubsub.get_message(timeout=max(wait, 0.0))
                if message is not None and message["type"] == "message":
                    event = ProgressEvent.model_validate_json(message["data"])
                    yield event
                    if event.final:
                        return
                    quiet_since = time.monotonic()
                    continue
                if time.monotonic() - quiet_since < self.config.events_idle_s:
                    continue
                quiet_since = time.monotonic()
                record = self.get(job_id)  # quiet: did it expire, or end unheard?
                if record is None:
                    yield ProgressEvent(kind=EventKind.DELETED, job_id=job_id)
                    return
                if record.state.terminal:
                    yield ProgressEvent.of_record(record)
                    return
                yield None
        finally:
            pubsub.close()

    def memory_usage(self, job_id: str) -> int:
        """Bytes of Redis memory the job's keys take (MEMORY USAGE, summed); 0 once gone."""
        keys = self._job_keys(job_id)
        with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.memory_usage(key, samples=0)  # 0: every field of a hash, exactly
            return sum(int(used or 0) for used in pipe.execute())

    def delete(self, job_id: str) -> bool:
        """Delete every key of the job and tell its listeners; whether there was a job.

        A worker still running it finds out at its next write (which changes nothing).
        """
        job = self.keys.job(job_id)
        existed = False

        def delete_all(pipe: redis.client.Pipeline) -> None:
            # The file index and staging set are WATCHed: a commit between reading them and
            # deleting them restarts this, so no file it published is left behind.
            nonlocal existed
            existed = bool(pipe.exists(job))
            keys = self._job_keys(job_id, pipe)
            pipe.multi()
            pipe.delete(*keys)
            if existed:
                event = ProgressEvent(kind=EventKind.DELETED, job_id=job_id)
                pipe.publish(self.keys.events(job_id), event.model_dump_json())

        self._redis.transaction(delete_all, self.keys.files(job_id), self.keys.staging(job_id), job)
        self._redis.zrem(self.keys.running(), job_id)
        return existed

    # --- the worker ------------------------------------------------------------------------

    def start(self, job_id: str, worker: str) -> JobRecord | None:
        """Take the job for ``worker``: its lock, state ``running``, one more attempt.

        Returns the job's record, or ``None`` when it is not to be run: there is no such job,
        it has ended, a live worker holds its lock, or it is settled here (cancelled, since a
        cancel was asked; failed, after ``max_attempts`` starts).
        """
        answer = _text(
            self._start(
                keys=[self.keys.job(job_id), self.keys.lock(job_id), self.keys.video(job_id)],
                args=[
                    worker, self._lock_ms, repr(time.time()), self._ttl_ms,
                    self.config.max_attempts,
                ],
            )
        )  # fmt: skip
        if answer == _STARTED:
            record = self.get(job_id)
            if record is not None:
                self._enter_running(job_id, record.attempts)
                event = ProgressEvent.of_record(record)
                self._redis.publish(self.keys.events(job_id), event.model_dump_json())
            return record
        if answer == _START_EXHAUSTED:
            self._end(
                job_id,
                JobState.FAILED,
                worker=None,
                code=ATTEMPTS_EXHAUSTED,
                message=f"the job stopped its worker {self.config.max_attempts} times; "
                "a shorter or smaller video may pass",
            )
        elif answer == _START_CANCEL:
            self._end(job_id, JobState.CANCELLED, worker=None)
        return None

    def copy_video_to(self, job_id: str, path: Path) -> int:
        """Write the job's upload to ``path``, a chunk at a time; returns its size.

        Raises:
            JobClosedError: there is no upload (gone), or it vanished while being read.
        """
        key = self.keys.video(job_id)
        size = self._redis.strlen(key)
        if size == 0:
            raise JobClosedError(f"job {job_id} has no video")
        with path.open("wb") as out:
            for chunk in _read_range(self._redis, key, 0, size, self.config.chunk_bytes):
                out.write(chunk)
        return size

    def heartbeat(self, job_id: str, worker: str) -> bool:
        """Refresh ``worker``'s lock on the job; ``False``: the job is no longer its own."""
        return bool(
            self._heartbeat(
                keys=[self.keys.lock(job_id), self.keys.job(job_id)],
                args=[worker, self._lock_ms, self._ttl_ms],
            )
        )

    def set_progress(self, job_id: str, worker: str, stage: str, done: int, total: int) -> bool:
        """Record and publish the job's progress; ``False``: the job is no longer ``worker``'s."""
        event = ProgressEvent(
            kind=EventKind.PROGRESS, job_id=job_id, state=JobState.RUNNING,
            stage=stage, done=done, total=total,
        )  # fmt: skip
        return bool(
            self._set_progress(
                keys=[self.keys.job(job_id)],
                args=[
                    worker, stage, done, total, self._ttl_ms,
                    self.keys.events(job_id), event.model_dump_json(),
                ],
            )
        )  # fmt: skip

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a cancel was asked for (the worker checks between batches)."""
        flag = self._redis.hget(self.keys.job(job_id), "cancel_requested")
        return flag is not None and _text(flag) == "1"

    def finish(
        self,
        job_id: str,
        worker: str,
        files: Mapping[str, Path],
        timings: Mapping[str, float] | None = None,
    ) -> bool:
        """Store ``files`` (result name → local file) and mark the job succeeded, atomically:
        the files become visible together with the state, or not at all.

        Returns ``False``, changing nothing, when the job is no longer ``worker``'s running
        attempt (it ended, was deleted, or another worker took it over).

        Raises:
            ResultsTooLargeError: the files together pass ``max_result_bytes``.
            JobStoreError: a staged file expired before the commit (a TTL shorter than the
                upload of the results).
            ValueError: a malformed file name.
        """
        sizes = {name: path.stat().st_size for name, path in files.items()}
        if sum(sizes.values()) > self.config.max_result_bytes:
            raise ResultsTooLargeError(
                f"the results take {sum(sizes.values())} bytes, more than "
                f"{self.config.max_result_bytes}: ask for fewer formats"
            )
        owner, attempt = self._redis.hmget(self.keys.job(job_id), ["worker", "attempts"])
        if owner is None or attempt is None or _text(owner) != worker:
            return False
        staged = {name: self.keys.staged_file(job_id, int(attempt), name) for name in files}
        for name, path in files.items():
            if not self._stage(job_id, worker, _text(attempt), staged[name], path):
                return False
        event = ProgressEvent(kind=EventKind.STATE, job_id=job_id, state=JobState.SUCCEEDED)
        names = list(files)
        answer = self._commit(
            keys=[
                self.keys.job(job_id), self.keys.lock(job_id), self.keys.video(job_id),
                self.keys.staging(job_id), self.keys.files(job_id),
                *(staged[name] for name in names),
                *(self.keys.file(job_id, name) for name in names),
            ],
            args=[
                worker, attempt, repr(time.time()), self._ttl_ms, _json(timings or {}),
                self.keys.events(job_id), event.model_dump_json(),
                *names, *(sizes[name] for name in names),
            ],
        )  # fmt: skip
        if answer == _COMMIT_STAGING_LOST:
            raise JobStoreError(f"job {job_id}: staged results expired before they were stored")
        if answer:
            self._redis.zrem(self.keys.running(), job_id)
        return bool(answer)

    def fail(
        self,
        job_id: str,
        code: str,
        message: str,
        *,
        worker: str | None = None,
        timings: Mapping[str, float] | None = None,
    ) -> bool:
        """Mark the job failed with an error ``code`` (stable) and ``message`` (for a person).

        With ``worker``, only while that worker runs it (a worker's own failure); without, any
        queued or running job (the gateway's verdict on a stale one). Returns whether it did.
        """
        return self._end(
            job_id, JobState.FAILED, worker=worker, code=code, message=message, timings=timings
        )

    def mark_cancelled(
        self, job_id: str, worker: str, timings: Mapping[str, float] | None = None
    ) -> bool:
        """The worker stopped on a cancel request: mark the job cancelled. Whether it did."""
        return self._end(job_id, JobState.CANCELLED, worker=worker, timings=timings)

    # --- the reaper ------------------------------------------------------------------------

    def running_jobs(self) -> dict[str, int]:
        """The ``running`` index: job id → the attempt that entered it (entries of jobs that
        ended a moment ago, or expired, may linger until :meth:`requeue_stale` meets them)."""
        # The client's stubs type a ZRANGE's reply loosely; with scores it is (member, score).
        entries = cast(
            list[tuple[bytes, float]],
            self._redis.zrange(self.keys.running(), 0, -1, withscores=True),
        )
        return {_text(job_id): int(attempt) for job_id, attempt in entries}

    def requeue_stale(self) -> list[str]:
        """Put every running job whose worker's lock lapsed back to ``queued``; returns their
        ids, whose tasks the caller sends again. Each is returned to one caller only, however
        many reapers run at once. Drops the index's entries of jobs no longer running."""
        requeued = []
        for job_id, attempt in self.running_jobs().items():
            event = ProgressEvent(kind=EventKind.STATE, job_id=job_id, state=JobState.QUEUED)
            answer = int(
                self._requeue(
                    keys=[self.keys.job(job_id), self.keys.lock(job_id), self.keys.video(job_id)],
                    args=[self._ttl_ms, self.keys.events(job_id), event.model_dump_json()],
                )
            )
            if answer == _REQUEUE_LIVE:
                continue
            if answer > 0:
                requeued.append(job_id)
            self._forget_running(keys=[self.keys.running()], args=[job_id, attempt])
        return requeued

    # --- internals -------------------------------------------------------------------------

    def _enter_running(self, job_id: str, attempt: int) -> None:
        """Put the job in the ``running`` index under ``attempt`` (which expires as a job's
        keys do, so that an index nobody writes to any more does not stay for ever)."""
        with self._redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.running(), {job_id: attempt})
            pipe.pexpire(self.keys.running(), self._ttl_ms)
            pipe.execute()

    def _end(
        self,
        job_id: str,
        state: JobState,
        *,
        worker: str | None,
        code: str | None = None,
        message: str | None = None,
        timings: Mapping[str, float] | None = None,
    ) -> bool:
        """Settle a queued or running job as failed or cancelled (:data:`.scripts.SETTLE`)."""
        event = ProgressEvent(
            kind=EventKind.STATE, job_id=job_id, state=state,
            error_code=code, error_message=message,
        )  # fmt: skip
        settled = bool(
            self._settle(
                keys=[
                    self.keys.job(job_id), self.keys.lock(job_id), self.keys.video(job_id),
                    self.keys.staging(job_id),
                ],
                args=[
                    state.value, worker or "", code or "", message or "", repr(time.time()),
                    self._ttl_ms, "" if timings is None else _json(timings),
                    self.keys.events(job_id), event.model_dump_json(),
                ],
            )
        )  # fmt: skip
        if settled:
            self._redis.zrem(self.keys.running(), job_id)
        return settled

    def _stage(self, job_id: str, worker: str, attempt: str, key: str, path: Path) -> bool:
        """Upload one result file under its attempt's key; ``False``: the attempt lost the job."""
        job, staging = self.keys.job(job_id), self.keys.staging(job_id)
        with path.open("rb") as source:
            first = True
            # An empty file is still one (empty) chunk, so that its key exists.
            while (chunk := source.read(self.config.chunk_bytes)) or first:
                written = self._stage_chunk(
                    keys=[job, key, staging],
                    args=[worker, attempt, chunk, "1" if first else "0", self._ttl_ms],
                )
                if not written:
                    return False
                first = False
        return True

    def _job_keys(self, job_id: str, client: redis.Redis | None = None) -> list[str]:
        """Every key the job has now: fixed ones, published files, staged files."""
        client = client or self._redis
        names = client.hkeys(self.keys.files(job_id))
        staged = client.smembers(self.keys.staging(job_id))
        return [
            self.keys.job(job_id),
            self.keys.video(job_id),
            self.keys.lock(job_id),
            self.keys.staging(job_id),
            self.keys.files(job_id),
            *(self.keys.file(job_id, _text(name)) for name in names),
            *(_text(key) for key in staged),
        ]

    def _await_subscription(self, pubsub: redis.client.PubSub) -> None:
        deadline = time.monotonic() + self.config.events_idle_s
        while time.monotonic() < deadline:
            message = pubsub.get_message(timeout=deadline - time.monotonic())
            if message is not None and message["type"] == "subscribe":
                return
        raise TimeoutError("Redis did not confirm the subscription to a job's events")


def _read_range(
    client: redis.Redis, key: str, start: int, stop: int, chunk_bytes: int
) -> Iterator[bytes]:
    """Bytes ``start`` to ``stop`` of a string key, by GETRANGE of ``chunk_bytes``.

    Raises:
        JobClosedError: the key shrank or vanished meanwhile (a short read).
    """
    for offset in range(start, stop, chunk_bytes):
        want = min(chunk_bytes, stop - offset)
        chunk = client.getrange(key, offset, offset + want - 1)  # GETRANGE's end is inclusive
        if len(chunk) != want:
            raise JobClosedError(f"{key} vanished while it was read")
        yield chunk if isinstance(chunk, bytes) else chunk.encode()


def _hour(now: float | None) -> int:
    """The hour since the epoch of ``now`` (default: the current time)."""
    return int((time.time() if now is None else now) // HOUR_S)


def _ms(seconds: float) -> int:
    """Seconds as the whole milliseconds PEXPIRE and PX take (at least 1)."""
    return max(1, round(seconds * MS_PER_S))


def _json(timings: Mapping[str, float]) -> str:
    return json.dumps(dict(timings), separators=(",", ":"))


def _file_sizes(index: Mapping[Any, Any]) -> dict[str, int]:
    """A job's file index as Redis gives it: name → size in bytes."""
    return {_text(name): int(size) for name, size in index.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
