"""``meshcast worker`` as a process on the tests' Redis, fed as the gateway feeds it (a job in
the store, its task sent by name): a clip goes through with its progress published and every
file readable; bad uploads fail with the pipeline's code, once; a cancel stops a running job;
the soft time limit fails a job; and twenty jobs in a row leave the worker's memory where the
first left it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import trimesh
from pygltflib import GLTF2

from service.gateway.frame_meshes import frame_mesh, load_frame_body
from service.jobs import EventKind, JobOptions, JobRecord, JobState, ProgressEvent
from service.outputs import read_result_npz
from service.outputs.meshes import MESH_FORMATS
from service.outputs.result_files import VERTICES_KEY
from service.queue import QUEUE, broker_prefix
from service.worker.tasks import VIDEO_FILE
from tests.support.worker_process import (
    SHORT_FRAMES,
    Videos,
    WorkerService,
    process_rss_kib,
    worker_env,
    worker_pid,
)

MIN_TRACK = 8  # frames: the short clip's walkers are kept
STAGES = {"detect", "encoder", "temporal", "body", "outputs"}
SETTLE_TIMEOUT_S = 10.0
PING_TIMEOUT_S = 5.0  # generous: the machine is busy with the job
POLL_S = 0.05
UNACKED = "unacked"  # the broker's hash of messages taken and not acknowledged (kombu's name)
MEMORY_JOBS, MAX_MEMORY_GROWTH = 20, 0.10
# A worker whose jobs may run 1 s (the long clip takes about 3 s), killed only after 60 s.
SOFT_LIMIT_S, HARD_LIMIT_S = 1.0, 60.0
LIGHT = JobOptions(formats=["json", "npz", "glb"], min_track_length=MIN_TRACK)


@pytest.fixture(scope="module")
def service(make_service: Callable[..., WorkerService]) -> WorkerService:
    """One worker for the module's tests."""
    made = make_service()
    made.start_workers(1)
    return made


def download(service: WorkerService, job_id: str, folder: Path) -> dict[str, Path]:
    """Every published file of the job, read from the store into ``folder``."""
    paths = {}
    for name, size in service.store.list_files(job_id).items():
        stored = service.store.open_file(job_id, name)
        assert stored is not None
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(stored.read())
        assert path.stat().st_size == size
        paths[name] = path
    return paths


def no_message_left(service: WorkerService) -> bool:
    """Whether the broker holds no message: none queued, none taken and unacknowledged (a
    retry waiting for its time is one of those)."""
    client, prefix = service.client, broker_prefix(service.settings)
    return client.llen(prefix + QUEUE) == 0 and client.hlen(prefix + UNACKED) == 0


def wait_for(condition: Callable[[], bool], timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
    """Whether ``condition`` came true within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(POLL_S)
    return False


def test_a_clip_goes_through_and_every_file_opens(
    service: WorkerService, videos: Videos, tmp_path: Path
) -> None:
    job_id = service.create_job(videos.short, JobOptions(min_track_length=MIN_TRACK))
    events = service.store.events(job_id)
    assert next(events) == ProgressEvent(kind=EventKind.STATE, job_id=job_id, state="queued")
    service.send(job_id)
    heard = []
    for event in events:
        if event is not None:
            heard.append(event)
    record = service.wait(job_id)
    assert record.state is JobState.SUCCEEDED, (record, service.logs())
    assert record.attempts == 1
    assert {"detect", "keypoints", "regress", "outputs"} <= set(record.timings)

    progress = [event for event in heard if event.kind is EventKind.PROGRESS]
    assert {event.stage for event in progress} >= STAGES
    assert all(0 <= event.done <= event.total for event in progress)
    assert heard[0].state is JobState.RUNNING
    assert heard[-1].state is JobState.SUCCEEDED

    files = download(service, job_id, tmp_path)
    document = json.loads(files["result.json"].read_text())
    result = read_result_npz(files["result.npz"])
    assert result.frame_count == SHORT_FRAMES
    assert len(document["tracks"]) == len(result.tracks) > 0
    with np.load(files["result.npz"]) as npz:  # parameters alone: no posed vertices
        assert not [key for key in npz.files if key.endswith(f"/{VERTICES_KEY}")]
    body = load_frame_body(service.settings.bundle)  # as the gateway poses a frame's mesh
    for track in result.tracks:
        gltf = GLTF2().load(str(files[f"tracks/track_{track.track_id:03d}.glb"]))
        assert len(gltf.skins[0].joints) == 24
        assert len(gltf.animations) == 1
        frame = int(track.frame_ids[0])
        npz = service.store.open_file(job_id, "result.npz")
        assert npz is not None
        for suffix in MESH_FORMATS:  # posed from result.npz on download, as the gateway does
            data = frame_mesh(npz, track.track_id, frame, suffix, camera_frame=False, body=body)
            mesh = trimesh.load(io.BytesIO(data), file_type=suffix, process=False)
            assert mesh.vertices.shape == track.rest_vertices.shape
            assert np.isfinite(mesh.vertices).all()
    assert not any(name.startswith("meshes/") for name in files)  # never stored
    with av.open(str(files["preview.mp4"])) as container:
        assert sum(1 for _ in container.decode(video=0)) == SHORT_FRAMES
    # What the job no longer needs is gone: its upload, its lock, its entry among the running.
    assert service.store.video_size(job_id) == 0
    assert service.running_once_settled() == {}
    assert not service.store.is_stale(record)
    # The queue is the service's own: its broker keys are under the service's prefix.
    assert service.client.exists(f"{broker_prefix(service.settings)}_kombu.binding.{QUEUE}")


@pytest.mark.parametrize(
    ("video", "code"),
    [("text", "not_a_video"), ("cut", "truncated"), ("nobody", "no_people")],
)
def test_a_bad_upload_fails_with_the_pipelines_code_once(
    service: WorkerService, videos: Videos, video: str, code: str
) -> None:
    options = JobOptions(formats=["json"], min_track_length=MIN_TRACK)
    record = service.wait(service.submit(getattr(videos, video), options))
    assert (record.state, record.error_code) == (JobState.FAILED, code), service.logs()
    assert record.error_message is not None
    assert len(record.error_message.split()) > 5  # a sentence, for a person
    assert VIDEO_FILE not in record.error_message.split()  # the worker's copy is no news to them
    assert record.attempts == 1
    assert service.store.list_files(record.id) == {}
    # Not retried: no message of it is left, queued or waiting for a retry's time.
    assert wait_for(lambda: no_message_left(service)), service.logs()
    latest = service.store.get(record.id)
    assert latest is not None
    assert latest.attempts == 1


def test_a_cancel_stops_a_running_job(service: WorkerService, videos: Videos) -> None:
    job_id = service.submit(videos.long, LIGHT)
    service.wait_running(job_id)
    assert service.store.request_cancel(job_id) is JobState.RUNNING
    record = service.wait(job_id)
    assert record.state is JobState.CANCELLED, service.logs()
    assert service.store.list_files(job_id) == {}


def test_the_worker_answers_its_liveness_ping_mid_job(
    service: WorkerService, videos: Videos
) -> None:
    (worker,) = service.workers
    job_id = service.submit(videos.long, LIGHT)
    service.wait_running(job_id)
    # The main process answers while its pool runs the job: a liveness probe does not kill a
    # busy worker.
    assert service.app.control.ping(destination=[worker.name], timeout=PING_TIMEOUT_S)
    record = service.store.get(job_id)
    assert record is not None
    assert record.state is JobState.RUNNING
    assert service.wait(job_id).state is JobState.SUCCEEDED, service.logs()

    def ping(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "meshcast", "worker", "ping", "--config",
             str(service.settings_file), "--hostname", name, "--timeout", str(PING_TIMEOUT_S)],
            capture_output=True, text=True, env=worker_env(), timeout=60,
        )  # fmt: skip

    answered = ping(worker.name)
    assert (answered.returncode, answered.stdout) == (0, f"{worker.name}: pong\n")
    gone = ping(f"gone@{worker.name.split('@')[1]}")
    assert gone.returncode == 1
    assert gone.stderr.count("\n") == 1
    assert "did not answer" in gone.stderr


def test_a_job_past_the_soft_time_limit_fails_with_time_limit(
    make_service: Callable[..., WorkerService], videos: Videos
) -> None:
    limited = make_service(soft_time_limit_s=SOFT_LIMIT_S, time_limit_s=HARD_LIMIT_S)
    limited.start_workers(1, "limited")
    record = limited.wait(limited.submit(videos.long, LIGHT))
    assert (record.state, record.error_code) == (JobState.FAILED, "time_limit"), limited.logs()
    assert record.error_message is not None
    assert record.attempts == 1
    assert limited.store.list_files(record.id) == {}


def run_one(service: WorkerService, video: Path) -> JobRecord:
    record = service.wait(service.submit(video, LIGHT))
    assert record.state is JobState.SUCCEEDED, (record, service.logs())
    return record


# A memory benchmark of about a minute (each job now runs the keypoint model): make test-slow.
@pytest.mark.slow
def test_memory_stays_flat_over_twenty_jobs(service: WorkerService, videos: Videos) -> None:
    first = run_one(service, videos.short)
    assert first.worker is not None
    pid = worker_pid(first.worker)
    after_first = process_rss_kib(pid)
    ids = [service.submit(videos.short, LIGHT) for _ in range(MEMORY_JOBS - 1)]
    records = [service.wait(job_id) for job_id in ids]
    assert all(record.state is JobState.SUCCEEDED for record in records), service.logs()
    assert {record.worker for record in records} == {first.worker}  # one process ran them all
    after_last = process_rss_kib(pid)
    assert after_last <= (1 + MAX_MEMORY_GROWTH) * after_first, (after_first, after_last)
