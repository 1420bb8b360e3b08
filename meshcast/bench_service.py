"""``meshcast bench service``: the gateway under load. Concurrent uploads of one video, then
(with ``--result``) a burst of mesh downloads, then a burst of status polls of the jobs they
made, then the jobs deleted; per kind of request the
latency percentiles and the throughput, the errors by status and code, and the Redis memory
the jobs held before and after their deletion, as one JSON report.

What it measures is the gateway alone. By default it starts one (``meshcast gateway``: a
process of its own, as deployed, on a free loopback port) on the settings given, with three
changes: its keys go under a prefix of the bench's own beneath the settings' prefix
(``{prefix}bench-{hex}:``: the job store's and the broker's, so no running worker takes its
jobs, and nothing of anyone else's is touched or counted), its one API key is made up here, and
its rate limit is raised to the bench's requests (the check still runs on each request; it just
never refuses one). No worker listens to that queue: each upload is streamed into Redis,
probed and queued, and stays queued. A worker on the same machine would take the CPU that the
gateway's latencies are measured on, and make them the pipeline's; how fast workers process
jobs is ``meshcast bench pipeline``'s measure.

With ``--url`` it loads a gateway running elsewhere instead, with that gateway's API key; the
settings must then be that gateway's (its Redis and prefix: the memory of the jobs is read
there). Its workers may take the jobs: deleting them cancels them.

Mesh downloads (``--result``, its own gateway only): the first uploaded job is finished with a
``meshcast run`` result, as a worker finishes one (the result stored under the bench's prefix),
and its person-frames' OBJ, then PLY files are fetched in turn, ``--downloads`` of each: the
gateway poses each frame's mesh with its bundle's body and formats it
(:mod:`service.gateway.frame_meshes`).

A warm-up job (uploaded, polled, deleted, not counted) opens the gateway's connections to Redis
and the broker first. Latencies are the client's: from sending a request to reading the last
byte of its answer, measured here, in the same machine's other process, so they include the
loopback and this client's own share of the CPU. It lives beside the command line, not in
:mod:`service`: it is a client of the service (httpx, the ``dev`` extra, which the service's
images do not carry), not a part of it.
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import platform
import re
import secrets
import select
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import redis
import yaml

from service.jobs import JobStore
from service.outputs import RESULT_NPZ
from service.outputs.result_files import read_result_npz
from service.settings import ApiKey, ServiceSettings, hash_api_key

LOOPBACK = "127.0.0.1"
BENCH_KEY_ID = "bench"
BENCH_NAMESPACE = "bench-"  # the bench's prefix: the settings' prefix, this, a random hex, ":"
PREFIX_HEX_BYTES = 4
API_KEY_BYTES = 32
START_TIMEOUT_S = 60.0  # imports and the app, on a busy machine
STOP_TIMEOUT_S = 30.0  # the gateway's graceful shutdown (20 s) and a margin
POLL_S = 0.1
# One request may wait behind all the others of a burst on a slow machine.
REQUEST_TIMEOUT_S = 120.0
REDIS_TIMEOUT_S = 5.0
LOG_TAIL_LINES = 1
WARMUP_REQUESTS = 3  # the warm-up job's upload, poll and delete, which the rate limit counts
PERCENTILES = (50, 99)
MS_PER_S = 1000
MB = 1_000_000  # upload throughput in MB/s (10^6 bytes, as network speeds are given)
DECIMALS = 2
SCAN_COUNT = 500
DEFAULT_CONTENT_TYPE = "application/octet-stream"  # accepted by the gateway; probing decides
TEMP_PREFIX = "meshcast-bench-"  # the folder of the gateway's settings file and log
UPLOAD, POLL, DELETE = "upload", "poll", "delete"
# Mesh downloads, by format: the gateway poses each frame's mesh from the job's result.npz.
DOWNLOADS = {"obj": "download_obj", "ply": "download_ply"}
BENCH_WORKER = "bench"  # the name under which the bench finishes a job with --result
STALLED_SENT_BYTES = 64 * 1024  # a stalled upload's headers and this much of its form
TRANSPORT_ERROR_STATUS = 0  # a request that got no answer (refused, reset, timed out)


@dataclass(frozen=True)
class BenchOptions:
    """What to run; :meth:`check` tells what is wrong with it."""

    video: Path
    uploads: int
    concurrency: int
    polls: int
    url: str | None = None  # None: start a gateway here
    api_key: str | None = None  # the --url gateway's
    stalled: int = 0  # uploads held open, stalled after their first bytes, throughout
    result: Path | None = None  # a `meshcast run` result.npz: one job finished with it
    downloads: int = 0  # with result: meshes of its person-frames fetched, per format

    def check(self) -> None:
        """Refuse what cannot run.

        Raises:
            ValueError: a count out of range, a missing video, --url without a key or the
                reverse.
        """
        for name, value, least in (("uploads", self.uploads, 1),
                                   ("concurrency", self.concurrency, 1),
                                   ("polls", self.polls, 0),
                                   ("stalled", self.stalled, 0),
                                   ("downloads", self.downloads, 0)):  # fmt: skip
            if value < least:
                raise ValueError(f"--{name} must be at least {least}, not {value}")
        if not self.video.is_file():
            raise ValueError(f"{self.video}: no such video file")
        if self.url is not None:
            if not re.match(r"https?://", self.url):
                raise ValueError(f"--url {self.url!r} is not an http:// or https:// URL")
            if not self.api_key:
                raise ValueError("--url needs the gateway's API key: --key, or $MESHCAST_API_KEY")
        elif self.api_key:
            raise ValueError("--key is for a gateway of --url; the bench makes its own key")
        if self.result is not None:
            if self.url is not None:
                raise ValueError("--result finishes a job itself: not on a gateway of --url")
            if not self.result.is_file():
                raise ValueError(f"{self.result}: no such result.npz")


@dataclass(frozen=True)
class Sample:
    """One request: how long it took, and its status (0: no answer) and error code."""

    kind: str
    seconds: float
    status: int
    code: str | None  # the error's code (the body's error.code, else the reason); None: ok


@dataclass(frozen=True)
class Phase:
    """A burst of requests of one kind: their samples and the burst's wall time."""

    kind: str
    samples: list[Sample]
    seconds: float


def bench_prefix(settings: ServiceSettings) -> str:
    """A key prefix of the bench's own, beneath the settings' store prefix."""
    return f"{settings.store.prefix}{BENCH_NAMESPACE}{secrets.token_hex(PREFIX_HEX_BYTES)}:"


def bench_settings(
    settings: ServiceSettings, prefix: str, api_key: str, options: BenchOptions, requests: int
) -> ServiceSettings:
    """``settings`` for the bench's own gateway: its keys under ``prefix``, ``api_key`` its
    only key, a rate limit that lets ``requests`` through in one window, and room for the
    bench's uploads from that one key (a key's own caps and quotas would refuse most of them:
    the bench measures the gateway, not them)."""
    gateway = settings.gateway
    rate_limit = gateway.rate_limit.model_copy(
        update={"requests": max(gateway.rate_limit.requests, requests)}
    )
    concurrent = max(gateway.upload.max_concurrent, options.concurrency + options.stalled)
    upload = gateway.upload.model_copy(
        update={"max_concurrent": concurrent, "max_concurrent_per_key": concurrent}
    )
    quotas = gateway.quotas.model_copy(
        update={
            "max_active_jobs": max(gateway.quotas.max_active_jobs, options.uploads),
            "max_stored_bytes": max(
                gateway.quotas.max_stored_bytes, options.uploads * options.video.stat().st_size
            ),
        }
    )
    key = ApiKey(id=BENCH_KEY_ID, sha256=hash_api_key(api_key))
    return settings.model_copy(
        update={
            "store": settings.store.model_copy(update={"prefix": prefix}),
            "gateway": gateway.model_copy(
                update={
                    "api_keys": [key],
                    "rate_limit": rate_limit,
                    "upload": upload,
                    "quotas": quotas,
                }
            ),
        }
    )


def keys_under(client: redis.Redis, prefix: str) -> Iterator[bytes]:
    """The keys under ``prefix`` (SCAN: Redis may be shared, and busy)."""
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"  # the prefix taken literally
    return client.scan_iter(match=pattern, count=SCAN_COUNT)


def delete_keys_under(client: redis.Redis, prefix: str) -> int:
    """Delete every key under ``prefix`` and nothing else (never FLUSHDB); how many."""
    return sum(int(client.delete(key)) for key in keys_under(client, prefix))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def own_gateway(settings: ServiceSettings, folder: Path) -> Iterator[str]:
    """``meshcast gateway`` on ``settings`` in a process of its own on a free loopback port,
    once it answers; yields its URL and stops it afterwards.

    Raises:
        ChildProcessError: it exited, or did not answer in time (the last line of its log
            told).
    """
    config = folder / "gateway.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    log = folder / "gateway.log"
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    command = [sys.executable, "-m", "meshcast", "gateway", "--config", str(config),
               "--host", LOOPBACK, "--port", str(port)]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not gateway_answers(url):
            if process.poll() is not None or time.monotonic() > deadline:
                lines = log.read_text(errors="replace").strip().splitlines()
                last = " ".join(lines[-LOG_TAIL_LINES:]) or "no output"
                raise ChildProcessError(f"the bench's gateway did not start: {last}")
            time.sleep(POLL_S)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def gateway_answers(url: str) -> bool:
    """Whether a gateway answers /healthz at ``url``."""
    try:
        return httpx.get(f"{url}/healthz", timeout=REQUEST_TIMEOUT_S).is_success
    except httpx.HTTPError:
        return False


def _error_code(response: httpx.Response) -> str | None:
    """The code of an error answer (the gateway's ``error.code``, else the reason phrase)."""
    if response.is_success:
        return None
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return response.reason_phrase
    return str(code)


async def _timed(
    client: httpx.AsyncClient, kind: str, method: str, url: str, **kwargs: Any
) -> tuple[Sample, httpx.Response | None]:
    """Send one request and read its whole answer; its sample, and the answer (None: none)."""
    started = time.perf_counter()
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as error:
        elapsed = time.perf_counter() - started
        return Sample(kind, elapsed, TRANSPORT_ERROR_STATUS, type(error).__name__), None
    return Sample(kind, time.perf_counter() - started, response.status_code,
                  _error_code(response)), response  # fmt: skip


async def _burst(
    kind: str, count: int, concurrency: int, send: Callable[[int], Awaitable[Sample]]
) -> Phase:
    """``count`` requests ``send(0)``, ``send(1)``, …, at most ``concurrency`` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> Sample:
        async with gate:
            return await send(index)

    started = time.perf_counter()
    samples = await asyncio.gather(*(one(index) for index in range(count)))
    return Phase(kind, list(samples), time.perf_counter() - started)


class Client:
    """The bench's HTTP client on one gateway: uploads, polls and deletes, timed."""

    def __init__(self, http: httpx.AsyncClient, video: Path) -> None:
        self.http = http
        self.video = video
        self.content = video.read_bytes()
        self.content_type = mimetypes.guess_type(video.name)[0] or DEFAULT_CONTENT_TYPE

    async def upload(self) -> tuple[Sample, str | None]:
        """POST /jobs with the video; the sample and the new job's id (None: refused)."""
        files = {"video": (self.video.name, self.content, self.content_type)}
        sample, response = await _timed(self.http, UPLOAD, "POST", "/jobs", files=files)
        job_id = response.json()["id"] if sample.code is None and response is not None else None
        return sample, job_id

    async def poll(self, job_id: str) -> Sample:
        sample, _ = await _timed(self.http, POLL, "GET", f"/jobs/{job_id}")
        return sample

    async def delete(self, job_id: str) -> Sample:
        sample, _ = await _timed(self.http, DELETE, "DELETE", f"/jobs/{job_id}")
        return sample


class StalledUploads:
    """Slow clients: uploads that send their headers (a Content-Length of the whole form) and
    the first :data:`STALLED_SENT_BYTES` of it, then nothing, each holding its connection."""

    def __init__(self, url: str, api_key: str, video: Path, count: int) -> None:
        request = httpx.Request(
            "POST", f"{url}/jobs", headers={"Authorization": f"Bearer {api_key}"},
            files={"video": (video.name, video.read_bytes(), DEFAULT_CONTENT_TYPE)},
        )  # fmt: skip
        body = request.read()
        head = ["POST /jobs HTTP/1.1", f"Host: {request.url.netloc.decode()}",
                *(f"{name}: {value}" for name, value in request.headers.items()
                  if name.lower() not in ("host", "content-length")),
                f"Content-Length: {len(body)}"]  # fmt: skip
        start = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body[:STALLED_SENT_BYTES]
        host, port = request.url.host, request.url.port or 80
        self.connections: list[socket.socket] = []
        try:
            for _ in range(count):
                conn = socket.create_connection((host, port), timeout=REQUEST_TIMEOUT_S)
                self.connections.append(conn)
                conn.sendall(start)
        except BaseException:
            self.close()
            raise

    def still_held(self) -> int:
        """How many the gateway has neither answered nor closed."""
        if not self.connections:
            return 0
        readable, _, _ = select.select(self.connections, [], [], 0)
        return len(self.connections) - len(readable)

    def close(self) -> None:
        """Hang up every one."""
        for conn in self.connections:
            conn.close()
        self.connections.clear()


async def _load(options: BenchOptions, url: str, api_key: str, store: JobStore) -> dict[str, Any]:
    """The three bursts on the gateway at ``url``, with ``options.stalled`` slow uploads held
    open throughout; the report's measured part. Every job made is deleted, whatever
    happens."""
    limits = httpx.Limits(
        max_connections=options.concurrency, max_keepalive_connections=options.concurrency
    )
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits,
                                 timeout=REQUEST_TIMEOUT_S) as http:  # fmt: skip
        client = Client(http, options.video)
        await _warm_up(client)
        job_ids: list[str] = []
        deleted = False
        stalled = StalledUploads(url, api_key, options.video, options.stalled)
        try:

            async def upload(_: int) -> Sample:
                sample, job_id = await client.upload()
                if job_id is not None:
                    job_ids.append(job_id)
                return sample

            uploads = await _burst(UPLOAD, options.uploads, options.concurrency, upload)
            downloads = await _downloads(options, client, store, job_ids)
            polls = await _burst(
                POLL, options.polls if job_ids else 0, options.concurrency,
                lambda index: client.poll(job_ids[index % len(job_ids)]),
            )  # fmt: skip
            before = _memory(store, job_ids)
            deletes = await _burst(
                DELETE, len(job_ids), options.concurrency,
                lambda index: client.delete(job_ids[index]),
            )  # fmt: skip
            deleted = True
            after = _memory(store, job_ids)
            held = stalled.still_held()
        finally:
            stalled.close()
            if not deleted:  # stopped midway: the jobs go all the same
                await asyncio.gather(*(client.delete(job_id) for job_id in job_ids))
    phases = (uploads, *downloads, polls, deletes)
    return {
        # The slow uploads held open while the bursts ran, and those still held at their end
        # (the gateway's read timeout, upload.read_timeout_s, answers them 408 after that long).
        "stalled": {"held": options.stalled, "still_held_at_end": held},
        "requests": {phase.kind: _stats(phase, len(client.content)) for phase in phases},
        "errors": _errors(phases),
        "redis_memory": {
            "jobs": len(job_ids),
            "before_delete_bytes": before,
            "per_job_bytes": round(before / len(job_ids)) if job_ids else None,
            "after_delete_bytes": after,
        },
    }


async def _downloads(
    options: BenchOptions, client: Client, store: JobStore, job_ids: list[str]
) -> tuple[Phase, ...]:
    """With ``options.result``: the first job finished with it, as a worker finishes one,
    then ``options.downloads`` meshes of its person-frames in each format, in turn."""
    if options.result is None or not options.downloads or not job_ids:
        return ()
    job_id = job_ids[0]
    if store.start(job_id, BENCH_WORKER) is None:
        raise ConnectionError(f"job {job_id} could not be started: is a worker taking it?")
    store.finish(job_id, BENCH_WORKER, {RESULT_NPZ: options.result}, {})
    frames = [
        (track.track_id, int(frame))
        for track in read_result_npz(options.result).tracks
        for frame in track.frame_ids
    ]
    phases = []
    for fmt, kind in DOWNLOADS.items():

        async def download(index: int, fmt: str = fmt, kind: str = kind) -> Sample:
            track_id, frame = frames[index % len(frames)]
            url = f"/jobs/{job_id}/tracks/{track_id}/frames/{frame}.{fmt}"
            sample, _ = await _timed(client.http, kind, "GET", url)
            return sample

        phases.append(await _burst(kind, options.downloads, options.concurrency, download))
    return tuple(phases)


async def _warm_up(client: Client) -> None:
    """One job uploaded, polled and deleted, not counted: the gateway's connections to Redis
    and the broker are open before the first measured request.

    Raises:
        ConnectionError: the gateway refused the upload (the key, the video): the bench would
            measure nothing but that refusal.
    """
    sample, job_id = await client.upload()
    if job_id is None:
        raise ConnectionError(
            f"the gateway refused the warm-up upload of {client.video.name} "
            f"({sample.status} {sample.code})"
        )
    await client.poll(job_id)
    await client.delete(job_id)


def _memory(store: JobStore, job_ids: list[str]) -> int:
    """Bytes of Redis memory the jobs' keys take, summed."""
    return sum(store.memory_usage(job_id) for job_id in job_ids)


def _stats(phase: Phase, upload_bytes: int) -> dict[str, Any]:
    """A burst's figures: latency percentiles of the answered requests, and throughput."""
    ok = [sample.seconds for sample in phase.samples if sample.code is None]
    count = len(phase.samples)
    stats: dict[str, Any] = {"count": count, "ok": len(ok)}
    for percentile in PERCENTILES:
        value = float(np.percentile(ok, percentile)) * MS_PER_S if ok else None
        stats[f"p{percentile}_ms"] = None if value is None else round(value, DECIMALS)
    stats["max_ms"] = round(max(ok) * MS_PER_S, DECIMALS) if ok else None
    stats["seconds"] = round(phase.seconds, DECIMALS + 1)
    stats["requests_per_s"] = round(count / phase.seconds, DECIMALS) if phase.seconds else None
    if phase.kind == UPLOAD:
        sent = len(ok) * upload_bytes
        stats["upload_mb_per_s"] = round(sent / MB / phase.seconds, DECIMALS) if ok else 0.0
    return stats


def _errors(phases: tuple[Phase, ...]) -> dict[str, Any]:
    """Failed requests: their count, and how many of each ``status code`` (status 0: no
    answer, the code the transport's error)."""
    counts = Counter(
        f"{sample.status} {sample.code}"
        for phase in phases
        for sample in phase.samples
        if sample.code is not None
    )
    return {"count": sum(counts.values()), "by_status": dict(sorted(counts.items()))}


def _connect(settings: ServiceSettings) -> redis.Redis:
    """A client of the settings' Redis, once it answers.

    Raises:
        ConnectionError: it does not answer.
    """
    client = redis.Redis.from_url(
        settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S, socket_timeout=REDIS_TIMEOUT_S
    )
    try:
        client.ping()
    except (redis.ConnectionError, redis.TimeoutError) as error:
        client.close()
        raise ConnectionError(
            f"Redis at {settings.redis_url} does not answer ({error}): start it, or give "
            "--redis-url"
        ) from error
    return client


def run_service_bench(options: BenchOptions, settings: ServiceSettings) -> dict[str, Any]:
    """Run the bench on ``settings`` (the gateway's, or those to start one with) and return
    its report.

    Raises:
        ValueError: bad options (:meth:`BenchOptions.check`).
        ConnectionError: Redis or the gateway does not answer, or refuses the video.
        ChildProcessError: the bench's own gateway did not start.
    """
    options.check()
    client = _connect(settings)
    try:
        if options.url is not None:
            if not gateway_answers(options.url):
                raise ConnectionError(f"no gateway answers at {options.url}/healthz")
            store = JobStore(client, settings.store)
            measured = asyncio.run(_load(options, options.url, options.api_key or "", store))
            gateway = {"url": options.url, "started_here": False}
            cleanup: dict[str, Any] = {"prefix": settings.store.prefix, "keys_left": None}
        else:
            measured, gateway, cleanup = _on_own_gateway(options, settings, client)
    finally:
        client.close()
    return {
        "gateway": gateway,
        "video": {"path": str(options.video), "bytes": options.video.stat().st_size},
        "uploads": options.uploads,
        "concurrency": options.concurrency,
        "polls": options.polls,
        "result": None if options.result is None else str(options.result),
        "downloads": options.downloads if options.result is not None else 0,
        **measured,
        "cleanup": cleanup,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
    }


def _on_own_gateway(
    options: BenchOptions, settings: ServiceSettings, client: redis.Redis
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The bench on a gateway started here under a prefix of its own, deleted afterwards:
    the measured part, the gateway's description, and what the cleanup left."""
    prefix = bench_prefix(settings)
    api_key = secrets.token_urlsafe(API_KEY_BYTES)
    downloads = len(DOWNLOADS) * options.downloads if options.result is not None else 0
    requests = options.uploads + options.polls + options.uploads + WARMUP_REQUESTS + downloads
    ours = bench_settings(settings, prefix, api_key, options, requests)
    try:
        with (
            tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as folder,
            own_gateway(ours, Path(folder)) as url,
        ):
            measured = asyncio.run(_load(options, url, api_key, JobStore(client, ours.store)))
    finally:
        # The queued tasks, the broker's bindings, the rate counter: everything under the
        # prefix, once the gateway (which might write some of them again) has stopped.
        delete_keys_under(client, prefix)
    left = sum(1 for _ in keys_under(client, prefix))
    return measured, {"url": url, "started_here": True}, {"prefix": prefix, "keys_left": left}
