"""`meshcast bench pipeline`'s looped videos (``--loop``, ``--scale``); the command itself, on a
bundle, is run in test_run.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pytest

from meshcast.bench_pipeline import write_looped_video
from meshcast.commands.bench import parse_size
from service.pipeline.video import probe, read_frames
from tests.support.walkers import FPS, write_walkers_video

CLIP_FRAMES, LOOPS = 6, 3
SCALED = (96, 48)
# Lossy H.264 twice over: the same source frame decodes this close, per pixel on average.
SAME_FRAME_GREYS = 3.0


def test_a_looped_video_plays_the_clip_over_at_its_rate_and_new_size(tmp_path: Path) -> None:
    clip = write_walkers_video(tmp_path / "clip.mp4", CLIP_FRAMES)
    looped = tmp_path / "looped.mp4"
    write_looped_video(clip, looped, LOOPS, SCALED)
    info = probe(looped)
    assert (info.width, info.height) == SCALED
    assert info.fps == pytest.approx(FPS)
    images = [frame.image.astype(np.float64) for frame in read_frames(looped)]
    assert len(images) == LOOPS * CLIP_FRAMES
    for index in range(CLIP_FRAMES):
        difference = np.abs(images[index] - images[index + CLIP_FRAMES]).mean()
        assert difference < SAME_FRAME_GREYS, index


def test_scale_is_an_even_width_by_height() -> None:
    assert parse_size("1920x1080") == (1920, 1080)
    assert parse_size(None) is None
    for bad in ("1920", "1920x1080x3", "axb", "1921x1080", "0x1080"):
        with pytest.raises(click.BadParameter):
            parse_size(bad)


def test_bench_pipeline_on_cuda_without_a_gpu_is_one_line(tmp_path) -> None:
    """The CUDA path cannot run here (no GPU): asking for it says what to install, at once."""
    result = subprocess.run(
        [sys.executable, "-m", "meshcast", "bench", "pipeline", "any.mp4", "--bundle",
         str(tmp_path), "--device", "cuda"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("meshcast: error: device 'cuda' asked for, but this ")
    assert "install meshcast[gpu]" in result.stderr
    assert result.stderr.count("\n") == 1
