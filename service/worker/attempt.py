"""One attempt at a job kept alive and reported: the heartbeat of its lock, its progress, and
the checks between batches that stop it (a cancel asked for, or the job no longer its own).

The pipeline calls its progress callback after every batch and stage
(:data:`service.pipeline.run.Progress`); :class:`ProgressReporter` is that callback, and it
stops the pipeline by raising :class:`AttemptStoppedError`. The lock is kept by a thread of its
own (:class:`Heartbeat`), not by the callback: one batch of a long video, or the upload of the
results, may take longer than the lock lives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType

import redis

from service.jobs import JobStore

HEARTBEATS_PER_LOCK_TTL = 3  # a lock outlives two missed heartbeats
log = logging.getLogger(__name__)


class AttemptStoppedError(Exception):
    """The attempt must stop (raised from the progress callback, through the pipeline)."""


class CancelRequestedError(AttemptStoppedError):
    """A cancel was asked for: the job is to be marked cancelled."""


class JobLostError(AttemptStoppedError):
    """The job is no longer this worker's: deleted, ended, or taken over by another worker
    after this one's lock lapsed. Nothing more is to be written."""


class Heartbeat:
    """A thread that refreshes the worker's lock on a job, :data:`HEARTBEATS_PER_LOCK_TTL`
    times per lock TTL, while the attempt runs (a context manager).

    :attr:`lost` is set once the store says the job is no longer the worker's.
    """

    def __init__(self, store: JobStore, job_id: str, worker: str) -> None:
        self.lost = threading.Event()
        self._store, self._job_id, self._worker = store, job_id, worker
        self._interval_s = store.config.lock_ttl_s / HEARTBEATS_PER_LOCK_TTL
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {job_id}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stopped.wait(self._interval_s):
            try:
                if not self._store.heartbeat(self._job_id, self._worker):
                    self.lost.set()
                    return
            except redis.RedisError as error:
                # The task meets the same error at its next call and deals with it; beating
                # on keeps the lock should Redis come back before the task notices.
                log.warning("job %s: heartbeat failed: %s", self._job_id, error)


class ProgressReporter:
    """The pipeline's progress callback for one attempt: writes ``(stage, done, total)`` to
    the store (which publishes it) at most every ``interval_s``, besides each stage's first
    and last report, and stops the attempt on a cancel or a lost job.

    Raises (from a call):
        CancelRequestedError: a cancel was asked for.
        JobLostError: the job is no longer the worker's.
        redis.RedisError: Redis failed.
    """

    def __init__(
        self,
        store: JobStore,
        job_id: str,
        worker: str,
        heartbeat: Heartbeat,
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store, self._job_id, self._worker = store, job_id, worker
        self._heartbeat = heartbeat
        self._interval_s = interval_s
        self._clock = clock
        self._stage: str | None = None
        self._written_at = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.check()
        now = self._clock()
        if stage == self._stage and done < total and now - self._written_at < self._interval_s:
            return
        if not self._store.set_progress(self._job_id, self._worker, stage, done, total):
            raise JobLostError(f"job {self._job_id} is no longer this worker's")
        self._stage, self._written_at = stage, now

    def check(self) -> None:
        """Raise if the attempt must stop (see the class)."""
        if self._heartbeat.lost.is_set():
            raise JobLostError(f"job {self._job_id} is no longer this worker's")
        if self._store.cancel_requested(self._job_id):
            raise CancelRequestedError(f"job {self._job_id} was cancelled")
