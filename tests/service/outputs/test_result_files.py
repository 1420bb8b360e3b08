"""result.json and result.npz: what they hold, the JSON schema, the NPZ round trip, the NPZ's
vertices posed block by block, or left out."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pydantic
import pytest

from service.outputs.result_files import (
    DECIMALS,
    PER_FRAME_KEYS,
    PIXEL_DECIMALS,
    VERTICES_KEY,
    ResultDocument,
    read_result_npz,
    write_result_json,
    write_result_npz,
)
from service.pipeline.body import DEFAULT_BATCH_SIZE, MeshVertices
from service.pipeline.result import VideoResult

VIBE_KEYS = {"frame_ids", "pred_cam", "orig_cam", "pose", "betas", "joints3d", "joints2d"}
PIXEL_KEYS = {"boxes_xyxy", "joints2d"}
PER_FRAME_FIELDS = set(PER_FRAME_KEYS.values()) - {"frame_ids"}  # TrackResult's (N, ...) arrays


def test_npz_round_trips_exactly(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    back = read_result_npz(write_result_npz(video_result, tmp_path / "result.npz", pose))
    for field in ("width", "height", "fps", "frame_count", "bundle_recipe"):
        assert getattr(back, field) == getattr(video_result, field)
    assert back.body.name == video_result.body.name
    assert back.body.joint_names == video_result.body.joint_names
    for field in ("faces", "parents", "skinning_weights"):
        np.testing.assert_array_equal(getattr(back.body, field), getattr(video_result.body, field))
    assert len(back.tracks) == len(video_result.tracks)
    for got, want in zip(back.tracks, video_result.tracks, strict=True):
        assert (got.track_id, got.score) == (want.track_id, want.score)
        for field in dataclasses.fields(want):
            got_value, want_value = getattr(got, field.name), getattr(want, field.name)
            if isinstance(want_value, np.ndarray):
                np.testing.assert_array_equal(got_value, want_value, err_msg=field.name)


def test_npz_keys_are_vibes_where_they_apply(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    path = write_result_npz(video_result, tmp_path / "result.npz", pose)
    with np.load(path, allow_pickle=False) as npz:
        keys = {key.split("/", 1)[1] for key in npz if key.startswith("track_001/")}
        assert VIBE_KEYS | {"verts"} <= keys
        np.testing.assert_array_equal(npz["track_ids"], [1, 2])
        np.testing.assert_array_equal(npz["track_002/frame_ids"], [1, 2, 4])


def test_npz_without_a_body_holds_the_parameters_alone(
    tmp_path: Path, video_result: VideoResult
) -> None:
    """As the service's workers write it: no posed vertices, and it reads back the same."""
    path = write_result_npz(video_result, tmp_path / "result.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert not [key for key in npz.files if key.endswith(f"/{VERTICES_KEY}")]
    back = read_result_npz(path)
    for got, want in zip(back.tracks, video_result.tracks, strict=True):
        np.testing.assert_array_equal(got.rotmat, want.rotmat)
        np.testing.assert_array_equal(got.betas, want.betas)


def test_npz_vertices_are_posed_block_by_block(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    """A track of 2.5 blocks: the body is asked for one block at a time, and the file holds
    every frame's vertices as the body poses them, float32 (VIBE's ``verts``)."""
    short = video_result.tracks[0]
    frames = 5 * DEFAULT_BATCH_SIZE // 2
    rows = np.arange(frames) % len(short)  # short's frames over and over
    long = dataclasses.replace(
        short,
        **{name: getattr(short, name)[rows] for name in PER_FRAME_FIELDS},
        frame_ids=np.arange(frames),
    )
    asked: list[int] = []

    def counting_pose(rotmat: np.ndarray, betas: np.ndarray) -> np.ndarray:
        asked.append(len(rotmat))
        return pose(rotmat, betas)

    video = dataclasses.replace(video_result, tracks=(long,))
    path = write_result_npz(video, tmp_path / "result.npz", counting_pose)
    assert asked == [DEFAULT_BATCH_SIZE, DEFAULT_BATCH_SIZE, frames - 2 * DEFAULT_BATCH_SIZE]
    with np.load(path, allow_pickle=False) as npz:
        vertices = npz["track_001/verts"]
    assert vertices.dtype == np.float32
    assert vertices.shape == (frames, *short.rest_vertices.shape)
    np.testing.assert_allclose(vertices, pose(long.rotmat, long.betas), rtol=0, atol=1e-6)


def test_npz_of_another_schema_is_refused(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    path = write_result_npz(video_result, tmp_path / "result.npz", pose)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["schema_version"] = np.array(99)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="schema 99"):
        read_result_npz(path)


def test_json_holds_the_parameters_rounded(tmp_path: Path, video_result: VideoResult) -> None:
    path = write_result_json(video_result, tmp_path / "result.json")
    document = ResultDocument.model_validate_json(path.read_text())
    assert document.body.joint_names == list(video_result.body.joint_names)
    assert document.body.vertex_count == len(video_result.tracks[0].rest_vertices)
    for track, want in zip(document.tracks, video_result.tracks, strict=True):
        assert track.track_id == want.track_id
        assert track.frame_ids == want.frame_ids.tolist()
        assert track.detected == want.detected.tolist()
        for key, field in PER_FRAME_KEYS.items():
            decimals = PIXEL_DECIMALS if key in PIXEL_KEYS else DECIMALS
            np.testing.assert_allclose(
                np.asarray(getattr(track, key), dtype=np.float64),
                getattr(want, field),
                atol=0.5 * 10.0**-decimals + 1e-9,
                err_msg=key,
            )


def test_json_has_no_vertices(tmp_path: Path, video_result: VideoResult) -> None:
    raw = json.loads(write_result_json(video_result, tmp_path / "result.json").read_text())
    track_keys = set(raw["tracks"][0])
    assert track_keys >= VIBE_KEYS
    assert not track_keys & {"verts", "vertices", "rest_vertices"}


def test_schema_refuses_a_short_row(tmp_path: Path, video_result: VideoResult) -> None:
    raw = json.loads(write_result_json(video_result, tmp_path / "result.json").read_text())
    raw["tracks"][0]["pose"][0] = raw["tracks"][0]["pose"][0][:-1]  # 71 numbers
    with pytest.raises(pydantic.ValidationError, match="pose"):
        ResultDocument.model_validate(raw)
    raw = json.loads((tmp_path / "result.json").read_text())
    raw["tracks"][0]["betas"].pop()  # a frame short
    with pytest.raises(pydantic.ValidationError, match="betas has 3 rows"):
        ResultDocument.model_validate(raw)
