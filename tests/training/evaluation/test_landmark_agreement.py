"""The real-video score: a result's projected joints against its own detected landmarks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from service.outputs.result_files import write_result_npz
from service.pipeline.landmarks import VISIBLE
from tests.support.video_results import make_video_result
from training.body import load_body_model
from training.body.landmarks import LIMB_JOINTS
from training.evaluation.landmark_agreement import landmark_agreement

SHIFT = 0.1  # of the box height


@pytest.fixture(scope="module")
def video():  # the tests' result: every limb landmark sits on its joint's projection
    return make_video_result(load_body_model("standin"))


def test_landmarks_on_the_joints_agree_exactly(video, tmp_path: Path) -> None:
    agreement = landmark_agreement(write_result_npz(video, tmp_path / "result.npz"))
    visible = sum(
        int(
            (
                track.landmarks[:, [video.landmark_names.index(n) for n in LIMB_JOINTS], 2]
                >= VISIBLE
            ).sum()
        )
        for track in video.tracks
    )
    assert agreement.points == visible > 0
    assert agreement.median == pytest.approx(0.0, abs=1e-5)
    assert agreement.tracks == len(video.tracks)


def test_a_shift_shows_as_its_share_of_the_box_height(video, tmp_path: Path) -> None:
    tracks = []
    for track in video.tracks:
        heights = track.boxes[:, 3] - track.boxes[:, 1]
        landmarks = track.landmarks.copy()
        landmarks[..., 1] += SHIFT * heights[:, None]
        tracks.append(dataclasses.replace(track, landmarks=landmarks))
    shifted = dataclasses.replace(video, tracks=tuple(tracks))
    agreement = landmark_agreement(write_result_npz(shifted, tmp_path / "result.npz"))
    assert agreement.median == pytest.approx(SHIFT, rel=1e-4)
    assert set(agreement.per_joint_median) <= set(LIMB_JOINTS)
    assert np.isclose(agreement.p90, SHIFT, rtol=1e-4)
