"""Programs the tests run from Debian's packages (redis-server, chromium), installed with apt
when the machine lacks them."""

from __future__ import annotations

import shutil
import subprocess

APT_TIMEOUT_S = 600


def installed_program(program: str, package: str) -> str:
    """The path of ``program``, installing Debian's ``package`` first when it is missing.

    Raises:
        RuntimeError: apt could not install it.
    """
    found = shutil.which(program)
    if found:
        return found
    for step in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", package]):
        subprocess.run(step, check=True, capture_output=True, timeout=APT_TIMEOUT_S)
    found = shutil.which(program)
    if not found:
        raise RuntimeError(f"{program} is not installed and apt could not install {package}")
    return found
