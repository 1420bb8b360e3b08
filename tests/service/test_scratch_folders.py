"""Scratch folders: named after their process, swept once that process is gone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.scratch_folders import JOB_PREFIX as PREFIX
from service.scratch_folders import UPLOAD_PREFIX, scratch_folder, sweep_orphan_folders


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_scratch_folder_names_its_process() -> None:
    with scratch_folder(PREFIX) as folder:
        assert Path(folder).name.startswith(f"{PREFIX}{os.getpid()}-")
    assert not Path(folder).exists()


def test_the_sweep_removes_only_the_folders_of_gone_processes(tmp_path: Path) -> None:
    orphan = tmp_path / f"{PREFIX}{dead_pid()}-abc"
    (orphan / "outputs").mkdir(parents=True)
    (orphan / "upload").write_bytes(b"a user's video")
    own = tmp_path / f"{PREFIX}{os.getpid()}-def"
    own.mkdir()
    unrelated = tmp_path / f"{PREFIX}notapid"
    unrelated.mkdir()
    upload = tmp_path / f"{UPLOAD_PREFIX}{dead_pid()}-ghi"  # another prefix: another sweep's
    upload.mkdir()
    assert sweep_orphan_folders(PREFIX, tmp_path) == [orphan]
    assert not orphan.exists()
    assert own.is_dir()
    assert unrelated.is_dir()
    assert sweep_orphan_folders(UPLOAD_PREFIX, tmp_path) == [upload]


def test_a_file_of_the_same_name_is_left(tmp_path: Path) -> None:
    (tmp_path / f"{PREFIX}{dead_pid()}-file").write_text("not ours")
    assert sweep_orphan_folders(PREFIX, tmp_path) == []
