"""``meshcast bench``: speed and memory measurements, printed as JSON."""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from service.settings import Device


@click.group("bench")
def command() -> None:
    """Benchmarks: each prints JSON (and a summary on stderr)."""


@command.command("models")
@click.argument("recipes", nargs=-1)
@click.option("--batch", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--frames", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
def models_command(recipes: tuple[str, ...], batch: int, frames: int, repeats: int) -> None:
    """Forward time of each recipe's network on random frames (no gradients, eval mode).

    RECIPES default to the two papers' networks. Every recipe runs in this one process, one
    after the other, so their times compare; the median of ``--repeats`` runs is reported
    after one warm-up run.
    """
    import torch

    from training.models import build_model
    from training.recipes import load_recipe

    results = []
    for name in recipes or ("spsnet_paper", "maed_paper"):
        recipe = load_recipe(name)
        model = build_model(recipe).eval()
        size = getattr(recipe.model, "image_size", 224)
        clip = torch.randn(batch, frames, 3, size, size)
        times = []
        with torch.no_grad():
            for _ in range(repeats + 1):
                started = time.perf_counter()
                model(clip)
                times.append(time.perf_counter() - started)
        median = statistics.median(times[1:])
        results.append({
            "recipe": name,
            "batch": batch,
            "frames": frames,
            "forward_ms": round(1000 * median, 1),
            "ms_per_frame": round(1000 * median / (batch * frames), 1),
            "runs_ms": [round(1000 * t, 1) for t in times[1:]],
        })  # fmt: skip
        click.echo(f"{name}: {median:.2f} s per forward of {batch}×{frames} frames", err=True)
    machine = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
    }
    click.echo(json.dumps({"machine": machine, "results": results}, indent=2))


@command.command("export")
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="The checkpoint BUNDLE came from; default: the path in its provenance.",
)
@click.option(
    "--encoder",
    "encoder_checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="The encoder's checkpoint (features-reading SPS-Net); default: provenance.",
)
@click.option(
    "--batch",
    "batches",
    type=click.IntRange(min=1),
    multiple=True,
    default=(1, 16),
    show_default=True,
    help="Batch sizes (repeat the option).",
)
@click.option("--repeats", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads for both runtimes; default: PyTorch's.")  # fmt: skip
def export_command(
    bundle_dir: Path,
    checkpoint: Path | None,
    encoder_checkpoint: Path | None,
    batches: tuple[int, ...],
    repeats: int,
    threads: int | None,
) -> None:
    """Latency of BUNDLE's graphs, onnxruntime (CPU) against PyTorch eager, side by side.

    Calls alternate between the two runtimes; medians of ``--repeats`` calls. JSON on stdout,
    a table on stderr; ``temporal+body`` is the part of a frame's cost after its crop's
    features, which the service runs per window.
    """
    import onnxruntime
    import torch
    from rich.console import Console
    from rich.table import Table

    from export.benchmark import benchmark_bundle, eager_graphs
    from service.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    graphs = eager_graphs(bundle, checkpoint, encoder_checkpoint)
    timings = benchmark_bundle(bundle, graphs, batches=batches, repeats=repeats, threads=threads)
    rows = [{"graph": t.graph, "batch": t.batch, "onnxruntime_ms": round(t.onnxruntime_ms, 2),
             "torch_ms": round(t.torch_ms, 2), "speedup": round(t.speedup, 2)}
            for t in timings]  # fmt: skip
    for batch in batches:
        pair = [t for t in timings if t.batch == batch and t.graph in ("temporal", "body")]
        onnx_ms = sum(t.onnxruntime_ms for t in pair)
        torch_ms = sum(t.torch_ms for t in pair)
        rows.append({"graph": "temporal+body", "batch": batch,
                     "onnxruntime_ms": round(onnx_ms, 2), "torch_ms": round(torch_ms, 2),
                     "speedup": round(torch_ms / onnx_ms, 2)})  # fmt: skip
    table = Table("graph", "batch", "onnxruntime ms", "torch ms", "speedup",
                  title=f"{bundle.manifest.recipe}: medians of {repeats}")  # fmt: skip
    for row in rows:
        table.add_row(*(str(row[key]) for key in row))
    Console(stderr=True).print(table)
    manifest = bundle.manifest
    report = {
        "bundle": str(bundle_dir),
        "recipe": manifest.recipe,
        "family": manifest.family,
        "window": manifest.window.length,
        "image_size": manifest.input.image_size if manifest.input.kind == "image" else None,
        "body_vertices": manifest.body.num_vertices,
        "machine": {
            "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__,
            "threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
        },
        "results": rows,
    }
    click.echo(json.dumps(report, indent=2))


def parse_size(value: str | None) -> tuple[int, int] | None:
    """``WIDTHxHEIGHT`` → ``(width, height)`` in pixels, even (4:2:0 video halves both)."""
    if value is None:
        return None
    try:
        width, height = (int(part) for part in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT", param_hint="--scale") from None
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise click.BadParameter(f"{value}: sizes must be even and positive", param_hint="--scale")
    return width, height


@command.command("graphs")
@click.argument("bundle_dir", metavar="BUNDLE", type=click.Path(path_type=Path))
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True,
              help="onnxruntime's providers, as a worker chooses them.")  # fmt: skip
@click.option("--fp16", is_flag=True,
              help="The network's float16 graphs (the front-end's stay float32).")  # fmt: skip
@click.option("--batch", "batches", type=click.IntRange(min=1), multiple=True,
              default=(1, 4, 16, 64), show_default=True,
              help="Batch sizes (repeat the option).")  # fmt: skip
@click.option("--repeats", type=click.IntRange(min=1), default=30, show_default=True)
def graphs_command(
    bundle_dir: Path, device: Device, fp16: bool, batches: tuple[int, ...], repeats: int
) -> None:
    """Each graph of BUNDLE alone at each batch size, as JSON: the first run (on a GPU each
    new batch size costs extra once), the median run with inputs and outputs in host memory,
    the same with both bound in the device's memory (I/O binding), and a run per row."""
    import onnxruntime

    from meshcast.bench_graphs import bench_graphs
    from service.bundle import load_bundle
    from service.worker.runtime import choose_providers

    providers = choose_providers(device, onnxruntime.get_available_providers())
    bundle = load_bundle(bundle_dir)
    report = bench_graphs(bundle, providers, "fp16" if fp16 else "fp32", batches, repeats)
    click.echo(json.dumps({"bundle": bundle.manifest.recipe, "onnxruntime": onnxruntime.__version__,
                           "graphs": report}, indent=2))  # fmt: skip


@command.command("pipeline")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--bundle", "bundle_dir", type=click.Path(path_type=Path), required=True,
              help="A model bundle folder (`meshcast export`).")  # fmt: skip
@click.option("--outputs/--no-outputs", default=False, show_default=True,
              help="Also time writing the outputs (into a temporary folder).")  # fmt: skip
@click.option("--formats", default="json,npz,obj,ply,glb,bvh,preview", show_default=True,
              help="With --outputs, the comma-separated outputs written (a service's worker "
                   "writes json,npz,glb,preview with --no-npz-vertices).")  # fmt: skip
@click.option("--npz-vertices/--no-npz-vertices", default=True, show_default=True,
              help="With --outputs, result.npz holds the posed vertices (meshcast run's) or "
                   "not (a worker's).")  # fmt: skip
@click.option("--loop", "loops", type=click.IntRange(min=1), default=1, show_default=True,
              help="Run on VIDEO played this many times over (re-encoded to a temporary "
                   "file first).")  # fmt: skip
@click.option("--scale", default=None, metavar="WIDTHxHEIGHT",
              help="Resize the frames to this size first (re-encoded to a temporary file), "
                   "e.g. 1920x1080.")  # fmt: skip
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads of OpenCV and of each onnxruntime session; default: "
                   "theirs.")  # fmt: skip
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True,
              help="onnxruntime's providers, as a worker chooses them: cuda needs "
                   "meshcast[gpu] and a GPU; auto takes CUDA when there is one.")  # fmt: skip
@click.option("--fp16", is_flag=True, help="The bundle's float16 graphs (a GPU's).")
@click.option("--detect-width", type=click.IntRange(min=64), default=None,
              help="Frames wider than this are shrunk for OpenCV's HOG detector; default: "
                   "its configuration's.")  # fmt: skip
@click.option("--detect-every", "detect_every", type=click.IntRange(min=1), multiple=True,
              help="Search every this many frames for people (the keypoint model follows them "
                   "in between); default: the pipeline's. Given twice or more, the video is "
                   "run once with each, in turn, and the report holds each run and each one's "
                   "speed against the first's.")  # fmt: skip
@click.option("--compare", is_flag=True,
              help="Also time the front-end's models side by side on the first "
                   "--compare-frames frames, interleaved call by call (`meshcast bench "
                   "frontend`'s report, under compare): NanoDet against OpenCV's HOG, the "
                   "detector of the pipeline before NanoDet, and with --litert the keypoint "
                   "model against its original runtime.")  # fmt: skip
@click.option("--compare-frames", type=click.IntRange(min=1), default=100, show_default=True,
              help="Frames --compare uses.")  # fmt: skip
@click.option("--litert", type=click.Path(path_type=Path), default=None,
              help="With --compare: BlazePose's original pose_landmark_full.tflite (`make "
                   "blazepose-tflite`), timed on LiteRT on the same crops.")  # fmt: skip
def pipeline_command(
    video: Path,
    bundle_dir: Path,
    outputs: bool,
    formats: str,
    npz_vertices: bool,
    loops: int,
    scale: str | None,
    threads: int | None,
    device: Device,
    fp16: bool,
    detect_width: int | None,
    detect_every: tuple[int, ...],
    compare: bool,
    compare_frames: int,
    litert: Path | None,
) -> None:
    """Milliseconds per frame of each stage of `meshcast run` on VIDEO, and the peak resident
    memory, as JSON. A stage's time runs from the end of the one before it to its own end: the
    first pass (decoding, the detector, the tracker and the keypoint model) is "detect", then
    the temporal network, the body's joints and, with --outputs, the files (and their share of
    the whole, "outputs_share"); "frontend" times the detector and the keypoint model by their
    own clocks.

    Memory does not grow with a video's length: compare ``peak_rss_mib`` of a long video with
    that of a short one, both made of VIDEO looped (``--loop``) and scaled (``--scale``). The
    looped file is written by a separate process, whose memory is not counted. The committed
    clip is 6 s long (60 frames at 10 fps); one minute, then ten minutes of it at 1080p:

    \b
        CLIP=meshcast/assets/vtest_clip.mp4
        meshcast bench pipeline $CLIP --bundle BUNDLE --loop 10 --scale 1920x1080
        meshcast bench pipeline $CLIP --bundle BUNDLE --loop 100 --scale 1920x1080

    (The clip's 768 × 576 frames are stretched to 16:9.) NanoDet, the default detector, reads
    every frame letterboxed to its 416 × 416 input, whatever the frame's size; OpenCV's HOG
    (``--detect-width`` for it) shrinks frames wider than ``HogConfig.max_width`` (1280) first.
    """
    import cv2
    import onnxruntime

    from meshcast.bench_pipeline import bench_pipeline
    from meshcast.commands.run import parse_formats
    from service.bundle import load_bundle
    from service.pipeline.run import PipelineConfig
    from service.worker.runtime import choose_providers

    if litert is not None:
        from meshcast.bench_frontend import check_tflite

        if not compare:
            raise click.UsageError("--litert is a side of --compare: give both")
        check_tflite(litert)  # before the pipeline's minutes, not after
    size = parse_size(scale)
    chosen = parse_formats(formats)
    providers = choose_providers(device, onnxruntime.get_available_providers())
    bundle = load_bundle(bundle_dir)
    config = PipelineConfig(precision="fp16" if fp16 else "fp32")
    if detect_width is not None:
        hog = config.detector.hog.model_copy(update={"max_width": detect_width})
        detector = config.detector.model_copy(update={"hog": hog})
        config = config.model_copy(update={"detector": detector})
    if threads is not None:
        cv2.setNumThreads(threads)
    sessions = bundle.sessions(config.precision, providers=providers, threads=threads)
    report = bench_pipeline(
        video,
        bundle,
        sessions,
        config,
        loops=loops,
        size=size,
        detect_every=detect_every,
        formats=chosen if outputs else None,
        npz_vertices=npz_vertices,
        threads=threads,
    )
    if compare:
        from meshcast.bench_frontend import bench_frontend

        report["compare"] = bench_frontend(
            video, bundle, max_frames=compare_frames, threads=threads, litert=litert
        )
    click.echo(json.dumps(report, indent=2))


@command.command("frontend")
@click.argument("video", type=click.Path(path_type=Path))
@click.option("--bundle", "bundle_dir", type=click.Path(path_type=Path), required=True,
              help="A model bundle folder: its detector and keypoint model.")  # fmt: skip
@click.option("--frames", "max_frames", type=click.IntRange(min=1), default=None,
              help="Use only the first FRAMES frames; default: all.")  # fmt: skip
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads of each onnxruntime session (and of LiteRT's); default: "
                   "onnxruntime's.")  # fmt: skip
@click.option("--litert", type=click.Path(path_type=Path), default=None,
              help="BlazePose's original pose_landmark_full.tflite (`make blazepose-tflite`): "
                   "the keypoint model timed on LiteRT too, on the same crops.")  # fmt: skip
def frontend_command(
    video: Path, bundle_dir: Path, max_frames: int | None, threads: int | None,
    litert: Path | None,
) -> None:  # fmt: skip
    """NanoDet, OpenCV's HOG and the keypoint model on VIDEO's frames, interleaved frame by
    frame in this one process, as JSON: milliseconds a frame (and a person), people found, and
    HOG's time over NanoDet's; with --litert, the keypoint model on onnxruntime against its
    original runtime."""
    from meshcast.bench_frontend import bench_frontend
    from service.bundle import load_bundle

    report = bench_frontend(
        video, load_bundle(bundle_dir), max_frames=max_frames, threads=threads, litert=litert
    )
    click.echo(json.dumps(report, indent=2))


def _of_a_result(command: Callable[..., None]) -> Callable[..., None]:
    """The arguments of a bench on a result: RESULTS (`meshcast run`'s folder), --video and
    --bundle."""
    for option in reversed(
        [
            click.argument("results", type=click.Path(path_type=Path)),
            click.option("--video", type=click.Path(path_type=Path), required=True,
                         help="The video RESULTS was made from."),
            click.option("--bundle", "bundle_dir", type=click.Path(path_type=Path),
                         required=True,
                         help="The bundle that made RESULTS: its body poses the people."),
        ]
    ):  # fmt: skip
        command = option(command)
    return command


@command.command("preview")
@_of_a_result
@click.option("--frames", "max_frames", type=click.IntRange(min=1), default=None,
              help="Draw only the first FRAMES frames; default: all.")  # fmt: skip
@click.option("--max-cell-px", type=click.FloatRange(min=0, min_open=True), default=None,
              help="The levels' largest cell on the image, in pixels; default: the "
                   "preview's.")  # fmt: skip
def preview_command(
    results: Path, video: Path, bundle_dir: Path, max_frames: int | None, max_cell_px: float | None
) -> None:
    """The preview's frames of RESULTS (`meshcast run`'s folder) drawn with the body's whole
    mesh and with the levels of detail the preview uses (or would, at --max-cell-px),
    interleaved frame by frame, as JSON: milliseconds a frame each, the speed-up, and the
    share of drawn pixels that differ."""
    from meshcast.bench_preview import bench_preview
    from service.bundle import load_bundle
    from service.outputs import RESULT_NPZ

    report = bench_preview(
        results / RESULT_NPZ,
        video,
        load_bundle(bundle_dir),
        max_frames=max_frames,
        max_cell_px=max_cell_px,
    )
    click.echo(json.dumps(report, indent=2))


@command.command("motion")
@click.argument("results", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--video", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              required=True, help="The video RESULTS was made from.")  # fmt: skip
@click.option("--width", type=click.IntRange(min=1), default=None,
              help="Compare frames this many pixels wide; default: the pipeline's.")  # fmt: skip
@click.option("--threshold", type=click.IntRange(1, 255), default=None,
              help="Grey levels a changed pixel moved by; default: the pipeline's.")  # fmt: skip
@click.option("--min-area", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
              default=None, help="The smallest changed patch, a share of the frame; default: "
              "the pipeline's.")  # fmt: skip
@click.option("--still-camera", is_flag=True,
              help="Compare each frame with the one before as it is, never shifted by the "
              "camera's movement.")  # fmt: skip
def motion_command(
    results: Path,
    video: Path,
    width: int | None,
    threshold: int | None,
    min_area: float | None,
    still_camera: bool,
) -> None:
    """The movement cue that calls for a search between the detector's turns, run over VIDEO
    against the new tracks of RESULTS (`meshcast run`'s folder, the detector on every frame),
    as JSON: the frames it fires on, the new tracks it fires for, milliseconds a frame. See
    meshcast/bench_motion.py."""
    from meshcast.bench_motion import bench_motion
    from service.outputs import RESULT_NPZ
    from service.pipeline.motion import MotionConfig

    chosen = {"width": width, "threshold": threshold, "min_area": min_area}
    config = MotionConfig(**{name: value for name, value in chosen.items() if value is not None})
    if still_camera:
        config = config.model_copy(update={"camera_shift": None})
    click.echo(json.dumps(bench_motion(results / RESULT_NPZ, video, config), indent=2))


@command.command("outputs")
@_of_a_result
@click.option("--formats", default="json,npz,obj,ply,glb,bvh,preview", show_default=True,
              help="The comma-separated outputs written.")  # fmt: skip
@click.option("--repeats", type=click.IntRange(min=1), default=2, show_default=True,
              help="Runs of each side.")  # fmt: skip
def outputs_command(
    results: Path, video: Path, bundle_dir: Path, formats: str, repeats: int
) -> None:
    """Writing the outputs of RESULTS (`meshcast run`'s folder) with the body's session
    asleep between runs (the pipeline's) and spinning (onnxruntime's default), interleaved
    run by run; and posing its people alone against a frame's in one batch. JSON:
    milliseconds a person-frame and the ratios. See meshcast/bench_outputs.py."""
    from meshcast.bench_outputs import bench_outputs
    from meshcast.commands.run import parse_formats
    from service.bundle import load_bundle
    from service.outputs import RESULT_NPZ

    report = bench_outputs(results / RESULT_NPZ, video, load_bundle(bundle_dir),
                           parse_formats(formats), repeats=repeats)  # fmt: skip
    click.echo(json.dumps(report, indent=2))


@command.command("service")
@click.option("--config", "config_file", type=click.Path(path_type=Path), default=None,
              help="The service's YAML settings (default: $MESHCAST_CONFIG, else the built-in "
                   "ones); with --url, the gateway's own.")  # fmt: skip
@click.option("--redis-url", default=None, help="Redis, instead of the settings' redis_url.")
@click.option("--url", default=None,
              help="A running gateway to load; default: start one here, on loopback, whose "
                   "jobs no worker takes.")  # fmt: skip
@click.option("--key", "api_key", envvar="MESHCAST_API_KEY", default=None,
              help="The --url gateway's API key (default: $MESHCAST_API_KEY).")  # fmt: skip
@click.option("--video", type=click.Path(path_type=Path), default=None,
              help="The video to upload; default: meshcast demo's committed clip.")  # fmt: skip
@click.option("--uploads", type=int, default=50, show_default=True,
              help="Jobs uploaded, each with the whole video.")  # fmt: skip
@click.option("--concurrency", type=int, default=50, show_default=True,
              help="Requests in flight at once.")  # fmt: skip
@click.option("--polls", type=int, default=1000, show_default=True,
              help="GET /jobs/{id} after the uploads, over their jobs in turn.")  # fmt: skip
@click.option("--stalled", type=int, default=0, show_default=True,
              help="Slow clients: uploads held open throughout, stalled after their first "
                   "64 KiB.")  # fmt: skip
@click.option("--result", type=click.Path(path_type=Path), default=None,
              help="A `meshcast run` folder or its result.npz: one uploaded job is finished "
                   "with it, as a worker would, and its meshes downloaded (its own gateway "
                   "only).")  # fmt: skip
@click.option("--downloads", type=int, default=100, show_default=True,
              help="With --result: OBJ, then PLY downloads of its person-frames in turn, "
                   "each posed by the gateway.")  # fmt: skip
@click.pass_context
def service_command(
    ctx: click.Context,
    config_file: Path | None,
    redis_url: str | None,
    url: str | None,
    api_key: str | None,
    video: Path | None,
    uploads: int,
    concurrency: int,
    polls: int,
    stalled: int,
    result: Path | None,
    downloads: int,
) -> None:
    """The gateway under load: UPLOADS concurrent uploads, with --result a burst of mesh
    downloads of a finished job, a burst of POLLS status polls, the jobs deleted, all while
    STALLED slow uploads hold their connections. JSON: p50/p99 latency
    and throughput per kind of request, errors by status and code, and the Redis memory the
    jobs held before and after their deletion.

    By default it starts a gateway here (`meshcast gateway`, a process of its own) on the
    settings, under a key prefix of its own where no worker listens, so that only the
    gateway's work is measured (a worker would share its CPU), and deletes every key under
    that prefix afterwards. See meshcast/bench_service.py for what is measured and how.

    \b
        meshcast bench service --config meshcast.yaml --uploads 50 --concurrency 50 --polls 1000
    """
    from click.core import ParameterSource

    from meshcast.bench_service import BenchOptions, run_service_bench
    from meshcast.commands.demo import CLIP
    from meshcast.service_config import load_service_settings
    from service.outputs import RESULT_NPZ

    if url is None and ctx.get_parameter_source("api_key") is ParameterSource.ENVIRONMENT:
        api_key = None  # a key in the environment is for --url; the bench makes its own
    settings = load_service_settings(config_file)
    if redis_url is not None:
        settings = settings.model_copy(update={"redis_url": redis_url})
    if result is not None and result.is_dir():
        result = result / RESULT_NPZ
    options = BenchOptions(
        video or CLIP, uploads, concurrency, polls, url, api_key, stalled, result, downloads
    )
    report = run_service_bench(options, settings)
    for kind, stats in report["requests"].items():
        click.echo(
            f"{kind}: {stats['count']} requests, p50 {stats['p50_ms']} ms, "
            f"p99 {stats['p99_ms']} ms, {stats['requests_per_s']} requests/s",
            err=True,
        )
    click.echo(json.dumps(report, indent=2))


@command.command("faults")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Jobs per scenario, each with its fault.",
)
@click.option(
    "--scenario",
    "scenarios",
    multiple=True,
    type=click.Choice(["worker_kill", "child_kill", "gateway_kill", "redis_restart"]),
    help="A scenario to run (repeat the option; default: all, in this order).",
)
@click.option(
    "--bundle",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("bundles/default"),
    show_default=True,
    help="The model bundle the worker runs (`meshcast demo --build-only` makes the default one).",
)
@click.option(
    "--video",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="The jobs' video (default: the committed street clip).",
)
@click.option(
    "--frames",
    type=click.IntRange(min=8),
    default=16,
    show_default=True,
    help="Frames of the video each job gets (a short job: the drill is many).",
)
@click.option(
    "--job-timeout",
    "job_timeout_s",
    type=click.FloatRange(min=1),
    default=300.0,
    show_default=True,
    help="Seconds a job may take to end before it counts as lost.",
)
@click.option(
    "--formats",
    default=None,
    metavar="LIST",
    help="The jobs' output formats, comma-separated (default: the service's, every one).",
)
@click.option(
    "--keep",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="A folder to copy the processes' logs and the settings to.",
)
def faults_command(
    jobs: int,
    scenarios: tuple[str, ...],
    bundle: Path,
    video: Path | None,
    frames: int,
    job_timeout_s: float,
    formats: str | None,
    keep: Path | None,
) -> None:
    """The fault drill: the gateway and a worker as processes on a Redis of their own, each
    job with a fault (the worker's main or pool process SIGKILLed mid-job, the gateway
    SIGKILLed mid-upload, Redis restarted mid-job). JSON: jobs accepted, lost, failed, run
    twice; orphan keys and jobs, leftover files and processes, time to recover; progress and a
    summary on stderr. See meshcast/fault_drill.py for what is counted and how.

    \b
        meshcast bench faults                            # 20 jobs of each: 18 min on 2 cores
        meshcast bench faults --jobs 3 --scenario child_kill --keep drill-logs
    """
    from meshcast.commands.demo import CLIP
    from meshcast.fault_drill import SCENARIOS, DrillOptions, run_fault_drill, summary

    options = DrillOptions(
        jobs=jobs,
        scenarios=scenarios or SCENARIOS,
        bundle=bundle,
        video=video or CLIP,
        frames=frames,
        job_timeout_s=job_timeout_s,
        formats=tuple(name.strip() for name in (formats or "").split(",") if name.strip()),
        keep=keep,
    )
    try:
        report = run_fault_drill(options, lambda line: click.echo(line, err=True))
    except (FileNotFoundError, ChildProcessError) as error:
        raise click.ClickException(str(error)) from None
    for line in summary(report):
        click.echo(line, err=True)
    click.echo(json.dumps(report, indent=2))
