"""What the keypoint families read of a frame: BlazePose's 33 landmarks, six numbers each.

Per landmark: ``x, y`` in the person's square crop scaled to [−1, 1] (the crop is the square
of side ``crop_scale`` × the box's longer side around the box's centre; x right, y down), the
keypoint model's visibility in [0, 1], and its metric 3D point (metres, hip-centred, x right,
y down, z away; BlazePose's come in the axes of a camera looking straight at the person, as it
sees its crop as if ahead, :func:`training.data.landmark_clips.view_axes`). A frame the keypoint
model did not see is all zeros.

Two ways in, one per family:

* :class:`LandmarkEncoder` (SPS-Net's E): the frame's 33 × 6 numbers (or 33 × 3, the metric
  points left out: ``landmark_world: false``) through an FC layer, a
  LeakyReLU, ``blocks`` residual blocks and a last FC layer to one feature ``f_i``, layer
  normalised. The residual blocks are Martinez et al.'s lifting network ("A simple yet
  effective baseline for 3d human pose estimation", ICCV 2017: two Linear–norm–ReLU–dropout
  layers and a skip, width 1024): HMR's regressor is linear between its rotations (no
  activation between fc1 and fc2), so the encoder carries all the non-linearity of landmarks →
  joint rotations, and one hidden layer of 512 left the single-frame model at ~98 mm PA-MPJPE.
  The output is layer normalised because SPS-Net's attention (Eq. 1) has no 1/√d, so its
  features' scale must not drift, and a LeakyReLU after the last layer left most of them in its
  flat negative part (features of ~0.06 that the regressors could not read);
* :class:`LandmarkTokens` (MAED's patch embedding): one token per landmark, a Linear of its six
  numbers, so that the STE's spatial attention runs between body parts as it does between
  image patches.
"""

from __future__ import annotations

from torch import Tensor, nn

from training.body.landmarks import NUM_LANDMARKS

LANDMARK_CHANNELS = ("x", "y", "visibility", "world_x", "world_y", "world_z")
NUM_CHANNELS = len(LANDMARK_CHANNELS)
WORLD_CHANNELS = slice(3, 6)  # the metric point's x, y, z


class ResidualBlock(nn.Module):
    """Martinez et al.'s block: ``x + (Linear → LayerNorm → ReLU → Dropout) × 2 (x)``; layer
    rather than batch norm, as one clip's frames are far from independent samples."""

    def __init__(self, width: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            *(
                module
                for _ in range(2)
                for module in (
                    nn.Linear(width, width),
                    nn.LayerNorm(width),
                    nn.ReLU(),
                    nn.Dropout(dropout),
                )
            )
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers(x)


class LandmarkEncoder(nn.Module):
    """``landmarks (N, 33, 6)`` → ``features (N, dim)``; without ``world``, it reads only each
    landmark's x, y and visibility (the metric points left out)."""

    def __init__(
        self, hidden: int, dim: int, blocks: int = 0, dropout: float = 0.0, world: bool = True
    ) -> None:
        super().__init__()
        self.channels = NUM_CHANNELS if world else WORLD_CHANNELS.start
        self.mlp = nn.Sequential(
            nn.Linear(NUM_LANDMARKS * self.channels, hidden),
            nn.LeakyReLU(),
            *(ResidualBlock(hidden, dropout) for _ in range(blocks)),
            nn.Linear(hidden, dim),
            nn.LayerNorm(dim),
        )

    def forward(self, landmarks: Tensor) -> Tensor:
        return self.mlp(landmarks[..., : self.channels].flatten(1))


class LandmarkTokens(nn.Module):
    """``landmarks (N, 33, 6)`` → ``tokens (N, 33, dim)``."""

    num_patches = NUM_LANDMARKS

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(NUM_CHANNELS, dim)

    def forward(self, landmarks: Tensor) -> Tensor:
        return self.proj(landmarks)
