"""Scratch folders in the temp folder, named after the process that made them, and the sweep
of those whose process is gone: a worker's job attempts (the upload's copy, the outputs before
they are stored) and the gateway's uploads (the file it probes).

A process killed outright (SIGKILL, the OOM killer, a node's power) runs no cleanup: its
folder, with a copy of a user's video, stays. The worker sweeps before each attempt, the
gateway as it starts.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

JOB_PREFIX = "meshcast-job-"
UPLOAD_PREFIX = "meshcast-upload-"


def scratch_folder(prefix: str) -> tempfile.TemporaryDirectory[str]:
    """A new scratch folder of this process, ``<prefix><pid>-…``, removed when the context
    ends."""
    return tempfile.TemporaryDirectory(prefix=f"{prefix}{os.getpid()}-")


def sweep_orphan_folders(prefix: str, parent: Path | None = None) -> list[Path]:
    """Remove the scratch folders named with ``prefix`` in ``parent`` (the temp folder) whose
    process is gone; the ones removed. A folder of a live process, or of another naming, is
    left alone."""
    name = re.compile(rf"{re.escape(prefix)}(?P<pid>[0-9]+)-.+")
    removed = []
    for folder in Path(parent or tempfile.gettempdir()).glob(f"{prefix}*"):
        match = name.fullmatch(folder.name)
        if match is None or not folder.is_dir() or _alive(int(match["pid"])):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        log.info("removed %s, left by a process that is gone", folder)
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
