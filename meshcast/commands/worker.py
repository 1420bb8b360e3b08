"""``meshcast worker``: a Celery worker that runs the gateway's jobs; ``meshcast worker ping``:
whether it answers (a container's liveness check)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMAT = "%(asctime)s %(levelname)s %(processName)s %(name)s: %(message)s"
# The pool runs the jobs and the worker's main process answers control messages meanwhile
# (tests/service/worker/test_worker.py pings it mid-job), so a ping that goes unanswered this
# long means a stuck worker or an unreachable Redis.
PING_TIMEOUT_S = 10.0

CONFIG_OPTION = click.option(
    "--config", "config_file", type=click.Path(path_type=Path), default=None,
    help="The service's YAML settings; default: $MESHCAST_CONFIG, else the built-in ones. "
         "MESHCAST_REDIS_URL, MESHCAST_BUNDLE and MESHCAST_DEVICE override it.",
)  # fmt: skip
HOSTNAME_HELP = (
    "The worker's Celery node name (default: celery@HOST; %h is the host); workers that share "
    "a host need their own."
)


@click.group("worker", invoke_without_command=True)
@CONFIG_OPTION
@click.option("--concurrency", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes, each running one job at a time with its own onnxruntime "
                   "sessions. On a GPU keep 1, and run one worker per GPU "
                   "(CUDA_VISIBLE_DEVICES picks it).")  # fmt: skip
@click.option("--loglevel", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              default="info", show_default=True)  # fmt: skip
@click.option("--hostname", default=None, help=HOSTNAME_HELP)
@click.pass_context
def command(
    ctx: click.Context,
    config_file: Path | None,
    concurrency: int,
    loglevel: str,
    hostname: str | None,
) -> None:
    """Run jobs from the queue: each job's upload, from Redis, through the pipeline (people
    tracked, SMPL bodies estimated) to its result files, back in Redis.

    The bundle is loaded once, before the worker starts: a missing or broken one ends the
    command at once. Jobs are acknowledged once done, so a worker that dies leaves its job to
    another; each worker also queues again the jobs of workers that died.
    """
    if ctx.invoked_subcommand is not None:
        return

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
        hostname=node_name(hostname),
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


@command.command("ping")
@CONFIG_OPTION
@click.option("--hostname", default=None, help=HOSTNAME_HELP)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True),
              default=PING_TIMEOUT_S, show_default=True,
              help="Seconds to wait for the answer.")  # fmt: skip
def ping(config_file: Path | None, hostname: str | None, timeout_s: float) -> None:
    """Exit 0 if the worker named (default: this host's) answers Celery's ping through the
    configured Redis, else 1 with one line: a container's liveness check."""
    from meshcast.service_config import load_service_settings
    from service.queue import celery_app

    settings = load_service_settings(config_file)
    node = node_name(hostname)
    if not celery_app(settings).control.ping(destination=[node], timeout=timeout_s):
        raise LookupError(f"worker {node} did not answer a ping within {timeout_s:g} s")
    click.echo(f"{node}: pong")


def node_name(hostname: str | None) -> str:
    """The Celery node name of ``--hostname``, as ``celery worker -n`` makes it."""
    from celery.utils.nodenames import default_nodename, host_format

    return str(host_format(default_nodename(hostname or "")))
