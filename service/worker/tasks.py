"""The task: ``process_job(job_id)``, one job through the pipeline, from the store to the store.

Each delivery of the task is one attempt, and any number of deliveries of one job are safe
(Celery delivers at least once; the reaper sends a dead worker's job again):

1. :meth:`~service.jobs.JobStore.start` takes the job's lock, or says it is not to run (gone,
   ended, a live worker holds it, cancelled, out of attempts): the task then does nothing;
2. the upload is copied to a temporary folder, the pipeline runs on it with a progress callback
   that writes progress and stops the attempt on a cancel (:mod:`.attempt`), while a thread
   keeps the lock; the outputs are written beside it, ``result.npz`` without posed vertices
   (parameters alone, 2.5 KiB a person-frame instead of 163 KiB for the stand-in body: a long
   video's result fits the store; the gateway poses a frame's mesh when it is downloaded);
3. :meth:`~service.jobs.JobStore.finish` publishes the attempt's files together with the state
   ``succeeded``, or nothing if the job is no longer this attempt's. The folder is removed,
   whatever happened.

A bad upload, or one with nobody in it, fails the job with the pipeline's stable code and a
sentence for its owner, at once and for good; a video whose first ``nobody_stop_s`` seconds
hold nobody fails so without being decoded further. Redis failing (the store's connection
errors) is transient: the attempt is tried again, backing off, up to ``max_retries`` times, no
sooner than the lock lapses (the lock is not given back: Redis may not answer). The retries
happen here, in the task, not by sending it again through the broker: the broker is the same
Redis, and a retry sent while it is down would be lost (the job left to the reaper). The soft
time limit fails the job with ``time_limit``. Each attempt's seconds count against its owner's
hourly worker time (:class:`~service.settings.Quotas`).
"""

from __future__ import annotations

import logging
import time
from enum import StrEnum
from pathlib import Path

import redis
from celery import Celery, Task
from celery.exceptions import SoftTimeLimitExceeded

from service.jobs import JobOptions, JobRecord, JobState, JobStoreError
from service.outputs import write_outputs
from service.pipeline import run as pipeline
from service.pipeline.body import BodyMeshes
from service.pipeline.run import NoPeopleError, PipelineConfig, process_video
from service.pipeline.video import VideoError
from service.queue import PROCESS_JOB
from service.scratch_folders import JOB_PREFIX, scratch_folder, sweep_orphan_folders
from service.settings import WorkerSettings
from service.worker.attempt import CancelRequestedError, Heartbeat, JobLostError, ProgressReporter
from service.worker.runtime import WorkerRuntime, runtime

# Redis unreachable, restarting (BusyLoadingError is a ConnectionError) or silent: worth a retry.
TRANSIENT_ERRORS = (redis.ConnectionError, redis.TimeoutError)
# Error codes of a failed job, beside the video's (VideoError.code) and the store's.
NO_PEOPLE = "no_people"
TIME_LIMIT = "time_limit"
STORE_UNAVAILABLE = "store_unavailable"
INTERNAL_ERROR = "internal_error"
OUTPUTS_STAGE = "outputs"  # the stage reported while the files are written
VIDEO_FILE = "upload"  # the copy of the upload (FFmpeg reads the format from the bytes)
OUTPUTS_FOLDER = "outputs"
log = logging.getLogger(__name__)


class Outcome(StrEnum):
    """How one delivery of the task ended (its return value, in Celery's log)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SKIPPED = "skipped"  # not to run: see JobStore.start
    LOST = "lost"  # taken from this worker meanwhile (deleted, or taken over)


def register_task(app: Celery) -> Task:
    """Define :func:`process_job` on ``app`` under :data:`~service.queue.PROCESS_JOB`."""
    task: Task = app.task(name=PROCESS_JOB)(process_job)
    return task


def process_job(job_id: str) -> str:
    """Celery's task: job ``job_id``, tried again here while Redis fails (see the module);
    returns its outcome."""
    current = runtime()
    worker = current.settings.worker
    retry = 0
    while True:
        try:
            return run_job(current, job_id)
        except TRANSIENT_ERRORS as error:
            if retry >= worker.max_retries:
                message = f"the job store stayed unreachable through {retry} retries: {error}"
                _fail_if_possible(current, job_id, STORE_UNAVAILABLE, message)
                return Outcome.FAILED
            # The lock stays until it lapses (Redis may not answer to give it back): an
            # attempt started sooner would find the job still held, and skip it.
            delay = max(worker.retry_backoff_s * 2**retry, current.settings.store.lock_ttl_s)
            log.warning("job %s: Redis failed (%s); trying again in %.1f s", job_id, error, delay)
            time.sleep(delay)
            retry += 1


def run_job(current: WorkerRuntime, job_id: str) -> Outcome:
    """One attempt at job ``job_id`` with this process's runtime (see the module).

    Raises:
        redis.ConnectionError, redis.TimeoutError: Redis failed (transient).
    """
    store, worker = current.store, current.worker_id
    record = store.start(job_id, worker)
    if record is None:
        log.info("job %s: not to run (gone, ended, held by a live worker, or settled)", job_id)
        return Outcome.SKIPPED
    log.info("job %s: attempt %d started", job_id, record.attempts)
    started = time.monotonic()
    try:
        return _attempt(current, record)
    finally:
        _count_work(current, record, time.monotonic() - started)


def _attempt(current: WorkerRuntime, record: JobRecord) -> Outcome:
    """Run the started job ``record`` to its end (see :func:`run_job`)."""
    store, worker, job_id = current.store, current.worker_id, record.id
    sweep_orphan_folders(JOB_PREFIX)
    with (
        scratch_folder(JOB_PREFIX) as folder,
        Heartbeat(store, job_id, worker) as heartbeat,
    ):
        reporter = ProgressReporter(
            store, job_id, worker, heartbeat, current.settings.worker.progress_interval_s
        )
        try:
            files, timings = _produce(current, record, Path(folder), reporter)
            reporter.check()  # a cancel asked while the files were written
            if not store.finish(job_id, worker, files, timings):
                return Outcome.LOST
        except CancelRequestedError:
            store.mark_cancelled(job_id, worker)
            return Outcome.CANCELLED
        except JobLostError:
            return Outcome.LOST
        except VideoError as error:
            return _failed(current, job_id, error.code, str(error))
        except NoPeopleError as error:
            return _failed(current, job_id, NO_PEOPLE, str(error))
        except JobStoreError as error:  # no upload, results too large, staging lost
            return _failed(current, job_id, error.code, str(error))
        except SoftTimeLimitExceeded:
            limit = current.settings.worker.soft_time_limit_s
            message = f"the job ran past the time limit of {limit:.0f} s: send a shorter video"
            return _failed(current, job_id, TIME_LIMIT, message)
        except TRANSIENT_ERRORS:
            raise
        except Exception as error:  # a bug, or a video that breaks a library: never retried
            log.exception("job %s failed", job_id)
            # The details (paths, internals) go to the log, not to the job's owner.
            message = f"the worker failed on this video ({type(error).__name__}): please report it"
            return _failed(current, job_id, INTERNAL_ERROR, message)
    log.info("job %s: succeeded with %d files", job_id, len(files))
    return Outcome.SUCCEEDED


def pipeline_config(options: JobOptions, worker: WorkerSettings) -> PipelineConfig:
    """The pipeline's settings for a job's options on a worker of ``worker``'s settings."""
    return pipeline.pipeline_config(
        smooth=options.smooth,
        min_track_length=options.min_track_length,
        precision=worker.precision,
        detect_every=worker.detect_every,
        nobody_stop_s=worker.nobody_stop_s,
    )


def _produce(
    current: WorkerRuntime, record: JobRecord, folder: Path, reporter: ProgressReporter
) -> tuple[dict[str, Path], dict[str, float]]:
    """The job's output files (result name → file in ``folder``) and stage timings."""
    video = folder / VIDEO_FILE
    current.store.copy_video_to(record.id, video)
    config = pipeline_config(record.options, current.settings.worker)
    run = process_video(video, current.bundle, config, sessions=current.sessions, progress=reporter)
    reporter(OUTPUTS_STAGE, 0, 1)
    started = time.perf_counter()
    out = folder / OUTPUTS_FOLDER
    written = write_outputs(
        run.result,
        video,
        out,
        BodyMeshes(current.sessions.body, config.regression.batch_size),
        focal_length=run.focal_length,
        formats=record.options.stored_formats,
        npz_vertices=False,  # the gateway poses each frame's mesh from the parameters
        preview_keypoints=record.options.preview_keypoints,
        # the preview's frames as the stage's progress; a cancel is seen between them too
        progress=lambda _step, done, total: reporter(OUTPUTS_STAGE, done, total),
    )
    reporter(OUTPUTS_STAGE, 1, 1)
    files = {path.relative_to(out).as_posix(): path for paths in written.values() for path in paths}
    return files, {**run.seconds, OUTPUTS_STAGE: time.perf_counter() - started}


def _count_work(current: WorkerRuntime, record: JobRecord, seconds: float) -> None:
    """Count an attempt's ``seconds`` against its owner's hourly worker time, if Redis
    answers (a quota, not a bill: an attempt lost to Redis may go uncounted)."""
    try:
        current.store.add_work(record.owner, seconds)
    except TRANSIENT_ERRORS as error:
        log.warning("job %s: its worker time went uncounted (%s)", record.id, error)


def _failed(current: WorkerRuntime, job_id: str, code: str, message: str) -> Outcome:
    """Fail this worker's attempt with ``code`` and ``message``."""
    log.info("job %s: failed: %s: %s", job_id, code, message)
    if current.store.fail(job_id, code, message, worker=current.worker_id):
        return Outcome.FAILED
    return Outcome.LOST


def _fail_if_possible(current: WorkerRuntime, job_id: str, code: str, message: str) -> None:
    """Fail the job, if Redis answers, when this worker runs it or nobody does (it is queued:
    the failure came before it started, and no task of it is left). Otherwise leave it: a
    running job's lock lapses, and the reaper finds it."""
    store = current.store
    try:
        if store.fail(job_id, code, message, worker=current.worker_id):
            return
        record = store.get(job_id)
        if record is not None and record.state is JobState.QUEUED:
            store.fail(job_id, code, message)
    except TRANSIENT_ERRORS as error:
        log.error("job %s: could not be failed (%s)", job_id, error)
