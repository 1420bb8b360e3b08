"""``meshcast worker``: a Celery worker that runs the gateway's jobs (issue #7)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"


@click.command("worker")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="The service's YAML settings; default: $MESHCAST_CONFIG, else the built-in "
                   "ones. MESHCAST_REDIS_URL, MESHCAST_BUNDLE and MESHCAST_DEVICE override "
                   "it.")  # fmt: skip
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes, each running one job at a time with its own onnxruntime "
                   "sessions. On a GPU keep 1, and run one worker per GPU "
                   "(CUDA_VISIBLE_DEVICES picks it).")  # fmt: skip
@click.option("--loglevel", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              default="info", show_default=True)  # fmt: skip
@click.option("--hostname", default=None,
              help="The worker's Celery node name (default: celery@HOST; %h is the host); "
                   "workers that share a host need their own.")  # fmt: skip
def command(
    config_file: Path | None, concurrency: int, loglevel: str, hostname: str | None
) -> None:
    """Run jobs from the queue: each job's upload, from Redis, through the pipeline (people
    tracked, SMPL bodies estimated) to its result files, back in Redis.

    The bundle is loaded once, before the worker starts: a missing or broken one ends the
    command at once. Jobs are acknowledged once done, so a worker that dies leaves its job to
    another; each worker also queues again the jobs of workers that died.
    """
    from celery.utils.nodenames import default_nodename, host_format

    from meshcast.service_config import load_service_settings
    from service.queue import QUEUE, broker_prefix
    from service.worker import configure, worker_app

    settings = load_service_settings(config_file)
    loaded = configure(settings)  # a missing bundle, or no CUDA for device 'cuda', ends here
    logging.basicConfig(level=loglevel.upper(), format=LOG_FORMAT)
    click.echo(
        f"meshcast worker: bundle {loaded.bundle.path} ({loaded.bundle.manifest.family}) on "
        f"{', '.join(loaded.providers)}; queue {QUEUE} under {broker_prefix(settings)}",
        err=True,
    )
    worker = worker_app(settings).Worker(
        hostname=host_format(default_nodename(hostname or "")),  # as `celery worker -n`
        pool_cls="prefork",  # a process per job: a crash, or a leak, takes one job with it
        concurrency=concurrency,
        loglevel=loglevel.upper(),
        queues=[QUEUE],
        # Gossip and mingle share Celery's revokes between workers; jobs are cancelled in the
        # job store instead, and mingle would hold every start-up for its replies.
        without_gossip=True,
        without_mingle=True,
    )
    worker.start()
    sys.exit(worker.exitcode)
