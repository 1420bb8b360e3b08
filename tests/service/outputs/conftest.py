"""Fixtures of the outputs' tests: the stand-in body (and it posing vertices), a small result
made with it and a video it belongs to (:mod:`tests.support.video_results`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.pipeline.body import MeshVertices
from service.pipeline.result import VideoResult
from tests.support.video_results import make_video_result, torch_mesh_vertices, write_grey_video
from training.body import BodyModel, load_body_model


@pytest.fixture(scope="session")
def body_model() -> BodyModel:
    return load_body_model("standin")


@pytest.fixture(scope="session")
def pose(body_model: BodyModel) -> MeshVertices:
    """The body model posing rotations and β into vertices, as the outputs ask."""
    return torch_mesh_vertices(body_model)


@pytest.fixture(scope="session")
def video_result(body_model: BodyModel) -> VideoResult:
    return make_video_result(body_model)


@pytest.fixture(scope="session")
def video_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_grey_video(tmp_path_factory.mktemp("video") / "input.avi")
