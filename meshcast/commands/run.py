"""``meshcast run``: the whole pipeline on one video, in this process (no Redis, no worker)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from meshcast.progress import progress_bar

if TYPE_CHECKING:
    from service.outputs import OutputFormat
    from service.pipeline.run import DetectorConfig

STAGE_TITLES = {
    "detect": "detecting, tracking, keypoints (frames)",
    "encoder": "encoding crops (person-frames)",
    "temporal": "temporal model (windows)",
    "body": "body joints (person-frames)",
    # service.outputs.POSING_STEP: the one pass that poses every person-frame for the files
    "posing": "posing the people, writing meshes and preview (frames)",
}


@click.command("run")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--bundle", "bundle_dir", type=click.Path(path_type=Path), default=None,
              help="A model bundle folder (`meshcast export`); default: the default "
                   "bundle (bundles/default, made in seconds on first use, as by `meshcast "
                   "demo`).")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for the outputs (created); default: out/VIDEO's name without "
                   "its suffix.")  # fmt: skip
@click.option("--detector", default="nanodet", show_default=True,
              help="'nanodet' (the bundle's), 'hog' (OpenCV's, built in) or the path of an "
                   "ONNX detector in YOLO's export layout.")  # fmt: skip
@click.option("--detect-every", type=click.IntRange(min=1), default=None,
              help="Search every this many frames for people; the keypoint model follows "
                   "them in between (and the detector searches the frame after someone is "
                   "lost). Default: the pipeline's (1, every frame).")  # fmt: skip
@click.option("--min-track-length", type=click.IntRange(min=1), default=None,
              help="Frames a track needs to be kept; default: the tracker's (8).")  # fmt: skip
@click.option("--smooth", is_flag=True, help="One-Euro smoothing of the outputs.")
@click.option("--fp16", is_flag=True, help="The bundle's float16 graphs (a GPU's).")
@click.option("--formats", default="json,npz,glb,preview", show_default=True,
              help="Comma-separated outputs to write, of json, npz, obj, ply, glb, bvh, preview; "
                   "obj and ply write a mesh file per person and frame (about 1 MB each for "
                   "the stand-in body).")  # fmt: skip
@click.option("--mesh-space", type=click.Choice(["body", "camera"]), default="body",
              show_default=True,
              help="OBJ and PLY: body, the body frame turned to y up (upright in any viewer); "
                   "camera, where the person stands in the camera's frame, OpenCV's axes (to "
                   "overlay on the video).")  # fmt: skip
@click.option("--preview-keypoints", is_flag=True,
              help="Draw each person's 33 keypoint landmarks and their skeleton over the "
                   "meshes in the preview.")  # fmt: skip
def command(
    video: Path,
    bundle_dir: Path | None,
    out: Path | None,
    detector: str,
    detect_every: int | None,
    min_track_length: int | None,
    smooth: bool,
    fp16: bool,
    formats: str,
    mesh_space: str,
    preview_keypoints: bool,
) -> None:
    """Find and track every person in VIDEO, estimate their SMPL bodies with the bundle's
    networks, and write result.json/.npz, meshes, one GLB per person and a preview to OUT
    (default: out/NAME for VIDEO NAME.mp4). Without --bundle, the default bundle."""
    from service.bundle import load_bundle
    from service.outputs import write_outputs
    from service.pipeline.body import BodyMeshes
    from service.pipeline.run import pipeline_config, process_video

    out = out or Path("out") / video.stem
    _check_paths(video, out)
    detector_config = _detector_config(detector)
    chosen = parse_formats(formats)
    if bundle_dir is None:
        from meshcast.default_bundle import build_bundle, load_plan

        bundle_dir = build_bundle(load_plan())
    bundle = load_bundle(bundle_dir)
    config = pipeline_config(
        smooth=smooth,
        min_track_length=min_track_length,
        precision="fp16" if fp16 else "fp32",
        detector=detector_config,
        detect_every=detect_every,
    )
    sessions = bundle.sessions(config.precision)  # the outputs pose bodies with the same graph
    console = Console(stderr=True)
    with progress_bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,  # the summary's stage times replace the bars; a failure stays one line
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = progress.add_task(STAGE_TITLES.get(stage, stage), total=total)
            progress.update(tasks[stage], completed=done, total=total)

        run = process_video(video, bundle, config, sessions=sessions, progress=report)
        started = time.perf_counter()
        body = BodyMeshes(sessions.body, config.regression.batch_size)
        written = write_outputs(
            run.result,
            video,
            out,
            body,
            focal_length=run.focal_length,
            formats=chosen,
            camera_frame_meshes=mesh_space == "camera",
            preview_keypoints=preview_keypoints,
            progress=report,
        )
        seconds = {**run.seconds, "outputs": time.perf_counter() - started}

    result = run.result
    people = Table("person", "frames", "first", "last", "score",
                   title=f"{video.name}: {len(result.tracks)} people")  # fmt: skip
    for track in result.tracks:
        people.add_row(str(track.track_id), str(len(track)), str(int(track.frame_ids[0])),
                       str(int(track.frame_ids[-1])), f"{track.score:.2f}")  # fmt: skip
    stages = Table("stage", "seconds", "frames/s", title=f"{result.frame_count} frames")
    for stage, spent in seconds.items():
        stages.add_row(stage, f"{spent:.1f}", f"{result.frame_count / max(spent, 1e-9):.1f}")
    total = sum(seconds.values())
    stages.add_row("total", f"{total:.1f}", f"{result.frame_count / max(total, 1e-9):.1f}")
    Console().print(people, stages)
    files = sum(len(paths) for paths in written.values())
    click.echo(f"{files} files written to {out}")


def parse_formats(value: str) -> list[OutputFormat]:
    """``--formats``' comma-separated names, in the order outputs are written.

    Raises:
        click.BadParameter: a name that is no output format.
    """
    from service.outputs import OUTPUT_FORMATS

    names = [name.strip() for name in value.split(",") if name.strip()]
    chosen = [known for known in OUTPUT_FORMATS if known in names]
    unknown = sorted(set(names) - set(chosen))
    if unknown:
        raise click.BadParameter(
            f"unknown format(s) {', '.join(unknown)}; choose from {', '.join(OUTPUT_FORMATS)}",
            param_hint="--formats",
        )
    return chosen


def _check_paths(video: Path, out: Path) -> None:
    """Refuse, before any work, a video that is not there and an --out that cannot become a
    folder of outputs.

    Raises:
        FileNotFoundError: no file at ``video``.
        NotADirectoryError: ``out`` is a file.
        PermissionError: ``out`` cannot be created or written to.
    """
    if not video.is_file():
        raise FileNotFoundError(f"no video at {video}")
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file: give a folder for the outputs")
    existing = next(folder for folder in (out, *out.absolute().parents) if folder.exists())
    if not os.access(existing, os.W_OK):
        raise PermissionError(f"--out {out}: {existing} is not writable")


def _detector_config(detector: str) -> DetectorConfig:
    """``--detector``'s value as the pipeline's detector settings."""
    from service.pipeline.run import DetectorConfig

    if detector == "nanodet":
        return DetectorConfig(kind="nanodet")
    if detector == "hog":
        return DetectorConfig(kind="hog")
    model = Path(detector)
    if not model.is_file():
        raise FileNotFoundError(
            f"--detector {detector}: no such ONNX model; give nanodet, hog or a model's path"
        )
    return DetectorConfig(kind="yolo", model=model)
