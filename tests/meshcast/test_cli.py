"""The command line as a user runs it: a real ``meshcast`` process."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

MESHCAST = [sys.executable, "-m", "meshcast"]
REPO = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MESHCAST, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )


def test_help_lists_the_commands_without_importing_them():
    result = run("--help")
    assert result.returncode == 0
    assert "body" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys; from meshcast.cli import cli\n"
         "try: cli.main(['--help'])\nexcept SystemExit: pass\n"
         "assert 'torch' not in sys.modules and 'training' not in sys.modules, 'imported'"],
        capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr


# Modules whose import takes seconds on 2 cores: no command's --help may load them.
HEAVY_MODULES = ("torch", "onnxruntime", "cv2", "scipy", "fastapi", "celery")
HELP_NEEDS_TORCH: set[str] = set()  # commands allowed to load them for --help: none
# Every command and sub-command answers --help in one process; then the heavy modules loaded.
HELP_PROBE = """
import sys, click
from meshcast.cli import COMMANDS, cli
skip = set(sys.argv[1].split(","))
def helps(group, path):
    for name in group.list_commands(click.Context(group)):
        if not path and name in skip:
            continue
        command = group.get_command(click.Context(group), name)
        try:
            command.main(["--help"], standalone_mode=False,
                         prog_name=" ".join(["meshcast", *path, name]))
        except SystemExit:
            pass
        if isinstance(command, click.Group):
            helps(command, [*path, name])
helps(cli, [])
print("loaded:", ",".join(name for name in sys.argv[2].split(",") if name in sys.modules))
"""


def test_every_commands_help_loads_no_heavy_module():
    probe = subprocess.run(
        [sys.executable, "-c", HELP_PROBE, ",".join(HELP_NEEDS_TORCH), ",".join(HEAVY_MODULES)],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.rstrip().splitlines()[-1] == "loaded:"
    assert probe.stdout.count("Show this message and exit.") >= 25  # every command, sub-command


def test_import_offers_every_importer():
    from export.importers import IMPORTERS
    from meshcast.commands.import_checkpoint import FAMILIES

    assert set(FAMILIES) == set(IMPORTERS)


def test_body_info_describes_the_standin():
    result = run("body", "info", "standin", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["joints"] == 24
    assert summary["vertices"] > 6890
    assert 1.6 <= summary["rest_height_m"] <= 1.85


def test_missing_smpl_is_one_line_and_nonzero(tmp_path):
    env = {"MESHCAST_SMPL_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = run("body", "info", "smpl", env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "SMPL_NEUTRAL.pkl" in lines[0]
    assert "Traceback" not in result.stderr


def test_a_missing_extra_names_the_extra_to_install():
    # torch made unimportable, as in an install without the 'train' extra
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "sys.argv = ['meshcast', 'body', 'info']\n"
        "from meshcast.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 3
    assert "pip install 'meshcast[train]'" in result.stderr
    assert "Traceback" not in result.stderr


def every_command_path() -> list[tuple[str, ...]]:
    """Every command a user can call, sub-commands of groups included, as argv prefixes."""
    import click

    from meshcast.cli import cli

    def walk(group: click.Group, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        found: list[tuple[str, ...]] = []
        for name in group.list_commands(click.Context(group)):
            command = group.get_command(click.Context(group), name)
            found.append((*path, name))
            if isinstance(command, click.Group):
                found.extend(walk(command, (*path, name)))
        return found

    return [(), *walk(cli, ())]


HELP_SECONDS = 1.0  # issue 19: --help and a wrong argument answer in under a second


@pytest.mark.parametrize("path", every_command_path(), ids=lambda path: " ".join(path) or "-")
def test_every_command_answers_help_and_a_wrong_argument_at_once(path: tuple[str, ...]):
    started = time.perf_counter()
    helped = run(*path, "--help")
    help_seconds = time.perf_counter() - started
    assert helped.returncode == 0, helped.stderr
    assert "Show this message and exit." in helped.stdout
    started = time.perf_counter()
    wrong = run(*path, "--no-such-option")
    wrong_seconds = time.perf_counter() - started
    assert wrong.returncode == 2  # the documented code of a wrong command, option or value
    lines = wrong.stderr.strip().splitlines()
    assert len(lines) == 1, wrong.stderr
    command = " ".join(("meshcast", *path))
    assert lines[0] == (
        f"{command}: error: No such option '--no-such-option'. (see '{command} --help')"
    )
    assert help_seconds < HELP_SECONDS
    assert wrong_seconds < HELP_SECONDS


def test_a_wrong_command_or_value_is_one_usage_line():
    unknown = run("nope")
    assert unknown.returncode == 2
    assert unknown.stderr == "meshcast: error: No such command 'nope'. (see 'meshcast --help')\n"
    frames = run("body", "animate", "--frames", "0")
    assert frames.returncode == 2
    assert frames.stderr.startswith("meshcast body animate: error: Invalid value for '--frames'")
    assert frames.stderr.count("\n") == 1


def test_animate_writes_frames_and_videos(tmp_path):
    result = run("body", "animate", "walk", "--out", str(tmp_path), "--frames", "3",
                 "--no-turntable")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "walk").iterdir()) == [
        "frame_0000.png", "frame_0001.png", "frame_0002.png"
    ]  # fmt: skip
    assert (tmp_path / "walk.mp4").stat().st_size > 0
    assert not (tmp_path / "turntable.mp4").exists()


def test_an_unknown_clip_lists_the_known_ones(tmp_path):
    result = run("body", "animate", "wlak", "--out", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("meshcast: error: unknown motion clip 'wlak'")
    assert "walk" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


TINY_RECIPES = REPO / "tests" / "support" / "recipes"


def test_models_params_reports_ours_against_the_paper():
    result = run("models", "params", "spsnet_no_attention", "--json")
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert row["recipe"] == "spsnet_no_attention"
    assert row["paper_m"] == 34.64
    assert abs(row["parameters_m"] - row["paper_m"]) < 0.02
    assert set(row["modules_m"]) >= {"encoder", "pose_regressor", "shape_regressor"}


def test_bench_models_prints_json_timings():
    recipe = str(TINY_RECIPES / "maed_tiny.yaml")
    result = run("bench", "models", recipe, "--batch", "1", "--frames", "2", "--repeats", "1")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (row,) = report["results"]
    assert row["recipe"] == recipe
    assert row["forward_ms"] > 0
    assert row["ms_per_frame"] == pytest.approx(row["forward_ms"] / 2, abs=0.1)
    assert report["machine"]["threads"] >= 1


def test_unknown_recipe_is_one_line():
    result = run("models", "params", "spsnet_papr")
    assert result.returncode == 1
    assert result.stderr.startswith("meshcast: error: unknown recipe 'spsnet_papr'")


def test_docs_parameter_table_is_the_commands_output():
    result = run("models", "params", "--markdown")
    assert result.returncode == 0, result.stderr
    documented = (REPO / "docs" / "parameter_counts.md").read_text()
    for line in result.stdout.strip().splitlines():
        assert line in documented, f"docs/parameter_counts.md is stale: {line}"


def test_a_bad_value_names_its_option_and_a_bad_body_the_bodies_there_are(tmp_path):
    people = run("synth", str(tmp_path / "out"), "--people", "abc")
    assert people.returncode == 2
    assert "Invalid value for --people" in people.stderr
    size = run("synth", str(tmp_path / "out"), "--size", "3")
    assert "Invalid value for --size" in size.stderr
    assert not (tmp_path / "out").exists()
    body = run("body", "info", "nosuch")
    assert body.returncode == 1
    assert "give 'standin', 'smpl' or the path" in body.stderr.strip().splitlines()[-1]


def test_a_bad_config_file_is_one_line_naming_the_file(tmp_path):
    syntax = tmp_path / "syntax.yaml"
    syntax.write_text("bundle: [1\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("remember the milk\n")
    unknown = tmp_path / "plan.yaml"
    unknown.write_text("colour: blue\n")
    binary = tmp_path / "settings.yaml"
    binary.write_bytes(bytes(range(128, 256)))
    cases = {
        ("demo", "--build-only", "--plan", str(syntax)): f"{syntax}: not valid YAML: line 2",
        ("demo", "--build-only", "--plan", str(unknown)):
            f"{unknown}: bundle: Field required (and 9 more problems)",
        ("gateway", "--config", str(syntax)): f"{syntax}: not valid YAML: line 2",
        ("gateway", "--config", str(notes)): f"{notes}: expected a mapping of 'key: value' lines",
        ("gateway", "--config", str(unknown)): f"{unknown}: colour: Extra inputs are not permitted",
        ("gateway", "--config", str(binary)): f"{binary}: not a YAML file (it is not text)",
    }  # fmt: skip
    for args, expected in cases.items():
        result = run(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr == f"meshcast: error: {expected}\n" or (
            result.stderr.startswith(f"meshcast: error: {expected}")
            and result.stderr.count("\n") == 1
        ), (args, result.stderr)


def test_a_file_that_is_no_checkpoint_is_one_line(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello\n")
    # export reads checkpoints the same way (training.train.checkpoint.read_checkpoint)
    result = run("eval", str(text), "--synthetic", "exact")
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith(f"meshcast: error: {text} is not a checkpoint PyTorch can")
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Unpickling" not in result.stderr


def test_training_without_its_data_says_how_to_make_it(tmp_path):
    result = subprocess.run(
        [*MESHCAST, "train", "spsnet_cpu"], capture_output=True, text=True, cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr == (
        "meshcast: error: recipe 'spsnet_cpu' reads data/synth/synth_train_db_features.pt (and "
        "1 more), which is not there: `make results-cpu` makes the CPU recipes' synthetic data "
        "and trains them in order (meshcast synth; meshcast features for the *_features.pt "
        "files)\n"
    )
    assert not (tmp_path / "runs").exists()


def test_a_motion_folder_a_recipe_names_is_not_missing_data(tmp_path):
    """data.motion may name folders of AMASS-style files: only absent paths are reported."""
    motion = tmp_path / "motion"
    motion.mkdir()
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(
        "extends: spsnet_cpu\nname: mine\n"
        f"data: {{train: [absent.pt], val: [], motion: [{motion}]}}\n"
    )
    result = subprocess.run(
        [*MESHCAST, "train", str(recipe)], capture_output=True, text=True, cwd=tmp_path,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.startswith("meshcast: error: recipe 'mine' reads absent.pt, which is not")
