"""`meshcast bench faults`: a missing bundle is one line before anything starts; the workers'
logs are read into attempts as the drill counts them, and a broker message into its job; one
short job whose pool process is killed, and one upload cut by the gateway's death, cost nothing
(under a minute); and, with the slow tests, one job of every scenario: no job lost, none run
twice, no orphan, no leftover file or process."""

from __future__ import annotations

import base64
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from meshcast.cli import cli
from meshcast.fault_drill import _attempts, _message_job, _runs

JOB_A, JOB_B = "A" * 22, "B" * 22
# A worker's log as meshcast/commands/worker.py formats it: job A's first attempt killed with
# its pool process, its second committed; job B's first attempt lost to Redis and tried again,
# the second ended finding the job no longer its own; a line of another format.
WORKER_LOG = f"""\
2026-12-04 03:52:25,896 INFO ForkPoolWorker-1 service.worker.tasks: job {JOB_A}: attempt 1 started
[2026-12-04 03:52:26,000: ERROR/MainProcess] Process 'ForkPoolWorker-1' pid:1 exited with 'signal 9'
2026-12-04 03:52:30,000 INFO ForkPoolWorker-2 service.worker.tasks: job {JOB_A}: attempt 2 started
2026-12-04 03:52:31,000 INFO ForkPoolWorker-2 service.worker.tasks: job {JOB_A}: succeeded \
with 9 files
2026-12-04 03:52:31,001 INFO ForkPoolWorker-2 celery.app.trace: Task meshcast.process_job[1-2] \
succeeded in 1.5s: 'succeeded'
2026-12-04 03:52:32,000 INFO ForkPoolWorker-2 service.worker.tasks: job {JOB_B}: attempt 1 started
2026-12-04 03:52:33,000 WARNING ForkPoolWorker-2 service.worker.tasks: job {JOB_B}: Redis failed \
(refused); trying again in 3.0 s
2026-12-04 03:52:36,000 INFO ForkPoolWorker-2 service.worker.tasks: job {JOB_B}: attempt 2 started
2026-12-04 03:52:40,000 INFO ForkPoolWorker-2 celery.app.trace: Task meshcast.process_job[3-4] \
succeeded in 8.5s: 'lost'
"""


def drill(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["bench", "faults", *args])
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def check_nothing_lost(report: dict[str, Any]) -> None:
    for name, scenario in report["scenarios"].items():
        assert scenario["succeeded"] == scenario["submitted"] == 1, (name, scenario)
        assert scenario["faults"] == {**scenario["faults"], "injected": 1, "missed": 0}, name
        assert scenario["recover_s"]["max"] is not None, name
    total = report["total"]
    assert total["lost"] == total["committed_twice"] == total["run_twice_to_completion"] == 0
    assert total["pipeline_ends_unseen"] == 0  # every success's pipeline end was heard
    assert report["orphans"] | {"other_keys": {}} == {
        "keys_without_a_job": [],
        "running_index_not_running": [],
        "jobs_not_ended": {},
        "queued_without_a_task": [],
        "cut_uploads_left": [],
        "owner_index_without_a_job": 0,
        "other_keys": {},
    }
    assert report["leftover_files"] == {"settled": [], "after_stop": []}
    assert report["leftover_processes"] == []
    assert report["problems"] == []


def test_a_missing_bundle_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["bench", "faults", "--bundle", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: no bundle at {tmp_path / 'none'}: make the default one with "
        "`meshcast demo --build-only`"
    ]


def test_the_logs_tell_each_attempt(tmp_path: Path) -> None:
    log = tmp_path / "worker-0.log"
    log.write_text(WORKER_LOG)
    history = _attempts([log, tmp_path / "worker-1.log"])  # a worker that never wrote a log
    outcomes = {job: [(a.number, a.outcome, a.seconds) for a in history[job]] for job in history}
    assert outcomes == {
        JOB_A: [(1, "killed", None), (2, "committed", 1.5)],
        JOB_B: [(1, "redis_error", None), (2, "lost", 8.5)],
    }
    # The jobs' events: job A's attempt 2 finished its pipeline; job B's never did.
    runs = _runs([JOB_A, JOB_B], history, Counter({JOB_A: 1}))
    assert runs["committed_twice"] == runs["run_twice_to_completion"] == 0
    assert runs["pipeline_ends_unseen"] == 0
    assert runs["lost_attempts"] == [f"{JOB_B} attempt 2, 8.5 s"]
    assert _runs([JOB_A], history, Counter({JOB_A: 2}))["run_twice_jobs"] == [JOB_A]


def test_a_broker_message_names_its_job() -> None:
    body = base64.b64encode(json.dumps([[JOB_A], {}, {}]).encode()).decode()
    queued = json.dumps({"body": body, "headers": {"id": "8c5a-…"}})
    unacked = json.dumps([json.loads(queued), "", "meshcast.jobs"])
    assert _message_job(queued.encode()) == _message_job(unacked) == JOB_A
    assert _message_job(b"not json") is None


@pytest.mark.slow  # 30 s: the suite's time is spent (`make test-slow`)
def test_a_pool_process_or_the_gateway_killed_costs_nothing(service_bundle_dir: Path) -> None:
    report = drill(
        *("--jobs", "1", "--scenario", "child_kill", "--scenario", "gateway_kill"),
        *("--frames", "8", "--formats", "json", "--bundle", str(service_bundle_dir)),
    )
    assert list(report["scenarios"]) == ["child_kill", "gateway_kill"]
    check_nothing_lost(report)
    child, gateway = report["scenarios"]["child_kill"], report["scenarios"]["gateway_kill"]
    assert child["attempt_outcomes"] == {"killed": 1, "committed": 1}
    check_cut_upload(gateway)


def check_cut_upload(gateway: dict[str, Any]) -> None:
    """The upload the gateway died in made no job, and left no folder past the next start."""
    assert gateway["uploads_cut"] == 1
    assert gateway["cut_uploads_made_a_job"] == gateway["upload_folders_after_restart"] == []
    assert gateway["attempt_outcomes"] == {"committed": 1}  # the upload sent again


@pytest.mark.slow
def test_each_fault_costs_nothing(service_bundle_dir: Path) -> None:
    report = drill("--jobs", "1", "--bundle", str(service_bundle_dir))
    assert list(report["scenarios"]) == ["worker_kill", "child_kill", "gateway_kill",
                                         "redis_restart"]  # fmt: skip
    check_nothing_lost(report)
    check_cut_upload(report["scenarios"]["gateway_kill"])
