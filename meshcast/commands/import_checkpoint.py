"""``meshcast import``: the authors' published MAED, SPIN or VIBE checkpoints as meshcast's."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from export.importers import Imported

SHOWN_KEYS = 3  # keys named per group in the summary; the rest are counted
# export.importers.IMPORTERS' keys, named here so that --help needs no torch (a test keeps
# the two the same).
FAMILIES = ("maed", "spin", "vibe")


@click.command("import")
@click.argument("family", type=click.Choice(FAMILIES))
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="The meshcast checkpoint to write.",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    help="Seed of the modules the published network does not have.",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Unpickle any Python object in CHECKPOINT (may run code): only for a file "
    "from a source you trust that holds more than tensors and numbers.",
)
def command(family: str, checkpoint: Path, out: Path, seed: int, trust: bool) -> None:
    """Turn CHECKPOINT, as published by FAMILY's authors, into a meshcast checkpoint.

    \b
    maed  MAED's weights                     -> recipe maed_paper
    spin  SPIN's model_checkpoint.pt         -> spsnet_paper (ResNet-50 and both regressors)
    vibe  VIBE's vibe_model_*.pth.tar        -> spsnet_gru on features (GRU, both regressors)

    The file written loads like a trained checkpoint and records where each tensor came from.
    """
    from export.importers import IMPORTERS, save_imported

    imported = IMPORTERS[family](checkpoint, seed, trust)
    save_imported(imported, out)
    for line in summary(imported, out):
        click.echo(line)


def summary(imported: Imported, out: Path) -> list[str]:
    """A one-screen account of an import: what was used, ignored and initialised fresh."""
    provenance = imported.provenance
    parameters = sum(p.numel() for p in imported.network.parameters())
    targets = sum(len(keys) for keys in provenance.used.values())
    lines = [
        f"{out}: recipe {provenance.recipe}, {parameters / 1e6:.2f} M parameters",
        f"from {provenance.family} {provenance.source_file} (sha256 {provenance.source_sha256})",
        f"used {len(provenance.used)} published tensors, filling {targets} of the network's",
        f"ignored {len(provenance.ignored)} entries:",
        *_grouped(provenance.ignored),
    ]
    if provenance.initialised:
        lines += [f"initialised fresh {len(provenance.initialised)} tensors:"]
        lines += _grouped(_modules(provenance.initialised))
    return lines


def _modules(reasons: dict[str, str]) -> dict[str, str]:
    """Keys by their top-level module (``temporal.gru.weight_ih_l0`` → ``temporal``)."""
    return {key.partition(".")[0]: reason for key, reason in reasons.items()}


def _grouped(reasons: dict[str, str]) -> list[str]:
    """One line per reason: the first keys that have it, and how many more."""
    keys_of: dict[str, list[str]] = defaultdict(list)
    for key, reason in reasons.items():
        keys_of[reason].append(key)
    lines = []
    for reason, keys in keys_of.items():
        more = f" and {len(keys) - SHOWN_KEYS} more" if len(keys) > SHOWN_KEYS else ""
        lines.append(f"  {', '.join(keys[:SHOWN_KEYS])}{more}: {reason}")
    return lines
