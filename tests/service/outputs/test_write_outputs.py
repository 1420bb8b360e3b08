"""write_outputs: every file in its place, or only those asked for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.outputs import OUTPUT_FORMATS, write_outputs
from service.outputs.result_files import VERTICES_KEY, track_prefix
from service.pipeline.body import MeshVertices
from service.pipeline.result import VideoResult
from tests.support.video_results import FOCAL_LENGTH

LAYOUT = {
    "json": ["result.json"],
    "npz": ["result.npz"],
    "glb": ["tracks/track_001.glb", "tracks/track_002.glb"],
    "preview": ["preview.mp4"],
}


def test_writes_every_format(
    tmp_path: Path, video_result: VideoResult, video_path: Path, pose: MeshVertices
) -> None:
    written = write_outputs(video_result, video_path, tmp_path, pose, focal_length=FOCAL_LENGTH)
    assert set(written) == set(OUTPUT_FORMATS)
    for fmt, names in LAYOUT.items():
        assert written[fmt] == [tmp_path / name for name in names]
    frames = sum(len(track) for track in video_result.tracks)
    for fmt in ("obj", "ply"):
        assert len(written[fmt]) == frames
        assert (tmp_path / "meshes" / "track_002" / f"frame_000004.{fmt}") in written[fmt]
    assert all(path.is_file() for paths in written.values() for path in paths)


def test_the_long_steps_report_their_progress(
    tmp_path: Path, video_result: VideoResult, video_path: Path, pose: MeshVertices
) -> None:
    reports: dict[str, list[tuple[int, int]]] = {}
    write_outputs(video_result, video_path, tmp_path, pose, focal_length=FOCAL_LENGTH,
                  progress=lambda step, done, total: reports.setdefault(step, []).append(
                      (done, total)))  # fmt: skip
    person_frames = sum(len(track) for track in video_result.tracks)
    assert set(reports) == {"meshes", "preview"}
    assert reports["meshes"] == [(done, person_frames) for done in range(1, person_frames + 1)]
    frames = video_result.frame_count
    assert reports["preview"] == [(done, frames) for done in range(1, frames + 1)]


def test_writes_only_the_formats_asked_for(
    tmp_path: Path, video_result: VideoResult, video_path: Path, pose: MeshVertices
) -> None:
    written = write_outputs(
        video_result,
        video_path,
        tmp_path,
        pose,
        focal_length=FOCAL_LENGTH,
        formats=["json", "ply"],
    )
    assert set(written) == {"json", "ply"}
    assert not (tmp_path / "preview.mp4").exists()
    assert not list((tmp_path / "meshes").rglob("*.obj"))


def test_npz_vertices_only_when_asked(
    tmp_path: Path, video_result: VideoResult, video_path: Path, pose: MeshVertices
) -> None:
    def keys(npz_vertices: bool) -> set[str]:
        out = tmp_path / str(npz_vertices)
        write_outputs(video_result, video_path, out, pose, focal_length=FOCAL_LENGTH,
                      formats=["npz"], npz_vertices=npz_vertices)  # fmt: skip
        with np.load(out / "result.npz") as npz:
            return set(npz.files)

    vertices = {track_prefix(track.track_id) + VERTICES_KEY for track in video_result.tracks}
    assert vertices <= keys(npz_vertices=True)  # meshcast run's default, as VIBE's output
    assert not vertices & keys(npz_vertices=False)  # the service's


def test_an_unknown_format_is_refused(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    with pytest.raises(ValueError, match="unknown output formats"):
        write_outputs(
            video_result,
            tmp_path / "unused.mp4",
            tmp_path,
            pose,
            focal_length=FOCAL_LENGTH,
            formats=["fbx"],  # type: ignore[list-item]
        )
