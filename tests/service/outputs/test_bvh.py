"""A track's BVH read back by a BVH library (bvhio): the body's skeleton with its rest offsets,
a frame a video frame at its rate, and the result's rotations and root positions, in the GLB's
y-up axes."""

from __future__ import annotations

from pathlib import Path

import bvhio
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from service.outputs import write_outputs
from service.outputs.bvh import write_track_bvh
from service.outputs.gltf import OPENCV_TO_GLTF
from service.pipeline.body import MeshVertices
from service.pipeline.result import VideoResult
from tests.support.video_results import FOCAL_LENGTH

MAX_ANGLE_RAD = 1e-4  # issue 18: rotations read back within this
MAX_POSITION_M = 1e-5


def angle_between(first: np.ndarray, second: np.ndarray) -> float:
    """The angle of the rotation that takes ``first`` to ``second`` (3 × 3), in radians."""
    return float(Rotation.from_matrix(first.T @ second).magnitude())


@pytest.fixture
def read_back(video_result: VideoResult, tmp_path: Path) -> tuple[VideoResult, bvhio.BvhContainer]:
    track = video_result.tracks[1]
    path = write_track_bvh(track, video_result.body, video_result.fps, tmp_path / "track.bvh")
    return video_result, bvhio.readAsBvh(str(path))


def test_the_skeleton_is_the_bodys_with_its_rest_offsets(read_back) -> None:
    video, bvh = read_back
    track = video.tracks[1]
    joints = {joint.Name: joint for joint, _, _ in bvh.Root.layout()}
    assert set(joints) == set(video.body.joint_names)
    assert len(joints) == len(video.body.parents)
    for index, name in enumerate(video.body.joint_names):
        parent = int(video.body.parents[index])
        expected = track.rest_joints[index] - track.rest_joints[parent] if parent >= 0 else 0.0
        np.testing.assert_allclose(np.array(joints[name].Offset), expected, atol=1e-6)
        children = [child.Name for child in joints[name].Children]
        assert children == [
            video.body.joint_names[child] for child in np.flatnonzero(video.body.parents == index)
        ]


def test_every_frame_at_the_videos_rate(read_back) -> None:
    """The test's track is seen in frames 1, 2 and 4: BVH's frames are evenly spaced, so frame
    3 holds frame 2's pose."""
    video, bvh = read_back
    track = video.tracks[1]
    assert track.frame_ids.tolist() == [1, 2, 4]
    assert bvh.FrameCount == 4
    assert bvh.FrameTime == pytest.approx(1.0 / video.fps, abs=1e-7)
    held, before = bvh.Root.Children[0].Keyframes[2], bvh.Root.Children[0].Keyframes[1]
    assert held.Rotation == before.Rotation


def test_rotations_and_root_positions_match_the_result(read_back) -> None:
    video, bvh = read_back
    track = video.tracks[1]
    joints = {joint.Name: joint for joint, _, _ in bvh.Root.layout()}
    for row, frame_id in enumerate(track.frame_ids.tolist()):
        frame = frame_id - int(track.frame_ids[0])  # BVH's frame of this row
        for index, name in enumerate(video.body.joint_names):
            quaternion = joints[name].Keyframes[frame].Rotation  # glm: w, x, y, z
            read = Rotation.from_quat([quaternion.x, quaternion.y, quaternion.z, quaternion.w])
            expected = track.rotmat[row, index].astype(np.float64)
            if index == 0:  # the root turns the body into the camera's frame, then to y up
                expected = OPENCV_TO_GLTF @ expected
            assert angle_between(expected, read.as_matrix()) < MAX_ANGLE_RAD, (row, name)
        root = np.array(bvh.Root.Keyframes[frame].Position)
        where = OPENCV_TO_GLTF @ (track.rest_joints[0] + track.translation[row])
        np.testing.assert_allclose(root, where, atol=MAX_POSITION_M)


def test_write_outputs_writes_one_bvh_a_track(
    video_result: VideoResult, video_path: Path, pose: MeshVertices, tmp_path: Path
) -> None:
    written = write_outputs(video_result, video_path, tmp_path, pose, focal_length=FOCAL_LENGTH,
                            formats=["bvh"])  # fmt: skip
    assert written == {
        "bvh": [tmp_path / "tracks" / f"track_{t.track_id:03d}.bvh" for t in video_result.tracks]
    }
    assert all(bvhio.readAsBvh(str(path)).FrameCount > 0 for path in written["bvh"])
