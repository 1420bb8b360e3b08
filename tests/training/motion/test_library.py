"""AMASS-style motion files and the committed built-in clips."""

from __future__ import annotations

import numpy as np
import pytest

from training.motion import (
    convert_deepmimic_clips,
    list_builtin_clips,
    load_builtin_clip,
    read_motion_file,
    write_motion_file,
)
from training.motion.deepmimic import motions_dir


def test_the_fifteen_builtin_clips_load():
    names = list_builtin_clips()
    assert len(names) == 15
    assert {"walk", "run", "jump", "cartwheel", "backflip"} <= set(names)
    walk = load_builtin_clip("walk")
    assert walk.pose.shape == (walk.num_frames, 72)
    assert walk.transl.shape == (walk.num_frames, 3)
    assert walk.fps == pytest.approx(30.0, rel=1e-3)
    assert walk.loop


def test_committed_clips_are_the_conversion_of_the_sources(tmp_path):
    # the assets are rebuilt by `meshcast motion convert`: they must not drift from it
    convert_deepmimic_clips(motions_dir(), tmp_path)
    for name in list_builtin_clips():
        fresh, committed = read_motion_file(tmp_path / f"{name}.npz"), load_builtin_clip(name)
        np.testing.assert_allclose(committed.pose, fresh.pose, atol=1e-6)
        np.testing.assert_allclose(committed.transl, fresh.transl, atol=1e-6)


def test_amass_files_round_trip_and_extra_hand_columns_are_ignored(tmp_path):
    walk = load_builtin_clip("walk")
    write_motion_file(tmp_path / "walk.npz", walk)
    back = read_motion_file(tmp_path / "walk.npz")
    np.testing.assert_array_equal(back.pose, walk.pose)
    smplh = tmp_path / "smplh.npz"
    np.savez(smplh, poses=np.zeros((5, 156)), trans=np.zeros((5, 3)), mocap_framerate=120.0)
    clip = read_motion_file(smplh)
    assert clip.pose.shape == (5, 72)
    assert clip.fps == 120.0


def test_bad_motion_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="no motion file"):
        read_motion_file(tmp_path / "none.npz")
    np.savez(tmp_path / "bad.npz", poses=np.zeros((5, 72)))
    with pytest.raises(ValueError, match="trans, mocap_framerate"):
        read_motion_file(tmp_path / "bad.npz")
    with pytest.raises(KeyError, match="walk"):
        load_builtin_clip("moonwalk")
