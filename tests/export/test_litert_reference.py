"""BlazePose's original .tflite, fetched from its pinned npm package, against the converted
graph on the same crops: `meshcast bench frontend --litert` over real runtimes (onnxruntime,
LiteRT) and the committed clip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from export.frontend.fetch_tflite import main as fetch_tflite

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "meshcast" / "assets" / "vtest_clip.mp4"
# The same model on two runtimes: their landmarks agree to hundredths of a crop pixel
# (export/frontend/record.json: 5.3e-4 px against TFLite's own interpreter).
MAX_LANDMARK_DIFFERENCE_PX = 0.05


@pytest.fixture(scope="module")
def tflite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fetch_tflite(tmp_path_factory.mktemp("reference"))  # npm pack, hashes checked


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "meshcast", "bench", "frontend", str(CLIP), *args],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip


# A benchmark, and an npm download: make test-slow.
@pytest.mark.slow
def test_the_keypoint_model_is_timed_against_its_original_runtime(
    tflite: Path, service_bundle_dir: Path
) -> None:
    result = bench("--bundle", str(service_bundle_dir), "--frames", "3", "--litert", str(tflite))
    assert result.returncode == 0, result.stderr[-2000:]
    runtimes = json.loads(result.stdout)["runtimes"]
    assert runtimes["crops"] >= 3  # the clip's walkers, three frames
    for name in ("onnxruntime_batched", "onnxruntime", "litert"):
        assert runtimes[f"{name}_ms_per_crop"] > 0
    assert runtimes["litert_over_onnxruntime"] > 0  # a measured ratio (README), not a bound
    assert runtimes["largest_landmark_difference_px"] < MAX_LANDMARK_DIFFERENCE_PX


def test_a_missing_tflite_says_how_to_fetch_it(service_bundle_dir: Path, tmp_path: Path) -> None:
    result = bench("--bundle", str(service_bundle_dir), "--frames", "1", "--litert",
                   str(tmp_path / "none.tflite"))  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"meshcast: error: no .tflite at {tmp_path / 'none.tflite'}: `make blazepose-tflite` "
        "fetches it"
    )
