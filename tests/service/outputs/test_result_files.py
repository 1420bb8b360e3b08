"""result.json and result.npz: what they hold, the JSON schema, the NPZ round trip, the NPZ's
vertices posed block by block, or left out, and the keypoint model's landmarks in both."""

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
    SCHEMA_VERSION,
    VERTICES_KEY,
    ResultDocument,
    read_result_npz,
    write_result_json,
    write_result_npz,
)
from service.pipeline.body import DEFAULT_BATCH_SIZE, MeshVertices
from service.pipeline.landmarks import LANDMARK_NAMES
from service.pipeline.result import VideoResult

VIBE_KEYS = {"frame_ids", "pred_cam", "orig_cam", "pose", "betas", "joints3d", "joints2d"}
# Rounded as pixels (the landmarks' x and y; their visibility finer: see its own test).
PIXEL_KEYS = {"boxes_xyxy", "joints2d", "landmarks"}
LANDMARK_KEYS = {"landmarks", "world_landmarks", "keypoint_score"}
XY = slice(0, 2)  # a landmark's pixel coordinates; its visibility follows
PER_FRAME_FIELDS = set(PER_FRAME_KEYS.values()) - {"frame_ids"}  # TrackResult's (N, ...) arrays


def test_npz_round_trips_exactly(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    back = read_result_npz(write_result_npz(video_result, tmp_path / "result.npz", pose))
    for field in ("width", "height", "fps", "frame_count", "bundle_recipe", "landmark_names"):
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


def test_npz_vertices_are_posed_once_a_frame_alone(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices
) -> None:
    """A long track: the body is asked for one frame at a time, once each (as the meshes and
    the gateway pose them), and the file holds every frame's vertices as the body poses them,
    float32 (VIBE's ``verts``); the rows waiting on disk are gone afterwards."""
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
    assert asked == [1] * frames
    assert sorted(tmp_path.iterdir()) == [path]
    with np.load(path, allow_pickle=False) as npz:
        vertices = npz["track_001/verts"]
    assert vertices.dtype == np.float32
    assert vertices.shape == (frames, *short.rest_vertices.shape)
    np.testing.assert_allclose(vertices, pose(long.rotmat, long.betas), rtol=0, atol=1e-6)


def test_npz_round_trips_the_landmarks(tmp_path: Path, video_result: VideoResult) -> None:
    path = write_result_npz(video_result, tmp_path / "result.npz")
    with np.load(path, allow_pickle=False) as npz:
        assert npz["landmark_names"].tolist() == list(LANDMARK_NAMES)
        assert {key.split("/", 1)[1] for key in npz if key.startswith("track_001/")} >= (
            LANDMARK_KEYS
        )
        assert npz["track_001/landmarks"].dtype == np.float32
    back = read_result_npz(path)
    assert back.landmark_names == LANDMARK_NAMES
    for got, want in zip(back.tracks, video_result.tracks, strict=True):
        for field in LANDMARK_KEYS:
            np.testing.assert_array_equal(getattr(got, field), getattr(want, field), field)


@pytest.mark.parametrize("version", [1, 99])
def test_npz_of_another_schema_is_refused(
    tmp_path: Path, video_result: VideoResult, pose: MeshVertices, version: int
) -> None:
    """Version 1 (before the landmarks) too: it lacks what this reader gives back."""
    path = write_result_npz(video_result, tmp_path / "result.npz", pose)
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["schema_version"] = np.array(version)
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=f"schema {version}, this reader reads {SCHEMA_VERSION}"):
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
            assert_rounded(getattr(track, key), getattr(want, field), decimals, key)


def assert_rounded(got: object, want: np.ndarray, decimals: int, what: str) -> None:
    """``got`` is ``want`` rounded to ``decimals``."""
    np.testing.assert_allclose(
        np.asarray(got, dtype=np.float64), want, rtol=0, atol=0.5 * 10.0**-decimals + 1e-9,
        err_msg=what,
    )  # fmt: skip


def test_json_holds_the_landmarks_rounded(tmp_path: Path, video_result: VideoResult) -> None:
    """Pixels to a thousandth of a pixel; visibility, metres and score to a millionth."""
    path = write_result_json(video_result, tmp_path / "result.json")
    document = ResultDocument.model_validate_json(path.read_text())
    assert document.schema_version == SCHEMA_VERSION
    assert document.landmark_names == list(LANDMARK_NAMES)
    for track, want in zip(document.tracks, video_result.tracks, strict=True):
        assert None not in track.landmarks  # every frame seen
        landmarks = np.asarray(track.landmarks, dtype=np.float64)
        assert landmarks.shape == want.landmarks.shape == (len(want), len(LANDMARK_NAMES), 3)
        assert_rounded(landmarks[..., XY], want.landmarks[..., XY], PIXEL_DECIMALS, "x, y")
        assert_rounded(landmarks[..., 2], want.landmarks[..., 2], DECIMALS, "visibility")
        assert_rounded(track.world_landmarks, want.world_landmarks, DECIMALS, "world")
        assert_rounded(track.keypoint_score, want.keypoint_score, DECIMALS, "score")
    # A thousandth of a pixel, not a millionth: pixel columns carry 3 decimals at most.
    raw = json.loads(path.read_text())
    xy = np.asarray(raw["tracks"][0]["landmarks"])[..., XY]
    np.testing.assert_array_equal(xy, np.round(xy, PIXEL_DECIMALS))


def test_json_holds_null_for_a_frame_the_keypoint_model_did_not_see(
    tmp_path: Path, video_result: VideoResult
) -> None:
    """A frame the tracker bridged has NaN landmarks in the result; JSON has no NaN, and the
    file still validates against its own schema."""
    first = video_result.tracks[0]
    landmarks, world = first.landmarks.copy(), first.world_landmarks.copy()
    landmarks[1, :, :2], world[1] = np.nan, np.nan
    bridged = dataclasses.replace(first, landmarks=landmarks, world_landmarks=world)
    video = dataclasses.replace(video_result, tracks=(bridged, *video_result.tracks[1:]))
    path = write_result_json(video, tmp_path / "result.json")
    document = ResultDocument.model_validate_json(path.read_text())
    track = document.tracks[0]
    assert track.landmarks[1] is None
    assert track.world_landmarks[1] is None
    assert track.landmarks[0] is not None
    assert track.world_landmarks[0] is not None
    assert "NaN" not in path.read_text()


def test_schema_lists_the_landmark_names_in_order() -> None:
    """The JSON schema (what the gateway's documentation shows) names all 33, numbered."""
    schema = ResultDocument.model_json_schema()
    names = schema["properties"]["landmark_names"]
    assert (names["minItems"], names["maxItems"]) == (len(LANDMARK_NAMES), len(LANDMARK_NAMES))
    assert names["examples"] == [list(LANDMARK_NAMES)]
    listed = ", ".join(f"{index} {name}" for index, name in enumerate(LANDMARK_NAMES))
    assert listed in names["description"]
    track = schema["$defs"]["TrackDocument"]["properties"]
    for key in LANDMARK_KEYS:
        assert key in track
        assert key in schema["$defs"]["TrackDocument"]["required"]
    assert "landmark_names" in track["landmarks"]["description"]
    assert "metres" in track["world_landmarks"]["description"]


def test_json_of_schema_1_is_refused(tmp_path: Path, video_result: VideoResult) -> None:
    raw = json.loads(write_result_json(video_result, tmp_path / "result.json").read_text())
    raw["schema_version"] = 1
    with pytest.raises(pydantic.ValidationError, match="schema_version"):
        ResultDocument.model_validate(raw)


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
