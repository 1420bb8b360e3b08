"""``meshcast demo``: the main job on its embedded default, ``meshcast run`` on the committed
clip of vtest.avi with the default bundle, which it makes on first use."""

from __future__ import annotations

from pathlib import Path

import click

from meshcast.commands.run import command as run_command
from meshcast.default_bundle import DEFAULT_PLAN, build_bundle, load_plan

CLIP = Path(__file__).resolve().parents[1] / "assets" / "vtest_clip.mp4"


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("out"), show_default=True,
              help="Folder for every output of the run.")  # fmt: skip
@click.option("--plan", "plan_file", type=click.Path(path_type=Path), default=DEFAULT_PLAN,
              help="How the default bundle is made (default: the built-in plan).")  # fmt: skip
@click.option("--rebuild", is_flag=True,
              help="Train the default network again from its recipe (runs/) and make the "
                   "bundle from that, not from the network that ships with meshcast.")  # fmt: skip
@click.option("--build-only", is_flag=True, help="Make the default bundle and stop.")
@click.option("--formats", default="json,npz,obj,ply,glb,bvh,preview", show_default=True,
              help="Comma-separated outputs to write (as meshcast run's).")  # fmt: skip
@click.pass_context
def command(
    ctx: click.Context,
    out: Path,
    plan_file: Path,
    rebuild: bool,
    build_only: bool,
    formats: str,
) -> None:
    """Track the walkers of a 6-second clip of OpenCV's vtest.avi and write their SMPL bodies,
    meshes, GLBs and a preview to OUT, with the default bundle (exported on first use from the
    network that ships with meshcast, see meshcast/default_bundle.yaml)."""
    bundle = build_bundle(load_plan(plan_file), rebuild=rebuild)
    if not build_only:
        ctx.invoke(run_command, video=CLIP, bundle_dir=bundle, out=out, formats=formats)
