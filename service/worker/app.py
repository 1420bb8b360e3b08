"""The worker's Celery app: the queue's app (:func:`service.queue.celery_app`) with the task
defined, and what each pool process does as it starts and stops.

Each pool process, as it starts (Celery's ``worker_process_init``, after the fork), opens its
runtime (the bundle's sessions: the first job does not wait for them) and starts its reaper;
as it stops, it stops the reaper.
"""

from __future__ import annotations

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from service.queue import PROCESS_JOB, QUEUE, celery_app
from service.settings import ServiceSettings
from service.worker.reaper import Reaper
from service.worker.runtime import runtime
from service.worker.tasks import register_task

# Celery's signals are global: these ids keep a second app made in one process (a test) from
# connecting its handlers twice.
_STARTED_UID, _STOPPING_UID = "meshcast.worker.process_started", "meshcast.worker.process_stopping"


def worker_app(settings: ServiceSettings) -> Celery:
    """The Celery app a worker runs: the queue's, with :func:`~.tasks.process_job` defined
    and each pool process's runtime and reaper (see the module)."""
    app = celery_app(settings)
    # A broker that drops its connection does not stop the running job (Celery 6's default
    # will): the job's own writes to the store decide whether it goes on, and if Redis stays
    # away the task retries and the reaper queues the job again.
    app.conf.worker_cancel_long_running_tasks_on_connection_loss = False
    app.conf.worker_proc_alive_timeout = settings.worker.start_timeout_s
    register_task(app)
    reapers: list[Reaper] = []  # this process's, once started

    def send(job_id: str) -> None:
        app.send_task(PROCESS_JOB, args=[job_id], queue=QUEUE)

    def process_started(**_: object) -> None:
        current = runtime()
        reaper = Reaper(current.store, send, settings.worker.reaper_interval_s)
        reaper.start()
        reapers.append(reaper)

    def process_stopping(**_: object) -> None:
        while reapers:
            reapers.pop().stop()

    worker_process_init.connect(process_started, weak=False, dispatch_uid=_STARTED_UID)
    worker_process_shutdown.connect(process_stopping, weak=False, dispatch_uid=_STOPPING_UID)
    return app
