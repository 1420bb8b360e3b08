"""The task in this process on a real Redis: a store that fails (a connection error) is tried
again in the task itself, no sooner than the job's lock lapses, and once the retries are spent
the job is failed with ``store_unavailable``, not left queued or running. Each attempt's time
counts against its owner. A long job's stored result grows by its parameters alone (no posed
vertices), so ten minutes of two people fit the store."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import redis

from service.bundle import CPU_PROVIDER, NUM_BETAS, NUM_JOINTS, Bundle, load_bundle
from service.jobs import JobOptions, JobState, JobStore, StoreConfig
from service.outputs import RESULT_NPZ
from service.outputs.result_files import NPZ_DTYPES, PER_FRAME_KEYS
from service.pipeline.landmarks import LANDMARK_NAMES, NUM_LANDMARKS
from service.pipeline.result import TrackResult, VideoResult
from service.pipeline.run import body_topology
from service.settings import ServiceSettings, UploadLimits, WorkerSettings
from service.worker import WorkerRuntime, tasks
from tests.support.jobs import upload_job

LOCK_TTL_S, BACKOFF_S, MAX_RETRIES = 3.0, 0.2, 2
# The long job: two people through every frame of a video, as long as the test can afford; the
# store must hold them through the longest video an upload may be.
PEOPLE, SHORT_FRAMES, LONG_FRAMES = 2, 1, 600
# Meshes asked for: the worker stores result.npz for them (the gateway poses them from it).
MESH_JOB = JobOptions(formats=["obj", "ply"])
VIDEO_SIZE, FOCAL_LENGTH = (640, 480), 500.0  # pixels: what the faked pipeline run reports


@pytest.fixture
def worker(redis_client: redis.Redis, redis_prefix: str, bundle: Path) -> WorkerRuntime:
    """A worker runtime on the test's Redis, as :func:`~service.worker.runtime` makes one."""
    settings = ServiceSettings(
        bundle=bundle,
        store=StoreConfig(prefix=redis_prefix, lock_ttl_s=LOCK_TTL_S),
        worker=WorkerSettings(threads=1, max_retries=MAX_RETRIES, retry_backoff_s=BACKOFF_S),
    )
    loaded = load_bundle(bundle)
    return WorkerRuntime(
        settings=settings,
        bundle=loaded,
        providers=[CPU_PROVIDER],
        sessions=loaded.sessions("fp32", [CPU_PROVIDER], 1),
        store=JobStore(redis_client, settings.store),
        worker_id="host:1:ab",
        pid=0,
    )


def failing_start(
    worker: WorkerRuntime, monkeypatch: pytest.MonkeyPatch, failures: int | None
) -> list[float]:
    """Make the store's start() fail as an unreachable Redis does, ``failures`` times (None:
    always), and the task's sleeps return at once; returns the sleeps asked for."""
    start = worker.store.start
    calls = 0

    def unreachable(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if failures is None or calls <= failures:
            raise redis.ConnectionError("Error 111 connecting to Redis. Connection refused.")
        return start(*args)

    monkeypatch.setattr(worker.store, "start", unreachable)
    slept: list[float] = []
    monkeypatch.setattr(tasks.time, "sleep", slept.append)
    monkeypatch.setattr(tasks, "runtime", lambda: worker)
    return slept


def queued_job(store: JobStore, options: JobOptions | None = None) -> str:
    return upload_job(store, "owner", b"video", options).id


def test_a_failing_store_is_tried_again_in_the_task_once_the_lock_can_lapse(
    worker: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not sent again through the broker (the same Redis, maybe down): retried right here."""
    fake_pipeline(worker, monkeypatch, SHORT_FRAMES)
    slept = failing_start(worker, monkeypatch, failures=1)
    job_id = queued_job(worker.store, MESH_JOB)
    assert tasks.process_job(job_id) == "succeeded"
    assert len(slept) == 1
    assert slept[0] >= LOCK_TTL_S
    record = worker.store.get(job_id)
    assert record is not None
    assert (record.state, record.attempts) == (JobState.SUCCEEDED, 1)


def test_spent_retries_fail_the_job(worker: WorkerRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    slept = failing_start(worker, monkeypatch, failures=None)
    job_id = queued_job(worker.store)
    assert tasks.process_job(job_id) == "failed"
    assert len(slept) == MAX_RETRIES
    assert slept == sorted(slept)  # backing off
    record = worker.store.get(job_id)
    assert record is not None
    assert (record.state, record.error_code) == (JobState.FAILED, "store_unavailable")
    assert record.error_message


def test_an_attempts_time_counts_against_its_owner(
    worker: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_pipeline(worker, monkeypatch, SHORT_FRAMES)
    before = worker.store.owner_usage("owner").worker_seconds
    assert tasks.run_job(worker, queued_job(worker.store, MESH_JOB)) == "succeeded"
    assert worker.store.owner_usage("owner").worker_seconds > before


def random_track(bundle: Bundle, track_id: int, frames: int, seed: int) -> TrackResult:
    """A track of ``frames`` frames of random numbers in the pipeline's shapes and types (the
    stored file's size depends on nothing else)."""
    rng = np.random.default_rng(seed)

    def floats(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32)

    return TrackResult(
        track_id=track_id,
        frame_ids=np.arange(frames, dtype=np.int64),
        boxes=floats(frames, 4),
        detected=np.ones(frames, dtype=bool),
        score=float(rng.uniform()),
        pose=floats(frames, NUM_JOINTS * 3),
        rotmat=floats(frames, NUM_JOINTS, 3, 3),
        betas=floats(frames, NUM_BETAS),
        cam=floats(frames, 3),
        orig_cam=floats(frames, 4),
        translation=floats(frames, 3),
        joints3d=floats(frames, NUM_JOINTS, 3),
        joints2d=floats(frames, NUM_JOINTS, 2),
        rest_vertices=floats(bundle.manifest.body.num_vertices, 3),
        rest_joints=floats(NUM_JOINTS, 3),
        landmarks=floats(frames, NUM_LANDMARKS, 3),
        world_landmarks=floats(frames, NUM_LANDMARKS, 3),
        keypoint_score=floats(frames),
    )


def fake_pipeline(
    worker: WorkerRuntime, monkeypatch: pytest.MonkeyPatch, frames: int
) -> tuple[TrackResult, ...]:
    """Make the worker's pipeline find :data:`PEOPLE` random people through ``frames`` frames;
    returns them."""
    width, height = VIDEO_SIZE
    tracks = tuple(random_track(worker.bundle, person, frames, person) for person in range(PEOPLE))
    result = VideoResult(width=width, height=height, fps=30.0, frame_count=frames,
                         body=body_topology(worker.bundle), tracks=tracks,
                         bundle_recipe=worker.bundle.manifest.recipe,
                         landmark_names=LANDMARK_NAMES)  # fmt: skip
    run = SimpleNamespace(result=result, focal_length=FOCAL_LENGTH, seconds={})
    monkeypatch.setattr(tasks, "process_video", lambda *_, **__: run)
    return tracks


def stored_result_bytes(
    worker: WorkerRuntime, monkeypatch: pytest.MonkeyPatch, frames: int
) -> tuple[int, TrackResult]:
    """The size of result.npz that the worker stores for a job of :data:`PEOPLE` people through
    ``frames`` frames (the pipeline faked: it returns them), and one of its tracks."""
    tracks = fake_pipeline(worker, monkeypatch, frames)
    job_id = queued_job(worker.store, MESH_JOB)
    assert tasks.run_job(worker, job_id) == "succeeded"
    files = worker.store.list_files(job_id)
    assert set(files) == {RESULT_NPZ}
    return files[RESULT_NPZ], tracks[0]


def test_a_long_jobs_stored_result_grows_by_its_parameters_alone(
    worker: WorkerRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    short, _ = stored_result_bytes(worker, monkeypatch, SHORT_FRAMES)
    long, track = stored_result_bytes(worker, monkeypatch, LONG_FRAMES)
    per_person_frame = (long - short) / (PEOPLE * (LONG_FRAMES - SHORT_FRAMES))
    # What one person-frame's parameters take in result.npz (2,549 bytes; its posed vertices
    # would add 12 bytes a vertex: 164,616 for the stand-in body).
    parameters = sum(
        np.dtype(NPZ_DTYPES.get(key, np.float32)).itemsize
        * math.prod(np.shape(getattr(track, field))[1:])
        for key, field in PER_FRAME_KEYS.items()
    )
    assert per_person_frame <= parameters
    # Two people through the longest video an upload may be fit the store.
    longest = PEOPLE * UploadLimits().max_frames
    assert short + longest * per_person_frame < worker.settings.store.max_result_bytes


@pytest.mark.parametrize("keypoints", [False, True])
def test_the_jobs_preview_keypoints_option_reaches_the_preview(
    worker: WorkerRuntime, monkeypatch: pytest.MonkeyPatch, keypoints: bool
) -> None:
    fake_pipeline(worker, monkeypatch, SHORT_FRAMES)
    asked: dict[str, Any] = {}

    def write_outputs(*_: object, **options: Any) -> dict[str, list[Path]]:
        asked.update(options)
        return {}

    monkeypatch.setattr(tasks, "write_outputs", write_outputs)
    options = JobOptions(formats=["preview"], preview_keypoints=keypoints)
    assert tasks.run_job(worker, queued_job(worker.store, options)) == "succeeded"
    assert asked["preview_keypoints"] is keypoints
