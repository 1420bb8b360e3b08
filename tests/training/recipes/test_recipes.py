"""Recipes: every built-in one validates, ablations change one switch, bad files fail clearly."""

from __future__ import annotations

import pytest

from training.recipes import list_recipes, load_recipe

ABLATIONS = {
    # recipe: (its base, the model or loss fields that differ)
    "spsnet_no_forecast": ("spsnet_paper", {"model.forecasting", "losses.feature"}),
    "spsnet_no_attention": ("spsnet_paper", {"model.temporal"}),
    "spsnet_gru": ("spsnet_paper", {"model.temporal"}),
    "spsnet_no_camera_loss": ("spsnet_paper", {"losses.camera"}),
    "spsnet_no_mask_loss": ("spsnet_paper", {"losses.mask"}),
    "spsnet_no_adversarial_loss": ("spsnet_paper", {"losses.adversarial"}),
    "spsnet_no_param_loss": (
        "spsnet_paper",
        {"losses.param_pose", "losses.param_shape", "losses.param_camera"},
    ),
    "maed_iterative": ("maed_paper", {"model.decoder"}),
    "maed_series": ("maed_paper", {"model.block"}),
    "maed_coupling": ("maed_paper", {"model.block"}),
    "maed_spatial": ("maed_paper", {"model.block"}),
    "maed_parallel_v1": ("maed_paper", {"model.attentive_addition"}),
    "maed_ktd_random": ("maed_paper", {"model.kinematic_tree"}),
    "maed_ktd_reversed": ("maed_paper", {"model.kinematic_tree"}),
}


def flat(recipe_name: str) -> dict[str, object]:
    recipe = load_recipe(recipe_name)
    fields = {f"model.{k}": v for k, v in recipe.model.model_dump().items()}
    fields.update({f"losses.{k}": v for k, v in recipe.losses.model_dump().items()})
    return fields


@pytest.mark.parametrize("name", list_recipes())
def test_every_builtin_recipe_validates_and_cites_its_source(name):
    recipe = load_recipe(name)
    assert recipe.name == name
    assert recipe.source
    assert recipe.reported is not None
    assert recipe.reported.source


@pytest.mark.parametrize(("name", "expected"), ABLATIONS.items())
def test_each_ablation_is_its_base_with_one_switch(name, expected):
    base, switches = expected
    ours, theirs = flat(name), flat(base)
    assert {key for key in ours if ours[key] != theirs[key]} == switches


# Recipes that are not one switch away from a paper recipe: the papers' own and their stages.
BASE_RECIPES = {"spsnet_paper", "maed_paper", "maed_stage1", "maed_stage2"}
CPU_RECIPES = {"spsnet_cpu", "spsnet_frame_cpu", "spsnet_image_cpu", "maed_cpu", "maed_spatial_cpu"}
# The keypoint families and their frame-only baselines.
KEYPOINT_RECIPES = {
    "spsnet_keypoints", "spsnet_keypoints_frame", "spsnet_keypoints_single",
    "maed_keypoints", "maed_keypoints_frame", "maed_keypoints_single",
}  # fmt: skip


# Variants of spsnet_keypoints and of its single-frame model: (base, what differs but the
# name, the source, the run they start from).
KEYPOINT_VARIANTS = {
    "spsnet_keypoints_2d": ("spsnet_keypoints", {"model.landmark_world"}),
    "spsnet_keypoints_2d_single": ("spsnet_keypoints_single", {"model.landmark_world"}),
    "spsnet_keypoints_measured": ("spsnet_keypoints", {"data.world_axes", "data.noise"}),
    "spsnet_keypoints_measured_single": (
        "spsnet_keypoints_single", {"data.world_axes", "data.noise"}
    ),
    # fine-tuned from its base's run, on recorded front-end output beside its synthetic clips
    "spsnet_keypoints_recorded": ("spsnet_keypoints", {
        "data.world_axes", "data.recorded", "data.recorded_val", "data.recorded_share",
        "training.epochs", "training.lr_milestones",  # its rate is its base's, 1e-4
    }),
}  # fmt: skip


def test_every_recipe_is_a_base_or_a_listed_ablation():
    assert set(list_recipes()) == (
        set(ABLATIONS) | BASE_RECIPES | CPU_RECIPES | KEYPOINT_RECIPES | set(KEYPOINT_VARIANTS)
    )


@pytest.mark.parametrize(("name", "expected"), KEYPOINT_VARIANTS.items())
def test_each_keypoint_variant_is_its_base_with_its_switches(name, expected):
    base, switches = expected
    ours, theirs = load_recipe(name), load_recipe(base)
    differ = {
        f"{section}.{key}"
        for section in ("model", "losses", "data", "training")
        for key, value in getattr(ours, section).model_dump().items()
        if value != getattr(theirs, section).model_dump()[key]
    }
    assert differ - {"training.init_from"} == switches
    # a video model starts from its own single-frame one, a fine-tuned one from its base
    if ours.training.init_from is not None:
        assert ours.training.init_from in (f"runs/{name}_single/best.pt", f"runs/{base}/best.pt")


@pytest.mark.parametrize(
    ("baseline", "temporal", "switches"),
    [
        (
            "spsnet_keypoints_frame",
            "spsnet_keypoints",
            {"model.temporal", "model.forecasting", "losses.feature", "losses.camera",
             "losses.adversarial"},
        ),
        ("maed_keypoints_frame", "maed_keypoints", {"model.block"}),
    ],
)  # fmt: skip
def test_a_keypoint_baseline_differs_from_its_family_only_by_its_temporal_parts(
    baseline: str, temporal: str, switches: set[str]
) -> None:
    ours, theirs = flat(baseline), flat(temporal)
    assert {key for key in ours if ours[key] != theirs[key]} == switches
    assert load_recipe(baseline).data == load_recipe(temporal).data
    assert load_recipe(baseline).training == load_recipe(temporal).training


def test_a_recipe_of_another_kind_of_data_replaces_the_data_it_extends():
    data = load_recipe("spsnet_keypoints").data
    assert data is not None
    assert data.kind == "landmarks"  # not merged with spsnet_paper's dataset files


def test_the_frame_baseline_differs_from_spsnet_cpu_only_by_its_temporal_modules():
    ours, theirs = flat("spsnet_frame_cpu"), flat("spsnet_cpu")
    assert {key for key in ours if ours[key] != theirs[key]} == {
        "model.temporal", "model.forecasting", "losses.feature", "losses.camera"
    }  # fmt: skip


def test_the_two_maed_stages_follow_section_4_2():
    first, second = load_recipe("maed_stage1").training, load_recipe("maed_stage2").training
    assert (first.clip_length, first.batch_size, first.epochs) == (1, 512, 100)
    assert (second.clip_length, second.clip_stride, second.batch_size) == (16, 8, 32)
    assert first.lr == second.lr == 1e-4
    assert first.lr_milestones == second.lr_milestones == (60, 90)


def test_spsnet_paper_weights_are_section_4_1s():
    losses = load_recipe("spsnet_paper").losses
    # SPS-Net §4.1: λβ 0.06, λθ 60, λ3D 300, λ2D 300, λadv 2, λfeature 1, λmask 300,
    # λcamera 0.1, λparam β 0.06, θ 60, camera 0.1
    assert (losses.shape, losses.pose, losses.joints_3d, losses.keypoints_2d) == (
        0.06,
        60,
        300,
        300,
    )
    assert (losses.adversarial, losses.feature, losses.mask, losses.camera) == (2, 1, 300, 0.1)
    assert (losses.param_shape, losses.param_pose, losses.param_camera) == (0.06, 60, 0.1)
    assert losses.norm == 0


def test_reported_figures_are_not_inherited():
    assert load_recipe("spsnet_paper").reported.parameters_m == 51.43
    assert load_recipe("spsnet_no_mask_loss").reported.parameters_m is None


def test_bad_recipes_fail_with_the_field_named(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: typo\nsource: test\nmodel: {family: spsnet, forcasting: false}\n")
    with pytest.raises(ValueError, match=r"typo\.yaml: model\.spsnet\.forcasting: Extra") as error:
        load_recipe(typo)
    assert "\n" not in str(error.value)
    wrong_family = tmp_path / "family.yaml"
    wrong_family.write_text("name: f\nsource: test\nmodel: {family: vibe}\n")
    with pytest.raises(ValueError, match="family"):
        load_recipe(wrong_family)
    with pytest.raises(LookupError, match="spsnet_paper"):
        load_recipe("spsnet_papr")


@pytest.mark.parametrize("family", ["spsnet", "maed"])
def test_a_keypoint_family_starts_from_its_single_frame_model(family: str) -> None:
    single = load_recipe(f"{family}_keypoints_single")
    assert single.training.clip_length == 1
    assert single.training.init_from is None
    for name in (f"{family}_keypoints", f"{family}_keypoints_frame"):
        assert load_recipe(name).training.init_from == f"runs/{single.name}/best.pt"
