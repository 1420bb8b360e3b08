"""What a worker process keeps between jobs: its settings, job store, bundle and sessions.

A Celery worker is a main process that takes messages from the queue and a pool of child
processes (prefork) that run the tasks. Loading is split between them:

- the main process loads and checks the bundle once, at start-up (:func:`configure`): a missing
  or corrupt bundle, or a device this onnxruntime lacks, stops ``meshcast worker`` with one
  line before it takes a job; the children inherit the loaded bundle by fork;
- each child opens the bundle's onnxruntime sessions, its Redis client and its worker id once,
  on its first use (:func:`runtime`, which the worker calls as the child starts), never before
  the fork: onnxruntime's thread pools and a CUDA context do not survive one, and a worker id
  names one process.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from service.bundle import CPU_PROVIDER, CUDA_PROVIDER, Bundle, Sessions, load_bundle
from service.jobs import JobStore
from service.settings import Device, ServiceSettings

WORKER_ID_RANDOM_BYTES = 4  # tells apart two processes of one pid (a container restarted)
# A Redis call that hangs this long (a server gone silent, not one that refused) is an error,
# which the task treats as transient. Far above any one call's time: uploads go by the MiB.
REDIS_SOCKET_TIMEOUT_S = 30.0


def choose_providers(device: Device, available: Sequence[str]) -> list[str]:
    """onnxruntime's execution providers for ``device``, given those this onnxruntime has.

    ``"auto"``: CUDA (then the CPU, for the operators CUDA lacks) when available, else the CPU;
    ``"cuda"``: the same, but CUDA is required; ``"cpu"``: the CPU alone.

    Raises:
        ValueError: ``"cuda"`` asked of an onnxruntime without CUDA.
    """
    if device == "cpu":
        return [CPU_PROVIDER]
    if CUDA_PROVIDER in available:
        return [CUDA_PROVIDER, CPU_PROVIDER]
    if device == "cuda":
        raise ValueError(
            "device 'cuda' asked for, but this onnxruntime has no CUDA provider (it has "
            f"{', '.join(available)}): install meshcast[gpu] on a machine with an NVIDIA GPU, "
            "or ask for 'auto' (a worker: MESHCAST_DEVICE=auto)"
        )
    return [CPU_PROVIDER]


def new_worker_id() -> str:
    """A worker id unique to this process, as the job store wants: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(WORKER_ID_RANDOM_BYTES)}"


@dataclass(frozen=True)
class Loaded:
    """What the main process loads once (:func:`configure`) and its children inherit."""

    settings: ServiceSettings
    bundle: Bundle
    providers: list[str]


@dataclass(frozen=True)
class WorkerRuntime:
    """One worker process's state, made once (:func:`runtime`)."""

    settings: ServiceSettings
    bundle: Bundle
    providers: list[str]
    sessions: Sessions
    store: JobStore
    worker_id: str
    pid: int  # the process it was made in


class _Process:
    """This process's :class:`Loaded` and :class:`WorkerRuntime` (module state, one each)."""

    loaded: Loaded | None = None
    runtime: WorkerRuntime | None = None


def configure(settings: ServiceSettings) -> Loaded:
    """Load and check the bundle ``settings`` name, and choose the providers, in this process.

    Raises:
        FileNotFoundError: the bundle, or a file it lists, is missing.
        ValueError: an invalid bundle, or a device this onnxruntime lacks.
    """
    import onnxruntime

    providers = choose_providers(settings.worker.device, onnxruntime.get_available_providers())
    _Process.loaded = Loaded(settings, load_bundle(settings.bundle), providers)
    _Process.runtime = None
    return _Process.loaded


def runtime() -> WorkerRuntime:
    """This process's runtime: made on the first call in each process (a forked child makes
    its own), then kept.

    Raises:
        RuntimeError: :func:`configure` was not called (in this process or its parent).
    """
    current = _Process.runtime
    if current is not None and current.pid == os.getpid():
        return current
    loaded = _Process.loaded
    if loaded is None:
        raise RuntimeError("the worker was not configured: call configure(settings) first")
    worker = loaded.settings.worker
    client = redis.Redis.from_url(
        loaded.settings.redis_url,
        socket_timeout=REDIS_SOCKET_TIMEOUT_S,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT_S,
    )
    sessions = loaded.bundle.sessions(worker.precision, loaded.providers, worker.threads)
    sessions.warm_up(loaded.bundle.manifest.window.length)  # on a GPU: before the first job
    made = WorkerRuntime(
        settings=loaded.settings,
        bundle=loaded.bundle,
        providers=loaded.providers,
        sessions=sessions,
        store=JobStore(client, loaded.settings.store),
        worker_id=new_worker_id(),
        pid=os.getpid(),
    )
    _Process.runtime = made
    return made
