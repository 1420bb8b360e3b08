"""Fixed batch sizes (service.fixed_batches) on real onnxruntime sessions of a real bundle, on
the CPU: a GPU is what they are for, and none is here, so the sessions are wrapped on request
(``fixed_batches=True``) rather than by the CUDA provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.bundle import Bundle, load_bundle
from service.fixed_batches import GPU_BATCH_SIZES, FixedBatchSession, GraphSession, padded_size
from service.pipeline.run import PipelineConfig, process_video
from tests.support.walkers import write_walkers_video

WALKER_FRAMES = 12


class Recording:
    """A real session that notes each run's batch size."""

    def __init__(self, session: GraphSession) -> None:
        self.session = session
        self.batches: list[int] = []

    def run(self, output_names: Sequence[str] | None, input_feed: Mapping[str, Any]) -> list[Any]:
        self.batches.append(len(next(iter(input_feed.values()))))
        return self.session.run(output_names, input_feed)

    def __getattr__(self, name: str) -> Any:  # the rest as the session's own
        return getattr(self.session, name)


@pytest.fixture(scope="module")
def bundle(service_bundle_dir: Path) -> Bundle:
    return load_bundle(service_bundle_dir)


SIZES_FOR = [(1, 1), (2, 4), (4, 4), (5, 16), (16, 16), (17, 64), (64, 64), (65, 128), (129, 192)]


@pytest.mark.parametrize(("count", "size"), SIZES_FOR)
def test_a_batch_takes_the_smallest_size_that_holds_it(count: int, size: int) -> None:
    assert padded_size(count, GPU_BATCH_SIZES) == size


def test_padded_runs_give_the_rows_asked_for_and_meet_only_the_fixed_sizes(bundle) -> None:
    plain = bundle.session("body")
    recording = Recording(bundle.session("body"))
    fixed = FixedBatchSession(recording)
    rng = np.random.default_rng(0)
    for count in (1, 2, 3, 5, 17, 70):
        rotmat = np.linalg.qr(rng.standard_normal((count, 24, 3, 3)))[0].astype(np.float32)
        feed = {"rotmat": rotmat, "betas": rng.standard_normal((count, 10)).astype(np.float32)}
        expected = plain.run(None, feed)
        got = fixed.run(None, feed)
        assert [value.shape for value in got] == [value.shape for value in expected]
        for value, reference in zip(got, expected, strict=True):
            np.testing.assert_allclose(value, reference, atol=1e-5)
    assert recording.batches == [1, 4, 4, 16, 64, 128]


@pytest.mark.parametrize("graph", ["detector", "keypoints", "temporal"])
def test_every_graph_gives_the_same_rows_padded(bundle, graph: Any) -> None:
    dims = {"window": bundle.manifest.window.length}
    plain = bundle.session(graph) if graph == "temporal" else bundle.frontend_session(graph)
    rng = np.random.default_rng(1)
    feed = {
        spec.name: rng.random([3, *[dims.get(d, d) for d in spec.shape[1:]]]).astype(np.float32)
        for spec in plain.get_inputs()
    }
    got = FixedBatchSession(plain).run(None, feed)
    for value, reference in zip(got, plain.run(None, feed), strict=True):
        np.testing.assert_allclose(value, reference, rtol=1e-4, atol=1e-4)


def test_inputs_of_different_batch_sizes_are_refused(bundle) -> None:
    fixed = FixedBatchSession(bundle.session("body"))
    feed = {"rotmat": np.zeros((2, 24, 3, 3), np.float32), "betas": np.zeros((3, 10), np.float32)}
    with pytest.raises(ValueError, match="different batch sizes"):
        fixed.run(None, feed)


def test_warm_up_meets_each_size_once_with_the_window_it_is_told(bundle) -> None:
    recording = Recording(bundle.session("temporal"))
    FixedBatchSession(recording).warm_up({"window": bundle.manifest.window.length})
    assert recording.batches == list(GPU_BATCH_SIZES)
    with pytest.raises(ValueError, match="'window'"):
        FixedBatchSession(bundle.session("temporal")).warm_up({})


def test_sessions_on_the_cpu_are_used_as_they_are_unless_asked(bundle) -> None:
    plain = bundle.sessions(providers=["CPUExecutionProvider"])
    assert not isinstance(plain.keypoints, FixedBatchSession)
    assert not isinstance(plain.temporal, FixedBatchSession)
    fixed = bundle.sessions(providers=["CPUExecutionProvider"], fixed_batches=True)
    graphs = (fixed.temporal, fixed.body, fixed.detector, fixed.keypoints)
    assert all(isinstance(session, FixedBatchSession) for session in graphs)


@pytest.mark.slow  # 15 s: two pipelines, the padded one 4× the CPU's work
def test_a_video_comes_out_the_same_with_fixed_batches(bundle, tmp_path) -> None:
    video = write_walkers_video(tmp_path / "walkers.mp4", WALKER_FRAMES)
    config = PipelineConfig()
    plain = process_video(video, bundle, config, sessions=bundle.sessions(threads=1))
    fixed_sessions = bundle.sessions(threads=1, fixed_batches=True)
    fixed_sessions.warm_up(bundle.manifest.window.length)
    fixed = process_video(video, bundle, config, sessions=fixed_sessions)
    assert plain.result.tracks, "the walkers were found"
    assert len(fixed.result.tracks) == len(plain.result.tracks)
    for got, expected in zip(fixed.result.tracks, plain.result.tracks, strict=True):
        np.testing.assert_array_equal(got.frame_ids, expected.frame_ids)
        np.testing.assert_allclose(got.boxes, expected.boxes, atol=1e-3)
        np.testing.assert_allclose(got.pose, expected.pose, atol=1e-4)
        np.testing.assert_allclose(got.betas, expected.betas, atol=1e-4)
