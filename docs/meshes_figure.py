"""One frame of a `meshcast run` preview as the README shows it: the meshes drawn over the
video, enlarged so that small walkers show.

    python docs/meshes_figure.py OUT_DIR/preview.mp4 FRAME docs/meshes_vtest.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from service.pipeline.video import read_frames

ZOOM = 1.5


def preview_frame(preview: Path, frame_index: int) -> np.ndarray:
    """Frame ``frame_index`` of a preview video, enlarged by :data:`ZOOM`."""
    image = next(f.image for f in read_frames(preview) if f.index == frame_index)
    return cv2.resize(image, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_CUBIC)


if __name__ == "__main__":
    preview, frame, png = sys.argv[1:4]
    cv2.imwrite(png, preview_frame(Path(preview), int(frame)), [cv2.IMWRITE_PNG_COMPRESSION, 9])
