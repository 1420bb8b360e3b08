"""``meshcast models``: the recipes of both papers (and of their keypoint families) and their
networks' sizes against the papers."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import click
from rich.console import Console
from rich.table import Table

from training.recipes import list_recipes, load_recipe

MILLION = 1e6


@dataclass(frozen=True)
class ParameterRow:
    recipe: str
    parameters_m: float
    paper_m: float | None
    source: str | None
    modules_m: dict[str, float]

    def modules(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in self.modules_m.items())


@click.group("models")
def command() -> None:
    """The networks of SPS-Net and MAED (on images and on keypoints): recipes and parameter
    counts."""


@command.command("list")
def list_command() -> None:
    """List the built-in recipes with the figures their paper reports."""
    table = Table("recipe", "family", "source", "paper: PA-MPJPE / MPJPE (3DPW, mm)")
    for name in list_recipes():
        recipe = load_recipe(name)
        reported = recipe.reported
        figures = f"{reported.pa_mpjpe_3dpw} / {reported.mpjpe_3dpw}" if reported else "-"
        table.add_row(name, recipe.model.family, recipe.source, figures)
    Console().print(table)


def _listed_by_default(name: str) -> bool:
    """The recipes whose paper reports a parameter count, and the keypoint families."""
    recipe = load_recipe(name)
    reported = recipe.reported
    reads_landmarks = getattr(recipe.model, "encoder", None) == "landmarks" or (
        getattr(recipe.model, "tokens", None) == "landmarks"
    )
    return reads_landmarks or (reported is not None and reported.parameters_m is not None)


@command.command("params")
@click.argument("recipes", nargs=-1)
@click.option("--markdown", is_flag=True, help="Print a Markdown table (for docs/).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def params_command(recipes: tuple[str, ...], markdown: bool, as_json: bool) -> None:
    """Parameter counts of RECIPES (default: every recipe whose paper reports one, and the
    keypoint families)."""
    from training.models import build_model
    from training.models.summary import parameter_breakdown

    names = list(recipes) or [name for name in list_recipes() if _listed_by_default(name)]
    rows = []
    for name in names:
        recipe = load_recipe(name)
        breakdown = parameter_breakdown(build_model(recipe))
        rows.append(
            ParameterRow(
                recipe=name,
                parameters_m=round(breakdown["total"] / MILLION, 2),
                paper_m=recipe.reported.parameters_m if recipe.reported else None,
                source=recipe.reported.source if recipe.reported else None,
                modules_m={k: round(v / MILLION, 2) for k, v in breakdown.items() if k != "total"},
            )
        )
    if as_json:
        click.echo(json.dumps([asdict(row) for row in rows], indent=2))
    elif markdown:
        click.echo("| recipe | ours (M) | paper (M) | source | by module (M) |")
        click.echo("|---|---:|---:|---|---|")
        for row in rows:
            click.echo(
                f"| {row.recipe} | {row.parameters_m} | {row.paper_m or '-'} "
                f"| {row.source or '-'} | {row.modules()} |"
            )
    else:
        table = Table("recipe", "ours (M)", "paper (M)", "by module (M)")
        for row in rows:
            table.add_row(row.recipe, str(row.parameters_m), str(row.paper_m or "-"), row.modules())
        Console().print(table)
