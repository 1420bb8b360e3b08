"""Parameter counts of a network, module by module (to set against the papers' tables)."""

from __future__ import annotations

from torch import nn

TOTAL = "total"


def parameter_breakdown(model: nn.Module) -> dict[str, int]:
    """Parameters of each top-level submodule and of each parameter held directly, plus ``total``.

    Frozen parameters count as well (the papers' counts include frozen encoders); buffers do
    not. A submodule with no parameters is listed with 0.
    """
    counts = {
        name: sum(p.numel() for p in child.parameters()) for name, child in model.named_children()
    }
    counts |= {name: p.numel() for name, p in model.named_parameters(recurse=False)}
    counts[TOTAL] = sum(p.numel() for p in model.parameters())
    return counts
