"""``meshcast bench preview``: the preview's frames drawn with the body's whole mesh and with
the levels of detail the preview uses (:mod:`service.render.simplify`), side by side.

Frame by frame, both drawings of the same people over the same frame, in alternating order, so
that whatever else loads the machine hits both alike. Reported: milliseconds a frame for each
(median and mean), the ratio, and what the detail costs the picture: the intersection over union
of the pixels the two drawings cover (the people's outlines), and among the pixels either
covers, the share whose colour differs by more than a codec's noise (facets shaded otherwise).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from service.bundle import Bundle
from service.outputs.posed_frames import pose_rows, rows_by_frame
from service.outputs.preview import (
    MAX_CELL_PX,
    MESH_ALPHA,
    detail_levels,
    draw_people,
    image_camera,
)
from service.outputs.result_files import read_result_npz
from service.pipeline.body import BodyMeshes
from service.pipeline.run import PipelineConfig
from service.pipeline.video import read_frames

# A pixel "differs" between the two drawings beyond this (0-255, any channel): the preview's
# H.264 moves colours about this much anyway.
COLOR_NOISE = 16


def bench_preview(
    result_npz: Path,
    video: Path,
    bundle: Bundle,
    *,
    max_frames: int | None,
    max_cell_px: float | None = None,
) -> dict[str, Any]:
    """Time the preview's drawing of ``video``'s frames with the whole mesh and with levels of
    detail, interleaved (the people posed beforehand, once for both).

    Args:
        result_npz: ``meshcast run``'s result of ``video``.
        video: the video it was made from.
        bundle: the bundle whose body poses the result (the one that made it).
        max_frames: frames to draw (all when None).
        max_cell_px: the levels' largest cell on the image (default: the preview's).
    """
    result = read_result_npz(result_npz)
    config = PipelineConfig()
    sessions = bundle.sessions(config.precision)
    body = BodyMeshes(sessions.body, config.regression.batch_size)
    people_by_frame = rows_by_frame(result.tracks)
    # The focal length `meshcast run` assumed: the result does not keep it, the settings make it.
    focal_length = config.regression.frame_focal_length(result.width, result.height)
    camera = image_camera(result.width, result.height, focal_length)
    drawings = {
        "whole_mesh": detail_levels(result, max_cell_px=0.0),
        "levels": detail_levels(result, max_cell_px=max_cell_px or MAX_CELL_PX),
    }
    seconds: dict[str, list[float]] = {name: [] for name in drawings}
    differing, covered, both_cover = 0, 0, 0
    frames = 0
    for frame in read_frames(video):
        if max_frames is not None and frames >= max_frames:
            break
        people = pose_rows(body, people_by_frame.get(frame.index, []))  # posed once for both
        images: dict[str, np.ndarray] = {}
        order = list(drawings) if frames % 2 == 0 else list(reversed(drawings))
        for name in order:
            started = time.perf_counter()
            images[name] = draw_people(frame.image, people, camera, drawings[name], MESH_ALPHA)
            seconds[name].append(time.perf_counter() - started)
        whole, levels = ((image != frame.image).any(axis=2) for image in images.values())
        either = whole | levels
        both_cover += int((whole & levels).sum())
        gap = np.abs(images["whole_mesh"].astype(np.int16) - images["levels"]).max(axis=2)
        covered += int(either.sum())
        differing += int((either & (gap > COLOR_NOISE)).sum())
        frames += 1
    summary = {
        name: {
            "ms_per_frame_median": round(1000 * statistics.median(values), 2),
            "ms_per_frame_mean": round(1000 * statistics.fmean(values), 2),
        }
        for name, values in seconds.items()
    }
    return {
        "video": str(video),
        "max_cell_px": max_cell_px or MAX_CELL_PX,
        "frames": frames,
        "person_frames": sum(len(people_by_frame.get(i, [])) for i in range(frames)),
        **summary,
        "speedup": round(sum(seconds["whole_mesh"]) / max(sum(seconds["levels"]), 1e-9), 2),
        "coverage_iou": round(both_cover / max(covered, 1), 4),
        "differing_pixel_share": round(differing / max(covered, 1), 4),
    }
