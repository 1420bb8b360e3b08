"""The fault drill (``meshcast bench faults``): the real service as separate processes on a
private Redis, with faults injected one job at a time, and what they cost counted.

Everything runs in a temporary folder of the drill's own: a ``redis-server`` on a free loopback
port (``appendonly yes``, ``appendfsync always``, its data in that folder; never 6379, and
nothing of any other Redis is read or deleted), ``meshcast gateway`` and ``meshcast worker
--concurrency 1`` as processes on settings written there (short lock TTL, reaper interval and
upload TTL: :data:`SETTINGS`), each with a private ``TMPDIR`` so that what they leave is seen.
One job without a fault comes first: it warms the worker and sets the baseline. Then each
scenario, ``jobs`` times, a fault per job:

- ``worker_kill``: SIGKILL to the Celery worker's main process while the job runs (its pool
  process dies with it: Celery sets a parent-death signal), then a new worker;
- ``child_kill``: SIGKILL to the pool process running the job (the one the job's worker id
  names); Celery's main process lives on and starts another;
- ``gateway_kill``: a client streams an upload slowly (1 KiB every 0.1 s); once part of it is in
  Redis, SIGKILL to the gateway, then a new gateway, and the client sends the video again. The
  cut upload must leave no job, its stored part must expire (``store.upload_ttl_s``), and its
  temp folder must be gone once the new gateway has started;
- ``redis_restart``: Redis stopped while the job runs and the next job waits in the queue (both
  were accepted), down for :data:`REDIS_DOWN_S`, then started again on its files: SIGTERM (a
  restart) and SIGKILL (a crash: ``appendfsync always`` must lose nothing) by turns.

Faults land at a spread of points in a job's run: after 10, 30, 50, 70, 85 % of the usual run
(the median of the last five that succeeded), by turns; the stage hit is reported.

Counted, per scenario and in total: jobs submitted, accepted (2xx), succeeded, failed (by
error code), lost (accepted, never ended within ``job_timeout_s``), the attempts each took, and
the seconds from each fault to its job's end and to the start of the attempt that ended it
(monotonic: the wall clock may step, see below). From the workers' logs (``job J: attempt N
started``, then ``job J: succeeded with`` for an attempt that committed, ``job J: failed:``,
``job J: Redis failed`` (tried again in the task), Celery's ``succeeded in …: 'lost'`` for one
that ended finding its job no longer its own, mid-run or at its commit (the logs do not say
which), nothing for one killed): jobs committed twice, and the attempts lost so. From the jobs'
event channels (:class:`PipelineEnds`): jobs run twice to completion, two attempts that each
finished the pipeline while holding the job. Once everything settled (the longest of the
upload TTL and the lock TTL plus a reaper pass, and a margin): orphans (keys under the store's
prefix of jobs that do not exist, running-index entries of jobs not running, jobs not ended,
queued jobs with no task in the broker's queue or hands, cut uploads' parts still stored), the
broker's messages left (a killed worker's message stays unacknowledged until the visibility
timeout, then finds its job ended), files in the private temp folders (``meshcast-*``) with the
service up and after it stopped, and processes of the service left after it stopped. Steps of
the wall clock against the monotonic one are reported with the machine: Redis expires keys, the
job's lock among them, by the wall clock.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import httpx
import redis
import yaml

from meshcast.bench_service import LOOPBACK, free_port, gateway_answers
from service.jobs import JobRecord, JobState, JobStore, ProgressEvent
from service.queue import broker_prefix
from service.settings import ServiceSettings, hash_api_key
from service.worker.tasks import OUTPUTS_STAGE

SCENARIOS = ("worker_kill", "child_kill", "gateway_kill", "redis_restart")
PREFIX = "drill:"
KEY_ID = "drill"
TEMP_PREFIX = "meshcast-drill-"  # the drill's own folder, in the system's temp folder
SCRATCH_GLOB = "meshcast-*"  # the service's scratch folders (service/scratch_folders.py)
UPLOAD_GLOB = "meshcast-upload-*"
DEFAULT_REDIS_PORT = 6379  # never the drill's
START_TIMEOUT_S = 90.0  # a process's imports and the bundle's sessions, on a busy machine
STOP_TIMEOUT_S = 30.0
DEATH_TIMEOUT_S = 5.0  # a killed process's pool children follow it (parent-death signal)
POLL_S = 0.05
REDIS_DOWN_S = 2.0
REQUEST_TIMEOUT_S = 60.0
SETTLE_MARGIN_S = 2.0
FAULT_POINTS = (0.1, 0.3, 0.5, 0.7, 0.85)  # of a job's usual run, by turns
RECENT_RUNS = 5  # a job's usual run: the median of the last runs that succeeded
CLOCK_STEP_S = 0.5  # the wall clock moving this much more than the monotonic one: a step
SLOW_PIECE_BYTES, SLOW_PAUSE_S = 1024, 0.1  # the slow client's pace: 10 KiB/s
WORKER_CONCURRENCY = 1
DECIMALS = 2
# Quick recovery: a dead worker's lock lapses in 3 s, every pool process's reaper looks twice a
# second, an upload cut short expires 5 s after its last chunk (the gateway waits 2 s for the
# next piece). Small upload chunks: a slow upload has parts in Redis early.
SETTINGS: dict[str, Any] = {
    "store": {"prefix": PREFIX, "lock_ttl_s": 3.0, "upload_ttl_s": 5.0},
    "gateway": {
        "upload": {"chunk_bytes": 4096, "read_timeout_s": 2.0},
        "quotas": {"max_active_jobs": 1000, "max_worker_seconds_per_hour": 1e9},
        "readyz_requires_worker": False,
    },
    "worker": {
        "threads": 2,
        "reaper_interval_s": 0.5,
        "retry_backoff_s": 0.5,
        "progress_interval_s": 0.2,
    },
}
# The worker's log lines (meshcast/commands/worker.py's format; service/worker's messages).
LOG_LINE = re.compile(r"^\S+ \S+ (?P<level>[A-Z]+) (?P<process>\S+) (?P<logger>\S+): (?P<text>.*)")
JOB = r"job (?P<job>[A-Za-z0-9_-]+)"
ATTEMPT_STARTED = re.compile(rf"{JOB}: attempt (?P<attempt>[0-9]+) started")
COMMITTED = re.compile(rf"{JOB}: succeeded with")
FAILED = re.compile(rf"{JOB}: failed: (?P<code>[A-Za-z0-9_]+):")
REDIS_FAILED = re.compile(rf"{JOB}: Redis failed")
TASK_RETURNED = re.compile(r"Task \S+\[[^\]]+\] succeeded in (?P<s>[0-9.eE+-]+)s: '(?P<out>\w+)'")
JOB_KEY = re.compile(r"job:\{(?P<job>[A-Za-z0-9_-]+)\}(?P<rest>.*)")
KILLED = "killed"  # an attempt whose process died before it ended


@dataclass(frozen=True)
class DrillOptions:
    """What to run."""

    jobs: int
    scenarios: tuple[str, ...]
    bundle: Path
    video: Path  # cut to ``frames`` frames for the jobs
    frames: int
    job_timeout_s: float
    formats: tuple[str, ...] = ()  # the jobs' output formats; none: the service's default
    keep: Path | None = None  # a folder to copy the logs and settings to


@dataclass
class ScenarioFigures:
    """What one scenario cost; :meth:`as_json` adds what the workers' logs say."""

    submitted: int = 0
    accepted: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    job_ids: list[str] = field(default_factory=list)
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    attempts: Counter[int] = field(default_factory=Counter)
    faults: int = 0
    missed: int = 0  # faults whose job had already ended
    at_stage: Counter[str] = field(default_factory=Counter)
    recover_s: list[float] = field(default_factory=list)  # the fault to the job's end
    restart_s: list[float] = field(default_factory=list)  # to the start of its last attempt
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, key: str, amount: float = 1) -> None:
        self.extra[key] = self.extra.get(key, 0) + amount

    def as_json(self, history: dict[str, list[Attempt]], ends: Counter[str]) -> dict[str, Any]:
        ran = _runs(self.job_ids, history, ends)
        return {
            "submitted": self.submitted,
            "accepted": self.accepted,
            "refused": dict(self.refused),
            "succeeded": self.succeeded,
            "failed": dict(self.failed),
            "lost": len(self.lost),
            "lost_jobs": self.lost,
            "attempts": {str(n): count for n, count in sorted(self.attempts.items())},
            **ran,
            "faults": {
                "injected": self.faults,
                "missed": self.missed,
                "at_stage": dict(self.at_stage),
            },
            "recover_s": _spread(self.recover_s),
            "restart_s": _spread(self.restart_s),
            **self.extra,
        }


@dataclass(frozen=True)
class Fault:
    """A fault injected: when (monotonic seconds), and the attempts its job had then."""

    at: float
    attempts: int


class ClockWatch:
    """Steps of the wall clock (which Redis's expiry, the records' times and the logs follow)
    against the monotonic one, sampled as the drill polls."""

    def __init__(self) -> None:
        self.began = time.monotonic()
        self.offset = time.time() - self.began
        self.steps: list[str] = []

    def sample(self) -> None:
        offset = time.time() - time.monotonic()
        if abs(offset - self.offset) > CLOCK_STEP_S:
            self.steps.append(
                f"{offset - self.offset:+.2f} s at {time.monotonic() - self.began:.0f} s"
            )
        self.offset = offset


class PipelineEnds:
    """Counts, per job, the attempts that ran their pipeline to its end, from the jobs' event
    channels: the progress event of the outputs stage done (``outputs`` 1/1), which a worker
    writes once per attempt after its files are written and before its commit, and which the
    store publishes only for the attempt that holds the job (SET_PROGRESS checks the lock). A
    thread, subscribed again whenever Redis comes back."""

    def __init__(self, url: str, prefix: str) -> None:
        self.counts: Counter[str] = Counter()
        self.subscriptions = 0
        self._client = redis.Redis.from_url(url, socket_connect_timeout=1.0)
        self._pattern = f"{prefix}job:*:events"
        self._stopped = threading.Event()
        self._subscribed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline ends", daemon=True)
        self._thread.start()
        if not self._subscribed.wait(START_TIMEOUT_S):
            raise ChildProcessError("could not subscribe to the jobs' events")

    def _run(self) -> None:
        while not self._stopped.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(self._pattern)
                self.subscriptions += 1
                self._subscribed.set()
                while not self._stopped.is_set():
                    message = pubsub.get_message(timeout=POLL_S)
                    if message is not None:
                        self._count(message["data"])
            except (redis.ConnectionError, redis.TimeoutError):  # Redis restarting
                self._stopped.wait(POLL_S)
            finally:
                with contextlib.suppress(redis.RedisError):
                    pubsub.close()

    def _count(self, data: bytes) -> None:
        with contextlib.suppress(ValueError):
            event = ProgressEvent.model_validate_json(data)
            if event.stage == OUTPUTS_STAGE and event.done == event.total > 0:
                self.counts[event.job_id] += 1

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
        self._client.close()


@dataclass
class Attempt:
    """One attempt at a job, as a worker process's log tells it."""

    job: str
    number: int
    log: str
    process: str
    outcome: str = KILLED  # committed, failed:CODE, lost, redis_error, or killed
    seconds: float | None = None  # Celery's runtime of the task (retries included)


class RedisServer:
    """A ``redis-server`` of the drill's own on a free loopback port, persisted to its folder
    (AOF, fsync on every write)."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("the fault drill needs redis-server (apt install redis-server)")
        self.binary, self.folder = binary, folder
        self.port = free_port()
        if self.port == DEFAULT_REDIS_PORT:  # never a shared Redis's port
            self.port = free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.version = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [self.binary, "--bind", LOOPBACK, "--port", str(self.port), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log"), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        client = redis.Redis(host=LOOPBACK, port=self.port)
        try:
            _wait(lambda: _pings(client), START_TIMEOUT_S, "redis-server did not start")
        finally:
            client.close()
        return process

    def restart(self, sig: signal.Signals) -> None:
        """Stop with ``sig`` (SIGTERM: a shutdown, which fsyncs; SIGKILL: a crash), stay down
        :data:`REDIS_DOWN_S`, start again on the same files."""
        self.process.send_signal(sig)
        self.process.wait(STOP_TIMEOUT_S)
        time.sleep(REDIS_DOWN_S)
        self.process = self._start()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class SlowUpload:
    """A client that streams ``POST /jobs`` a piece at a time, in a thread, until its body is
    sent, the connection breaks, or :meth:`close`."""

    def __init__(self, port: int, authorization: str, video: bytes) -> None:
        boundary = secrets.token_hex(8)
        self.body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="video"; '
                f'filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
            ).encode()
            + video
            + f"\r\n--{boundary}--\r\n".encode()
        )
        head = [
            "POST /jobs HTTP/1.1",
            f"Host: {LOOPBACK}:{port}",
            f"Authorization: {authorization}",
            f"Content-Type: multipart/form-data; boundary={boundary}",
            f"Content-Length: {len(self.body)}",
        ]
        self.sent = 0
        self.finished = False
        self._stop = threading.Event()
        self._socket = socket.create_connection((LOOPBACK, port), timeout=REQUEST_TIMEOUT_S)
        self._socket.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        self._thread = threading.Thread(target=self._send, name="slow upload", daemon=True)
        self._thread.start()

    def _send(self) -> None:
        with contextlib.suppress(OSError):
            while self.sent < len(self.body) and not self._stop.is_set():
                piece = self.body[self.sent : self.sent + SLOW_PIECE_BYTES]
                self._socket.sendall(piece)
                self.sent += len(piece)
                self._stop.wait(SLOW_PAUSE_S)
            self.finished = self.sent == len(self.body)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


class Service:
    """The gateway and the worker as processes on the drill's settings, each in a session of
    its own, with a private temp folder per kind, their output in logs."""

    def __init__(self, folder: Path, settings: ServiceSettings, api_key: str) -> None:
        self.folder, self.settings = folder, settings
        self.config = folder / "settings.yaml"
        self.config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
        self.temp = {kind: folder / f"tmp-{kind}" for kind in ("gateway", "worker")}
        for path in self.temp.values():
            path.mkdir()
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.authorization = f"Bearer {api_key}"
        self.groups: list[tuple[str, int]] = []  # (kind, process group) of every process run
        self.worker_logs: list[Path] = []  # one per worker process started
        self.gateway_starts = 0
        self.gateway = self._gateway()
        self.worker = self._worker()

    def _launch(self, args: list[str], kind: str, log: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, "TMPDIR": str(self.temp[kind]), "OMP_NUM_THREADS": "1"}
        for name in ("MESHCAST_CONFIG", "MESHCAST_REDIS_URL", "MESHCAST_BUNDLE", "MESHCAST_DEVICE"):
            env.pop(name, None)
        with log.open("ab") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "meshcast", *args, "--config", str(self.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self.groups.append((kind, process.pid))
        return process

    def _gateway(self) -> subprocess.Popen[bytes]:
        log = self.folder / f"gateway-{self.gateway_starts}.log"
        self.gateway_starts += 1
        process = self._launch(
            ["gateway", "--host", LOOPBACK, "--port", str(self.port)], "gateway", log
        )

        def up() -> bool:
            if process.poll() is not None:
                raise ChildProcessError(f"the gateway exited: {_tail(log)}")
            return gateway_answers(self.url)

        try:
            _wait(up, START_TIMEOUT_S, f"the gateway did not start: {_tail(log)}")
        except ChildProcessError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            raise
        return process

    def _worker(self) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.worker_logs)}.log"
        self.worker_logs.append(log)
        args = ["worker", "--concurrency", str(WORKER_CONCURRENCY), "--loglevel", "info"]
        return self._launch(args, "worker", log)

    def pool(self) -> list[int]:
        """The worker's pool processes (the main process's children)."""
        return _children(self.worker.pid)

    def kill_worker(self) -> list[int]:
        """SIGKILL to the worker's main process, then a new worker; the pool processes that
        outlived it (killed then, as they would be with their container)."""
        pool = self.pool()
        os.kill(self.worker.pid, signal.SIGKILL)
        self.worker.wait(STOP_TIMEOUT_S)
        deadline = time.monotonic() + DEATH_TIMEOUT_S
        while any(_alive(pid) for pid in pool) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        survivors = [pid for pid in pool if _alive(pid)]
        for pid in survivors:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.worker = self._worker()
        return survivors

    def kill_gateway(self) -> float:
        """SIGKILL to the gateway, then a new one (which sweeps the dead one's upload folders
        as it starts); the seconds until it answered."""
        os.kill(self.gateway.pid, signal.SIGKILL)
        self.gateway.wait(STOP_TIMEOUT_S)
        started = time.monotonic()
        self.gateway = self._gateway()
        return time.monotonic() - started

    def stop(self) -> None:
        """Stop the processes as a deployment does (SIGTERM, and a wait; SIGKILL past it)."""
        for process in (self.gateway, self.worker):
            if process.poll() is None:
                process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def leftover_processes(self) -> list[str]:
        """Processes still alive in the groups of the service's processes (after :meth:`stop`),
        killed once listed."""
        left = []
        groups = dict((group, kind) for kind, group in self.groups)
        for pid, group, command in _processes():
            if group in groups and "meshcast" in command:  # not a stranger that reused the id
                left.append(f"{groups[group]} pid {pid}: {command}")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        return left

    def upload(
        self, http: httpx.Client, video: bytes, formats: tuple[str, ...] = ()
    ) -> tuple[int, str | None, str | None]:
        """Upload a job (with ``formats``, if any): the status, the job's id (2xx) or the
        error's code."""
        try:
            response = http.post(
                f"{self.url}/jobs",
                data={"formats": ",".join(formats)} if formats else None,
                files={"video": ("clip.mp4", video, "video/mp4")},
                headers={"Authorization": self.authorization},
                timeout=REQUEST_TIMEOUT_S,
            )
        except httpx.HTTPError as error:
            return 0, None, type(error).__name__
        if response.is_success:
            return response.status_code, str(response.json()["id"]), None
        try:
            code = str(response.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            code = str(response.status_code)
        return response.status_code, None, code

    def upload_folders(self) -> list[Path]:
        return list(self.temp["gateway"].glob(UPLOAD_GLOB))

    def leftovers(self) -> list[str]:
        """The service's scratch files and folders in the private temp folders."""
        return sorted(
            str(path.relative_to(self.folder))
            for folder in self.temp.values()
            for path in folder.glob(SCRATCH_GLOB)
        )


class Drill:
    """One run of the drill (see the module): the processes, the store, the figures."""

    def __init__(self, options: DrillOptions, folder: Path, say: Callable[[str], None]) -> None:
        self.options, self.folder, self.say = options, folder, say
        self.began = time.monotonic()
        (folder / "redis").mkdir()
        self.video = cut_video(options.video, options.frames, folder / "clip.mp4").read_bytes()
        self.server = RedisServer(folder / "redis")
        api_key = secrets.token_urlsafe(24)
        self.settings = _settings(self.server.url, options.bundle, api_key)
        self.client = redis.Redis.from_url(self.server.url)
        self.store = JobStore(self.client, self.settings.store)
        self.service: Service | None = None
        self.api_key = api_key
        self.figures: dict[str, ScenarioFigures] = {}
        self.cut_uploads: list[str] = []  # ids of the uploads the gateway died in
        self.baseline: dict[str, Any] = {}
        self.runs: list[float] = []  # successful jobs' last attempts, seconds
        self.ends: Counter[str] = Counter()  # attempts that ran the pipeline to its end, by job
        self.clock = ClockWatch()

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        ends = PipelineEnds(self.server.url, PREFIX)
        try:
            self.service = Service(self.folder, self.settings, self.api_key)
            with httpx.Client() as http:
                self._baseline(http)
                for scenario in self.options.scenarios:
                    figures = self.figures[scenario] = ScenarioFigures()
                    getattr(self, f"_{scenario}")(http, figures)
            settle_s = self._settle_s()
            self.log(f"settling {settle_s:.1f} s (upload TTL, lock TTL and a reaper pass)")
            time.sleep(settle_s)
            orphans = self._orphans()
            broker = self._broker()
            leftover_settled = self.service.leftovers()
        finally:
            if self.service is not None:
                self.service.stop()
            ends.stop()
            self.server.stop()
        self.ends = ends.counts
        leftover_processes = self.service.leftover_processes()
        leftover_stopped = self.service.leftovers()
        history = _attempts(self.service.worker_logs)
        report = self._report(
            history, orphans, broker, leftover_settled, leftover_stopped, leftover_processes
        )
        report["seconds"] = round(time.monotonic() - self.began, 1)
        return report

    def log(self, line: str) -> None:
        self.say(f"[{time.monotonic() - self.began:6.1f} s] {line}")

    def _baseline(self, http: httpx.Client) -> None:
        """One job without a fault: the worker warmed, and how long a job takes."""
        assert self.service is not None
        sent = time.monotonic()
        status, job_id, code = self.service.upload(http, self.video, self.options.formats)
        if job_id is None:
            raise ChildProcessError(f"the baseline job was refused: {status} {code}")
        record, _ = self._ended(job_id)
        if record is None or record.state is not JobState.SUCCEEDED:
            state = "lost" if record is None else f"{record.state.value} {record.error_code}"
            raise ChildProcessError(f"the baseline job did not succeed ({state}): see the logs")
        self._ran(record)
        self.baseline = {
            "job_id": job_id,
            "upload_to_end_s": round(time.monotonic() - sent, DECIMALS),
            "run_s": round(self.runs[-1], DECIMALS),
            "timings_s": {stage: round(s, DECIMALS) for stage, s in record.timings.items()},
        }
        self.log(
            f"baseline job {job_id}: {self.runs[-1]:.1f} s run, "
            f"{self.baseline['upload_to_end_s']:.1f} s from upload to end"
        )

    def _worker_kill(self, http: httpx.Client, figures: ScenarioFigures) -> None:
        assert self.service is not None
        survivors: list[int] = []
        for number in range(self.options.jobs):
            job_id = self._submit(http, figures)
            hit = self._at_fault_point(job_id, number, figures)
            fault = Fault(time.monotonic(), hit.attempts) if hit else None
            if fault is not None:
                survivors += self.service.kill_worker()
            self._report_job(figures, number, job_id, fault)
        figures.extra["pool_processes_outliving_main"] = survivors

    def _child_kill(self, http: httpx.Client, figures: ScenarioFigures) -> None:
        assert self.service is not None
        strays = 0
        for number in range(self.options.jobs):
            job_id = self._submit(http, figures)
            hit = self._at_fault_point(job_id, number, figures)
            fault = None
            if hit is not None:
                pool = self.service.pool()
                pid = _worker_pid(hit.worker)
                if pid not in pool:  # the job's worker id names no pool process of this worker
                    strays += 1
                    pid = pool[0] if pool else None
                fault = Fault(time.monotonic(), hit.attempts)
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            self._report_job(figures, number, job_id, fault)
        figures.extra["worker_id_not_a_pool_process"] = strays

    def _gateway_kill(self, http: httpx.Client, figures: ScenarioFigures) -> None:
        assert self.service is not None
        restarts: list[float] = []
        ttls: list[float] = []
        figures.extra.update(
            uploads_cut=0,
            cut_uploads_made_a_job=[],
            upload_finished_first=0,
            upload_folders_after_restart=[],
        )
        for number in range(self.options.jobs):
            before = set(self._partial_uploads())
            client = SlowUpload(self.service.port, self.service.authorization, self.video)
            partial: list[str] = []

            def begun(before: set[str] = before, partial: list[str] = partial) -> bool:
                assert self.service is not None
                partial[:] = [key for key in self._partial_uploads() if key not in before]
                return bool(partial) and bool(self.service.upload_folders())

            try:
                _wait(begun, START_TIMEOUT_S, "the slow upload did not reach Redis")
                if client.finished:
                    figures.add("upload_finished_first")
                ttls += [self.client.pttl(self.store.keys.video(key)) / 1000 for key in partial]
                fault = Fault(time.monotonic(), 0)
                folders = [path.name for path in self.service.upload_folders()]
                restarts.append(self.service.kill_gateway())
            finally:
                client.close()
            figures.add("uploads_cut")
            self.cut_uploads += partial
            made = [key for key in partial if self._get(key) is not None]
            figures.extra["cut_uploads_made_a_job"] += made
            left = [path.name for path in self.service.upload_folders() if path.name in folders]
            figures.extra["upload_folders_after_restart"] += left
            job_id = self._submit(http, figures)  # the client sends it again
            figures.faults += 1
            figures.at_stage["upload"] += 1
            self._report_job(
                figures,
                number,
                job_id,
                fault,
                f"upload {', '.join(partial)} cut at {client.sent} of {len(client.body)} bytes, "
                f"gateway back in {restarts[-1]:.1f} s; sent again: ",
            )
        figures.extra["gateway_restart_s"] = _spread(restarts)
        figures.extra["cut_upload_ttl_left_s"] = {
            "min": round(min(ttls), DECIMALS) if ttls else None,
            "max": round(max(ttls), DECIMALS) if ttls else None,
        }

    def _redis_restart(self, http: httpx.Client, figures: ScenarioFigures) -> None:
        figures.extra.update(restarts={"SIGTERM": 0, "SIGKILL": 0}, queued_at_fault=0)
        current = self._submit(http, figures)
        for number in range(self.options.jobs):
            waiting = None
            hit = self._at_fault_point(current, number, figures)
            if number + 1 < self.options.jobs:
                waiting = self._submit(http, figures)  # queued behind the running job
                record = self._get(waiting) if waiting else None
                if record is not None and record.state is JobState.QUEUED:
                    figures.add("queued_at_fault")
            sig = signal.SIGTERM if number % 2 == 0 else signal.SIGKILL
            fault = Fault(time.monotonic(), hit.attempts) if hit else None
            self.server.restart(sig)
            figures.extra["restarts"][sig.name] += 1
            self._report_job(figures, number, current, fault, f"{sig.name}, ")
            current = waiting

    # --- one job ---------------------------------------------------------------------------

    def _submit(self, http: httpx.Client, figures: ScenarioFigures) -> str | None:
        assert self.service is not None
        figures.submitted += 1
        status, job_id, code = self.service.upload(http, self.video, self.options.formats)
        if job_id is None:
            figures.refused[f"{status} {code}"] += 1
            return None
        figures.accepted += 1
        figures.job_ids.append(job_id)
        return job_id

    def _at_fault_point(
        self, job_id: str | None, number: int, figures: ScenarioFigures
    ) -> JobRecord | None:
        """Wait until the job has run its share (``number``'s turn of :data:`FAULT_POINTS`) of
        a job's usual run (the median of the last runs); its record if it still runs then (the
        fault will hit it), else ``None`` (counted as missed)."""
        if job_id is None:
            return None
        figures.faults += 1
        deadline = time.monotonic() + self.options.job_timeout_s
        record = self._get(job_id)
        while record is None or record.state is JobState.QUEUED or record.started_at is None:
            if time.monotonic() > deadline or (record is not None and record.state.terminal):
                break
            time.sleep(POLL_S)
            record = self._get(job_id)
        if record is not None and record.state is JobState.RUNNING:
            usual = statistics.median(self.runs[-RECENT_RUNS:])
            point = FAULT_POINTS[number % len(FAULT_POINTS)] * usual
            time.sleep(max(0.0, (record.started_at or 0.0) + point - time.time()))
            record = self._get(job_id)
        if record is None or record.state is not JobState.RUNNING:
            figures.missed += 1
            return None
        figures.at_stage[record.stage or "before_progress"] += 1
        return record

    def _report_job(
        self,
        figures: ScenarioFigures,
        number: int,
        job_id: str | None,
        fault: Fault | None,
        note: str = "",
    ) -> None:
        """Wait for the job's end, count it, and say it."""
        name = next(name for name, value in self.figures.items() if value is figures)
        head = f"{name} {number + 1}/{self.options.jobs}: {note}"
        if job_id is None:
            self.log(f"{head}refused")
            return
        record, seen = self._ended(job_id)
        ended = time.monotonic()
        if record is None:
            figures.lost.append(job_id)
            self.log(f"{head}job {job_id} LOST (not ended in {self.options.job_timeout_s:g} s)")
            return
        self._ran(record)
        figures.attempts[record.attempts] += 1
        if record.state is JobState.SUCCEEDED:
            figures.succeeded += 1
        else:
            figures.failed[record.error_code or record.state.value] += 1
        took = " (the fault missed it)"
        if fault is not None:
            figures.recover_s.append(ended - fault.at)
            took = f", {ended - fault.at:.1f} s after the fault"
            if record.attempts > fault.attempts:
                began = seen.get(record.attempts, ended)
                figures.restart_s.append(began - fault.at)
                took += f" (its last attempt began {began - fault.at:.1f} s after it)"
            else:  # the attempt the fault hit went on to the end
                figures.add("attempt_outlived_fault")
                took += " (by the attempt it hit)"
        code = f" {record.error_code}" if record.error_code else ""
        self.log(f"{head}job {job_id} {record.state.value}{code} after {record.attempts} "
                 f"attempts{took}")  # fmt: skip

    def _ran(self, record: JobRecord) -> None:
        """Count a successful job's last attempt among the usual runs."""
        if record.state is JobState.SUCCEEDED and record.started_at and record.finished_at:
            self.runs.append(record.finished_at - record.started_at)

    def _get(self, job_id: str) -> JobRecord | None:
        try:
            return self.store.get(job_id)
        except (redis.ConnectionError, redis.TimeoutError):  # the drill's Redis, restarting
            return None

    def _ended(self, job_id: str) -> tuple[JobRecord | None, dict[int, float]]:
        """The job's record once it ended (``None``: not within the job timeout), and when
        each attempt was first seen running (monotonic seconds)."""
        seen: dict[int, float] = {}
        deadline = time.monotonic() + self.options.job_timeout_s
        while time.monotonic() < deadline:
            self.clock.sample()
            record = self._get(job_id)
            if record is not None and record.state is JobState.RUNNING:
                seen.setdefault(record.attempts, time.monotonic())
            if record is not None and record.state.terminal:
                return record, seen
            time.sleep(POLL_S)
        return None, seen

    def _partial_uploads(self) -> list[str]:
        """Ids of uploads in progress: a video key without its job."""
        found = []
        for raw in self.client.scan_iter(match=f"{PREFIX}job:*:video"):
            match = JOB_KEY.search(raw.decode())
            if match and not self.client.exists(self.store.keys.job(match["job"])):
                found.append(match["job"])
        return found

    # --- after the scenarios ---------------------------------------------------------------

    def _settle_s(self) -> float:
        store, worker = self.settings.store, self.settings.worker
        return (
            max(store.upload_ttl_s, store.lock_ttl_s + worker.reaper_interval_s) + SETTLE_MARGIN_S
        )

    def _orphans(self) -> dict[str, Any]:
        """What is left under the store's prefix that should not be (see the module)."""
        keys_without_a_job: list[str] = []
        jobs: dict[str, JobRecord] = {}
        other: Counter[str] = Counter()
        broker = broker_prefix(self.settings)
        for raw in self.client.scan_iter(match=f"{PREFIX}*"):
            key = raw.decode()
            if key.startswith(broker):
                continue
            match = JOB_KEY.search(key)
            if match is None:
                other[key.removeprefix(PREFIX).split(":")[0]] += 1
                continue
            record = jobs.get(match["job"]) or self.store.get(match["job"])
            if record is None:
                keys_without_a_job.append(key)
            else:
                jobs[record.id] = record
        running_index = self.store.running_jobs()
        stale_index = [
            job
            for job in running_index
            if job not in jobs or jobs[job].state is not JobState.RUNNING
        ]
        tasks = self._broker_jobs()
        not_ended = {
            job: record.state.value for job, record in jobs.items() if not record.state.terminal
        }
        queued_without_a_task = [
            job
            for job, state in not_ended.items()
            if state == JobState.QUEUED.value and job not in tasks
        ]
        owner = self.store.keys.owner_jobs(KEY_ID)
        index = [_text(raw) for raw in cast(list[bytes], self.client.zrange(owner, 0, -1))]
        return {
            "keys_without_a_job": sorted(keys_without_a_job),
            "running_index_not_running": sorted(stale_index),
            "jobs_not_ended": not_ended,
            "queued_without_a_task": sorted(queued_without_a_task),
            "cut_uploads_left": sorted(
                job for job in self.cut_uploads if self.client.exists(self.store.keys.video(job))
            ),
            # Entries of jobs that are gone are dropped when the index is read (keys.py, ⁵).
            "owner_index_without_a_job": sum(job not in jobs for job in index),
            "other_keys": dict(other),
        }

    def _broker_messages(self) -> Iterator[tuple[str, str | None]]:
        """(where, job id) of each broker message in Redis: in its queues, or unacknowledged."""
        broker = broker_prefix(self.settings)
        for raw in self.client.scan_iter(match=f"{broker}*"):
            kind = _text(self.client.type(raw))
            if kind == "list":
                for item in self.client.lrange(raw, 0, -1):
                    yield "queued", _message_job(item)
            elif kind == "hash" and _text(raw).endswith("unacked"):
                for item in self.client.hvals(raw):
                    yield "unacked", _message_job(item)

    def _broker_jobs(self) -> set[str]:
        """The job ids some task in the broker carries."""
        return {job for _, job in self._broker_messages() if job is not None}

    def _broker(self) -> dict[str, Any]:
        """Messages left in the broker once settled, by where they are and their job's state
        (a message of an ended job does nothing when delivered)."""
        where: Counter[str] = Counter()
        for place, job in self._broker_messages():
            record = self.store.get(job) if job is not None else None
            where[f"{place}, job {record.state.value if record else 'gone'}"] += 1
        return dict(where)

    def _report(
        self,
        history: dict[str, list[Attempt]],
        orphans: dict[str, Any],
        broker: dict[str, Any],
        leftover_settled: list[str],
        leftover_stopped: list[str],
        leftover_processes: list[str],
    ) -> dict[str, Any]:
        scenarios = {
            name: value.as_json(history, self.ends) for name, value in self.figures.items()
        }
        every = ScenarioFigures()
        for value in self.figures.values():
            every.submitted += value.submitted
            every.accepted += value.accepted
            every.refused.update(value.refused)
            every.job_ids += value.job_ids
            every.succeeded += value.succeeded
            every.failed.update(value.failed)
            every.lost += value.lost
            every.attempts.update(value.attempts)
            every.faults += value.faults
            every.missed += value.missed
            every.at_stage.update(value.at_stage)
            every.recover_s += value.recover_s
            every.restart_s += value.restart_s
        total = every.as_json(history, self.ends)
        problems = _problems(
            scenarios, orphans, leftover_settled, leftover_stopped, leftover_processes
        )
        settings = self.settings.model_dump(mode="json")
        settings["gateway"] = {
            "upload": settings["gateway"]["upload"],
            "quotas": settings["gateway"]["quotas"],
        }
        return {
            "machine": {
                **_machine(self.server.version),
                # Redis expires keys (the job's lock, the upload's part) by the wall clock.
                "wall_clock_steps": self.clock.steps,
            },
            "settings": {
                **{key: settings[key] for key in ("store", "gateway", "worker")},
                "worker_concurrency": WORKER_CONCURRENCY,
                "redis": {"appendonly": "yes", "appendfsync": "always", "down_s": REDIS_DOWN_S},
                "fault_points": list(FAULT_POINTS),
                "slow_upload": {"piece_bytes": SLOW_PIECE_BYTES, "pause_s": SLOW_PAUSE_S},
                "settle_s": self._settle_s(),
                "job_timeout_s": self.options.job_timeout_s,
            },
            "video": {
                "file": str(self.options.video),
                "frames": self.options.frames,
                "bytes": len(self.video),
            },
            "formats": list(self.options.formats) or "all",
            "bundle": str(self.options.bundle),
            "jobs_per_scenario": self.options.jobs,
            "baseline": self.baseline,
            "scenarios": scenarios,
            "total": total,
            "orphans": orphans,
            "broker_left": broker,
            "leftover_files": {"settled": leftover_settled, "after_stop": leftover_stopped},
            "leftover_processes": leftover_processes,
            "problems": problems,
        }


def run_fault_drill(options: DrillOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the drill (see the module); its figures as JSON.

    Raises:
        FileNotFoundError: the bundle, the video or redis-server is missing.
        ChildProcessError: a process of the service did not start, or the baseline job failed.
    """
    if not (options.bundle / "manifest.json").is_file():
        raise FileNotFoundError(
            f"no bundle at {options.bundle}: make the default one with `meshcast demo --build-only`"
        )
    if not options.video.is_file():
        raise FileNotFoundError(f"no video at {options.video}")
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as scratch:
        folder = Path(scratch)
        drill = Drill(options, folder, say)
        try:
            return drill.run()
        finally:
            if options.keep is not None:
                _keep(drill, options.keep)


def summary(report: dict[str, Any]) -> list[str]:
    """A few lines that say what the drill found."""
    lines = []
    for name, figures in {**report["scenarios"], "total": report["total"]}.items():
        failed = ", ".join(f"{code} {count}" for code, count in figures["failed"].items())
        lines.append(
            f"{name}: {figures['accepted']}/{figures['submitted']} accepted, "
            f"{figures['succeeded']} succeeded, failed {failed or 0}, lost {figures['lost']}, "
            f"run twice {figures['run_twice_to_completion']}, recover median "
            f"{figures['recover_s']['median']} s, max {figures['recover_s']['max']} s"
        )
    problems = report["problems"]
    lines.append(f"{len(problems)} problems" + (": " + "; ".join(problems) if problems else ""))
    if report["machine"]["wall_clock_steps"]:
        lines.append(f"the wall clock stepped: {', '.join(report['machine']['wall_clock_steps'])}")
    lines.append(f"{report['seconds']} s in all")
    return lines


# --- helpers -------------------------------------------------------------------------------


def _settings(redis_url: str, bundle: Path, api_key: str) -> ServiceSettings:
    data = {
        **SETTINGS,
        "redis_url": redis_url,
        "bundle": str(bundle.resolve()),
        "gateway": {
            **SETTINGS["gateway"],
            "api_keys": [{"id": KEY_ID, "sha256": hash_api_key(api_key)}],
        },
    }
    return ServiceSettings.model_validate(data)


def cut_video(video: Path, frames: int, out: Path) -> Path:
    """The first ``frames`` frames of ``video``, as H.264."""
    with av.open(str(video)) as source, av.open(str(out), mode="w") as target:
        stream = source.streams.video[0]
        rate = stream.average_rate or 25
        encoded = target.add_stream("libx264", rate=rate)
        encoded.width, encoded.height, encoded.pix_fmt = stream.width, stream.height, "yuv420p"
        for index, frame in enumerate(source.decode(stream)):
            if index >= frames:
                break
            # one frame a tick of the rate (a frame left without a time would be written at 0,
            # every one of them)
            frame.pts, frame.time_base = index, Fraction(1) / rate
            target.mux(encoded.encode(frame))
        target.mux(encoded.encode(None))
    return out


def _attempts(logs: list[Path]) -> dict[str, list[Attempt]]:
    """Every attempt the workers' logs tell of, by job (see the module for the lines)."""
    history: dict[str, list[Attempt]] = defaultdict(list)
    for log in logs:
        if not log.exists():
            continue
        open_attempts: dict[str, Attempt] = {}  # process name → its attempt in progress
        for line in log.read_text(errors="replace").splitlines():
            match = LOG_LINE.match(line)
            if match is None:
                continue
            process, text = match["process"], match["text"]
            current = open_attempts.get(process)
            if started := ATTEMPT_STARTED.search(text):
                attempt = Attempt(started["job"], int(started["attempt"]), log.name, process)
                history[attempt.job].append(attempt)
                open_attempts[process] = attempt
            elif current is None:
                continue
            elif COMMITTED.search(text):
                current.outcome = "committed"
            elif failed := FAILED.search(text):
                current.outcome = f"failed:{failed['code']}"
            elif REDIS_FAILED.search(text):
                current.outcome = "redis_error"
                del open_attempts[process]
            elif returned := TASK_RETURNED.search(text):
                if returned["out"] == "lost":  # also after a failure the store refused
                    current.outcome = "lost"
                current.seconds = float(returned["s"])
                del open_attempts[process]
    return history


def _runs(
    job_ids: list[str], history: dict[str, list[Attempt]], ends: Counter[str]
) -> dict[str, Any]:
    """What the workers' logs and the jobs' events say of ``job_ids``' attempts."""
    committed_twice, twice, unseen, lost_attempts = [], [], [], []
    outcomes: Counter[str] = Counter()
    for job in job_ids:
        attempts = history.get(job, [])
        outcomes.update(attempt.outcome for attempt in attempts)
        commits = sum(attempt.outcome == "committed" for attempt in attempts)
        if commits > 1:
            committed_twice.append(job)
        if ends[job] > 1:
            twice.append(job)
        if commits and not ends[job]:
            unseen.append(job)
        lost_attempts += [
            f"{job} attempt {attempt.number}, {attempt.seconds:.1f} s"
            for attempt in attempts
            if attempt.outcome == "lost" and attempt.seconds is not None
        ]
    return {
        "committed_twice": len(committed_twice),
        "run_twice_to_completion": len(twice),
        "run_twice_jobs": twice,
        "pipeline_ends_unseen": len(unseen),  # the events missed (0: the count is whole)
        "attempt_outcomes": dict(outcomes),
        "lost_attempts": lost_attempts,
    }


def _problems(
    scenarios: dict[str, Any],
    orphans: dict[str, Any],
    settled: list[str],
    stopped: list[str],
    processes: list[str],
) -> list[str]:
    """What did not hold, one sentence each."""
    problems = []
    for name, figures in scenarios.items():
        for key in ("lost", "committed_twice", "run_twice_to_completion"):
            if figures[key]:
                problems.append(f"{name}: {key} {figures[key]}")
        if figures["lost_attempts"]:
            problems.append(
                f"{name}: attempts that ran on after their job was given to another (they "
                f"ended 'lost'): {figures['lost_attempts']}"
            )
        if figures["refused"]:
            problems.append(f"{name}: refused {figures['refused']}")
        if figures["failed"]:
            problems.append(f"{name}: failed {figures['failed']}")
        for key in (
            "cut_uploads_made_a_job",
            "upload_folders_after_restart",
            "pool_processes_outliving_main",
        ):
            if figures.get(key):
                problems.append(f"{name}: {key} {figures[key]}")
    for key, value in orphans.items():
        if value and key not in ("other_keys", "owner_index_without_a_job"):
            problems.append(f"orphans: {key} {value}")
    if settled or stopped:
        problems.append(f"leftover files: settled {settled}, after stop {stopped}")
    if processes:
        problems.append(f"leftover processes: {processes}")
    return problems


def _spread(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "max": None}
    return {
        "median": round(statistics.median(values), DECIMALS),
        "max": round(max(values), DECIMALS),
    }


def _machine(redis_version: str) -> dict[str, Any]:
    import celery
    import onnxruntime

    return {
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "system": platform.platform(),
        "python": platform.python_version(),
        "celery": celery.__version__,
        "onnxruntime": onnxruntime.__version__,
        "redis_server": redis_version,
    }


def _message_job(raw: bytes | str) -> str | None:
    """The job id a broker message carries: kombu's JSON envelope (in the unacknowledged hash,
    the first of a list), its body (base64) Celery's ``[args, kwargs, embed]``, the job id the
    first argument."""
    try:
        message = json.loads(raw)
        if isinstance(message, list):
            message = message[0]
        body = json.loads(base64.b64decode(message["body"]))
        job = body[0][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return job if isinstance(job, str) else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _worker_pid(worker_id: str | None) -> int | None:
    """The pid in a job store worker id (``host:pid:random``, service.worker.runtime)."""
    try:
        return int((worker_id or "").split(":")[1])
    except (IndexError, ValueError):
        return None


def _children(pid: int) -> list[int]:
    try:
        return [
            int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        ]
    except OSError:
        return []


def _processes() -> Iterator[tuple[int, int, str]]:
    """(pid, process group, command line) of every process this user can see."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z":  # a zombie is dead already
            yield int(entry.name), int(fields[2]), command


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def _wait(condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise ChildProcessError(failure)
        time.sleep(POLL_S)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def _tail(log: Path, lines: int = 3) -> str:
    try:
        return " ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "no output"


def _keep(drill: Drill, folder: Path) -> None:
    """Copy the drill's logs and settings to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [
        *drill.folder.glob("*.log"),
        drill.folder / "settings.yaml",
        drill.folder / "redis" / "redis.log",
    ]
    for source in sources:
        if source.is_file():
            shutil.copy2(source, folder / source.name)
