"""The authors' published state dicts, key by key with shapes, for tests that rebuild them."""

from __future__ import annotations

from pathlib import Path

MAED_STATE_DICT_TSV = (
    Path(__file__).parents[3] / "shared" / "reference" / "maed_official_state_dict.tsv"
)


def maed_published_shapes() -> dict[str, tuple[int, ...]]:
    """MAED's published state dict: every key with its shape, in the authors' order."""
    shapes = {}
    for line in MAED_STATE_DICT_TSV.read_text().splitlines():
        key, shape = line.split("\t")
        shapes[key] = tuple(int(n) for n in shape.strip("()").split(",") if n.strip())
    return shapes
