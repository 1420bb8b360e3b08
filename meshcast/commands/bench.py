"""``meshcast bench``: speed and memory measurements, printed as JSON."""

from __future__ import annotations

import json
import platform
import statistics
import time

import click
import torch

from training.models import build_model
from training.recipes import load_recipe


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
