"""The fault drill (``meshcast bench faults``): the real service as separate processes on a
private Redis, with faults injected one job at a time, and what they cost counted.

Each scenario runs ``jobs`` jobs of a short cut of the committed clip through a ``meshcast
gateway`` and a ``meshcast worker``, each job with its fault while it is in flight:

- ``worker_kill``: SIGKILL to the worker's whole process group mid-job, then a new worker;
- ``child_kill``: SIGKILL to the pool process running the job (the main process lives on);
- ``gateway_kill``: SIGKILL to the gateway while an upload streams in, then a new gateway; the
  job is then uploaded again (the killed upload must leave nothing);
- ``redis_restart``: Redis shut down mid-job (``appendonly yes``, ``appendfsync always``),
  down for a moment, started again on its files.

Counted: jobs accepted, succeeded, failed (by code), lost (never ended), run twice to
completion (more than one attempt of a job committed its results, from the workers' logs),
orphans (keys of a job that no longer exists, jobs left queued or running), files left in the
processes' temp folders (``meshcast-*``) once everything stopped, and the time from each fault
to its job's end. The Redis, its files and the temp folders are the drill's own.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
import httpx
import redis
import yaml

from meshcast.bench_service import LOOPBACK, free_port, gateway_answers
from service.jobs import JobRecord, JobState, JobStore
from service.settings import ServiceSettings, hash_api_key

SCENARIOS = ("worker_kill", "child_kill", "gateway_kill", "redis_restart")
PREFIX = "drill:"
KEY_ID = "drill"
TEMP_PREFIX = "meshcast-drill-"
SCRATCH_PREFIX = "meshcast-"  # the service's scratch folders (service/scratch_folders.py)
START_TIMEOUT_S = 90.0  # a process's imports and the bundle's sessions, on a busy machine
STOP_TIMEOUT_S = 30.0
POLL_S = 0.1
REDIS_DOWN_S = 2.0
REQUEST_TIMEOUT_S = 60.0
# Quick recovery: a dead worker's lock lapses in seconds, the reaper looks every second, and an
# upload cut short is gone in seconds. Small upload chunks: a killed upload has parts in Redis.
SETTINGS: dict[str, Any] = {
    "store": {"prefix": PREFIX, "lock_ttl_s": 3.0, "upload_ttl_s": 5.0},
    "gateway": {
        "upload": {"chunk_bytes": 4096, "read_timeout_s": 2.0},
        "quotas": {"max_active_jobs": 1000, "max_worker_seconds_per_hour": 1e9},
    },
    "worker": {
        "threads": 2,
        "reaper_interval_s": 1.0,
        "retry_backoff_s": 0.5,
        "progress_interval_s": 0.2,
    },
}
SUCCEEDED_LINE = re.compile(r"job (?P<job>[A-Za-z0-9_-]+): succeeded with")
JOB_KEY = re.compile(r"job:\{(?P<job>[A-Za-z0-9_-]+)\}")
DECIMALS = 2


@dataclass(frozen=True)
class DrillOptions:
    """What to run."""

    jobs: int
    scenarios: tuple[str, ...]
    bundle: Path
    video: Path  # cut to ``frames`` frames for the jobs
    frames: int
    job_timeout_s: float


@dataclass
class ScenarioFigures:
    """What one scenario cost."""

    submitted: int = 0
    accepted: int = 0
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    recover_s: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        recover = self.recover_s or [0.0]
        return {
            "submitted": self.submitted,
            "accepted": self.accepted,
            "succeeded": self.succeeded,
            "failed": dict(self.failed),
            "lost": self.lost,
            "recover_s": {
                "median": round(statistics.median(recover), DECIMALS),
                "max": round(max(recover), DECIMALS),
            },
        }


class RedisServer:
    """A ``redis-server`` of the drill's own on a free loopback port, persisted to its folder."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("the fault drill needs redis-server (apt install redis-server)")
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.url = f"redis://{LOOPBACK}:{self.port}/0"
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [self.binary, "--bind", LOOPBACK, "--port", str(self.port), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder),
             "--logfile", str(self.folder / "redis.log")],
        )  # fmt: skip
        client = redis.Redis(port=self.port)
        _wait(lambda: _pings(client), START_TIMEOUT_S, "redis-server did not start")
        return process

    def restart(self) -> None:
        """Shut down (SIGTERM: it writes what it holds), stay down a moment, start again."""
        self.stop()
        time.sleep(REDIS_DOWN_S)
        self.process = self._start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(STOP_TIMEOUT_S)


class Service:
    """The gateway and the worker processes on the drill's settings, each with the temp folder
    of its kind, their output in logs."""

    def __init__(self, folder: Path, settings: ServiceSettings, api_key: str) -> None:
        self.folder, self.settings = folder, settings
        self.config = folder / "settings.yaml"
        self.config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
        self.temp = {kind: folder / f"tmp-{kind}" for kind in ("gateway", "worker")}
        for path in self.temp.values():
            path.mkdir()
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.headers = {"Authorization": f"Bearer {api_key}"}
        self.worker_logs: list[Path] = []  # one per worker process started
        self.gateway = self._gateway()
        self.worker = self._worker()

    def _launch(self, args: list[str], kind: str, log: Path) -> subprocess.Popen[bytes]:
        env = {**os.environ, "TMPDIR": str(self.temp[kind]), "OMP_NUM_THREADS": "1"}
        for name in ("MESHCAST_CONFIG", "MESHCAST_REDIS_URL", "MESHCAST_BUNDLE"):
            env.pop(name, None)
        with log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "meshcast", *args, "--config", str(self.config)],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip

    def _gateway(self) -> subprocess.Popen[bytes]:
        process = self._launch(
            ["gateway", "--host", LOOPBACK, "--port", str(self.port)],
            "gateway",
            self.folder / "gateway.log",
        )
        _wait(lambda: gateway_answers(self.url), START_TIMEOUT_S, "the gateway did not start")
        return process

    def _worker(self) -> subprocess.Popen[bytes]:
        log = self.folder / f"worker-{len(self.worker_logs)}.log"
        self.worker_logs.append(log)
        return self._launch(["worker", "--loglevel", "info"], "worker", log)

    def kill_worker(self) -> None:
        """SIGKILL to the worker's whole group (a node dying), then a new worker."""
        _kill_group(self.worker)
        self.worker = self._worker()

    def kill_pool_child(self) -> None:
        """SIGKILL to the worker's pool processes; Celery's main process replaces them."""
        pid = self.worker.pid
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            os.kill(int(child), signal.SIGKILL)

    def kill_gateway(self) -> None:
        """SIGKILL to the gateway, then a new one (which sweeps the dead one's files)."""
        _kill_group(self.gateway)
        self.gateway = self._gateway()

    def stop(self) -> None:
        """Stop every process as a deployment does (SIGTERM, and a wait)."""
        for process in (self.gateway, self.worker):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                _kill_group(process)

    def upload(self, client: httpx.Client, video: bytes) -> str | None:
        """Upload a job; its id, or ``None`` when refused."""
        response = client.post(
            f"{self.url}/jobs",
            files={"video": ("clip.mp4", video, "video/mp4")},
            headers=self.headers,
            timeout=REQUEST_TIMEOUT_S,
        )
        return response.json()["id"] if response.status_code == httpx.codes.ACCEPTED else None

    def stalled_upload(self, video: bytes) -> socket.socket:
        """An upload whose client sent half its body, and waits."""
        boundary = secrets.token_hex(8)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="video"; '
                f'filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
            ).encode()
            + video
            + f"\r\n--{boundary}--\r\n".encode()
        )
        conn = socket.create_connection((LOOPBACK, self.port), timeout=REQUEST_TIMEOUT_S)
        head = [
            "POST /jobs HTTP/1.1", f"Host: {LOOPBACK}:{self.port}",
            f"Authorization: {self.headers['Authorization']}",
            f"Content-Type: multipart/form-data; boundary={boundary}",
            f"Content-Length: {len(body)}",
        ]  # fmt: skip
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + body[: len(body) // 2])
        return conn

    def upload_folders(self) -> list[Path]:
        return list(self.temp["gateway"].glob(f"{SCRATCH_PREFIX}upload-*"))

    def leftovers(self) -> list[str]:
        """The service's scratch files left in the processes' temp folders."""
        return sorted(
            str(path.relative_to(self.folder))
            for folder in self.temp.values()
            for path in folder.glob(f"{SCRATCH_PREFIX}*")
        )

    def committed(self) -> Counter[str]:
        """How many attempts of each job committed their results (the workers' logs)."""
        found: Counter[str] = Counter()
        for log in self.worker_logs:
            if log.exists():
                found.update(SUCCEEDED_LINE.findall(log.read_text(errors="replace")))
        return found


def run_fault_drill(options: DrillOptions, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the drill (see the module); its figures as JSON.

    Raises:
        FileNotFoundError: the bundle, the video or redis-server is missing.
        ChildProcessError: a process of the service did not start.
    """
    if not (options.bundle / "manifest.json").is_file():
        raise FileNotFoundError(
            f"no bundle at {options.bundle}: make the default one with `meshcast demo --build-only`"
        )
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as scratch:
        folder = Path(scratch)
        (folder / "redis").mkdir()
        video = _cut(options.video, options.frames, folder / "clip.mp4").read_bytes()
        server = RedisServer(folder / "redis")
        api_key = secrets.token_urlsafe(24)
        settings = _settings(server.url, options.bundle, api_key)
        started = time.monotonic()
        service = Service(folder, settings, api_key)
        client = redis.Redis.from_url(server.url)
        store = JobStore(client, settings.store)
        figures: dict[str, ScenarioFigures] = {}
        accepted: list[str] = []
        try:
            with httpx.Client() as http:
                for scenario in options.scenarios:
                    figures[scenario] = ScenarioFigures()
                    for number in range(options.jobs):
                        job_id = _one_job(scenario, service, server, store, http, video,
                                          figures[scenario], options.job_timeout_s)  # fmt: skip
                        accepted += [job_id] if job_id else []
                        say(f"{scenario} {number + 1}/{options.jobs}: "
                            f"{_outcome(store, job_id)}")  # fmt: skip
            time.sleep(settings.store.upload_ttl_s + 1)  # cut-short uploads' parts expire
            orphans = _orphans(client, store)
        finally:
            service.stop()
            server.stop()
        committed = service.committed()
        return {
            "scenarios": {name: value.as_json() for name, value in figures.items()},
            "jobs_lost": sum(value.lost for value in figures.values()),
            "jobs_run_twice": sum(count > 1 for count in committed.values()),
            "jobs_without_a_commit": sum(
                1 for job_id in accepted if committed[job_id] == 0 and _succeeded(store, job_id)
            ),
            "orphans": orphans,
            "leftover_files": service.leftovers(),
            "seconds": round(time.monotonic() - started, 1),
            "settings": SETTINGS,
            "video": {"file": str(options.video), "frames": options.frames, "bytes": len(video)},
        }


def _one_job(
    scenario: str,
    service: Service,
    server: RedisServer,
    store: JobStore,
    http: httpx.Client,
    video: bytes,
    figures: ScenarioFigures,
    timeout_s: float,
) -> str | None:
    """Submit one job, inject the scenario's fault while it is in flight, wait for its end."""
    figures.submitted += 1
    if scenario == "gateway_kill":
        conn = service.stalled_upload(video)
        _wait(lambda: bool(service.upload_folders()), START_TIMEOUT_S, "the upload did not begin")
        service.kill_gateway()
        conn.close()
    job_id = service.upload(http, video)
    if job_id is None:
        return None
    figures.accepted += 1
    fault_at = time.monotonic()
    if scenario != "gateway_kill":
        _wait(lambda: _running(store, job_id), timeout_s, f"job {job_id} did not start")
        fault_at = time.monotonic()
        {
            "worker_kill": service.kill_worker,
            "child_kill": service.kill_pool_child,
            "redis_restart": server.restart,
        }[scenario]()
    record = _ended(store, job_id, timeout_s)
    if record is None:
        figures.lost += 1
        return job_id
    figures.recover_s.append(time.monotonic() - fault_at)
    if record.state is JobState.SUCCEEDED:
        figures.succeeded += 1
    else:
        figures.failed[record.error_code or record.state.value] += 1
    return job_id


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


def _cut(video: Path, frames: int, out: Path) -> Path:
    """The first ``frames`` frames of ``video``, as H.264."""
    with av.open(str(video)) as source, av.open(str(out), mode="w") as target:
        stream = source.streams.video[0]
        encoded = target.add_stream("libx264", rate=stream.average_rate or 25)
        encoded.width, encoded.height, encoded.pix_fmt = stream.width, stream.height, "yuv420p"
        for index, frame in enumerate(source.decode(stream)):
            if index >= frames:
                break
            frame.pts = None
            target.mux(encoded.encode(frame))
        target.mux(encoded.encode(None))
    return out


def _orphans(client: redis.Redis, store: JobStore) -> dict[str, list[str]]:
    """Keys of jobs that no longer exist, and jobs still queued or running."""
    gone: set[str] = set()
    open_jobs = []
    for raw in client.scan_iter(match=f"{PREFIX}job:*"):
        key = raw.decode()
        match = JOB_KEY.search(key)
        if match is None:
            continue
        job_id = match["job"]
        record = store.get(job_id)
        if record is None:
            gone.add(key)
        elif not record.state.terminal and key == store.keys.job(job_id):
            open_jobs.append(job_id)
    return {"keys_without_a_job": sorted(gone), "jobs_not_ended": sorted(open_jobs)}


def _running(store: JobStore, job_id: str) -> bool:
    record = store.get(job_id)
    return record is not None and record.state is JobState.RUNNING and bool(record.stage)


def _ended(store: JobStore, job_id: str, timeout_s: float) -> JobRecord | None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            record = store.get(job_id)
        except redis.ConnectionError:  # the drill's own Redis, restarting
            record = None
        if record is not None and record.state.terminal:
            return record
        time.sleep(POLL_S)
    return None


def _succeeded(store: JobStore, job_id: str) -> bool:
    record = store.get(job_id)
    return record is not None and record.state is JobState.SUCCEEDED


def _outcome(store: JobStore, job_id: str | None) -> str:
    if job_id is None:
        return "refused"
    record = store.get(job_id)
    if record is None:
        return "gone"
    return f"{record.state.value} after {record.attempts} attempts"


def _wait(condition: Callable[[], bool], timeout_s: float, failure: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise ChildProcessError(failure)
        time.sleep(POLL_S)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(STOP_TIMEOUT_S)
