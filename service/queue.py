"""The job queue: one Celery task, ``process_job(job_id)``, on one queue in Redis.

The gateway only sends the task by name (it imports no pipeline); the worker defines it
(:mod:`service.worker.tasks`). Celery carries only the job id: the video, the job's state and
its results live in the job store (:mod:`service.jobs`), so Celery has no result backend.

Delivery is at least once: a task is acknowledged after it ran (``acks_late``), and a worker
process that dies mid-task gives it back (``reject_on_worker_lost``). With Redis as broker, a
message taken by a worker that vanished returns to the queue after the visibility timeout;
the job store's lock tells such a redelivery whether the first worker is still alive. That
timeout is a backstop: the workers' reaper (:mod:`service.worker.reaper`) queues a dead
worker's job again as soon as its lock lapses.

The broker's keys and channels (the queue, its unacknowledged messages, the workers' control
channel) go under the job store's prefix (:func:`broker_prefix`): deployments, or tests, that
share one Redis with different prefixes never take each other's tasks, and the queue keeps its
one name.
"""

from __future__ import annotations

from celery import Celery

from service.settings import ServiceSettings

QUEUE = "meshcast.jobs"
PROCESS_JOB = "meshcast.process_job"
BROKER_NAMESPACE = "celery:"  # under the store's prefix, beside its job:, rate: and running keys
# Seconds a message stays unacknowledged past the hard time limit before Redis hands it out
# again: the job's lock settles whether its first worker still runs it.
REDELIVERY_MARGIN_S = 60.0


def broker_prefix(settings: ServiceSettings) -> str:
    """The prefix of every broker key and channel: the store's, then :data:`BROKER_NAMESPACE`."""
    return f"{settings.store.prefix}{BROKER_NAMESPACE}"


def celery_app(settings: ServiceSettings) -> Celery:
    """A Celery app on ``settings.redis_url`` with the delivery rules above."""
    worker = settings.worker
    app = Celery("meshcast", broker=settings.redis_url)
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # one job at a time per process, none held back
        task_soft_time_limit=worker.soft_time_limit_s,
        task_time_limit=worker.time_limit_s,
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        # A message is handed out again once unacknowledged this long: longer than a job may
        # run (the hard limit), or a live worker's job would be given to a second one.
        broker_transport_options={
            "visibility_timeout": worker.time_limit_s + REDELIVERY_MARGIN_S,
            "global_keyprefix": broker_prefix(settings),
        },
        worker_hijack_root_logger=False,
    )
    return app
