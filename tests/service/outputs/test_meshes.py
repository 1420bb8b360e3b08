"""OBJ and PLY files of a track in a frame, posed by the body model and read back with
trimesh."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import trimesh

from service.outputs.meshes import (
    MESH_FORMATS,
    OPENCV_TO_Y_UP,
    MeshFormat,
    mesh_path,
    obj_bytes,
    track_frame_mesh,
    write_meshes,
)
from service.pipeline.body import MeshVertices
from service.pipeline.result import TrackResult, VideoResult

OBJ_TOLERANCE_M = 1e-6


def posed(pose: MeshVertices, track: TrackResult, row: int) -> np.ndarray:
    """``(V, 3)``: a track's body in one of its rows, as the body model poses it."""
    return pose(track.rotmat[row : row + 1], track.betas[row : row + 1])[0]


def load(data: bytes, fmt: MeshFormat) -> trimesh.Trimesh:
    """A mesh file's bytes as trimesh reads them, vertices in file order."""
    mesh = trimesh.load(io.BytesIO(data), file_type=fmt, process=False, maintain_order=True)
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


@pytest.mark.parametrize("fmt", MESH_FORMATS)
@pytest.mark.parametrize("camera_frame", [False, True])
def test_mesh_reads_back(
    video_result: VideoResult, pose: MeshVertices, fmt: MeshFormat, camera_frame: bool
) -> None:
    track = video_result.tracks[1]
    row, frame_id = 2, 4
    data = track_frame_mesh(
        track, video_result.body.faces, frame_id, fmt, pose, camera_frame=camera_frame
    )
    mesh = load(data, fmt)
    if camera_frame:  # OpenCV's axes, where the camera saw the person
        expected = posed(pose, track, row) + track.translation[row]
    else:  # the body frame turned to y up: x kept, y and z negated
        expected = posed(pose, track, row) * OPENCV_TO_Y_UP
    if fmt == "ply":
        np.testing.assert_array_equal(mesh.vertices, expected)  # float32 bytes
    else:
        np.testing.assert_allclose(mesh.vertices, expected, rtol=0, atol=OBJ_TOLERANCE_M)
    np.testing.assert_array_equal(mesh.faces, video_result.body.faces)


def test_body_frame_meshes_stand_upright_in_a_y_up_viewer(
    video_result: VideoResult, pose: MeshVertices
) -> None:
    """A person standing in the video (head up the image: lower y in OpenCV's axes) has the
    head above the feet in the file, by y, and faces +z as the GLB's does."""
    track = video_result.tracks[0]
    row = 0
    camera = posed(pose, track, row)
    mesh = load(track_frame_mesh(track, video_result.body.faces, int(track.frame_ids[row]),
                                 "ply", pose), "ply")  # fmt: skip
    top_in_camera = int(np.argmin(camera[:, 1]))  # highest on the image
    assert mesh.vertices[top_in_camera, 1] == mesh.vertices[:, 1].max()
    # the winding survives a turn: the surface's normals still point out of the body
    assert mesh.is_winding_consistent
    assert mesh.volume > 0


def test_ply_is_binary_little_endian(video_result: VideoResult, pose: MeshVertices) -> None:
    track = video_result.tracks[0]
    data = track_frame_mesh(track, video_result.body.faces, 0, "ply", pose)
    header = data[: data.index(b"end_header\n")].decode("ascii").splitlines()
    assert header[:2] == ["ply", "format binary_little_endian 1.0"]
    assert f"element vertex {len(track.rest_vertices)}" in header


def test_obj_coordinates_are_printed_as_python_prints_them() -> None:
    # whole micrometres within ±1,000 m: the words' lookup; farther: Python's own formatting
    rng = np.random.default_rng(0)
    near = np.round(rng.normal(0.0, 3.0, (500, 3)), 6)
    near[:3] = [[0.0, -999.999999, 999.999999], [-1.0, 10.5, -0.000001], [0.0000004, 7.0, 12.0]]
    far = np.array([[1234.5, -0.25, 3.0], [-5000.0, 0.0, 1.0]])
    faces = np.array([[0, 1, 2]])
    for points in (near, far):
        lines = obj_bytes(points, faces).decode("ascii").splitlines()
        expected = [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in points.tolist()]
        assert lines[: len(points)] == expected
        assert lines[len(points) :] == ["f 1 2 3"]
    # a coordinate that rounds to zero is printed without a sign
    assert obj_bytes(np.array([[-0.0000004, 0.0, 0.0]]), faces).startswith(b"v 0.000000 ")
    with pytest.raises(ValueError, match="finite"):
        obj_bytes(np.array([[np.nan, 0.0, 0.0]]), faces)


def test_a_frame_outside_the_track_is_a_key_error(
    video_result: VideoResult, pose: MeshVertices
) -> None:
    with pytest.raises(KeyError, match="track 2 has no frame 3"):
        track_frame_mesh(video_result.tracks[1], video_result.body.faces, 3, "obj", pose)


def test_writer_lays_files_out_by_track_and_frame(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    written = write_meshes(video_result, tmp_path, pose)
    frames = sum(len(track) for track in video_result.tracks)
    assert set(written) == set(MESH_FORMATS)
    assert all(len(paths) == frames for paths in written.values())
    assert (tmp_path / "track_002" / "frame_000004.ply").is_file()
    assert mesh_path(2, 4, "obj") == Path("track_002/frame_000004.obj")
    for track in video_result.tracks:
        for row, frame_id in enumerate(track.frame_ids.tolist()):
            path = tmp_path / mesh_path(track.track_id, frame_id, "ply")
            mesh = trimesh.load(path, process=False, maintain_order=True)
            np.testing.assert_array_equal(mesh.vertices, posed(pose, track, row) * OPENCV_TO_Y_UP)


def test_the_writer_poses_each_frame_alone(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    """As the gateway does on download: a body graph's float32 roundings depend on the batch's
    size, so only frames posed alone in both make the same bytes."""
    asked: list[int] = []

    def counting_pose(rotmat: np.ndarray, betas: np.ndarray) -> np.ndarray:
        asked.append(len(rotmat))
        return pose(rotmat, betas)

    write_meshes(video_result, tmp_path, counting_pose)
    assert asked == [1] * sum(len(track) for track in video_result.tracks)


def test_a_file_the_writer_cannot_make_is_raised_on_leaving(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    """The files are written by a process of their own: what it raises reaches the caller."""
    track = video_result.tracks[0]
    frame_id = int(track.frame_ids[0])
    (tmp_path / mesh_path(track.track_id, frame_id, "obj")).mkdir(parents=True)  # in its way
    with pytest.raises(IsADirectoryError, match=f"frame_{frame_id:06d}.obj"):
        write_meshes(video_result, tmp_path, pose)
