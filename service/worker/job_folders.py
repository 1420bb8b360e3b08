"""Each job attempt's scratch folder (the upload's copy, the outputs before they are stored),
named after the worker process that made it, and the sweep of those whose process is gone.

A worker killed outright (SIGKILL, the OOM killer, a node's power) runs no cleanup: its
folder, with a copy of the user's video, stays in the temp folder. Every attempt first sweeps
the folders of processes that no longer exist.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PREFIX = "meshcast-job-"
_NAME = re.compile(rf"{re.escape(PREFIX)}(?P<pid>[0-9]+)-.+")


def job_folder() -> tempfile.TemporaryDirectory[str]:
    """A new scratch folder of this process, removed when the context ends."""
    return tempfile.TemporaryDirectory(prefix=f"{PREFIX}{os.getpid()}-")


def sweep_orphan_folders(parent: Path | None = None) -> list[Path]:
    """Remove the job folders in ``parent`` (the temp folder) whose process is gone; the ones
    removed. A folder of a live process, or of another naming, is left alone."""
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        match = _NAME.fullmatch(folder.name)
        if match is None or not folder.is_dir() or _alive(int(match["pid"])):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed %s, left by a worker process that is gone", folder)
        removed.append(folder)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        pass
    return True
