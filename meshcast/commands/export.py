"""``meshcast export``: a trained checkpoint → a model bundle (ONNX graphs, body, manifest)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console
from rich.progress import SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from meshcast.progress import progress_bar

MIB = 1 << 20


@click.command("export")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--body", required=True,
              help="Body model of the bundle: standin, smpl or an SMPL-format file.")  # fmt: skip
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder of the bundle (created; its files are overwritten).")  # fmt: skip
@click.option("--encoder", "encoder_checkpoint", type=click.Path(path_type=Path), default=None,
              help="For an SPS-Net that reads precomputed features: the checkpoint whose "
                   "ResNet-50 made them.")  # fmt: skip
@click.option("--fp16", is_flag=True, help="Also write float16 graphs (*.fp16.onnx).")
def command(
    checkpoint: Path, body: str, out: Path, encoder_checkpoint: Path | None, fp16: bool
) -> None:
    """Export CHECKPOINT as a model bundle: encoder.onnx, temporal.onnx (KTD unrolled),
    body.onnx, the body's arrays and manifest.json, each graph checked against PyTorch."""
    from export.bundle import export_bundle

    # Transient: the steps show while they run; what stays is the summary, or one error line.
    with progress_bar(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        current: list[TaskID] = []

        def on_step(description: str) -> None:
            if current:
                progress.update(current[-1], completed=1)
            current.append(progress.add_task(description, total=1))

        manifest = export_bundle(
            checkpoint,
            body,
            out,
            encoder_checkpoint=encoder_checkpoint,
            fp16=fp16,
            on_step=on_step,
        )
        progress.update(current[-1], completed=1)

    files = Table("file", "MiB", "sha256", title=f"{manifest.recipe} ({manifest.family}) in {out}")
    for name, digest in manifest.files.items():
        files.add_row(name, f"{(out / name).stat().st_size / MIB:.1f}", digest[:12])
    parity = manifest.provenance.parity
    errors = Table("output", *parity, title="max |Δ| against PyTorch (onnxruntime CPU)")
    for output in parity["fp32"]:
        errors.add_row(output, *(f"{parity[precision][output]:.1e}" for precision in parity))
    Console().print(files, errors)
