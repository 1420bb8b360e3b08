"""Rotations, cameras and Procrustes alignment shared by training, evaluation and serving."""

from training.geometry.camera import (
    CROP_SIZE,
    FOCAL_LENGTH,
    cam_to_translation,
    crop_cam_to_orig_cam,
    orig_cam_to_crop_cam,
    orig_cam_to_translation,
    perspective_project,
    translation_to_cam,
    weak_perspective_project,
)
from training.geometry.procrustes import fit_similarity, procrustes_align
from training.geometry.rotations import (
    axis_angle_to_quat,
    axis_angle_to_rotmat,
    nearest_rotation,
    quat_to_axis_angle,
    quat_to_rotmat,
    rot6d_to_rotmat,
    rotmat_to_axis_angle,
    rotmat_to_quat,
    rotmat_to_rot6d,
    rotmats_to_smpl_pose,
    smpl_pose_to_rotmats,
)

__all__ = [
    "CROP_SIZE",
    "FOCAL_LENGTH",
    "axis_angle_to_quat",
    "axis_angle_to_rotmat",
    "cam_to_translation",
    "crop_cam_to_orig_cam",
    "fit_similarity",
    "nearest_rotation",
    "orig_cam_to_crop_cam",
    "orig_cam_to_translation",
    "perspective_project",
    "procrustes_align",
    "quat_to_axis_angle",
    "quat_to_rotmat",
    "rot6d_to_rotmat",
    "rotmat_to_axis_angle",
    "rotmat_to_quat",
    "rotmat_to_rot6d",
    "rotmats_to_smpl_pose",
    "smpl_pose_to_rotmats",
    "translation_to_cam",
    "weak_perspective_project",
]
