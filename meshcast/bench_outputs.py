"""``meshcast bench outputs``: writing a result's files, and what posing its bodies costs.

Two comparisons, each interleaved in one process so that whatever else loads the machine hits
both sides alike:

- **spinning**: :func:`~service.outputs.write_outputs` of every format asked, with the body
  graph's session as the pipeline opens it (its threads sleep after a run) and with
  onnxruntime's default (its threads spin after a run, taking the cores from the drawing and
  the file writing that follow), run after run in alternating order;
- **posing**: each person-frame posed alone (as the outputs and the gateway pose it, see
  :mod:`service.outputs.meshes`) and each frame's people posed in one batch, frame by frame.

Reported: seconds of each run, milliseconds a person-frame (median over the runs), and the
ratios.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from service.bundle import Bundle, open_session
from service.outputs import OutputFormat, write_outputs
from service.outputs.posed_frames import rows_by_frame
from service.outputs.result_files import read_result_npz
from service.pipeline.body import BodyMeshes
from service.pipeline.result import VideoResult
from service.pipeline.run import PipelineConfig


def bench_outputs(
    result_npz: Path,
    video: Path,
    bundle: Bundle,
    formats: Collection[OutputFormat],
    *,
    repeats: int,
) -> dict[str, Any]:
    """Time writing ``result_npz``'s outputs and posing its people (see the module).

    Args:
        result_npz: ``meshcast run``'s result of ``video``.
        video: the video it was made from (the preview decodes it).
        bundle: the bundle whose body poses the result (the one that made it).
        formats: the outputs written.
        repeats: runs of each side of the spinning comparison.
    """
    result = read_result_npz(result_npz)
    config = PipelineConfig()
    focal_length = config.regression.frame_focal_length(result.width, result.height)
    body_graph = bundle.graph_path("body", config.precision)
    bodies = {
        "asleep": BodyMeshes(open_session(body_graph, spinning=False)),
        "spinning": BodyMeshes(open_session(body_graph, spinning=True)),
    }
    person_frames = sum(len(track) for track in result.tracks)
    seconds: dict[str, list[float]] = {name: [] for name in bodies}
    with tempfile.TemporaryDirectory() as folder:
        for repeat in range(repeats):
            order = list(bodies) if repeat % 2 == 0 else list(reversed(bodies))
            for name in order:
                out_dir = Path(folder) / f"{name}_{repeat}"
                started = time.perf_counter()
                write_outputs(result, video, out_dir, bodies[name], focal_length=focal_length,
                              formats=formats)  # fmt: skip
                seconds[name].append(time.perf_counter() - started)
    outputs = {
        name: {
            "seconds": [round(value, 2) for value in values],
            "ms_per_person_frame": round(1000 * statistics.median(values) / person_frames, 2),
        }
        for name, values in seconds.items()
    }
    return {
        "result": str(result_npz),
        "frames": result.frame_count,
        "person_frames": person_frames,
        "formats": list(formats),
        "outputs": outputs,
        "spinning_over_asleep": round(
            statistics.median(seconds["spinning"]) / statistics.median(seconds["asleep"]), 3
        ),
        "posing": _posing(result, bodies["asleep"]),
    }


def _posing(result: VideoResult, body: BodyMeshes) -> dict[str, Any]:
    """Milliseconds a person-frame posing each alone and each frame's people in one batch,
    frame by frame, the two interleaved."""
    alone, batched = 0.0, 0.0
    for frame_id, rows in sorted(rows_by_frame(result.tracks).items()):
        rotmat = np.stack([track.rotmat[row] for track, row in rows])  # (K, 24, 3, 3)
        betas = np.stack([track.betas[row] for track, row in rows])  # (K, 10)
        sides = ["alone", "batched"] if frame_id % 2 == 0 else ["batched", "alone"]
        for side in sides:
            started = time.perf_counter()
            if side == "alone":
                for person in range(len(rows)):
                    body(rotmat[person : person + 1], betas[person : person + 1])
                alone += time.perf_counter() - started
            else:
                body(rotmat, betas)
                batched += time.perf_counter() - started
    person_frames = sum(len(track) for track in result.tracks)
    return {
        "alone_ms_per_person_frame": round(1000 * alone / person_frames, 3),
        "batched_ms_per_person_frame": round(1000 * batched / person_frames, 3),
        "alone_over_batched": round(alone / max(batched, 1e-9), 3),
    }
