"""The 33 body landmarks of BlazePose GHUM 3D, the keypoint model of every bundle.

Names and order are the model's (MediaPipe Pose, ``PoseLandmark``); ``left``/``right`` are the
person's own sides. Two more points follow them in the model's output and are used only to
place the next region of interest: the hip centre (33) and a point whose distance from it sets
the region's size and whose direction sets its rotation (34).
"""

from __future__ import annotations

LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
NUM_LANDMARKS = len(LANDMARK_NAMES)  # 33
# A landmark counts as seen from this visibility on (MediaPipe's drawing default): for the
# boxes made from landmarks, the preview and the pictures.
VISIBLE = 0.5
# The model's two extra points (indices into its 39 outputs): hip centre, and the point that
# sets the next region's size and rotation.
ROI_CENTRE, ROI_SCALE = 33, 34
# Pairs drawn as the skeleton in a preview (MediaPipe's POSE_CONNECTIONS, body only).
SKELETON: tuple[tuple[int, int], ...] = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16),
    (11, 23), (12, 24), (23, 24), (23, 25), (25, 27), (27, 29), (29, 31), (27, 31),
    (24, 26), (26, 28), (28, 30), (30, 32), (28, 32),
    (0, 2), (0, 5), (2, 7), (5, 8), (9, 10),
)  # fmt: skip
