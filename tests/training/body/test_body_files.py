"""SMPL-format files: .npz, official-style .pkl with chumpy objects (read without chumpy),
and the error a user gets when the licensed file is missing."""

from __future__ import annotations

import pickle
import sys
import types

import numpy as np
import pytest
import torch
from scipy import sparse

from training.body import STANDIN_PATH, SMPLFileMissingError, load_body_model
from training.body.files import BodyModelFileError, find_smpl_file, read_body_file


@pytest.fixture(scope="module")
def standin_arrays() -> dict[str, np.ndarray]:
    with np.load(STANDIN_PATH) as data:
        return {key: data[key] for key in data.files}


def write_chumpy_pickle(path, arrays: dict[str, np.ndarray], monkeypatch) -> None:
    """Write ``arrays`` the way the official SMPL files are: v_template and shapedirs as
    chumpy ``Ch`` objects, weights as a chumpy ``Select``, J_regressor as a scipy sparse
    matrix, the rest as arrays. Fake chumpy modules exist only while pickling."""
    chumpy = types.ModuleType("chumpy")
    ch_module = types.ModuleType("chumpy.ch")
    reordering = types.ModuleType("chumpy.reordering")
    Ch = type("Ch", (), {"__module__": "chumpy.ch"})
    Select = type("Select", (), {"__module__": "chumpy.reordering"})
    ch_module.Ch, reordering.Select = Ch, Select
    for name, module in (("chumpy", chumpy), ("chumpy.ch", ch_module),
                         ("chumpy.reordering", reordering)):  # fmt: skip
        monkeypatch.setitem(sys.modules, name, module)

    def as_ch(array: np.ndarray) -> object:
        wrapped = Ch()
        wrapped.__dict__.update({"x": array, "_dirty_vars": set()})
        return wrapped

    weights = arrays["weights"]
    selected = Select()
    selected.__dict__.update({
        "a": as_ch(weights.ravel()[::-1].copy()),  # a Select picks entries of another array
        "idxs": np.arange(weights.size)[::-1].copy(),
        "preferred_shape": weights.shape,
    })  # fmt: skip
    contents = {
        **{key: arrays[key] for key in ("posedirs", "kintree_table", "f",
                                         "landmark_names", "landmark_vertex_ids")},
        "v_template": as_ch(arrays["v_template"]),
        "shapedirs": as_ch(arrays["shapedirs"]),
        "weights": selected,
        "J_regressor": sparse.csc_matrix(arrays["J_regressor"]),
        "bs_style": "lbs",
    }  # fmt: skip
    with path.open("wb") as stream:
        pickle.dump(contents, stream, protocol=2)
    monkeypatch.delitem(sys.modules, "chumpy")
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy.reordering")


def test_pickle_with_chumpy_objects_reads_without_chumpy(tmp_path, monkeypatch, standin_arrays):
    path = tmp_path / "SMPL_NEUTRAL.pkl"
    write_chumpy_pickle(path, standin_arrays, monkeypatch)
    assert "chumpy" not in sys.modules
    arrays = read_body_file(path)
    for key in ("v_template", "shapedirs", "weights", "J_regressor"):
        assert isinstance(arrays[key], np.ndarray)
        np.testing.assert_array_equal(arrays[key], standin_arrays[key])


def test_a_body_from_pkl_or_npz_equals_the_standin(tmp_path, monkeypatch, standin_arrays):
    pkl, npz = tmp_path / "body.pkl", tmp_path / "body.npz"
    write_chumpy_pickle(pkl, standin_arrays, monkeypatch)
    np.savez(npz, **standin_arrays)
    pose = 0.3 * torch.randn(2, 72, generator=torch.Generator().manual_seed(0))
    betas = torch.ones(2, 10)
    expected = load_body_model("standin")(pose, betas).vertices
    for path in (pkl, npz):
        torch.testing.assert_close(load_body_model(path)(pose, betas).vertices, expected)


def test_missing_smpl_says_what_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHCAST_SMPL_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(SMPLFileMissingError) as caught:
        load_body_model("smpl")
    message = str(caught.value)
    assert "SMPL_NEUTRAL.pkl" in message
    assert "smpl.is.tue.mpg.de" in message
    assert "MESHCAST_SMPL_DIR" in message
    assert str(tmp_path / "nowhere") in message
    assert "\n" not in message  # one line


def test_smpl_is_found_through_the_environment(tmp_path, monkeypatch, standin_arrays):
    monkeypatch.setenv("MESHCAST_SMPL_DIR", str(tmp_path))
    np.savez(tmp_path / "SMPL_NEUTRAL.npz", **standin_arrays)
    assert find_smpl_file() == tmp_path / "SMPL_NEUTRAL.npz"
    assert load_body_model("smpl").name == "smpl"


def test_unusable_files_are_named_errors(tmp_path, standin_arrays):
    wrong_suffix = tmp_path / "body.obj"
    wrong_suffix.write_text("v 0 0 0\n")
    with pytest.raises(BodyModelFileError, match=r"\.pkl or \.npz"):
        read_body_file(wrong_suffix)
    partial = tmp_path / "partial.npz"
    np.savez(partial, v_template=standin_arrays["v_template"])
    with pytest.raises(BodyModelFileError, match="lacks shapedirs"):
        read_body_file(partial)
    wrong_tree = tmp_path / "tree.npz"
    kintree = standin_arrays["kintree_table"].copy()
    kintree[0, 5] = 3
    np.savez(wrong_tree, **{**standin_arrays, "kintree_table": kintree})
    with pytest.raises(BodyModelFileError, match="kinematic tree"):
        load_body_model(wrong_tree)


def test_an_explicit_missing_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no body model file at .*absent\.npz"):
        load_body_model(tmp_path / "absent.npz")
