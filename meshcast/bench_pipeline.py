"""``meshcast bench pipeline``'s measurement: runs of the pipeline (and, when asked, its outputs)
on a video, timed stage by stage, one a detector schedule."""

from __future__ import annotations

import multiprocessing
import platform
import resource
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from service.bundle import Bundle, Sessions
from service.outputs import OutputFormat, write_outputs
from service.outputs.preview import (
    CODEC_OPTIONS,
    PIXEL_FORMAT,
    RATE_DENOMINATOR_LIMIT,
    preview_codec,
)
from service.pipeline.body import BodyMeshes
from service.pipeline.run import PipelineConfig, process_video
from service.pipeline.video import probe, read_frames


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


def bench_pipeline(
    video: Path,
    bundle: Bundle,
    sessions: Sessions,
    config: PipelineConfig,
    *,
    loops: int = 1,
    size: tuple[int, int] | None = None,
    detect_every: Sequence[int] = (),
    formats: list[OutputFormat] | None = None,
    npz_vertices: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """``meshcast bench pipeline``'s report: :func:`timed_pipeline` on ``video`` (played
    ``loops`` times over and scaled to ``size`` when asked, written first by a process of its
    own so that its memory is not counted), once for each of ``detect_every`` (``config``'s
    schedule when empty), writing ``formats`` when given.

    Returns:
        One run's figures, or with several schedules ``runs`` and each one's speed against the
        first (``speed_against_first``, by ``detect_every``).
    """
    warming = time.perf_counter()
    sessions.warm_up(bundle.manifest.window.length)  # as a worker does; on the CPU: nothing
    head = {
        "video": str(video),
        "loops": loops,
        "warm_up_s": round(time.perf_counter() - warming, 2),
    }
    machine = {"processor": platform.processor() or platform.machine(), "threads": threads}
    reports: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        source = video
        if loops > 1 or size is not None:
            source = Path(folder) / f"{video.stem}_x{loops}.mp4"
            spawn = multiprocessing.get_context("spawn")  # a fresh process: its memory apart
            with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                pool.submit(write_looped_video, video, source, loops, size).result()
        for every in detect_every or (config.detector.every,):
            detector = config.detector.model_copy(update={"every": every})
            timed = config.model_copy(update={"detector": detector})
            out_dir = Path(folder) / f"outputs_{len(reports)}" if formats is not None else None
            report = timed_pipeline(
                source, bundle, sessions, timed, out_dir, formats or [], npz_vertices
            )
            reports.append({**head, **report, "machine": machine})
    if len(reports) == 1:
        return reports[0]
    first = reports[0]["ms_per_frame"]["total"]
    speeds = {str(r["detect_every"]): round(first / r["ms_per_frame"]["total"], 3) for r in reports}
    return {"runs": reports, "speed_against_first": speeds}


def write_looped_video(
    source: Path, path: Path, loops: int, size: tuple[int, int] | None = None
) -> None:
    """Write ``source``'s frames ``loops`` times over to ``path``, resized to ``size``
    (width, height) if given: H.264 MP4 with the preview's encoder settings, at ``source``'s
    average frame rate, frames decoded and encoded one at a time."""
    info = probe(source)
    codec = preview_codec()
    with av.open(str(path), mode="w") as container:
        rate = Fraction(info.fps).limit_denominator(RATE_DENOMINATOR_LIMIT)
        stream = container.add_stream(codec, rate=rate, options=CODEC_OPTIONS[codec])
        stream.width, stream.height = size or (info.width, info.height)
        stream.pix_fmt = PIXEL_FORMAT
        written = 0
        for _ in range(loops):
            for frame in read_frames(source):
                image = frame.image if size is None else cv2.resize(frame.image, size)
                encoded = av.VideoFrame.from_ndarray(np.asarray(image, np.uint8), format="bgr24")
                encoded.pts = written
                container.mux(stream.encode(encoded))
                written += 1
        container.mux(stream.encode(None))
