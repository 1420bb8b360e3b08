"""Synthetic videos with exact ground truth, written as a VIBE-style dataset file.

:func:`generate_dataset` renders ``num_videos`` random scenes (:mod:`training.synth.scene`)
with the z-buffer rasteriser and writes, under ``out_dir``::

    synth_{split}_db.pt                         the dataset file (one row per person-frame)
    {split}/videos/video003.mp4                 the video (OpenCV mp4v)
    {split}/videos/video003.json                its camera: intrinsics, per-frame extrinsics
    {split}/frames/video003/000012.jpg          frame 12
    {split}/masks/video003/p1/000012.png        person 1's visible mask in frame 12 (0/255)

Dataset fields (:mod:`training.data.dataset_file`, paths relative to ``out_dir``):

- ``vid_name``: the track, ``video003_p1``; a person who leaves the frame and comes back
  starts a new track ``video003_p1_1``, so every track is contiguous in ``frame_id``.
- ``frame_id`` (int), ``img_name``, ``mask_name``, ``valid`` (1: the ground truth is exact).
- ``joints2D (N, 49, 3)``: SPIN's 49 joints projected into frame pixels (integers are pixel
  centres); confidence 1 when the joint is in front of the camera, inside the frame, and the
  pixel nearest to it shows this person (not another person or an occluder; a body part of
  the same person in front of the joint still counts as visible), else 0.
- ``joints3D (N, 49, 4)``: the same joints in metres in the camera frame (x right, y down,
  z forward), validity 1.
- ``pose (N, 72)``: SMPL axis-angle with the global orientation in the camera frame, i.e. what
  the network sees; ``shape (N, 10)``.
- ``bbox (N, 4)``: ``(cx, cy, w, h)`` in pixels of the projected full (unoccluded) body,
  the box of its projected vertices, not clipped to the frame.

A person-frame is kept when the person's box is at least :data:`MIN_PERSON_HEIGHT_FRACTION` of
the frame height and at least :data:`MIN_IN_FRAME_FRACTION` of its area lies in the frame.
Video ``i`` of a split depends only on ``(seed, split, i)``; the same arguments give the same
bytes in every file.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from scipy.spatial.transform import Rotation

from meshcast.progress import progress_bar
from training.body import load_body_model
from training.body.model import BodyModel
from training.data.dataset_file import write_dataset_file
from training.synth.backgrounds import background_window
from training.synth.rasterize import Mesh, rasterize
from training.synth.scene import (
    Camera,
    Person,
    Scene,
    background_shift,
    face_parts,
    sample_scene,
)

VIDEO_FPS = 30.0
MIN_PERSON_HEIGHT_FRACTION = 0.15  # smaller people give crops of a few pixels' detail
MIN_IN_FRAME_FRACTION = 0.4  # of the person's box area; less and the crop is mostly padding
JPEG_QUALITY = 90
# Frames per body-model call: bounds the memory of the skinning (B × V × 4 × 4 transforms).
BODY_BATCH = 64
JOINT_SET = "spin49"
VIDEO_CODEC = "mp4v"


@dataclass(frozen=True)
class SynthSummary:
    """What :func:`generate_dataset` wrote."""

    dataset_path: Path
    videos: int
    frames: int
    person_frames: int  # rows of the dataset file
    tracks: int
    seconds: float


# the dataset file's columns, filled track by track
_COLUMNS = (
    "vid_name", "frame_id", "img_name", "mask_name", "joints2D", "joints3D", "pose", "shape",
    "bbox",
)  # fmt: skip
_Rows = dict[str, list[Any]]


def _video_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Generator of video ``index``: independent of how many videos are made."""
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(split.encode()), index]))


def posed_in_camera(
    body: BodyModel, track: Person, camera: Camera
) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """One person in the camera frame over the video's F frames.

    Returns ``pose (F, 72)`` with the camera-frame global orientation, ``vertices (F, V, 3)``
    and ``joints (F, 49, 3)`` in metres in the camera frame.
    """
    frames = len(track.pose)
    root = Rotation.from_matrix(camera.rotation) * Rotation.from_rotvec(
        track.pose[:, :3].astype(np.float64)
    )
    pose = track.pose.copy()
    pose[:, :3] = root.as_rotvec()
    betas = torch.from_numpy(np.repeat(track.betas[None], frames, axis=0))
    with torch.no_grad():
        rest_pelvis = body(torch.zeros(1, 72), betas[:1]).joints[0, 0].numpy()
        # the body turns about its rest pelvis J0; the clip puts the pelvis at `transl`:
        # x_cam = R (v_world_posed − J0 + transl) + t = v_cam_posed − J0 + R transl + t
        offset = (
            np.einsum("fij,fj->fi", camera.rotation, track.transl.astype(np.float64))
            + camera.translation
            - rest_pelvis
        )
        pose_tensor = torch.from_numpy(pose)
        vertices = (
            torch.cat(
                [
                    body(pose_tensor[i : i + BODY_BATCH], betas[i : i + BODY_BATCH]).vertices
                    for i in range(0, frames, BODY_BATCH)
                ]
            )
            + torch.from_numpy(offset).float()[:, None]
        )
        joints = body.regress_joints(vertices, JOINT_SET)
    return pose, vertices, joints


def project(points: np.ndarray, intrinsics: np.ndarray) -> np.ndarray:
    """Pixels ``(..., 2)`` of camera-frame ``points (..., 3)``."""
    homogeneous = points @ intrinsics.T
    return homogeneous[..., :2] / homogeneous[..., 2:3]


def _bbox(pixels: np.ndarray) -> np.ndarray:
    """``(cx, cy, w, h)`` of the box around ``pixels (V, 2)``."""
    low, high = pixels.min(axis=0), pixels.max(axis=0)
    return np.concatenate([(low + high) / 2.0, high - low])


def _keep(bbox: np.ndarray, width: int, height: int) -> bool:
    """Whether a person with this full box is big enough and enough in the frame."""
    left, top = bbox[:2] - bbox[2:] / 2.0
    right, bottom = bbox[:2] + bbox[2:] / 2.0
    inside_w = max(0.0, min(right, width) - max(left, 0.0))
    inside_h = max(0.0, min(bottom, height) - max(top, 0.0))
    area = float(bbox[2] * bbox[3])
    return bool(
        bbox[3] >= MIN_PERSON_HEIGHT_FRACTION * height
        and area > 0
        and inside_w * inside_h >= MIN_IN_FRAME_FRACTION * area
    )


def _joint_confidence(
    pixels: np.ndarray, depth: np.ndarray, item: np.ndarray, person: int
) -> np.ndarray:
    """``(J,)`` 1 where a joint at ``pixels (J, 2)``, camera depth ``depth (J,)``, lies in the
    frame and its nearest pixel shows ``person`` in the item buffer ``(H, W)``."""
    height, width = item.shape
    nearest = np.round(pixels).astype(np.int64)
    inside = (
        (depth > 0)
        & (nearest[:, 0] >= 0)
        & (nearest[:, 0] < width)
        & (nearest[:, 1] >= 0)
        & (nearest[:, 1] < height)
    )
    confidence = np.zeros(len(pixels), dtype=np.float32)
    cols, rows = nearest[inside, 0], nearest[inside, 1]
    confidence[inside] = (item[rows, cols] == person).astype(np.float32)
    return confidence


def _compose(
    raster_item: np.ndarray,
    raster_face: np.ndarray,
    raster_shade: np.ndarray,
    face_colours: np.ndarray,
    background: np.ndarray,
) -> np.ndarray:
    """The frame ``(H, W, 3)`` uint8: shaded face colours over the background."""
    image = background.astype(np.float32)
    covered = raster_item >= 0
    image[covered] = face_colours[raster_face[covered]] * raster_shade[covered, None]
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _write_image(path: Path, image: np.ndarray, params: list[int]) -> None:
    if not cv2.imwrite(str(path), image, params):
        raise OSError(f"could not write {path}")


def _render_video(
    body: BodyModel,
    scene: Scene,
    name: str,
    root: Path,
    split: str,
    image_size: tuple[int, int],
    rows: _Rows,
) -> int:
    """Render one scene, write its files, append its rows; return its number of frames."""
    width, height = image_size
    camera = scene.camera
    frames = len(camera.rotation)
    parts = face_parts(body)
    posed = [posed_in_camera(body, person, scene.camera) for person in scene.people]
    face_colours = np.concatenate(
        [person.part_colours[parts] for person in scene.people]
        + [np.repeat(o.colour[None], len(o.faces), axis=0) for o in scene.occluders]
    ).astype(np.float32)
    intrinsics = torch.from_numpy(camera.intrinsics).float()
    light = None if scene.light is None else torch.from_numpy(scene.light).float()

    frame_dir = root / split / "frames" / name
    mask_dir = root / split / "masks" / name
    video_dir = root / split / "videos"
    for directory in (frame_dir, video_dir):
        directory.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(
        str(video_dir / f"{name}.mp4"),
        cv2.VideoWriter.fourcc(*VIDEO_CODEC),
        scene.fps,
        (width, height),
    )
    # per person: (frame, row fields) of the kept person-frames, split into tracks below
    kept: list[list[tuple[int, dict[str, np.ndarray]]]] = [[] for _ in scene.people]
    try:
        for frame in range(frames):
            meshes = [Mesh(vertices[frame], body.faces) for _, vertices, _ in posed]
            for occluder in scene.occluders:
                in_camera = occluder.vertices @ camera.rotation[frame].T + camera.translation[frame]
                meshes.append(
                    Mesh(torch.from_numpy(in_camera).float(), torch.from_numpy(occluder.faces))
                )
            raster = rasterize(meshes, intrinsics, (height, width), light)
            item = raster.item.numpy()
            window = background_window(scene.background, width, background_shift(scene, frame))
            image = _compose(item, raster.face.numpy(), raster.shade.numpy(), face_colours, window)
            _write_image(
                frame_dir / f"{frame:06d}.jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
            )
            writer.write(image)
            for person, (pose, vertices, joints) in enumerate(posed):
                vertex_pixels = project(
                    vertices[frame].numpy().astype(np.float64), camera.intrinsics
                )
                bbox = _bbox(vertex_pixels)
                if not _keep(bbox, width, height):
                    continue
                joints3d = joints[frame].numpy().astype(np.float64)
                pixels = project(joints3d, camera.intrinsics)
                confidence = _joint_confidence(pixels, joints3d[:, 2], item, person)
                person_dir = mask_dir / f"p{person}"
                person_dir.mkdir(parents=True, exist_ok=True)
                mask = np.where(item == person, 255, 0).astype(np.uint8)
                _write_image(person_dir / f"{frame:06d}.png", mask, [])
                kept[person].append(
                    (
                        frame,
                        {
                            "joints2D": np.concatenate([pixels, confidence[:, None]], axis=1),
                            "joints3D": np.concatenate(
                                [joints3d, np.ones((len(joints3d), 1))], axis=1
                            ),
                            "pose": pose[frame],
                            "shape": scene.people[person].betas,
                            "bbox": bbox,
                        },
                    )
                )
    finally:
        writer.release()

    for person, person_rows in enumerate(kept):
        track, previous = -1, -2
        for frame, fields in person_rows:
            if frame != previous + 1:
                track += 1
            previous = frame
            suffix = "" if track == 0 else f"_{track}"
            rows["vid_name"].append(f"{name}_p{person}{suffix}")
            rows["frame_id"].append(frame)
            rows["img_name"].append(f"{split}/frames/{name}/{frame:06d}.jpg")
            rows["mask_name"].append(f"{split}/masks/{name}/p{person}/{frame:06d}.png")
            for key, value in fields.items():
                rows[key].append(value)

    _write_camera(video_dir / f"{name}.json", scene, image_size)
    return frames


def _write_camera(path: Path, scene: Scene, image_size: tuple[int, int]) -> None:
    """The video's camera and people as JSON (see the module docstring for conventions)."""
    camera = scene.camera
    record = {
        "width": image_size[0],
        "height": image_size[1],
        "fps": scene.fps,
        "intrinsics": camera.intrinsics.tolist(),
        "convention": "pixels (column, row), integers at pixel centres; camera frame x right, "
        "y down, z forward; x_cam = rotation @ x_world + translation; world: SMPL's, Y up",
        "camera_motion": camera.motion,
        "world_to_camera": [
            {"rotation": r.tolist(), "translation": t.tolist()}
            for r, t in zip(camera.rotation, camera.translation, strict=True)
        ],
        "people": [
            {"person": i, "motion": p.motion, "betas": p.betas.tolist()}
            for i, p in enumerate(scene.people)
        ],
        "occluders": [o.kind for o in scene.occluders],
        "shading": "flat" if scene.light is None else "lambert",
    }
    path.write_text(json.dumps(record, indent=1) + "\n")


def generate_dataset(
    out_dir: str | Path,
    *,
    body: str | Path = "standin",
    num_videos: int,
    frames_per_video: int,
    people: tuple[int, int] = (1, 3),
    image_size: tuple[int, int] = (320, 240),
    seed: int = 0,
    split: str = "train",
    clips: Sequence[str] | None = None,
    progress: bool = True,
) -> SynthSummary:
    """Render ``num_videos`` synthetic videos and write them with their dataset file.

    Args:
        out_dir: folder for everything (see the module docstring for the layout).
        body: body model name ("standin", "smpl") or file.
        num_videos: videos to make.
        frames_per_video: frames F of each video, at :data:`VIDEO_FPS`.
        people: inclusive range of people per video.
        image_size: ``(W, H)`` of the frames in pixels.
        seed: random seed; with the other arguments it fixes every byte written.
        split: name of the split ("train", "val", …), part of the file names and the seed.
        clips: the built-in motion clips people move with (default: all); a held-out set
            names clips the training set did not use.
        progress: show a progress bar over the videos.

    Returns:
        A :class:`SynthSummary`.
    """
    if num_videos < 1 or frames_per_video < 1:
        raise ValueError("num_videos and frames_per_video must be positive")
    if not 1 <= people[0] <= people[1]:
        raise ValueError(f"people must be a range (low, high) with 1 ≤ low ≤ high, got {people}")
    started = time.perf_counter()
    root = Path(out_dir)
    model = load_body_model(body)
    rows: _Rows = {key: [] for key in _COLUMNS}
    frames = 0
    with progress_bar(disable=not progress) as bar:
        task = bar.add_task(f"synth {split}", total=num_videos)
        for index in range(num_videos):
            rng = _video_rng(seed, split, index)
            scene = sample_scene(
                rng,
                num_frames=frames_per_video,
                image_size=image_size,
                num_people=int(rng.integers(people[0], people[1], endpoint=True)),
                fps=VIDEO_FPS,
                clips=clips,
            )
            frames += _render_video(
                model, scene, f"video{index:03d}", root, split, image_size, rows
            )
            bar.advance(task)

    count = len(rows["vid_name"])
    joints = 49

    def stacked(values: list[np.ndarray], row_shape: tuple[int, ...]) -> np.ndarray:
        if not values:
            return np.zeros((0, *row_shape), dtype=np.float32)
        return np.stack(values).astype(np.float32)

    arrays = {
        "vid_name": np.array(rows["vid_name"], dtype=str),
        "frame_id": np.array(rows["frame_id"], dtype=np.int64),
        "img_name": np.array(rows["img_name"], dtype=str),
        "mask_name": np.array(rows["mask_name"], dtype=str),
        "valid": np.ones(count, dtype=np.int64),
        "joints2D": stacked(rows["joints2D"], (joints, 3)),
        "joints3D": stacked(rows["joints3D"], (joints, 4)),
        "pose": stacked(rows["pose"], (72,)),
        "shape": stacked(rows["shape"], (10,)),
        "bbox": stacked(rows["bbox"], (4,)),
    }
    dataset_path = root / f"synth_{split}_db.pt"
    write_dataset_file(dataset_path, arrays)
    return SynthSummary(
        dataset_path=dataset_path,
        videos=num_videos,
        frames=frames,
        person_frames=count,
        tracks=len(set(rows["vid_name"])),
        seconds=time.perf_counter() - started,
    )
