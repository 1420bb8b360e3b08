"""``meshcast worker`` as the tests run it: a real process on a settings file of their own,
waited for until it answers Celery's ping, stopped with its whole process group (its pool
processes too) however the test ends. Its output goes to a log file that failures show.

:class:`WorkerService` is what a test drives: the settings under a key prefix of its own, the
job store and a Celery app on them, as the gateway has, and the workers it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import redis
import yaml
from celery import Celery

from service.jobs import JobOptions, JobRecord, JobState, JobStore
from service.queue import PROCESS_JOB, QUEUE, celery_app
from service.settings import ServiceSettings
from tests.support.jobs import upload_job
from tests.support.redis_server import delete_keys_with_prefix
from tests.support.walkers import write_walkers_video

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 90.0  # imports, the bundle's checksums and sessions, on a busy machine
STOP_TIMEOUT_S = 10.0
PING_TIMEOUT_S = 0.5
LOG_TAIL_CHARS = 4000
JOB_TIMEOUT_S = 120.0
POLL_S = 0.02
# A job's entry leaves the running index just after the job ends, in a call of its own.
UNINDEX_TIMEOUT_S = 5.0
OWNER = "tests"
# Variables that would override the settings file (service.settings).
SETTINGS_ENV = ("MESHCAST_CONFIG", "MESHCAST_REDIS_URL", "MESHCAST_BUNDLE", "MESHCAST_DEVICE")
SHORT_FRAMES, LONG_FRAMES = 16, 40  # about 1 s and 3 s of a job here
FASTSTART = {"movflags": "faststart"}  # the index first: a cut file opens, and ends early
EMPTY_STREET_WIDTH, EMPTY_STREET_HEIGHT, EMPTY_STREET_FPS, GREY = 320, 240, 10, 128
KEPT_FRACTION = 0.9  # of a cut video: past the first frame (the walkers' keyframe is 2/3)
# Short enough for a test to see a dead worker's job come back in seconds, long enough that a
# loaded machine's heartbeats (every third of it) never miss it.
LOCK_TTL_S = 3.0
WORKER_SETTINGS = {
    "threads": 1,
    "reaper_interval_s": 0.5,
    "progress_interval_s": 0.2,
    "retry_backoff_s": 0.2,
}


@dataclass(frozen=True)
class Videos:
    """The uploads of the worker's tests."""

    short: Path  # the walkers, 16 frames
    long: Path  # the walkers, 40 frames
    nobody: Path  # grey frames
    text: Path  # not a video
    cut: Path  # the long one cut short, its index first: frames, then the cut

    @classmethod
    def write(cls, folder: Path) -> Videos:
        text = folder / "notes.mp4"
        text.write_text("these are notes, not a video\n")
        faststart = write_walkers_video(folder / "faststart.mp4", LONG_FRAMES, FASTSTART)
        data = faststart.read_bytes()
        cut = folder / "cut.mp4"
        cut.write_bytes(data[: int(len(data) * KEPT_FRACTION)])
        return cls(
            short=write_walkers_video(folder / "short.mp4", SHORT_FRAMES),
            long=write_walkers_video(folder / "long.mp4", LONG_FRAMES),
            nobody=write_empty_street(folder / "nobody.mp4"),
            text=text,
            cut=cut,
        )


def write_empty_street(path: Path) -> Path:
    """Plain grey frames: nobody in them. As big as a street video's, not the outputs' tests'
    tiny grey video: OpenCV's HOG crashes (SIGSEGV) on a frame smaller than its window."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=EMPTY_STREET_FPS)
        stream.width, stream.height = EMPTY_STREET_WIDTH, EMPTY_STREET_HEIGHT
        stream.pix_fmt = "yuv420p"
        grey = np.full((EMPTY_STREET_HEIGHT, EMPTY_STREET_WIDTH, 3), GREY, np.uint8)
        for _ in range(SHORT_FRAMES):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(grey, format="bgr24")))
        container.mux(stream.encode())
    return path


def service_settings(redis_url: str, prefix: str, bundle: Path, **worker: Any) -> dict[str, Any]:
    """Settings for workers under ``prefix``, quick to see a dead worker, on one thread."""
    return {
        "redis_url": redis_url,
        "bundle": str(bundle),
        "store": {"prefix": prefix, "lock_ttl_s": LOCK_TTL_S},
        "worker": {**WORKER_SETTINGS, **worker},
    }


def new_prefix() -> str:
    """A key prefix of its own (as the redis_prefix fixture's, for a whole module)."""
    return f"meshcast-test:{uuid.uuid4().hex}:"


def write_settings(path: Path, settings: dict[str, Any]) -> Path:
    """The settings as the YAML file ``meshcast worker --config`` reads."""
    path.write_text(yaml.safe_dump(settings))
    return path


def worker_env() -> dict[str, str]:
    """The tests' environment, without settings overrides, on one thread (a busy machine)."""
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS_ENV}
    return env | {"OMP_NUM_THREADS": "1"}


def process_rss_kib(pid: int) -> int:
    """A process's resident memory in KiB (VmRSS in /proc: psutil is not installed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"process {pid} reports no VmRSS")


def worker_pid(worker_id: str) -> int:
    """The pid in a job store worker id (``host:pid:random``, service.worker.runtime)."""
    return int(worker_id.split(":")[1])


@dataclass
class WorkerProcess:
    """One ``meshcast worker`` process and its pool."""

    process: subprocess.Popen[bytes]
    name: str  # its Celery node name
    log: Path

    @classmethod
    def launch(cls, config: Path, log: Path, label: str = "worker") -> WorkerProcess:
        """Start it (without waiting: see :meth:`wait_ready`) in a process group of its own."""
        name = f"{label}-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "meshcast", "worker", "--config", str(config),
                 "--hostname", name, "--loglevel", "info"],
                stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=worker_env(),
                start_new_session=True,
            )  # fmt: skip
        return cls(process, name, log)

    def wait_ready(self, app: Celery, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until it answers a ping on ``app``'s broker.

        Raises:
            RuntimeError: it exited, or did not answer in time (its log attached).
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.process.returncode}):\n{self.tail()}")
            if app.control.ping(destination=[self.name], timeout=PING_TIMEOUT_S):
                return
        raise RuntimeError(f"the worker did not answer in {timeout_s} s:\n{self.tail()}")

    def pool_pids(self) -> list[int]:
        """The pids of its pool processes (the main process's children)."""
        pid = self.process.pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return [int(child) for child in children]

    def kill(self) -> None:
        """SIGKILL to the whole group, as a node dies: nothing is cleaned up."""
        with contextlib.suppress(ProcessLookupError):  # the whole group is gone already
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=STOP_TIMEOUT_S)

    def tail(self) -> str:
        """The end of its log, for a failure's message."""
        return self.log.read_text(errors="replace")[-LOG_TAIL_CHARS:]


@dataclass
class WorkerService:
    """A settings file and what a gateway would hold on it (store, Celery app), plus the
    workers started on it; :meth:`close` kills them."""

    folder: Path
    settings_file: Path
    settings: ServiceSettings
    client: redis.Redis
    store: JobStore
    app: Celery
    workers: list[WorkerProcess]

    @classmethod
    def create(cls, folder: Path, settings: dict[str, Any]) -> WorkerService:
        settings_file = write_settings(folder / "settings.yaml", settings)
        loaded = ServiceSettings.model_validate(settings)
        client = redis.Redis.from_url(loaded.redis_url)
        store = JobStore(client, loaded.store)
        return cls(folder, settings_file, loaded, client, store, celery_app(loaded), [])

    def start_workers(self, count: int = 1, label: str = "worker") -> list[WorkerProcess]:
        """Start ``count`` workers at once and wait until each answers."""
        started = [
            WorkerProcess.launch(
                self.settings_file, self.folder / f"{label}-{len(self.workers) + index}.log",
                label,
            )
            for index in range(count)
        ]  # fmt: skip
        self.workers.extend(started)
        for worker in started:
            worker.wait_ready(self.app)
        return started

    def create_job(self, video: Path, options: JobOptions | None = None) -> str:
        """A job made and its video uploaded, as the gateway does (its task not sent yet)."""
        return upload_job(self.store, OWNER, video.read_bytes(), options).id

    def send(self, job_id: str) -> None:
        """The job's task, sent by name as the gateway does."""
        self.app.send_task(PROCESS_JOB, args=[job_id], queue=QUEUE)

    def submit(self, video: Path, options: JobOptions | None = None) -> str:
        """A job made, its video uploaded and its task sent."""
        job_id = self.create_job(video, options)
        self.send(job_id)
        return job_id

    def wait_running(self, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> JobRecord:
        """The job's record once it runs and has reported progress (it is mid-job).

        Raises:
            AssertionError: it did not get there in time, or ended first.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            record = self.store.get(job_id)
            assert record is not None, f"job {job_id} vanished"
            assert not record.state.terminal, f"job {job_id} ended first: {record}"
            if record.state is JobState.RUNNING and record.stage:
                return record
            time.sleep(POLL_S)
        raise AssertionError(f"job {job_id} did not run in {timeout_s} s\n{self.logs()}")

    def wait(self, job_id: str, timeout_s: float = JOB_TIMEOUT_S) -> JobRecord:
        """The job's record once it has ended.

        Raises:
            AssertionError: it did not end in time (the workers' logs attached).
        """
        deadline = time.monotonic() + timeout_s
        record = None
        while time.monotonic() < deadline:
            record = self.store.get(job_id)
            if record is not None and record.state.terminal:
                return record
            time.sleep(POLL_S)
        raise AssertionError(f"job {job_id} did not end in {timeout_s} s: {record}\n{self.logs()}")

    def running_once_settled(self, timeout_s: float = UNINDEX_TIMEOUT_S) -> dict[str, int]:
        """The store's running index once it is empty, or as it is after ``timeout_s``: an
        ended job's entry lingers a moment after its state changed
        (:meth:`~service.jobs.store.JobStore.running_jobs`)."""
        deadline = time.monotonic() + timeout_s
        while (running := self.store.running_jobs()) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        return running

    def worker_of(self, pid: int) -> WorkerProcess:
        """The worker whose pool process ``pid`` is."""
        return next(worker for worker in self.workers if pid in worker.pool_pids())

    def logs(self) -> str:
        return "\n".join(f"--- {worker.name}\n{worker.tail()}" for worker in self.workers)

    def close(self) -> None:
        """Kill the workers, and delete every key under the prefix (the broker's too)."""
        for worker in self.workers:
            worker.kill()
        self.app.close()
        delete_keys_with_prefix(self.client, self.settings.store.prefix)
        self.client.close()
