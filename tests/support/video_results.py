"""A small video result made by hand with a real body model, and a video it belongs to.

Two people in a 5-frame video: track 1 in frames 0–3, track 2 (farther) in frames 1, 2 and 4.
Joints come from the body model itself (torch), and so do the vertices the outputs pose
(:func:`torch_mesh_vertices`), so the outputs are checked against the real thing. Each track
keeps one β throughout: its rest body at the mean β is the body every frame was posed from.
The keypoint model's 33 landmarks sit on the nearest SMPL joints (:func:`landmark_joints`),
with random visibilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from service.pipeline.body import MeshVertices
from service.pipeline.landmarks import LANDMARK_NAMES
from service.pipeline.result import BodyTopology, TrackResult, VideoResult
from training.body import NUM_BETAS, SMPL_JOINT_NAMES, BodyModel

# An odd frame size: the preview has to pad it to what 4:2:0 video can hold.
WIDTH, HEIGHT = 97, 71
FPS = 10.0
FRAME_COUNT = 5
FOCAL_LENGTH = 100.0  # pixels
POSE_STD_RAD = 0.3  # joints bend this much at random
# Image y points down, the body's Y up: the body stands upright in the camera once turned by
# π about x (HMR's mean global orientation).
UPRIGHT = np.diag([1.0, -1.0, -1.0])
STEP_M = np.array([0.05, 0.0, 0.02])  # how far a person walks in a frame
# The input video's frames are plain grey, a shade lighter each frame.
FIRST_GREY, GREY_STEP = 40, 10
# Values carried through the files unchanged (the outputs compute nothing from them).
CROP_CAMERA = (0.9, 0.01, -0.02)  # s, tx, ty
FRAME_CAMERA = (0.3, 0.4, 0.1, -0.2)  # sx, sy, tx, ty
TRACK_SCORE = 0.9
NUM_JOINTS = len(SMPL_JOINT_NAMES)
# The SMPL joint a landmark sits on where SMPL has none of its name (after the side): the
# hand's points on the hand, the foot's on the ankle or foot, the face's on the head.
LANDMARK_STAND_INS = {"pinky": "hand", "index": "hand", "thumb": "hand", "heel": "ankle",
                      "foot_index": "foot"}  # fmt: skip
FACE_JOINT = "head"
HIPS = ("left_hip", "right_hip")  # the world landmarks' origin is their midpoint
SIDES = ("left", "right")
MIN_KEYPOINT_SCORE = 0.5  # the keypoint model's confidence, drawn at random above it


@dataclass(frozen=True)
class TrackSpec:
    track_id: int
    frame_ids: tuple[int, ...]
    start_m: tuple[float, float, float]  # translation in the first frame
    seed: int


TRACKS = (
    TrackSpec(track_id=1, frame_ids=(0, 1, 2, 3), start_m=(-0.3, 0.1, 3.0), seed=1),
    TrackSpec(track_id=2, frame_ids=(1, 2, 4), start_m=(0.4, 0.0, 4.5), seed=2),
)


def project(points: np.ndarray) -> np.ndarray:
    """Camera-frame points ``(..., 3)`` → pixels ``(..., 2)`` with the test's pinhole camera."""
    centre = np.array([WIDTH / 2.0, HEIGHT / 2.0])
    return FOCAL_LENGTH * points[..., :2] / points[..., 2:] + centre


def torch_mesh_vertices(body: BodyModel) -> MeshVertices:
    """The body model as the outputs' :data:`MeshVertices`: rotations and β → vertices."""

    def vertices(rotmat: np.ndarray, betas: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            posed = body(torch.as_tensor(rotmat).float(), torch.as_tensor(betas).float())
        return posed.vertices.numpy()

    return vertices


def landmark_joints() -> tuple[int, ...]:
    """For each of the 33 landmarks, the index of the SMPL joint it sits on."""
    joints = []
    for name in LANDMARK_NAMES:
        side, _, part = name.partition("_")
        if name in SMPL_JOINT_NAMES:
            joints.append(SMPL_JOINT_NAMES.index(name))
        elif side in SIDES and part in LANDMARK_STAND_INS:
            joints.append(SMPL_JOINT_NAMES.index(f"{side}_{LANDMARK_STAND_INS[part]}"))
        else:
            joints.append(SMPL_JOINT_NAMES.index(FACE_JOINT))
    return tuple(joints)


def make_track(body: BodyModel, spec: TrackSpec) -> TrackResult:
    """One track of random poses and one random shape, posed by ``body``."""
    rng = np.random.default_rng(spec.seed)
    frames = len(spec.frame_ids)
    axis_angle = rng.normal(0.0, POSE_STD_RAD, size=(frames * NUM_JOINTS, 3))
    rotmat = Rotation.from_rotvec(axis_angle).as_matrix().reshape(frames, NUM_JOINTS, 3, 3)
    rotmat[:, 0] = UPRIGHT @ rotmat[:, 0]
    pose = Rotation.from_matrix(rotmat.reshape(-1, 3, 3)).as_rotvec().reshape(frames, -1)
    betas = np.repeat(rng.normal(0.0, 1.0, size=(1, NUM_BETAS)), frames, axis=0)
    with torch.no_grad():
        posed = body(torch.from_numpy(rotmat).float(), torch.from_numpy(betas).float())
        rest_pose = torch.eye(3).expand(1, NUM_JOINTS, 3, 3)
        rest = body(rest_pose, torch.from_numpy(betas[:1]).float())
    steps = np.asarray(spec.frame_ids) - spec.frame_ids[0]
    translation = np.asarray(spec.start_m) + steps[:, None] * STEP_M  # (N, 3)
    joints3d = posed.joints.numpy()
    joints2d = project(joints3d + translation[:, None])
    boxes = np.concatenate([joints2d.min(axis=1), joints2d.max(axis=1)], axis=1)
    detected = np.ones(frames, dtype=bool)
    detected[-1] = False
    cam = np.tile(CROP_CAMERA, (frames, 1))
    orig_cam = np.tile(FRAME_CAMERA, (frames, 1))
    on_joints = list(landmark_joints())
    visibility = rng.uniform(size=(frames, len(LANDMARK_NAMES), 1))
    landmarks = np.concatenate([joints2d[:, on_joints], visibility], axis=-1)
    hips = joints3d[:, [SMPL_JOINT_NAMES.index(hip) for hip in HIPS]].mean(axis=1)
    world_landmarks = joints3d[:, on_joints] - hips[:, None]
    keypoint_score = rng.uniform(MIN_KEYPOINT_SCORE, 1.0, size=frames)
    return TrackResult(
        track_id=spec.track_id,
        frame_ids=np.asarray(spec.frame_ids, dtype=np.int64),
        boxes=boxes.astype(np.float32),
        detected=detected,
        score=TRACK_SCORE,
        pose=pose.astype(np.float32),
        rotmat=rotmat.astype(np.float32),
        betas=betas.astype(np.float32),
        cam=cam.astype(np.float32),
        orig_cam=orig_cam.astype(np.float32),
        translation=translation.astype(np.float32),
        joints3d=joints3d,
        joints2d=joints2d.astype(np.float32),
        rest_vertices=rest.vertices[0].numpy(),
        rest_joints=rest.joints[0].numpy(),
        landmarks=landmarks.astype(np.float32),
        world_landmarks=world_landmarks.astype(np.float32),
        keypoint_score=keypoint_score.astype(np.float32),
    )


def make_video_result(body: BodyModel) -> VideoResult:
    """The :data:`TRACKS` in a :data:`WIDTH` × :data:`HEIGHT` video of :data:`FRAME_COUNT`
    frames."""
    topology = BodyTopology(
        name=body.name,
        faces=body.faces.numpy(),
        parents=body.parents.numpy(),
        skinning_weights=body.lbs_weights.numpy(),
        joint_names=body.joint_names,
    )
    return VideoResult(
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        frame_count=FRAME_COUNT,
        body=topology,
        tracks=tuple(make_track(body, spec) for spec in TRACKS),
        bundle_recipe="spsnet_cpu",
        landmark_names=LANDMARK_NAMES,
    )


def write_grey_video(path: Path) -> Path:
    """A lossless video (raw BGR frames in AVI) of :data:`FRAME_COUNT` plain grey frames, a
    shade lighter each frame."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("rawvideo", rate=int(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "bgr24"
        for index in range(FRAME_COUNT):
            image = np.full((HEIGHT, WIDTH, 3), FIRST_GREY + GREY_STEP * index, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_stored_outputs(body: BodyModel, folder: Path) -> tuple[VideoResult, dict[str, Path]]:
    """A small synthetic result's files as a worker stores them (every stored format,
    result.npz without posed vertices), written under ``folder``: the result, and the files
    by their names in the store."""
    from service.jobs import JobOptions
    from service.outputs import write_outputs

    result = make_video_result(body)
    video = write_grey_video(folder / "input.avi")
    stored = folder / "stored"
    written = write_outputs(
        result,
        video,
        stored,
        torch_mesh_vertices(body),
        focal_length=FOCAL_LENGTH,
        formats=JobOptions().stored_formats,
        npz_vertices=False,
    )
    files = {
        path.relative_to(stored).as_posix(): path for paths in written.values() for path in paths
    }
    return result, files
