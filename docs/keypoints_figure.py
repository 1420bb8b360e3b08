"""Draw one frame of a `meshcast run` result as the README shows it: every tracked person's box
and id, and their 33 landmarks and skeleton, in the track's colour (no meshes).

    python docs/keypoints_figure.py VIDEO OUT_DIR FRAME docs/keypoints_vtest.png

VIDEO and OUT_DIR are the `meshcast run` input and output folder (its result.npz).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from service.outputs.preview import track_color_bgr
from service.outputs.result_files import read_result_npz
from service.pipeline.landmarks import SKELETON, VISIBLE
from service.pipeline.video import read_frames
from service.render import draw_skeleton

ZOOM = 1.5  # the figure is drawn larger than the frame, so that small walkers show
LABEL_SCALE, LABEL_THICKNESS = 0.6, 2


def draw_frame(video: Path, out_dir: Path, frame_index: int) -> np.ndarray:
    """Frame ``frame_index`` of ``video`` with the people of ``out_dir/result.npz`` drawn."""
    result = read_result_npz(out_dir / "result.npz")
    image = next(f.image for f in read_frames(video) if f.index == frame_index)
    image = cv2.resize(image, None, fx=ZOOM, fy=ZOOM, interpolation=cv2.INTER_CUBIC)
    for track in result.tracks:
        rows = np.flatnonzero(track.frame_ids == frame_index)
        if rows.size == 0:
            continue
        colour = track_color_bgr(track.track_id)
        landmarks = track.landmarks[rows[0]]
        image = draw_skeleton(
            image, landmarks[:, :2] * ZOOM, landmarks[:, 2] >= VISIBLE, SKELETON, colour,
            radius=2.5, line_width=2,
        )  # fmt: skip
        x1, y1, x2, y2 = (track.boxes[rows[0]] * ZOOM).round().astype(int).tolist()
        cv2.rectangle(image, (x1, y1), (x2, y2), colour, 1, cv2.LINE_AA)
        cv2.putText(image, str(track.track_id), (x1, y1 - 4), cv2.FONT_HERSHEY_SIMPLEX,
                    LABEL_SCALE, colour, LABEL_THICKNESS, cv2.LINE_AA)  # fmt: skip
    return image


if __name__ == "__main__":
    video, out_dir, frame, png = sys.argv[1:5]
    cv2.imwrite(
        png, draw_frame(Path(video), Path(out_dir), int(frame)), [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
