"""The ``meshcast`` command line.

Each sub-command lives in its own module and is imported only when it runs, so that
``meshcast --help`` is instant and needs no extra; a sub-command whose optional dependencies
are missing says which extra to install. Errors end with one readable line and a non-zero exit
code (``MESHCAST_DEBUG=1`` shows the traceback).
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass

import click

EXIT_USER_ERROR = 1
EXIT_USAGE = 2  # a wrong command, option or value, before any work
EXIT_MISSING_EXTRA = 3


@dataclass(frozen=True)
class CommandSpec:
    module: str  # a module holding a click command named ``command``
    summary: str


COMMANDS: dict[str, CommandSpec] = {
    "body": CommandSpec(
        "meshcast.commands.body",
        "Body models: describe one, animate one with motion, rebuild the free stand-in.",
    ),
    "models": CommandSpec(
        "meshcast.commands.models",
        "The networks of SPS-Net and MAED: recipes, parameter counts against the papers.",
    ),
    "motion": CommandSpec(
        "meshcast.commands.motion",
        "Motion clips on SMPL's skeleton: list the built-in ones, convert DeepMimic files.",
    ),
    "synth": CommandSpec(
        "meshcast.commands.synth",
        "Synthetic videos of people with exact SMPL, joint and mask truth, as a dataset file.",
    ),
    "train": CommandSpec(
        "meshcast.commands.train",
        "Train a recipe's network: checkpoints, resume, TensorBoard, validation.",
    ),
    "features": CommandSpec(
        "meshcast.commands.features",
        "Add a trained network's per-frame features to dataset files (as VIBE's carry SPIN's).",
    ),
    "eval": CommandSpec(
        "meshcast.commands.eval",
        "Evaluate a checkpoint on a dataset file: the papers' table, as JSON too.",
    ),
    "export": CommandSpec(
        "meshcast.commands.export",
        "Checkpoint → model bundle: ONNX graphs (KTD unrolled), body, manifest; parity checked.",
    ),
    "import": CommandSpec(
        "meshcast.commands.import_checkpoint",
        "Turn the authors' published MAED, SPIN or VIBE checkpoints into meshcast's.",
    ),
    "run": CommandSpec(
        "meshcast.commands.run",
        "The whole pipeline on one video: people tracked, SMPL per frame, meshes, GLB, preview.",
    ),
    "demo": CommandSpec(
        "meshcast.commands.demo",
        "The main job: `meshcast run` on the committed clip with the default bundle (built once).",
    ),
    "score": CommandSpec(
        "meshcast.commands.score",
        "Score `meshcast run` on a synthetic video against its truth: MPJPE, PA-MPJPE, recall.",
    ),
    "record-frontend": CommandSpec(
        "meshcast.commands.record_frontend",
        "Record the front-end's output on synthetic videos with their truth, as training clips.",
    ),
    "frontend-error": CommandSpec(
        "meshcast.commands.frontend_error",
        "Measure the front-end's 3D landmark error on synthetic videos, as training noise.",
    ),
    "bench": CommandSpec(
        "meshcast.commands.bench",
        "Benchmarks as JSON: the networks, the pipeline, the gateway under load.",
    ),
    "gateway": CommandSpec(
        "meshcast.commands.gateway",
        "The HTTP API (FastAPI): upload videos, follow jobs, download results; hash API keys.",
    ),
    "worker": CommandSpec(
        "meshcast.commands.worker", "Run the gateway's jobs: a Celery worker on Redis; ping one."
    ),
    "fetch-bundle": CommandSpec(
        "meshcast.commands.fetch_bundle",
        "Download a bundle archive from a URL into a folder, checked (a deployment's init step).",
    ),
}

# The pip extra that brings each optional top-level module.
SERVE_MODULES = ("cv2", "fastapi", "uvicorn", "celery", "redis", "onnxruntime", "av", "pygltflib")
EXTRA_OF_MODULE = {
    **dict.fromkeys(("torch", "smplx", "roma", "scipy", "onnx", "joblib", "tensorboard"), "train"),
    **dict.fromkeys((*SERVE_MODULES, "prometheus_client", "python_multipart"), "serve"),
    **dict.fromkeys(("anny", "warp"), "standin"),
    "httpx": "dev",  # `meshcast bench service`'s client
}


class LazyGroup(click.Group):
    """A group that imports a sub-command's module only when that sub-command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # `meshcast --help` lists the commands from their summaries, importing nothing
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name].summary) for name in sorted(COMMANDS)])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        command: click.Command = importlib.import_module(spec.module).command
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="meshcast")
def cli() -> None:
    """meshcast: video → tracked people → SMPL pose, shape and meshes."""


def main() -> None:
    """Console entry point: run the command line, every failure as one line."""
    debug = os.environ.get("MESHCAST_DEBUG") == "1"
    try:
        cli.main(prog_name="meshcast", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        click.echo("meshcast: aborted", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.UsageError as error:
        # One line, as every other failure, where click would print usage, hint and error
        command = error.ctx.command_path if error.ctx is not None else "meshcast"
        click.echo(f"{command}: error: {error.format_message()} (see '{command} --help')", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as error:
        click.echo(f"meshcast: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except ModuleNotFoundError as error:
        extra = EXTRA_OF_MODULE.get((error.name or "").split(".")[0])
        if debug or extra is None:  # not an optional dependency: a bug, show it whole
            raise
        click.echo(
            f"meshcast: this command needs the '{extra}' extra ({error.name} is not "
            f"installed): pip install 'meshcast[{extra}]'",
            err=True,
        )
        sys.exit(EXIT_MISSING_EXTRA)
    except Exception as error:  # the one place where a failure becomes a readable line
        if debug:
            raise
        # Our own errors for bad input are OSError, ValueError or LookupError with a sentence;
        # anything else is named by its type so a bug report says what broke.
        if isinstance(error, OSError | ValueError | LookupError):
            message = str(error.args[0]) if isinstance(error, KeyError) and error.args else error
        else:
            message = f"{type(error).__name__}: {error}"
        click.echo(f"meshcast: error: {message}", err=True)
        sys.exit(EXIT_USER_ERROR)
