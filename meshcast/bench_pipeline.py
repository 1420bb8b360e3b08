"""``meshcast bench pipeline``'s measurement: one run of the pipeline (and, when asked, its
outputs) on a video, timed stage by stage."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

from service.bundle import Bundle, Sessions
from service.outputs import OutputFormat, write_outputs
from service.pipeline.body import BodyMeshes
from service.pipeline.run import PipelineConfig, process_video


def timed_pipeline(
    video: Path,
    bundle: Bundle,
    sessions: Sessions,
    config: PipelineConfig,
    out_dir: Path | None,
    formats: list[OutputFormat],
    npz_vertices: bool,
) -> dict[str, Any]:
    """Milliseconds a frame of each stage of one run on ``video`` (and of writing ``formats``
    into ``out_dir`` when given), what the first pass saw, and the process's peak memory so far.

    A stage's time runs from the end of the one before it to its own end: the first pass
    (decoding, the detector, the tracker and the keypoint model) is "detect", then the temporal
    network, the body's joints and the outputs; "frontend" times the detector and the keypoint
    model by their own clocks.
    """
    ends: dict[str, float] = {}

    def record(stage: str, done: int, total: int) -> None:
        ends[stage] = time.perf_counter()

    started = time.perf_counter()
    run = process_video(video, bundle, config, sessions=sessions, progress=record)
    if out_dir is not None:
        body = BodyMeshes(sessions.body, config.regression.batch_size)
        write_outputs(run.result, video, out_dir, body, focal_length=run.focal_length,
                      formats=formats, npz_vertices=npz_vertices)  # fmt: skip
        ends["outputs"] = time.perf_counter()
    frames = run.result.frame_count
    stages, previous = {}, started
    for stage, end in sorted(ends.items(), key=lambda item: item[1]):
        stages[stage] = round(1000 * (end - previous) / frames, 2)
        previous = end
    whole = previous - started
    person_frames = sum(len(track) for track in run.result.tracks)
    seen = run.people
    return {
        "bundle": bundle.manifest.recipe,
        "frames": frames,
        "size": [run.info.width, run.info.height],
        "detect_width": config.detector.hog.max_width,
        "detect_every": config.detector.every,
        "people": len(run.result.tracks),
        "person_frames": person_frames,
        "providers": {
            name: getattr(sessions, name).get_providers()[0]
            for name in ("detector", "keypoints", "temporal", "body")
        },
        "precision": config.precision,
        "person_frames_per_s": round(person_frames / max(whole, 1e-9), 1),
        "ms_per_frame": {**stages, "total": round(1000 * whole / frames, 2)},
        # The outputs' part of the whole, when they were written.
        "outputs_share": round(stages["outputs"] * frames / (1000 * whole), 3)
        if out_dir is not None
        else None,
        # The first pass's stages, each by its own clock: the detector a frame, the keypoint
        # model a frame and a person it looked at (both passes of a detected person).
        "frontend": {
            "detector": config.detector.kind,
            "searched_frames": seen.searched,
            "searched_for_motion": seen.moved,
            "detect_ms_per_frame": round(1000 * seen.detect / frames, 2),
            "keypoints_ms_per_frame": round(1000 * seen.keypoints / frames, 2),
            "keypoints_ms_per_person": round(1000 * seen.keypoints / max(seen.person_frames, 1), 2),
            "keypoint_people": seen.person_frames,
            "keypoint_crops": seen.passes,
        },
        # Linux reports ru_maxrss in KiB; the process's peak so far (every run before included).
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
