"""Fetch BlazePose's original ``pose_landmark_full.tflite`` (the pinned npm package, its hashes
checked, as ``convert.py`` takes it), for ``meshcast bench frontend --litert``, which times
the converted graph against it on its own runtime (LiteRT).

Usage: ``python export/frontend/fetch_tflite.py OUT_DIR`` (``make blazepose-tflite``); prints
the file's path. Needs ``npm``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from export.frontend.convert import BLAZEPOSE, fetch

TFLITE = "package/pose_landmark_full.tflite"


def main(out_dir: Path) -> Path:
    """The checked .tflite in ``out_dir`` (fetched once)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _, paths = fetch(BLAZEPOSE, out_dir)
    return paths[TFLITE]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python export/frontend/fetch_tflite.py OUT_DIR")
    print(main(Path(sys.argv[1])))
