"""The gateway for tests: a real uvicorn server on a loopback port, in a thread; a raw HTTP/1.1
client for what httpx cannot show (a response that comes while the body is still being sent);
server-sent events read from a response; small videos made with PyAV."""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import httpx
import numpy as np
import redis
import uvicorn
from fastapi import FastAPI

from service.gateway.server import server_config
from service.jobs import JobStore
from service.queue import QUEUE, broker_prefix
from service.settings import ServiceSettings, hash_api_key

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_S = 0.02
LOOPBACK = "127.0.0.1"
RESPONSE_TIMEOUT_S = 30.0
COMMAND_POLL_S = 0.1
COMMAND_START_TIMEOUT_S = 60.0  # the command's imports and bundle, on a busy machine

# The test videos: small, and an odd number of frames at a round rate.
VIDEO_WIDTH, VIDEO_HEIGHT = 96, 64
VIDEO_FPS = 25
VIDEO_FRAMES = 5


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn in a thread on a free loopback port; yields its base URL.

    The socket is bound here and handed to uvicorn, so no other process can take the port
    between choosing and binding it.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    port = sock.getsockname()[1]
    config = server_config(
        app,
        app.state.gateway.settings.gateway,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(POLL_S)
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
        sock.close()


@contextmanager
def gateway_command(
    config: Path, port: int, tmp: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``meshcast gateway`` on the settings file ``config`` in a process of its own (with the
    temp folder ``tmp``, if given), once it answers on ``port``; stopped afterwards."""
    command = [sys.executable, "-m", "meshcast", "gateway", "--config", str(config),
               "--port", str(port)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", **({"TMPDIR": str(tmp)} if tmp else {})}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE) as process:
        try:
            deadline = time.monotonic() + COMMAND_START_TIMEOUT_S
            while True:
                assert process.poll() is None, process.stderr and process.stderr.read()
                assert time.monotonic() < deadline, "meshcast gateway did not start"
                try:
                    httpx.get(f"http://{LOOPBACK}:{port}/healthz")
                    break
                except httpx.ConnectError:
                    time.sleep(COMMAND_POLL_S)
            yield process
        finally:
            if process.poll() is None:
                process.terminate()
            process.wait()


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]  # names lower-cased
    body: bytes
    sent_bytes: int  # of the body, before the response came (or the server closed)
    body_complete: bool  # whether every chunk of the body was sent


def raw_request(
    base_url: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Iterable[bytes] = (),
    *,
    chunked: bool = False,
) -> RawResponse:
    """Send a request over a plain socket, a body chunk at a time, and stop sending as soon as
    the server answers or closes; then read its answer.

    httpx (like most clients) sends the whole body before it reads the answer, so it cannot
    show an answer that comes early, nor tell how much of the body was sent by then.
    """
    host, port = base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=RESPONSE_TIMEOUT_S) as conn:
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        if chunked:
            head.append("Transfer-Encoding: chunked")
        conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        sent, complete = 0, True
        for chunk in body:
            readable, _, _ = select.select([conn], [], [], 0)
            if readable:
                complete = False
                break
            framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n" if chunked else chunk
            try:
                conn.sendall(framed)
            except (BrokenPipeError, ConnectionResetError):
                complete = False
                break
            sent += len(chunk)
        else:
            if chunked:
                conn.sendall(b"0\r\n\r\n")
        response = http.client.HTTPResponse(conn)
        response.begin()
        data = response.read()
        return RawResponse(
            status=response.status,
            headers={name.lower(): value for name, value in response.getheaders()},
            body=data,
            sent_bytes=sent,
            body_complete=complete,
        )


def video_form(video: bytes, boundary: str = "meshcast-test-boundary") -> tuple[bytes, str]:
    """A ``POST /jobs`` body holding ``video`` alone, and its Content-Type."""
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="video"; '
            f'filename="clip.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        ).encode()
        + video
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


class StalledUpload:
    """A slow client: an upload that sends its headers (a Content-Length of the whole form) and
    the first ``sent_bytes`` of its body, then nothing, while holding its connection."""

    def __init__(self, base_url: str, who: str, video: bytes, sent_bytes: int) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        body, content_type = video_form(video)
        self.conn = socket.create_connection((host, int(port)), timeout=RESPONSE_TIMEOUT_S)
        head = [
            "POST /jobs HTTP/1.1", f"Host: {host}:{port}",
            f"Authorization: Bearer {SECRETS[who]}", f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]  # fmt: skip
        self.conn.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body[:sent_bytes])

    def answered(self, timeout_s: float) -> bool:
        """Whether the server answered (or closed) within ``timeout_s``."""
        readable, _, _ = select.select([self.conn], [], [], timeout_s)
        return bool(readable)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        """The server's answer: status, headers (lower-cased names), body."""
        response = http.client.HTTPResponse(self.conn)
        response.begin()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, response.read()

    def close(self) -> None:
        self.conn.close()


def write_test_video(
    path: Path,
    frames: int = VIDEO_FRAMES,
    size: tuple[int, int] = (VIDEO_WIDTH, VIDEO_HEIGHT),
    codec: str = "libx264",
    noise: bool = False,
) -> Path:
    """A small video (H.264 in MP4 by default, its index written last, as muxers do) of grey
    frames getting lighter, or of random pixels (``noise``: large frames, so that a cut in the
    middle of the file lands among them)."""
    width, height = size
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=VIDEO_FPS)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(frames):
            if noise:
                image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            else:
                image = np.full((height, width, 3), 40 + 10 * index, dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(stream.encode(None))
    return path


ALICE, BOB = "alice", "bob"
SECRETS = {ALICE: "alice-secret-key-0123456789", BOB: "bob-secret-key-9876543210"}
CLIENT_TIMEOUT_S = 60.0
# Small upload chunks: even a test video goes to Redis in several appends. The store's are
# larger (result files of megabytes are staged and read by them) and still split those files.
UPLOAD_CHUNK_BYTES = 256
STORE_CHUNK_BYTES = 64 * 1024


@dataclass(frozen=True)
class RunningGateway:
    """A gateway serving on ``url``, and the test's view of the same Redis."""

    url: str
    settings: ServiceSettings
    store: JobStore  # the test's own client, as a worker would have
    redis: redis.Redis
    prefix: str
    metrics_url: str | None = None  # when the settings serve metrics (metrics_port)

    def client(self, who: str | None = ALICE, **headers: str) -> httpx.Client:
        """An HTTP client with ``who``'s key (``None``: no key)."""
        if who is not None:
            headers = {"Authorization": f"Bearer {SECRETS[who]}", **headers}
        return httpx.Client(base_url=self.url, headers=headers, timeout=CLIENT_TIMEOUT_S)

    def keys(self) -> list[str]:
        """Every key under the test's prefix."""
        return sorted(key.decode() for key in self.redis.scan_iter(match=f"{self.prefix}*"))

    def leftovers(self) -> list[str]:
        """The keys a refused upload must not leave: all but the keys' rate counters."""
        return [key for key in self.keys() if not key.startswith(f"{self.prefix}rate:")]

    def job_keys(self, job_id: str) -> list[str]:
        """The keys of one job (its hash tag names them all)."""
        return [key for key in self.keys() if f"{{{job_id}}}" in key]

    def queued_tasks(self) -> list[bytes]:
        """The messages waiting in the Celery queue."""
        queue = broker_prefix(self.settings) + QUEUE
        return [bytes(message) for message in self.redis.lrange(queue, 0, -1)]


MakeGateway = Callable[..., RunningGateway]


def gateway_settings(
    redis_url: str, prefix: str, store: dict[str, Any] | None = None, **gateway: Any
) -> ServiceSettings:
    """Settings for a test: its prefix, two keys, small chunks; ``store`` and ``gateway``
    override the store's and the gateway's settings."""
    upload = {"chunk_bytes": UPLOAD_CHUNK_BYTES, **gateway.pop("upload", {})}
    return ServiceSettings.model_validate(
        {
            "redis_url": redis_url,
            "store": {"prefix": prefix, "chunk_bytes": STORE_CHUNK_BYTES, **(store or {})},
            "gateway": {
                "api_keys": [
                    {"id": who, "sha256": hash_api_key(key)} for who, key in SECRETS.items()
                ],
                "upload": upload,
                **gateway,
            },
        }
    )


def upload(
    client: httpx.Client,
    content: bytes,
    *,
    filename: str = "clip.mp4",
    content_type: str = "video/mp4",
    data: dict[str, Any] | None = None,
) -> httpx.Response:
    """POST /jobs with ``content`` as the video part (and ``data`` as fields, before it)."""
    return client.post("/jobs", data=data or {}, files={"video": (filename, content, content_type)})


def sse_events(response: httpx.Response) -> Iterator[tuple[str, dict[str, object]]]:
    """The stream's events as (event name, data), skipping comments (keep-alives)."""
    name, data = "", ""
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            data = line.removeprefix("data: ")
        elif line == "" and data:
            yield name, json.loads(data)
            name, data = "", ""


def error_of(response: httpx.Response) -> tuple[int, str]:
    """The status and error code of an error response (its shape checked)."""
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]  # a sentence, never empty
    return response.status_code, body["error"]["code"]
