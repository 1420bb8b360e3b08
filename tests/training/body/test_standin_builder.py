"""The stand-in builder's helpers on tiny synthetic problems, and the committed asset's contract.

None of these needs anny, except the one ``slow`` test that rebuilds a small stand-in.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.shapes import UNIT_CUBE_FACES, UNIT_CUBE_VERTICES
from training.body.skeleton import NUM_JOINTS, SMPL_JOINT_NAMES, SMPL_PARENTS
from training.body.standin_builder import (
    EXTRA_PART_ROOTS,
    NUM_BETAS,
    NUM_POSE_CORRECTIVES,
    PHENOTYPE_RANGES,
    SMPL_JOINT_BONES,
    anny_to_smpl_frame,
    dense_bone_weights,
    extreme_vertex,
    fit_joint_regressor,
    group_weights,
    joint_errors_mm,
    outward_faces,
    pca_shape_space,
    rotation_between,
    sample_phenotypes,
    save_npz_deterministic,
    signed_volume,
    skinning_groups,
    t_pose_deltas,
)

ASSET = Path(__file__).parents[3] / "training" / "body" / "assets" / "standin.npz"
RNG_SEED = 7


# --- frames and rotations -------------------------------------------------------------------
def test_anny_frame_maps_up_forward_and_left_onto_smpl_axes() -> None:
    # anny: Z up, facing −Y, left +X  →  SMPL: Y up, facing +Z, left +X.
    up, forward, left = [0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]
    mapped = anny_to_smpl_frame(np.array([up, forward, left]))
    np.testing.assert_allclose(mapped, np.eye(3)[[1, 2, 0]])


def test_anny_frame_map_is_a_proper_rotation() -> None:
    matrix = anny_to_smpl_frame(np.eye(3)).T  # columns: images of the basis vectors
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(matrix) == pytest.approx(1.0)  # windings and handedness kept


@pytest.mark.parametrize(
    ("source", "target"),
    [
        ([0.3, -0.1, -0.8], [1.0, 0.0, 0.0]),
        ([1.0, 0.0, 0.0], [1.0, 0.0, 0.0]),
        ([0.0, 2.0, 0.0], [0.0, -1.0, 0.0]),  # opposite: a half turn
    ],
)
def test_rotation_between_turns_source_onto_target(
    source: list[float], target: list[float]
) -> None:
    R = rotation_between(np.array(source), np.array(target))
    np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(R) == pytest.approx(1.0)
    unit = np.array(source) / np.linalg.norm(source)
    np.testing.assert_allclose(R @ unit, np.array(target) / np.linalg.norm(target), atol=1e-12)


def test_rotation_between_leaves_the_common_normal_alone() -> None:
    # The smallest rotation from X to Y turns about Z: Z is fixed.
    R = rotation_between(np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(R @ [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], atol=1e-12)


def test_t_pose_deltas_level_the_upper_arms_and_straighten_the_elbows() -> None:
    labels = ["upperarm01.L", "lowerarm01.L", "wrist.L", "upperarm01.R", "lowerarm01.R", "wrist.R"]
    # An A-pose in anny's frame (Z up, −Y forward): arms down and out, elbows bent forward.
    heads = np.array(
        [[0.16, 0.0, 0.47], [0.33, 0.0, 0.28], [0.45, -0.16, 0.16],
         [-0.16, 0.0, 0.47], [-0.33, 0.0, 0.28], [-0.45, -0.16, 0.16]]
    )  # fmt: skip
    deltas, angles = t_pose_deltas(labels, heads)
    for side, sign in (("L", 1.0), ("R", -1.0)):
        shoulder = deltas[labels.index(f"upperarm01.{side}")]
        elbow = deltas[labels.index(f"lowerarm01.{side}")]
        i = labels.index(f"upperarm01.{side}")
        upper, forearm = heads[i + 1] - heads[i], heads[i + 2] - heads[i + 1]
        # 'local-ref': the forearm takes the elbow's delta, then the shoulder's.
        for direction in (shoulder @ upper, shoulder @ elbow @ forearm):
            unit = direction / np.linalg.norm(direction)
            np.testing.assert_allclose(unit, [sign, 0.0, 0.0], atol=1e-12)
        assert 0 < angles[f"shoulder.{side}"] < 90
    assert np.allclose(deltas[labels.index("wrist.L")], np.eye(3))


# --- body parts and skinning weights --------------------------------------------------------
def test_skinning_groups_follow_the_nearest_mapped_ancestor() -> None:
    #        root
    #       /    \
    #   upper    spine
    #     |
    #   lower
    #     |
    #   tip
    labels = ["root", "upper", "lower", "tip", "spine"]
    parents = [-1, 0, 1, 2, 0]
    roots = {"root": "pelvis", "lower": "left_elbow"}
    groups = skinning_groups(labels, parents, roots)
    elbow = SMPL_JOINT_NAMES.index("left_elbow")
    assert groups.tolist() == [0, 0, elbow, elbow, 0]


def test_skinning_groups_reject_an_unmapped_root() -> None:
    with pytest.raises(ValueError, match="no ancestor"):
        skinning_groups(["root", "child"], [-1, 0], {"child": "pelvis"})


def test_extra_part_roots_put_every_toe_and_finger_in_the_foot_and_hand() -> None:
    for side in ("L", "R"):
        full = "left" if side == "L" else "right"
        for k in range(1, 6):
            assert EXTRA_PART_ROOTS[f"toe{k}-1.{side}"] == f"{full}_foot"
            assert EXTRA_PART_ROOTS[f"finger{k}-1.{side}"] == f"{full}_hand"


def test_joint_bones_are_in_smpl_order_and_mirror_each_other() -> None:
    assert tuple(name for name, _ in SMPL_JOINT_BONES) == SMPL_JOINT_NAMES
    for name, bone in SMPL_JOINT_BONES:
        if name.startswith("left_"):
            assert bone.endswith(".L")
            assert dict(SMPL_JOINT_BONES)[name.replace("left_", "right_")] == bone[:-2] + ".R"


def test_dense_bone_weights_scatter_and_add_repeated_indices() -> None:
    weights = np.array([[0.5, 0.5], [0.25, 0.75]])
    indices = np.array([[2, 0], [1, 1]])
    dense = dense_bone_weights(weights, indices, num_bones=3)
    np.testing.assert_allclose(dense, [[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])


def test_group_weights_sum_bones_into_parts_and_renormalise() -> None:
    bone_weights = np.array([[0.2, 0.2, 0.4], [0.0, 1.0, 1.0]])  # second row sums to 2
    grouped = group_weights(bone_weights, np.array([0, 1, 1]), num_groups=3)
    np.testing.assert_allclose(grouped, [[0.25, 0.75, 0.0], [0.0, 1.0, 0.0]])


def test_group_weights_refuse_unweighted_vertices() -> None:
    with pytest.raises(ValueError, match="no skinning weight"):
        group_weights(np.zeros((1, 2)), np.array([0, 1]), num_groups=2)


# --- sampling and PCA ------------------------------------------------------------------------
def test_phenotypes_are_seeded_and_within_their_ranges() -> None:
    labels = list(PHENOTYPE_RANGES)
    first = sample_phenotypes(np.random.default_rng(RNG_SEED), 200, PHENOTYPE_RANGES, labels)
    again = sample_phenotypes(np.random.default_rng(RNG_SEED), 200, PHENOTYPE_RANGES, labels)
    np.testing.assert_array_equal(first, again)
    for column, label in enumerate(labels):
        low, high = PHENOTYPE_RANGES[label]
        assert low <= first[:, column].min()
        assert first[:, column].max() <= high


def _synthetic_population(num_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Meshes = base + 3·a·d_big + 1·b·d_small (a, b standard normal); and the directions."""
    rng = np.random.default_rng(RNG_SEED)
    base = rng.normal(size=(50, 3))
    d_big = np.zeros((50, 3))
    d_big[:, 1] = base[:, 1] - base[:, 1].mean()  # a vertical stretch
    d_big /= np.linalg.norm(d_big)
    d_small = rng.normal(size=(50, 3))
    d_small -= np.sum(d_small * d_big) * d_big  # orthogonal to d_big
    d_small /= np.linalg.norm(d_small)
    coefficients = rng.normal(size=(num_samples, 2))
    coefficients = (coefficients - coefficients.mean(0)) / coefficients.std(0, ddof=1)
    coefficients = np.linalg.qr(coefficients)[0] * np.sqrt(num_samples - 1)  # uncorrelated
    meshes = base + 3.0 * coefficients[:, :1, None] * d_big + coefficients[:, 1:, None] * d_small
    return meshes, np.stack([d_big, d_small], -1)


def test_pca_orders_components_by_variance_and_scales_them_by_their_deviation() -> None:
    meshes, truth = _synthetic_population(num_samples=60)
    mean, directions, share = pca_shape_space(meshes, num_components=2)
    np.testing.assert_allclose(mean, meshes.mean(0), atol=1e-12)
    np.testing.assert_allclose(share, [0.9, 0.1], atol=1e-9)  # 3² : 1²
    np.testing.assert_allclose(np.linalg.norm(directions[..., 0]), 3.0, rtol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(directions[..., 1]), 1.0, rtol=1e-9)
    # Component 0 is the vertical stretch with the sign that makes +β taller.
    np.testing.assert_allclose(directions[..., 0], 3.0 * truth[..., 0], atol=1e-9)


def test_pca_coefficients_have_unit_variance() -> None:
    meshes, _ = _synthetic_population(num_samples=60)
    mean, directions, _ = pca_shape_space(meshes, num_components=2)
    basis = directions.reshape(-1, 2)
    betas = np.linalg.lstsq(basis, (meshes - mean).reshape(60, -1).T, rcond=None)[0]
    np.testing.assert_allclose(betas.std(axis=1, ddof=1), [1.0, 1.0], rtol=1e-9)


def test_pca_needs_more_meshes_than_components() -> None:
    with pytest.raises(ValueError, match="more than"):
        pca_shape_space(np.zeros((3, 4, 3)), num_components=3)


# --- the joint regressor ---------------------------------------------------------------------
def test_regressor_recovers_a_convex_joint_and_stays_sparse() -> None:
    rng = np.random.default_rng(RNG_SEED)
    base = rng.uniform(-1.0, 1.0, size=(40, 3))
    meshes = base + 0.1 * rng.normal(size=(30, 40, 3))
    truth = np.zeros((2, 40))
    truth[0, [3, 5, 8]] = [0.2, 0.3, 0.5]
    truth[1, [10, 11]] = [0.5, 0.5]
    joints = np.einsum("jv,nvc->njc", truth, meshes)
    regressor = fit_joint_regressor(meshes[:20], joints[:20], num_neighbours=40)
    assert regressor.min() >= 0.0
    np.testing.assert_allclose(regressor.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(regressor, truth, atol=1e-6)
    assert joint_errors_mm(regressor, meshes[20:], joints[20:]).max() < 1e-3


def test_regressor_only_uses_the_nearest_vertices() -> None:
    rng = np.random.default_rng(RNG_SEED)
    meshes = rng.normal(size=(10, 30, 3))
    joints = meshes[:, :1, :] + 0.01  # beside vertex 0
    regressor = fit_joint_regressor(meshes, joints, num_neighbours=4)
    assert np.count_nonzero(regressor) <= 4


# --- faces, landmarks, files -------------------------------------------------------------------
def test_signed_volume_of_the_unit_cube() -> None:
    assert signed_volume(UNIT_CUBE_VERTICES, UNIT_CUBE_FACES) == pytest.approx(1.0)
    assert signed_volume(UNIT_CUBE_VERTICES, UNIT_CUBE_FACES[:, ::-1]) == pytest.approx(-1.0)


def test_outward_faces_flip_inward_windings_only() -> None:
    cube, faces = UNIT_CUBE_VERTICES, UNIT_CUBE_FACES
    np.testing.assert_array_equal(outward_faces(cube, faces), faces)
    np.testing.assert_array_equal(outward_faces(cube, faces[:, ::-1]), faces)


def test_extreme_vertex_searches_only_the_masked_vertices() -> None:
    vertices = np.array([[0.0, 5.0, 0.0], [0.0, 1.0, 0.0], [0.0, 2.0, 0.0]])
    mask = np.array([False, True, True])
    assert extreme_vertex(vertices, mask, [0.0, 1.0, 0.0]) == 2
    assert extreme_vertex(vertices, mask, [0.0, -1.0, 0.0]) == 1
    with pytest.raises(ValueError, match="no vertex"):
        extreme_vertex(vertices, np.zeros(3, dtype=bool), [1.0, 0.0, 0.0])


def test_npz_is_byte_identical_across_writes_and_loads_back(tmp_path: Path) -> None:
    arrays = {"b": np.arange(6.0).reshape(2, 3), "a": np.array("text"), "c": np.array([1, 2])}
    save_npz_deterministic(tmp_path / "one.npz", arrays)
    save_npz_deterministic(tmp_path / "two.npz", arrays)
    assert (tmp_path / "one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    with np.load(tmp_path / "one.npz") as loaded:
        assert list(loaded.keys()) == ["b", "a", "c"]
        for name, array in arrays.items():
            np.testing.assert_array_equal(loaded[name], array)


# --- the committed asset ---------------------------------------------------------------------
def _check_contract(path: Path) -> dict[str, np.ndarray]:
    """The arrays smplx and the project read, with the shapes, dtypes and invariants promised."""
    with np.load(path) as file:
        arrays = dict(file)
    V = arrays["v_template"].shape[0]
    expected = {
        "v_template": ((V, 3), np.float32),
        "shapedirs": ((V, 3, NUM_BETAS), np.float32),
        "posedirs": ((V, 3, NUM_POSE_CORRECTIVES), np.float32),
        "J_regressor": ((NUM_JOINTS, V), np.float32),
        "weights": ((V, NUM_JOINTS), np.float32),
        "kintree_table": ((2, NUM_JOINTS), np.int64),
    }
    for name, (shape, dtype) in expected.items():
        assert arrays[name].shape == shape, name
        assert arrays[name].dtype == dtype, name
    assert arrays["f"].dtype == np.int64
    assert arrays["f"].shape[1] == 3
    assert not arrays["posedirs"].any()
    np.testing.assert_array_equal(arrays["kintree_table"][0, 1:], SMPL_PARENTS[1:])
    np.testing.assert_array_equal(arrays["kintree_table"][1], np.arange(NUM_JOINTS))
    for name in ("J_regressor", "weights"):
        assert arrays[name].min() >= 0.0
    np.testing.assert_allclose(arrays["J_regressor"].sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(arrays["weights"].sum(1), 1.0, atol=1e-5)
    assert signed_volume(arrays["v_template"].astype(np.float64), arrays["f"]) > 0
    assert len(arrays["landmark_names"]) == len(arrays["landmark_vertex_ids"])
    return arrays


@pytest.mark.skipif(not ASSET.is_file(), reason="the stand-in asset is not built")
def test_committed_asset_meets_the_contract() -> None:
    arrays = _check_contract(ASSET)
    meta = json.loads(str(arrays["meta_json"]))
    assert "Apache-2.0" in meta["licence"]
    assert "CC0" in meta["licence"]
    assert 1.6 <= meta["height_beta0_m"] <= 1.85
    assert meta["explained_variance"] == sorted(meta["explained_variance"], reverse=True)
    assert ASSET.stat().st_size < 5_000_000


@pytest.mark.slow
def test_rebuild_from_anny(tmp_path: Path) -> None:
    pytest.importorskip("anny")
    from training.body.standin_builder import build_standin

    out = tmp_path / "standin.npz"
    meta = build_standin(out, seed=1, num_samples=40, progress=False)
    arrays = _check_contract(out)
    assert arrays["v_template"].shape[0] == meta["num_vertices"] == 13718
    assert 1.6 <= meta["height_beta0_m"] <= 1.85
    assert meta["explained_variance_total"] > 0.99
    again = tmp_path / "again.npz"
    build_standin(again, seed=1, num_samples=40, progress=False)
    assert out.read_bytes() == again.read_bytes()


@pytest.mark.slow
def test_the_committed_standin_rebuilds_byte_for_byte(tmp_path: Path) -> None:
    pytest.importorskip("anny")
    from training.body.standin_builder import build_standin

    committed = json.loads(str(np.load(ASSET)["meta_json"]))
    out = tmp_path / "standin.npz"
    build_standin(out, seed=committed["seed"], num_samples=committed["num_samples"], progress=False)
    assert out.read_bytes() == ASSET.read_bytes()
