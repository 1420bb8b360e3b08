"""write_outputs: every file in its place, or only those asked for."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from service.outputs import OUTPUT_FORMATS, POSING_STEP, OutputFormat, write_outputs
from service.outputs.meshes import OPENCV_TO_Y_UP, mesh_path
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


def test_the_posing_pass_reports_its_progress(
    tmp_path: Path, video_result: VideoResult, video_path: Path, pose: MeshVertices
) -> None:
    """In the frames with someone in them, preview or not."""

    def reports(
        formats: list[OutputFormat], video: VideoResult = video_result
    ) -> dict[str, list[tuple[int, int]]]:
        told: dict[str, list[tuple[int, int]]] = {}
        write_outputs(video, video_path, tmp_path / "_".join(formats), pose,
                      focal_length=FOCAL_LENGTH, formats=formats,
                      progress=lambda step, done, total: told.setdefault(step, []).append(
                          (done, total)))  # fmt: skip
        return told

    second = dataclasses.replace(video_result, tracks=video_result.tracks[1:])
    seen = len(second.tracks[0])
    assert seen < video_result.frame_count  # frames nobody is in
    for formats in (["json", "preview", "obj"], ["npz", "ply"]):
        assert reports(formats, second) == {
            POSING_STEP: [(done, seen) for done in range(1, seen + 1)]
        }
    assert reports(["json", "glb"]) == {}  # nothing to pose


def test_every_person_frame_is_posed_once_for_every_file(
    tmp_path: Path, video_result: VideoResult, video_path: Path, pose: MeshVertices
) -> None:
    """One pass poses each person-frame alone, once, for the NPZ, the meshes and the preview:
    the NPZ's vertices are the PLY files' float32 bytes."""
    asked: list[int] = []

    def counting_pose(rotmat: np.ndarray, betas: np.ndarray) -> np.ndarray:
        asked.append(len(rotmat))
        return pose(rotmat, betas)

    write_outputs(video_result, video_path, tmp_path, counting_pose, focal_length=FOCAL_LENGTH)
    assert asked == [1] * sum(len(track) for track in video_result.tracks)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "meshes", "preview.mp4", "result.json", "result.npz", "tracks"]  # fmt: skip
    track = video_result.tracks[1]
    with np.load(tmp_path / "result.npz") as npz:
        vertices = npz[track_prefix(track.track_id) + VERTICES_KEY]
    for row, frame_id in enumerate(track.frame_ids.tolist()):
        ply = (tmp_path / "meshes" / mesh_path(track.track_id, frame_id, "ply")).read_bytes()
        start = ply.index(b"end_header\n") + len(b"end_header\n")
        in_file = np.frombuffer(ply, dtype="<f4", count=vertices[row].size, offset=start)
        np.testing.assert_array_equal(in_file.reshape(vertices[row].shape),
                                      vertices[row] * OPENCV_TO_Y_UP)  # fmt: skip


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


def test_people_past_the_videos_last_frame_are_still_posed(
    tmp_path: Path, video_result: VideoResult, video_path: Path, pose: MeshVertices
) -> None:
    """A second decoding that ends early (the preview's) leaves no file short of rows."""
    late = video_result.tracks[1]
    past = dataclasses.replace(late, frame_ids=late.frame_ids + video_result.frame_count)
    video = dataclasses.replace(video_result, tracks=(video_result.tracks[0], past))
    written = write_outputs(video, video_path, tmp_path, pose, focal_length=FOCAL_LENGTH,
                            formats=["npz", "ply", "preview"])  # fmt: skip
    assert len(written["ply"]) == sum(len(track) for track in video.tracks)
    with np.load(tmp_path / "result.npz") as npz:
        assert len(npz[track_prefix(past.track_id) + VERTICES_KEY]) == len(past)
