"""The worker: Celery tasks that run jobs from the store through the pipeline (issue #7).

``meshcast worker`` loads the bundle once (:func:`~.runtime.configure`; a bad one stops it
before it takes a job) and runs a Celery worker on the job queue (:mod:`service.queue`). One job
at a time per process: ``--concurrency`` is the number of processes, each with its own
onnxruntime sessions; on a GPU run one worker with concurrency 1 per GPU, as two jobs on one
GPU share its memory and gain little.

- :mod:`.runtime`: what a worker process keeps between jobs (settings, store, bundle, sessions,
  its worker id) and the choice of onnxruntime's providers;
- :mod:`.attempt`: one attempt kept alive (the lock's heartbeat) and reported (progress,
  cancellation between batches);
- :mod:`.tasks`: the task ``process_job(job_id)``, its errors and retries;
- :mod:`.reaper`: dead workers' jobs queued again, without waiting for the broker;
- :mod:`.app`: the worker's Celery app, and each pool process's start and stop.
"""

from service.worker.app import worker_app
from service.worker.reaper import Reaper
from service.worker.runtime import WorkerRuntime, choose_providers, configure, runtime
from service.worker.tasks import Outcome, pipeline_config, process_job, run_job

__all__ = [
    "Outcome",
    "Reaper",
    "WorkerRuntime",
    "choose_providers",
    "configure",
    "pipeline_config",
    "process_job",
    "run_job",
    "runtime",
    "worker_app",
]
