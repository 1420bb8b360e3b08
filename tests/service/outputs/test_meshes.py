"""OBJ and PLY files of a track in a frame, read back with trimesh."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh

from service.outputs.meshes import (
    MESH_FORMATS,
    MeshFormat,
    mesh_path,
    track_frame_mesh,
    write_meshes,
)
from service.pipeline.result import VideoResult

OBJ_TOLERANCE_M = 1e-6


def load(data: bytes, fmt: MeshFormat) -> trimesh.Trimesh:
    """A mesh file's bytes as trimesh reads them, vertices in file order."""
    mesh = trimesh.load(io.BytesIO(data), file_type=fmt, process=False, maintain_order=True)
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


@pytest.mark.parametrize("fmt", MESH_FORMATS)
@pytest.mark.parametrize("camera_frame", [False, True])
def test_mesh_reads_back(video_result: VideoResult, fmt: MeshFormat, camera_frame: bool) -> None:
    track = video_result.tracks[1]
    row, frame_id = 2, 4
    data = track_frame_mesh(
        track, video_result.body.faces, frame_id, fmt, camera_frame=camera_frame
    )
    mesh = load(data, fmt)
    expected = track.vertices[row] + (track.translation[row] if camera_frame else 0.0)
    if fmt == "ply":
        np.testing.assert_array_equal(mesh.vertices, expected)  # float32 bytes
    else:
        np.testing.assert_allclose(mesh.vertices, expected, rtol=0, atol=OBJ_TOLERANCE_M)
    np.testing.assert_array_equal(mesh.faces, video_result.body.faces)


def test_ply_is_binary_little_endian(video_result: VideoResult) -> None:
    track = video_result.tracks[0]
    data = track_frame_mesh(track, video_result.body.faces, 0, "ply")
    header = data[: data.index(b"end_header\n")].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    assert f"element vertex {track.vertices.shape[1]}" in header


def test_a_frame_outside_the_track_is_a_key_error(video_result: VideoResult) -> None:
    with pytest.raises(KeyError, match="track 2 has no frame 3"):
        track_frame_mesh(video_result.tracks[1], video_result.body.faces, 3, "obj")


def test_writer_lays_files_out_by_track_and_frame(
    tmp_path: Path, video_result: VideoResult
) -> None:
    written = write_meshes(video_result, tmp_path)
    frames = sum(len(track) for track in video_result.tracks)
    assert len(written) == frames * len(MESH_FORMATS)
    assert (tmp_path / "track_002" / "frame_000004.ply").is_file()
    assert mesh_path(2, 4, "obj") == Path("track_002/frame_000004.obj")
    mesh = trimesh.load(tmp_path / mesh_path(1, 3, "obj"), process=False, maintain_order=True)
    np.testing.assert_allclose(
        mesh.vertices, video_result.tracks[0].vertices[3], rtol=0, atol=OBJ_TOLERANCE_M
    )
