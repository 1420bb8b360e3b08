"""``meshcast synth``: synthetic videos of people with exact SMPL, 2D/3D joint and mask truth."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")
_SIZE = re.compile(r"^(\d+)x(\d+)$")


def _people(value: str) -> tuple[int, int]:
    match = _RANGE.match(value)
    if not match:
        raise click.BadParameter(f"expected N or LOW-HIGH, got {value!r}", param_hint="--people")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    if not 1 <= low <= high:
        raise click.BadParameter(f"need 1 ≤ LOW ≤ HIGH, got {value!r}", param_hint="--people")
    return low, high


def _size(value: str) -> tuple[int, int]:
    match = _SIZE.match(value)
    if not match or min(int(match.group(1)), int(match.group(2))) < 1:
        raise click.BadParameter(
            f"expected WIDTHxHEIGHT such as 320x240, got {value!r}", param_hint="--size"
        )
    return int(match.group(1)), int(match.group(2))


@click.command("synth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--videos", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--frames", type=click.IntRange(min=1), default=60, show_default=True,
              help="Frames per video (30 fps).")  # fmt: skip
@click.option("--people", default="1-3", show_default=True, help="People per video: N or LOW-HIGH.")
@click.option("--size", default="320x240", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--split", default="train", show_default=True, help="Split name (train, val, …).")
@click.option("--body", default="standin", show_default=True,
              help="Body model: standin, smpl or a file.")  # fmt: skip
@click.option("--clips", default=None,
              help="Comma-separated built-in motion clips to use (default: all).")  # fmt: skip
def command(
    out_dir: Path,
    videos: int,
    frames: int,
    people: str,
    size: str,
    seed: int,
    split: str,
    body: str,
    clips: str | None,
) -> None:
    """Render synthetic videos with exact ground truth and their VIBE-style dataset file."""
    from training.synth import generate_dataset

    summary = generate_dataset(
        out_dir,
        body=body,
        num_videos=videos,
        frames_per_video=frames,
        people=_people(people),
        image_size=_size(size),
        seed=seed,
        split=split,
        clips=clips.split(",") if clips else None,
    )
    table = Table("videos", "frames", "person-frames", "tracks", "seconds", "person-frames/s")
    table.add_row(
        str(summary.videos),
        str(summary.frames),
        str(summary.person_frames),
        str(summary.tracks),
        f"{summary.seconds:.1f}",
        f"{summary.person_frames / max(summary.seconds, 1e-9):.1f}",
    )
    console = Console()
    console.print(table)
    console.print(f"dataset file: {summary.dataset_path}")
