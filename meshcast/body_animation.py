"""`meshcast body animate`: a body model moved by a built-in motion clip, rendered to PNGs, MP4s.

``render_motion_demo("walk")`` poses the body with the clip, places it in the world with the
clip's translation over a checkered floor, films it from a fixed camera that frames the whole
motion, and optionally films the rest pose (β = 0) on a turntable.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from meshcast.progress import progress_bar
from service.render import Mesh, PinholeCamera, look_at, render_meshes, to_camera
from training.body import NUM_BETAS, load_body_model
from training.motion import load_builtin_clip

IMAGE_WIDTH, IMAGE_HEIGHT = 640, 480
VERTICAL_FOV_DEG = 40.0
# Distance factor beyond the one that just fits the motion's bounding sphere in view.
FRAMING_MARGIN = 1.1
# From the motion's centre toward the camera (SMPL world: +X body's left, +Y up, +Z forward):
# in front, to the body's left and a little above, so both legs and the travel show.
VIEW_DIRECTION = np.array([0.8, 0.35, 0.6])
WORLD_UP = np.array([0.0, 1.0, 0.0])
# RGB. The body is clearly blue so it stands apart from the grey floor and background.
BODY_COLOR = (90, 140, 230)
BACKGROUND_COLOR = (235, 235, 238)
FLOOR_COLORS = ((170, 170, 170), (130, 130, 130))
FLOOR_TILE_M = 0.5
# Floor tiles reach this far beyond the motion's footprint.
FLOOR_MARGIN_M = 1.0
TURNTABLE_FRAMES = 48
TURNTABLE_FPS = 24.0
VIDEO_FOURCC = "mp4v"
# Frames posed per body-model call: bounds the memory of skinning long clips.
POSE_BATCH = 32
FRAME_NAME = "frame_{:04d}.png"


def _pose_body(body: torch.nn.Module, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices ``(N, V, 3)`` and pelvis ``(N, 3)`` of ``pose (N, 72)`` at β = 0, body frame."""
    vertices, pelvis = [], []
    with torch.no_grad():
        for start in range(0, len(pose), POSE_BATCH):
            batch = torch.from_numpy(pose[start : start + POSE_BATCH]).float()
            out = body(batch, torch.zeros(len(batch), NUM_BETAS))
            vertices.append(out.vertices.numpy())
            pelvis.append(out.joints[:, 0].numpy())
    return np.concatenate(vertices), np.concatenate(pelvis)


def _floor_meshes(points: np.ndarray) -> list[Mesh]:
    """Checkered floor tiles (world frame) under ``points (..., 3)``, at their lowest y.

    Returns two meshes, one per tile colour, with faces turned up (+Y).
    """
    flat = points.reshape(-1, 3)
    height = flat[:, 1].min()
    low = np.floor((flat[:, [0, 2]].min(axis=0) - FLOOR_MARGIN_M) / FLOOR_TILE_M).astype(int)
    high = np.ceil((flat[:, [0, 2]].max(axis=0) + FLOOR_MARGIN_M) / FLOOR_TILE_M).astype(int)
    tiles: list[list[np.ndarray]] = [[], []]
    for i in range(low[0], high[0]):
        for k in range(low[1], high[1]):
            x0, x1 = i * FLOOR_TILE_M, (i + 1) * FLOOR_TILE_M
            z0, z1 = k * FLOOR_TILE_M, (k + 1) * FLOOR_TILE_M
            corners = [(x0, height, z0), (x1, height, z0), (x1, height, z1), (x0, height, z1)]
            tiles[(i + k) % 2].append(np.array(corners))
    # Corners a, b, c, d go round the tile; (a, d, b) and (b, d, c) face +Y.
    quad_faces = np.array([[0, 3, 1], [1, 3, 2]])
    meshes = []
    for color, quads in zip(FLOOR_COLORS, tiles, strict=True):
        offsets = 4 * np.arange(len(quads))[:, None, None]
        faces = (quad_faces[None] + offsets).reshape(-1, 3)
        meshes.append(Mesh(np.concatenate(quads), faces, color))
    return meshes


def _camera() -> PinholeCamera:
    focal = (IMAGE_HEIGHT / 2) / np.tan(np.radians(VERTICAL_FOV_DEG) / 2)
    return PinholeCamera(fx=focal, fy=focal, cx=IMAGE_WIDTH / 2, cy=IMAGE_HEIGHT / 2)


def _framing(points: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera position and look-at target that keep ``points (..., 3)`` in view."""
    flat = points.reshape(-1, 3)
    low, high = flat.min(axis=0), flat.max(axis=0)
    center = (low + high) / 2
    radius = np.linalg.norm(high - low) / 2
    # The sphere fits the narrower (vertical) field of view at this distance.
    distance = FRAMING_MARGIN * radius / np.sin(np.radians(VERTICAL_FOV_DEG) / 2)
    return center + distance * direction / np.linalg.norm(direction), center


def _render_view(
    body_world: np.ndarray,
    faces: np.ndarray,
    floor: list[Mesh],
    eye: np.ndarray,
    target: np.ndarray,
) -> np.ndarray:
    """One RGB frame: floor first (it lies under the body), then the body over it."""
    rotation, translation = look_at(eye, target, WORLD_UP)
    camera = _camera()
    image = np.empty((IMAGE_HEIGHT, IMAGE_WIDTH, 3), dtype=np.uint8)
    image[:] = BACKGROUND_COLOR
    floor_view = [
        Mesh(to_camera(m.vertices, rotation, translation), m.faces, m.color) for m in floor
    ]
    image = render_meshes(image, floor_view, camera)
    body = Mesh(to_camera(body_world, rotation, translation), faces, BODY_COLOR)
    return render_meshes(image, [body], camera)


def _write_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> None:
    """Write RGB frames ``(H, W, 3)`` to an MP4."""
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*VIDEO_FOURCC), fps, (IMAGE_WIDTH, IMAGE_HEIGHT)
    )
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {VIDEO_FOURCC} video to {path}")
    try:
        for frame in frames:
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def render_motion_demo(
    clip: str = "walk",
    out_dir: Path = Path("out"),
    body: str = "standin",
    num_frames: int | None = None,
    turntable: bool = True,
) -> dict[str, Any]:
    """Animate ``body`` with the built-in motion ``clip`` and render it.

    Writes ``out_dir/<clip>/frame_XXXX.png`` (640×480), ``out_dir/<clip>.mp4`` and, with
    ``turntable``, ``out_dir/turntable.mp4`` (the rest pose, β = 0, seen from all round).

    Args:
        clip: a name from :func:`training.motion.list_builtin_clips`.
        out_dir: output folder, created if needed.
        body: a body model name or file for :func:`training.body.load_body_model`.
        num_frames: render only the first frames of the clip; all when None.
        turntable: also render the turntable video.

    Returns:
        ``{"clip", "body", "frames", "fps", "files", "seconds"}``: frames rendered, the clip's
        frame rate, the paths written (str) and the wall time.
    """
    started = time.perf_counter()
    motion = load_builtin_clip(clip)
    count = motion.num_frames if num_frames is None else min(num_frames, motion.num_frames)
    if count < 1:
        raise ValueError(f"num_frames must be at least 1, got {num_frames}")
    model = load_body_model(body)
    faces = model.faces.numpy()

    vertices, pelvis = _pose_body(model, motion.pose[:count])
    # The clip moves the pelvis; the body model posed it about its own rest pelvis.
    world = vertices - pelvis[:, None] + motion.transl[:count, None]
    floor = _floor_meshes(world)
    eye, target = _framing(world, VIEW_DIRECTION)

    frames_dir = Path(out_dir) / motion.name
    frames_dir.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    frames = []
    with progress_bar() as progress:
        task = progress.add_task(f"{motion.name} ({body})", total=count)
        for index in range(count):
            frame = _render_view(world[index], faces, floor, eye, target)
            path = frames_dir / FRAME_NAME.format(index)
            cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            files.append(path)
            frames.append(frame)
            progress.advance(task)
        video = Path(out_dir) / f"{motion.name}.mp4"
        _write_video(video, frames, motion.fps)
        files.append(video)

        if turntable:
            rest, _ = _pose_body(model, np.zeros((1, motion.pose.shape[1]), dtype=np.float32))
            rest_floor = _floor_meshes(rest)
            spin = progress.add_task("turntable", total=TURNTABLE_FRAMES)
            views = []
            for angle in np.linspace(0.0, 2 * np.pi, TURNTABLE_FRAMES, endpoint=False):
                # Orbit the view direction about the vertical axis.
                c, s = np.cos(angle), np.sin(angle)
                direction = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]]) @ VIEW_DIRECTION
                eye, target = _framing(rest, direction)
                views.append(_render_view(rest[0], faces, rest_floor, eye, target))
                progress.advance(spin)
            spin_video = Path(out_dir) / "turntable.mp4"
            _write_video(spin_video, views, TURNTABLE_FPS)
            files.append(spin_video)

    return {
        "clip": motion.name,
        "body": body,
        "frames": count,
        "fps": motion.fps,
        "files": [str(p) for p in files],
        "seconds": time.perf_counter() - started,
    }
