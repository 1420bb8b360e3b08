"""``meshcast motion``: the built-in motion clips and their conversion from DeepMimic files."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


@click.group("motion")
def command() -> None:
    """Motion clips on SMPL's skeleton (for the demo, synthetic data and the discriminator)."""


@command.command("list")
def list_command() -> None:
    """The built-in clips: frames, frame rate, duration."""
    table = Table("clip", "frames", "fps", "seconds")
    from training.motion import list_builtin_clips, load_builtin_clip

    for name in list_builtin_clips():
        clip = load_builtin_clip(name)
        table.add_row(
            name, str(clip.num_frames), f"{clip.fps:.1f}", f"{clip.num_frames / clip.fps:.1f}"
        )
    Console().print(table)


@command.command("convert")
@click.argument("source", type=click.Path(path_type=Path), default=None, required=False)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the clips; default: the built-in clips' own.")  # fmt: skip
def convert_command(source: Path | None, out: Path | None) -> None:
    """Retarget DeepMimic clips (default: ../shared/data/motions) into AMASS-style files."""
    from training.motion import convert_deepmimic_clips
    from training.motion.deepmimic import motions_dir
    from training.motion.library import BUILTIN_DIR

    out = out or BUILTIN_DIR
    written = convert_deepmimic_clips(source or motions_dir(), out)
    click.echo(f"wrote {len(written)} clips to {out}")
