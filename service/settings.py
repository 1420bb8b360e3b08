"""The service's configuration: one YAML file, validated, with environment overrides.

``meshcast gateway`` and ``meshcast worker`` read the file named by ``--config`` or by
``MESHCAST_CONFIG`` (none: the defaults below), then the few variables a deployment sets per
container: ``MESHCAST_REDIS_URL``, ``MESHCAST_BUNDLE`` (``bundle``, which the gateway reads too:
it poses the meshes it serves with the bundle's body) and ``MESHCAST_DEVICE``
(``worker.device``). API keys are kept as SHA-256 digests, never as keys:
``meshcast gateway hash-key`` prints one's digest; ``gateway.api_keys_file`` names a file of
more of them (a mounted Secret).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from service.bundle import Precision
from service.jobs.store import StoreConfig

KIB = 1 << 10
MIB = 1 << 20
CONFIG_ENV = "MESHCAST_CONFIG"
REDIS_URL_ENV = "MESHCAST_REDIS_URL"
BUNDLE_ENV = "MESHCAST_BUNDLE"
DEVICE_ENV = "MESHCAST_DEVICE"
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Device = Literal["auto", "cuda", "cpu"]


def hash_api_key(key: str) -> str:
    """The SHA-256 hex digest that the configuration keeps of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKey(BaseModel):
    """One client's key: its id owns the jobs it makes (and shows in logs); only the digest of
    the key itself is stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")]
    sha256: Sha256Hex


class UploadLimits(BaseModel):
    """What ``POST /jobs`` accepts; anything else is refused before it is queued."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_bytes: PositiveInt = 512 * MIB
    max_duration_s: PositiveFloat = 600.0  # ten minutes
    max_frames: PositiveInt = 18_000  # ten minutes at 30 fps
    max_width: PositiveInt = 3840  # 4K UHD, either orientation
    max_height: PositiveInt = 3840
    # Browsers and curl label videos by extension; octet-stream is what a client sends when it
    # does not know, and probing decides anyway.
    content_types: list[str] = [
        "video/mp4",
        "video/quicktime",
        "video/x-msvideo",
        "video/x-matroska",
        "video/webm",
        "application/octet-stream",
    ]
    chunk_bytes: PositiveInt = MIB  # read from the request and appended to Redis at a time
    # The decode budget: width × height × frames, what a job's decoding and detection cost
    # grows with (ten minutes of 1080p at 30 fps). An upload of small size can declare 4K.
    max_pixel_frames: PositiveInt = 1920 * 1080 * 18_000
    # Slow clients: the longest pause between two pieces of the body, and the whole body's time.
    read_timeout_s: PositiveFloat = 30.0
    max_upload_s: PositiveFloat = 3600.0
    # Uploads in progress at once on one gateway, and of them with one API key: each holds a
    # connection, a temporary file and up to chunk_bytes of memory.
    max_concurrent: PositiveInt = 32
    max_concurrent_per_key: PositiveInt = 4


class Quotas(BaseModel):
    """What one API key's jobs may hold; an upload past one is refused (429), counted as it
    begins and again once its video is whole."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_active_jobs: PositiveInt = 8  # queued or running
    max_stored_bytes: PositiveInt = 4096 * MIB  # uploads and results of its stored jobs
    # Worker time spent on its jobs in the current hour (a fixed window, from the epoch).
    max_worker_seconds_per_hour: PositiveFloat = 3600.0


class ServerLimits(BaseModel):
    """uvicorn's own limits, per gateway process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Connections and requests at once; past it, a request is answered 503 server_busy.
    max_connections: PositiveInt = 1000
    keep_alive_s: PositiveFloat = 5.0  # an idle connection is closed after this
    # A request line and headers still incomplete past this many bytes are refused (400).
    max_header_bytes: Annotated[int, Field(ge=1024)] = 16 * KIB
    # Open requests (event streams last as long as their job) are closed after this on stop:
    # within Kubernetes' default grace period of 30 s.
    graceful_shutdown_s: PositiveFloat = 20.0


class RateLimit(BaseModel):
    """Requests one API key may make per window (a fixed window in Redis)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: PositiveInt = 600
    window_s: PositiveFloat = 60.0


class GatewaySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000
    api_keys: list[ApiKey] = []  # none: every request is refused (401)
    # A YAML file holding more keys (a list of {id, sha256}), which the gateway reads as it
    # starts (resolve_api_keys): in Kubernetes a mounted Secret, so the keys stay out of the
    # ConfigMap. The workers never read it.
    api_keys_file: Path | None = None
    upload: UploadLimits = UploadLimits()
    quotas: Quotas = Quotas()
    rate_limit: RateLimit = RateLimit()
    server: ServerLimits = ServerLimits()
    # Prometheus's metrics on a port of their own, never on the API's (which an Ingress
    # exposes): in a cluster the pod's address (the chart sets 0.0.0.0 and 9100); 0: a free
    # port; None: not served.
    metrics_host: str = "127.0.0.1"
    metrics_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    max_event_streams: PositiveInt = 64  # open SSE streams; each holds a thread
    max_event_streams_per_key: PositiveInt = 8  # of them, open with one API key
    # /readyz wants a worker that answered within this long (Celery's ping)...
    worker_ping_timeout_s: PositiveFloat = 1.0
    # ...unless this is off: then it asks Redis alone. A cluster turns it off, since a gateway
    # pod's readiness is about that pod: with the workers still starting, or scaled to zero
    # by the queue's length, the gateways must stay in their Service to take the job that
    # brings a worker up, and to serve finished results.
    readyz_requires_worker: bool = True


class WorkerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    precision: Precision = "fp32"
    # "auto": onnxruntime's CUDA provider when it has one, else the CPU.
    device: Device = "auto"
    # A job past the soft limit is failed cleanly; past the hard one its process is killed.
    soft_time_limit_s: PositiveFloat = 3600.0
    time_limit_s: PositiveFloat = 3900.0
    # Transient errors (Redis unreachable) are retried this often, backing off.
    max_retries: Annotated[int, Field(ge=0)] = 3
    retry_backoff_s: PositiveFloat = 5.0
    # onnxruntime threads of each session (within and between operators); None: onnxruntime's
    # default, one per physical core. A worker process runs one job at a time.
    threads: PositiveInt | None = None
    # How often each worker process looks for running jobs whose worker died (their lock,
    # store.lock_ttl_s, lapsed) and queues them again: such a job waits at most the sum.
    reaper_interval_s: PositiveFloat = 10.0
    # A job's progress is written (and published) at most this often, besides the first and
    # last report of each stage: a video's frames come by the thousand.
    progress_interval_s: PositiveFloat = 1.0
    # A job whose video holds nobody in its first this many seconds fails (no_people) without
    # decoding the rest: a long empty video costs no more than this. None: never early.
    nobody_stop_s: PositiveFloat | None = 30.0
    # The detector searches every this many frames, and frames where something new moves; the
    # keypoint model follows people in between (service.pipeline.people). None: the
    # pipeline's default.
    detect_every: PositiveInt | None = None
    # How long a new pool process may take to load its sessions and, on a GPU, to meet each
    # fixed batch size once (service.fixed_batches: about 3 s a size and graph on an H200)
    # before it reports ready; Celery's own 4 s would kill it while it warms up.
    start_timeout_s: PositiveFloat = 300.0


class ServiceSettings(BaseModel):
    """Everything the gateway and the workers are told."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    redis_url: str = "redis://127.0.0.1:6379/0"
    # The model bundle: the workers run its networks, the gateway poses each downloaded mesh
    # with its body (body.onnx, faces.npy), so both must read the same one.
    bundle: Path = Path("bundles/default")
    store: StoreConfig = StoreConfig()
    gateway: GatewaySettings = GatewaySettings()
    worker: WorkerSettings = WorkerSettings()

    @model_validator(mode="after")
    def _uploads_outlive_their_pauses(self) -> Self:
        if self.store.upload_ttl_s <= self.gateway.upload.read_timeout_s:
            raise ValueError(
                f"store.upload_ttl_s ({self.store.upload_ttl_s:g}) must be longer than "
                f"gateway.upload.read_timeout_s ({self.gateway.upload.read_timeout_s:g}): an "
                "upload's stored part would expire while the gateway still waits for the rest"
            )
        return self


def load_settings(path: str | Path | None = None) -> ServiceSettings:
    """Read ``path`` (default: ``$MESHCAST_CONFIG``; neither: the defaults), then apply the
    environment's overrides.

    Raises:
        FileNotFoundError: the file named is missing.
        pydantic.ValidationError: a value that is not allowed, or a key that is not known.
    """
    path = path or os.environ.get(CONFIG_ENV)
    data: dict[str, object] = {}
    if path:
        data = yaml.safe_load(Path(path).read_text()) or {}
    settings = ServiceSettings.model_validate(data)
    worker = settings.worker
    if DEVICE_ENV in os.environ:
        worker = WorkerSettings.model_validate(
            {**worker.model_dump(), "device": os.environ[DEVICE_ENV]}
        )
    return settings.model_copy(
        update={
            "redis_url": os.environ.get(REDIS_URL_ENV, settings.redis_url),
            "bundle": Path(os.environ.get(BUNDLE_ENV, settings.bundle)),
            "worker": worker,
        }
    )


def resolve_api_keys(settings: ServiceSettings) -> ServiceSettings:
    """``settings`` with the keys of ``gateway.api_keys_file`` (if any) added to
    ``gateway.api_keys``: the gateway's keys as it starts.

    Raises:
        FileNotFoundError: the keys file is missing.
        ValueError: an entry of it is not a key (one line).
    """
    gateway = settings.gateway
    if gateway.api_keys_file is None:
        return settings
    keys = [*gateway.api_keys, *read_api_keys(gateway.api_keys_file)]
    return settings.model_copy(update={"gateway": gateway.model_copy(update={"api_keys": keys})})


def read_api_keys(path: Path) -> list[ApiKey]:
    """The keys of an API keys file: a YAML list of ``{id, sha256}`` (an empty file: none).

    Raises:
        FileNotFoundError: ``path`` is missing.
        ValueError: an entry that is not a key, said in one line.
    """
    try:
        return _API_KEY_LIST.validate_python(yaml.safe_load(path.read_text()) or [])
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ValueError(f"{path}: entry {where}: {first['msg']}") from None


_API_KEY_LIST = TypeAdapter(list[ApiKey])
