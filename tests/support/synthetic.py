"""Short synthetic sequences with exact ground truth, for tests that train a network a little.

Poses come from the built-in walk clip, shapes are random, the camera is a fixed weak-perspective
crop camera; frames are the body's silhouette filled in the crop, and per-frame "features" are a
fixed random projection of the 2D keypoints (what an image encoder would extract, here exact).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from training.body import BodyModel
from training.geometry import axis_angle_to_rotmat, weak_perspective_project
from training.motion import load_builtin_clip

# Image y points down and the body's Y up: the body is seen upright once turned by π about X
# (the same convention as HMR's mean global orientation).
UPRIGHT = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])
CROP_CAMERA = (0.9, 0.0, 0.0)  # (s, tx, ty): the body fills ~90 % of the crop
CLIP_STRIDE = 6  # frames between the starts of successive sequences
SILHOUETTE_VALUE = 1.0


@dataclass
class Sequences:
    """``N`` sequences of ``T`` frames."""

    rotmat: torch.Tensor  # (N, T, 24, 3, 3)
    betas: torch.Tensor  # (N, T, 10), one shape per sequence
    cam: torch.Tensor  # (N, T, 3)
    joints_3d: torch.Tensor  # (N, T, 24, 3) metres
    keypoints_2d: torch.Tensor  # (N, T, 24, 3) crop coordinates in [-1, 1] and confidence
    frames: torch.Tensor  # (N, T, 3, S, S) silhouettes
    features: torch.Tensor  # (N, T, D)


def make_sequences(
    body: BodyModel,
    *,
    num_sequences: int = 4,
    num_frames: int = 4,
    image_size: int = 64,
    feature_dim: int = 32,
    seed: int = 0,
) -> Sequences:
    """Sequences cut from the walk clip, each with its own random shape."""
    generator = torch.Generator().manual_seed(seed)
    clip = load_builtin_clip("walk")
    starts = [i * CLIP_STRIDE for i in range(num_sequences)]
    pose = torch.from_numpy(np.stack([clip.pose[s : s + num_frames] for s in starts]))
    rotmat = axis_angle_to_rotmat(pose.reshape(num_sequences, num_frames, 24, 3))
    rotmat[:, :, 0] = UPRIGHT @ rotmat[:, :, 0]
    betas = torch.randn(num_sequences, 1, 10, generator=generator).expand(-1, num_frames, -1)
    cam = torch.tensor(CROP_CAMERA).expand(num_sequences, num_frames, 3)

    with torch.no_grad():
        out = body(rotmat.reshape(-1, 24, 3, 3), betas.reshape(-1, 10))
    joints = out.joints.reshape(num_sequences, num_frames, 24, 3)
    keypoints = weak_perspective_project(joints, cam)
    confidence = torch.ones(*keypoints.shape[:-1], 1)

    pixels = weak_perspective_project(out.vertices, cam.reshape(-1, 3))
    frames = torch.from_numpy(_silhouettes(pixels.numpy(), body.faces.numpy(), image_size))
    frames = frames.reshape(num_sequences, num_frames, 1, image_size, image_size).expand(
        -1, -1, 3, -1, -1
    )
    projection = torch.randn(24 * 2, feature_dim, generator=generator)
    features = torch.tanh(keypoints.reshape(num_sequences, num_frames, -1) @ projection)
    return Sequences(
        rotmat=rotmat,
        betas=betas.contiguous(),
        cam=cam.contiguous(),
        joints_3d=joints,
        keypoints_2d=torch.cat([keypoints, confidence], dim=-1),
        frames=frames.contiguous(),
        features=features,
    )


def _silhouettes(crop_points: np.ndarray, faces: np.ndarray, size: int) -> np.ndarray:
    """Filled silhouettes ``(B, S, S)`` float32 of meshes ``(B, V, 2)`` in crop coordinates."""
    images = np.zeros((crop_points.shape[0], size, size), dtype=np.float32)
    for image, points in zip(images, crop_points, strict=True):
        pixels = np.round((points + 1.0) * size / 2.0).astype(np.int32)
        cv2.fillPoly(image, list(pixels[faces]), SILHOUETTE_VALUE)
    return images
