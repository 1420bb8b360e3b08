"""``make frontend`` from scratch into a temporary folder: its parity figures hold and its
graphs compute what the committed ones compute (slow: npm packages of ~185 MB, a build
environment of ~1.6 GB the first time, then about a minute)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.export.test_frontend_models import (
    DETECTOR_TOLERANCE,
    FRONTEND,
    GRAPHS,
    LANDMARK_XY_TOLERANCE_PX,
    graph_inputs,
    images_of,
    load_record,
    load_reference,
    run,
    session,
)

REPO = Path(__file__).resolve().parents[2]
# Installing the build environment the first time takes most of it.
MAKE_TIMEOUT_S = 3600
# The same converters on the same sources: the graphs agree to float rounding.
SAME_GRAPH_TOLERANCE = 1e-5


@pytest.mark.slow
@pytest.mark.timeout(MAKE_TIMEOUT_S)
def test_make_frontend_reproduces_the_committed_models(tmp_path: Path) -> None:
    subprocess.run(
        ["make", "frontend", f"FRONTEND_OUT={tmp_path}"],
        cwd=REPO,
        check=True,
        timeout=MAKE_TIMEOUT_S,
    )
    record = load_record(tmp_path)
    parity = record["parity"]
    assert max(parity["detector"]["max_abs_difference"].values()) <= DETECTOR_TOLERANCE
    assert parity["keypoints"]["landmarks_xy_max_abs_difference_px"] <= LANDMARK_XY_TOLERANCE_PX

    committed = load_record()
    reference = load_reference()
    for graph in GRAPHS:
        assert record[graph]["inputs"] == committed[graph]["inputs"]
        assert record[graph]["outputs"] == committed[graph]["outputs"]
        inputs = graph_inputs(graph, images_of(graph, reference), committed)
        new = run(session(tmp_path, graph), inputs)
        old = run(session(FRONTEND, graph), inputs)
        for name, value in old.items():
            assert np.abs(new[name] - value).max() <= SAME_GRAPH_TOLERANCE, (graph, name)
