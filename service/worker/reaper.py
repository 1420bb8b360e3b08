"""The reaper: running jobs whose worker died, queued again without waiting for the broker.

With Redis as broker, a message a dead worker took returns to the queue only after the
visibility timeout, set longer than a job may run (an hour by default). The reaper does not
wait for it: every worker process runs one, a thread that every ``reaper_interval_s`` asks the
store for the running jobs whose lock has lapsed (:meth:`~service.jobs.JobStore.requeue_stale`
puts each back to ``queued`` for exactly one caller) and sends their task again. A dead
worker's job is thus running again within ``lock_ttl_s + reaper_interval_s``; the broker's own
redelivery, later, finds it started or ended and does nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import kombu.exceptions
import redis

from service.jobs import JobStore

# Redis away, as the store (redis-py) or the broker (kombu) says it.
REDIS_ERRORS = (redis.RedisError, kombu.exceptions.OperationalError)
log = logging.getLogger(__name__)


class Reaper:
    """Requeues dead workers' jobs every ``interval_s`` in a daemon thread, sending each one's
    task with ``send(job_id)``; a task it could not send is sent at the next pass."""

    def __init__(self, store: JobStore, send: Callable[[str], None], interval_s: float) -> None:
        self._store = store
        self._send = send
        self._interval_s = interval_s
        self._unsent: list[str] = []  # requeued, their task not sent yet (the broker failed)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reaper", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for its pass to end."""
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join()

    def sweep(self) -> list[str]:
        """One pass: requeue the stale jobs and send their tasks; returns the ids sent.

        Raises:
            redis.RedisError: Redis failed; or whatever ``send`` raised (the requeued jobs not
                sent yet stay pending).
        """
        for job_id in self._store.requeue_stale():
            log.warning("job %s lost its worker: queued again", job_id)
            self._unsent.append(job_id)
        sent = []
        while self._unsent:
            self._send(self._unsent[0])
            sent.append(self._unsent.pop(0))
        return sent

    def _run(self) -> None:
        interval = self._interval_s
        while not self._stopped.wait(interval):
            try:
                self.sweep()
            except REDIS_ERRORS as error:  # Redis away: expected now and then; one line
                log.warning("the reaper's pass failed (%s); again in %.1f s", error, interval)
            except Exception:  # a bug: said in full, and the thread goes on
                log.exception("the reaper's pass failed; again in %.1f s", interval)
