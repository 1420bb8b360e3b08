"""`meshcast bench faults`: a missing bundle is one line before anything starts; run small
(one job of each scenario: a minute, so with the slow tests), every fault costs no job, no
duplicate, no orphan and no leftover file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from meshcast.cli import cli


def test_a_missing_bundle_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "faults", "--bundle", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: no bundle at {tmp_path / 'none'}: make the default one with "
        "`meshcast demo --build-only`"
    ]


@pytest.mark.slow
def test_each_fault_costs_nothing(service_bundle_dir: Path) -> None:
    result = CliRunner().invoke(
        cli, ["bench", "faults", "--jobs", "1", "--bundle", str(service_bundle_dir)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for name, scenario in report["scenarios"].items():
        assert scenario["succeeded"] == scenario["submitted"] == 1, (name, scenario)
    assert report["jobs_lost"] == report["jobs_run_twice"] == 0
    assert report["orphans"] == {"keys_without_a_job": [], "jobs_not_ended": []}
    assert report["leftover_files"] == []
