"""Redis for the tests: the machine's own on 127.0.0.1:6379 when it answers, else a private
``redis-server`` on a free loopback port (installed with apt when absent), stopped afterwards.
A private server may keep its data on disk (an append-only file), for a test that restarts it.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.support.debian_packages import installed_program

SHARED_HOST, SHARED_PORT = "127.0.0.1", 6379
START_TIMEOUT_S = 10.0


def answers_ping(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether a Redis server answers PING at host:port (plain RESP, no client library)."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """The path of ``redis-server``, installing Debian's package when it is missing."""
    return installed_program("redis-server", "redis-server")


@dataclass
class PrivateRedis:
    """A throwaway ``redis-server``: it keeps nothing on disk, unless ``persistent``: then every
    write goes to an append-only file, fsynced, and :meth:`restart` brings all of it back."""

    port: int
    process: subprocess.Popen[bytes]
    workdir: tempfile.TemporaryDirectory[str]
    persistent: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @classmethod
    def start(cls, persistent: bool = False) -> PrivateRedis:
        workdir = tempfile.TemporaryDirectory(prefix="meshcast-redis-")
        port = free_loopback_port()
        try:
            process = _serve(port, workdir.name, persistent)
        except RuntimeError:
            workdir.cleanup()
            raise
        return cls(port, process, workdir, persistent)

    def restart(self, down_s: float = 0.0) -> None:
        """Shut the server down (SIGTERM: it writes what it holds), stay down ``down_s``
        seconds, and start it again on the same port and folder."""
        self._terminate()
        time.sleep(down_s)
        self.process = _serve(self.port, self.workdir.name, self.persistent)

    def stop(self) -> None:
        self._terminate()
        self.workdir.cleanup()

    def _terminate(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=START_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _serve(port: int, folder: str, persistent: bool) -> subprocess.Popen[bytes]:
    """A redis-server on ``port`` with its files in ``folder``, once it answers PING."""
    append_only = ["--appendonly", "yes", "--appendfsync", "always"]
    disk = append_only if persistent else ["--appendonly", "no"]
    process = subprocess.Popen(
        [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         *disk, "--dir", folder, "--logfile", str(Path(folder) / "redis.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + START_TIMEOUT_S
    while not answers_ping("127.0.0.1", port):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"a private redis-server did not start on port {port}")
        time.sleep(0.05)
    return process


def delete_keys_with_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete the keys under ``prefix`` and nothing else (never FLUSHDB: Redis may be shared)."""
    deleted = 0
    for key in client.scan_iter(match=f"{prefix}*", count=500):
        deleted += int(client.delete(key))
    return deleted
