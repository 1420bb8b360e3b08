"""The worker's pure parts and its start-up: which onnxruntime providers a device gets, a job's
options as the pipeline's settings, and ``meshcast worker`` refusing a bad set-up in one line
before a Celery worker starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from service.bundle import CPU_PROVIDER, CUDA_PROVIDER
from service.jobs import JobOptions
from service.settings import Device, WorkerSettings, load_settings
from service.worker import choose_providers, pipeline_config
from tests.support.worker_process import REPO, worker_env, write_settings

CLI_TIMEOUT_S = 120


@pytest.mark.parametrize(
    ("device", "available", "chosen"),
    [
        ("auto", [CUDA_PROVIDER, CPU_PROVIDER], [CUDA_PROVIDER, CPU_PROVIDER]),
        ("auto", [CPU_PROVIDER], [CPU_PROVIDER]),
        ("cuda", [CUDA_PROVIDER, CPU_PROVIDER], [CUDA_PROVIDER, CPU_PROVIDER]),
        ("cpu", [CUDA_PROVIDER, CPU_PROVIDER], [CPU_PROVIDER]),
        ("cpu", [CPU_PROVIDER], [CPU_PROVIDER]),
    ],
)
def test_cuda_when_present_and_allowed_else_the_cpu(
    device: Device, available: list[str], chosen: list[str]
) -> None:
    assert choose_providers(device, available) == chosen


def test_cuda_asked_for_but_absent_is_an_error() -> None:
    with pytest.raises(ValueError, match="no CUDA provider"):
        choose_providers("cuda", [CPU_PROVIDER])


def test_the_device_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHCAST_DEVICE", "cpu")
    device = load_settings().worker.device
    assert choose_providers(device, [CUDA_PROVIDER, CPU_PROVIDER]) == [CPU_PROVIDER]


def test_the_bundle_comes_from_the_environment_for_workers_and_gateway(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = write_settings(tmp_path / "settings.yaml", {"bundle": "bundles/other"})
    monkeypatch.delenv("MESHCAST_BUNDLE", raising=False)
    assert load_settings(settings).bundle == Path("bundles/other")
    monkeypatch.setenv("MESHCAST_BUNDLE", str(tmp_path / "bundle"))
    assert load_settings(settings).bundle == tmp_path / "bundle"


def test_a_jobs_options_become_the_pipelines_settings() -> None:
    fp32, fp16 = WorkerSettings(precision="fp32"), WorkerSettings(precision="fp16")
    plain = pipeline_config(JobOptions(), fp32)
    assert plain.regression.smoothing is None
    assert plain.tracker.min_length == pipeline_config(JobOptions(), fp16).tracker.min_length
    assert plain.nobody_stop_s == fp32.nobody_stop_s
    chosen = pipeline_config(JobOptions(smooth=True, min_track_length=5), fp16)
    assert chosen.regression.smoothing is not None
    assert chosen.tracker.min_length == 5
    assert chosen.precision == "fp16"
    assert pipeline_config(JobOptions(), WorkerSettings(nobody_stop_s=None)).nobody_stop_s is None
    assert plain.detector.every == 1  # the pipeline's default: every frame searched
    assert pipeline_config(JobOptions(), WorkerSettings(detect_every=2)).detector.every == 2


def meshcast_worker(settings: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshcast", "worker", "--config", str(settings)],
        capture_output=True, text=True, cwd=REPO, env=worker_env() | env,
        timeout=CLI_TIMEOUT_S,
    )  # fmt: skip


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "ready" not in result.stdout + result.stderr  # no Celery worker was started
    return lines[0]


def test_a_missing_bundle_stops_the_worker_before_it_starts(tmp_path: Path) -> None:
    missing = tmp_path / "no-bundle"
    settings = write_settings(tmp_path / "settings.yaml", {"bundle": str(missing)})
    line = one_error_line(meshcast_worker(settings))
    assert str(missing) in line
    assert "bundle" in line


def test_cuda_without_cuda_stops_the_worker_before_it_starts(tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "settings.yaml", {})
    line = one_error_line(meshcast_worker(settings, MESHCAST_DEVICE="cuda"))
    assert "CUDA" in line


def test_bad_settings_are_one_line(tmp_path: Path) -> None:
    settings = write_settings(tmp_path / "settings.yaml", {"worker": {"max_retries": -1}})
    line = one_error_line(meshcast_worker(settings))
    assert "worker.max_retries" in line


def test_a_pool_process_has_the_start_timeout_of_the_settings(tmp_path: Path) -> None:
    from service.worker.app import worker_app

    written = write_settings(tmp_path / "s.yaml", {"worker": {"start_timeout_s": 42}})
    assert worker_app(load_settings(written)).conf.worker_proc_alive_timeout == 42
