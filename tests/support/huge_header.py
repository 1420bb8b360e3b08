"""A video whose headers claim 10,000 × 10,000 pixels a frame, in a few kilobytes.

An MJPEG AVI of small black frames is written, then the sizes in its headers are rewritten:
the AVI's main header and stream format (what FFmpeg reports before decoding) and each JPEG's
start-of-frame. It is what a client would send to make a server allocate 100 megapixels.
"""

from __future__ import annotations

import struct
from pathlib import Path

import av
import numpy as np

CLAIMED = 10_000  # pixels, each side
FRAMES, SIDE, FPS = 5, 64, 10
# Offsets of (width, height) after each chunk's 4-byte id and 4-byte length: the main AVI
# header's dwWidth/dwHeight, the BITMAPINFOHEADER's biWidth/biHeight (both little-endian).
AVIH_SIZE_OFFSET, STRF_SIZE_OFFSET = 32, 4
JPEG_SOF0 = b"\xff\xc0"  # then length (2), precision (1), height (2), width (2), big-endian
SOF_SIZE_OFFSET = 5


def write_huge_header_video(path: Path) -> Path:
    """Write the file to ``path``; returns it."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = SIDE, SIDE, "yuvj420p"
        for _ in range(FRAMES):
            image = np.zeros((SIDE, SIDE, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    data = bytearray(path.read_bytes())
    for chunk, offset in ((b"avih", AVIH_SIZE_OFFSET), (b"strf", STRF_SIZE_OFFSET)):
        struct.pack_into("<ii", data, data.index(chunk) + 8 + offset, CLAIMED, CLAIMED)
    start = data.find(JPEG_SOF0)
    while start >= 0:
        struct.pack_into(">HH", data, start + SOF_SIZE_OFFSET, CLAIMED, CLAIMED)
        start = data.find(JPEG_SOF0, start + len(JPEG_SOF0))
    path.write_bytes(bytes(data))
    return path
