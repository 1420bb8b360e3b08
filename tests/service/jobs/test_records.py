"""Job options: what a user asks for, and what a worker stores for it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.jobs import JobOptions


@pytest.mark.parametrize(
    ("asked", "stored"),
    [
        (["json", "obj"], ["json", "npz"]),  # meshes per frame come from result.npz
        (["ply", "npz", "glb"], ["npz", "glb"]),
        (["preview"], ["preview"]),
    ],
)
def test_meshes_per_frame_are_stored_as_the_npz_they_are_built_from(asked, stored) -> None:
    assert JobOptions(formats=asked).stored_formats == stored


def test_formats_are_known_and_some() -> None:
    with pytest.raises(ValidationError):
        JobOptions(formats=[])
    with pytest.raises(ValidationError):
        JobOptions(formats=["fbx"])
