"""`meshcast bench service`, small, on the tests' Redis under the test's prefix: on a gateway it
starts itself, and on one already running (``--url``): its report's shape, no errors, the jobs'
memory counted and then freed, and nothing of it left in Redis. Bad arguments are one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from meshcast.commands.demo import CLIP
from service.gateway import create_app
from service.gateway.frame_meshes import load_frame_body
from service.outputs import RESULT_NPZ
from service.outputs.result_files import write_result_npz
from service.settings import UploadLimits
from tests.meshcast.test_run import meshcast, one_error_line
from tests.support.gateway import ALICE, SECRETS, gateway_settings, serve
from tests.support.redis_server import free_loopback_port
from tests.support.video_results import make_video_result
from tests.support.worker_process import write_settings
from training.body import load_body_model

UPLOADS, CONCURRENCY, POLLS = 5, 5, 20
STALLED = 5  # slow uploads held open while its own gateway is measured
KINDS = {"upload": UPLOADS, "poll": POLLS, "delete": UPLOADS}
SMALL = ("--uploads", str(UPLOADS), "--concurrency", str(CONCURRENCY), "--polls", str(POLLS))
STATS = {"count", "ok", "p50_ms", "p99_ms", "max_ms", "seconds", "requests_per_s"}


@pytest.fixture(scope="module")
def bundle(service_bundle_dir: Path) -> Path:
    """The gateway poses the meshes it serves with a bundle's body: it loads one to start."""
    return service_bundle_dir


@pytest.fixture
def settings(redis_url: str, redis_prefix: str, bundle: Path) -> dict[str, Any]:
    """The service's settings on the tests' Redis, under the test's prefix."""
    return {"redis_url": redis_url, "bundle": str(bundle), "store": {"prefix": redis_prefix}}


@pytest.fixture
def config(settings: dict[str, Any], tmp_path: Path) -> Path:
    return write_settings(tmp_path / "meshcast.yaml", settings)


def bench(*args: str) -> dict[str, Any]:
    """`meshcast bench service` run small; its JSON report."""
    result = meshcast("bench", "service", *SMALL, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def check_report(report: dict[str, Any]) -> None:
    """Every request answered and measured, the jobs' memory counted, then freed."""
    assert (report["uploads"], report["concurrency"], report["polls"]) == (
        UPLOADS, CONCURRENCY, POLLS,
    )  # fmt: skip
    assert report["video"] == {"path": str(CLIP), "bytes": CLIP.stat().st_size}
    assert set(report["requests"]) == set(KINDS)
    for kind, count in KINDS.items():
        stats = report["requests"][kind]
        assert set(stats) == STATS | ({"upload_mb_per_s"} if kind == "upload" else set())
        assert stats["count"] == stats["ok"] == count
        assert 0 < stats["p50_ms"] <= stats["p99_ms"] <= stats["max_ms"]
        assert stats["requests_per_s"] > 0
    assert report["requests"]["upload"]["upload_mb_per_s"] > 0
    assert report["errors"] == {"count": 0, "by_status": {}}
    memory = report["redis_memory"]
    assert memory["jobs"] == UPLOADS
    # Queued jobs hold their uploads: at least the video's bytes each.
    assert memory["per_job_bytes"] >= CLIP.stat().st_size
    assert memory["before_delete_bytes"] >= UPLOADS * CLIP.stat().st_size
    assert memory["after_delete_bytes"] == 0
    assert set(report["machine"]) == {"processor", "cpus", "python"}


def test_on_its_own_gateway_it_measures_and_leaves_nothing(
    config: Path, redis_prefix: str, redis_client: redis.Redis
) -> None:
    report = bench("--config", str(config), "--stalled", str(STALLED))
    check_report(report)
    # The slow uploads held their places to the end (the read timeout is 30 s), none a job.
    assert report["stalled"] == {"held": STALLED, "still_held_at_end": STALLED}
    assert report["gateway"]["started_here"] is True
    cleanup = report["cleanup"]
    assert cleanup["prefix"].startswith(f"{redis_prefix}bench-")  # its own, beneath the test's
    assert cleanup["keys_left"] == 0
    # Nothing under the test's prefix either: no job, queued task, binding or rate counter.
    assert list(redis_client.scan_iter(match=f"{redis_prefix}*")) == []


def test_with_a_result_it_times_the_gateways_mesh_downloads(
    config: Path, redis_prefix: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """One job finished with a result: each download poses a frame's mesh in the gateway."""
    result = write_result_npz(make_video_result(load_body_model("standin")), tmp_path / RESULT_NPZ)
    report = bench("--config", str(config), "--result", str(tmp_path), "--downloads", "4")
    assert (report["result"], report["downloads"]) == (str(result), 4)
    for kind in ("download_obj", "download_ply"):
        stats = report["requests"][kind]
        assert stats["count"] == stats["ok"] == 4
        assert 0 < stats["p50_ms"] <= stats["max_ms"]
    assert report["errors"] == {"count": 0, "by_status": {}}
    assert report["redis_memory"]["after_delete_bytes"] == 0  # the result went with its job
    assert list(redis_client.scan_iter(match=f"{redis_prefix}*")) == []


def test_on_a_running_gateway_it_deletes_its_jobs(
    redis_url: str, redis_prefix: str, redis_client: redis.Redis, bundle: Path, tmp_path: Path
) -> None:
    """``--url``: the gateway's own settings, the key one of its; its jobs are deleted (no
    worker listens under the test's prefix: they stay queued until then)."""
    # The tests' keys; the upload's chunks as deployed, not the gateway tests' tiny ones; room
    # for the bench's uploads at once and jobs, which one key's caps and quotas would refuse.
    upload = {"chunk_bytes": UploadLimits().chunk_bytes, "max_concurrent_per_key": 32}
    quotas = {"max_active_jobs": 100}
    served = gateway_settings(redis_url, redis_prefix, upload=upload, quotas=quotas).model_copy(
        update={"bundle": bundle}
    )
    config = write_settings(tmp_path / "gateway.yaml", served.model_dump(mode="json"))
    with serve(create_app(served, load_frame_body(bundle))) as url:
        report = bench("--config", str(config), "--url", url, "--key", SECRETS[ALICE])
    check_report(report)
    assert report["gateway"] == {"url": url, "started_here": False}
    assert report["stalled"] == {"held": 0, "still_held_at_end": 0}
    assert report["cleanup"] == {"prefix": redis_prefix, "keys_left": None}
    assert list(redis_client.scan_iter(match=f"{redis_prefix}job:*")) == []


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--uploads", "0"), "--uploads must be at least 1"),
        (("--polls", "-1"), "--polls must be at least 0"),
        (("--stalled", "-1"), "--stalled must be at least 0"),
        (("--video", "no-such-video.mp4"), "no such video file"),
        (("--url", "http://127.0.0.1:9"), "needs the gateway's API key"),
        (("--url", "ftp://gateway", "--key", "k"), "is not an http:// or https:// URL"),
        (("--key", "k"), "--key is for a gateway of --url"),
        (("--result", "no-such-result.npz"), "no such result.npz"),
        (
            ("--url", "http://127.0.0.1:9", "--key", "k", "--result", "r.npz"),
            "--result finishes a job itself",
        ),
    ],
)
def test_bad_arguments_are_one_line(config: Path, args: tuple[str, ...], says: str) -> None:
    line = one_error_line(meshcast("bench", "service", "--config", str(config), *args))
    assert says in line


def test_no_redis_or_no_gateway_is_one_line(config: Path) -> None:
    unused_port = free_loopback_port()  # where nothing listens
    line = one_error_line(meshcast("bench", "service", "--config", str(config), "--redis-url",
                                   f"redis://127.0.0.1:{unused_port}/0"))  # fmt: skip
    assert "does not answer" in line
    line = one_error_line(meshcast("bench", "service", "--config", str(config), "--url",
                                   f"http://127.0.0.1:{unused_port}", "--key", "k"))  # fmt: skip
    assert "no gateway answers" in line


def test_a_gateway_that_cannot_start_is_one_line(settings: dict[str, Any], tmp_path: Path) -> None:
    config = write_settings(tmp_path / "meshcast.yaml", {**settings, "bundle": str(tmp_path)})
    line = one_error_line(meshcast("bench", "service", "--config", str(config), *SMALL))
    assert "the bench's gateway did not start" in line
