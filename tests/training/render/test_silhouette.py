"""The soft silhouette renderer against the hard one, its gradients, and edge cases."""

from __future__ import annotations

import math

import pytest
import torch

from training.body import load_body_model
from training.body.model import BodyModel
from training.render import hard_silhouette, project_to_pixels, soft_silhouette

# SMPL's joint indices used to pose the test bodies (skeleton order).
_LEFT_SHOULDER, _RIGHT_SHOULDER, _LEFT_HIP, _SPINE = 16, 17, 1, 3
_CAM = (0.9, 0.0, 0.05)


@pytest.fixture(scope="module")
def body() -> BodyModel:
    return load_body_model("standin")


def _poses() -> torch.Tensor:
    """Four poses ``(4, 72)``, upright in the crop (root turned by π about x, as HMR's
    predictions are, since image rows go down while the body's Y goes up)."""
    pose = torch.zeros(4, 72)
    pose[:, 0] = math.pi
    pose[1, 3 * _LEFT_SHOULDER + 2] = -1.0
    pose[1, 3 * _RIGHT_SHOULDER + 2] = 1.0
    pose[2, 3 * _LEFT_HIP] = -0.8
    pose[3, 3 * _SPINE + 1] = 1.2
    return pose


def _iou(soft: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
    """Soft IoU per frame: Σ min / Σ max (1 only when the soft silhouette is binary)."""
    hard = hard.to(soft.dtype)
    return torch.minimum(soft, hard).sum((1, 2)) / torch.maximum(soft, hard).sum((1, 2))


@pytest.mark.parametrize("size", [56, 112])
def test_soft_matches_hard(body: BodyModel, size: int) -> None:
    vertices = body(_poses(), torch.zeros(4, 10)).vertices
    cam = torch.tensor([_CAM]).repeat(4, 1)
    soft = soft_silhouette(vertices, body.faces, cam, size)
    hard = hard_silhouette(vertices, body.faces, cam, size)
    assert hard.sum((1, 2)).min() > 0.05 * size * size  # a body is there
    assert (_iou(soft, hard) >= 0.9).all()
    assert ((soft >= 0) & (soft <= 1)).all()


def test_hard_silhouette_of_one_triangle() -> None:
    # A triangle over the pixel centres 0..3 of a 4×4 crop: cols + rows ≤ 3 inclusive.
    corners = torch.tensor([[-0.5, -0.5], [3.5, -0.5], [-0.5, 3.5]]) + 0.5
    size = 4
    vertices = torch.zeros(1, 3, 3)
    vertices[0, :, :2] = corners * 2 / size - 1  # pixel → normalised, with cam = (1, 0, 0)
    cam = torch.tensor([[1.0, 0.0, 0.0]])
    assert torch.allclose(project_to_pixels(vertices, cam, size)[0], corners - 0.5)
    faces = torch.tensor([[0, 1, 2]])
    rows, cols = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
    assert torch.equal(hard_silhouette(vertices, faces, cam, size)[0], rows + cols <= 3)
    soft = soft_silhouette(vertices, faces, cam, size)[0]
    assert torch.equal(soft > 0.5, rows + cols <= 2)  # the diagonal lies on the edge: 0.5
    assert soft[1, 2].item() == pytest.approx(0.5, abs=1e-6)


def test_gradients_reach_pose_shape_and_camera(body: BodyModel) -> None:
    pose = _poses()[:2].requires_grad_(True)
    betas = torch.zeros(2, 10, requires_grad=True)
    cam = torch.tensor([_CAM]).repeat(2, 1).requires_grad_(True)
    vertices = body(pose, betas).vertices
    silhouette = soft_silhouette(vertices, body.faces, cam, 56)
    target = torch.zeros_like(silhouette)
    target[:, 10:46, 20:36] = 1.0
    (silhouette - target).square().sum().backward()
    for name, grad in (("pose", pose.grad), ("betas", betas.grad), ("cam", cam.grad)):
        assert grad is not None, name
        assert torch.isfinite(grad).all(), name
        assert grad.abs().sum() > 0, name


def test_camera_gradient_matches_finite_difference() -> None:
    # One large triangle: the coverage changes smoothly with the camera's scale.
    vertices = torch.tensor(
        [[[-0.5, -0.4, 0.0], [0.6, -0.3, 0.0], [0.0, 0.7, 0.0]]], dtype=torch.float64
    )
    faces = torch.tensor([[0, 1, 2]])
    cam = torch.tensor([[0.8, 0.05, -0.02]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda c: soft_silhouette(vertices, faces, c, 12, sigma=2.0).sum(), (cam,)
    )


def test_empty_and_behind_camera_do_not_crash(body: BodyModel) -> None:
    vertices = body(_poses()[:3], torch.zeros(3, 10)).vertices
    cam = torch.tensor([[-0.9, 0.0, 0.0], [0.9, 50.0, 0.0], [0.0, 0.0, 0.0]], requires_grad=True)
    soft = soft_silhouette(vertices, body.faces, cam, 32)
    soft.sum().backward()
    assert soft.shape == (3, 32, 32)
    assert (soft == 0).all()  # behind the camera, outside the crop, zero scale
    assert torch.isfinite(cam.grad).all()
    assert not hard_silhouette(vertices, body.faces, cam.detach(), 32).any()
    no_faces = soft_silhouette(vertices, torch.zeros(0, 3, dtype=torch.long), cam, (8, 6))
    assert no_faces.shape == (3, 8, 6)
    assert (no_faces == 0).all()
