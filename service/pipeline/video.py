"""Video decoding: what a file holds (:func:`probe`) and its frames, one at a time
(:func:`read_frames`).

Decoding goes through PyAV (FFmpeg's libraries) rather than ``cv2.VideoCapture``: OpenCV 4.14
does give presentation times (``CAP_PROP_POS_MSEC``) and rotates frames by their display matrix
(``CAP_PROP_ORIENTATION_AUTO``), but it cannot tell a frame count the container declares from
one it estimates from the duration, and on a file cut short it stops reading without a word,
so a truncated upload would pass for a short video. With PyAV the demuxer's mark on a damaged
packet (``Packet.is_corrupt``: the last one of a file cut short) and the decoder's errors reach
this module, which raises :class:`VideoError`.

Frame counts, two of them:

- :attr:`VideoInfo.frame_count` is what the container declares (mp4, mov, avi index every
  frame). Containers that declare nothing (Matroska, WebM) have their video packets counted,
  without decoding, one packet per frame.
- The frames actually decoded are the ones :func:`read_frames` yields (the last
  :attr:`Frame.index` + 1). They can differ from the declared count by the few frames an edit
  list hides; a file cut short raises :class:`VideoError` instead.

Variable frame rates: every frame carries its presentation time; :attr:`VideoInfo.fps` is the
average rate (frames over duration), fit for limits and display, not for timing frames. A time
that does not follow the frame before's (a broken muxer's file has every frame at 0) becomes
that frame's time plus one frame at the stream's rate: the times always increase, as the
smoothing filter and the animations need.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
import av.container
import av.video.stream
import numpy as np
from pydantic import BaseModel, ConfigDict

VideoErrorCode = Literal[
    "empty_file", "not_a_video", "no_video_stream", "no_frames", "truncated", "resolution_too_high"
]

# Display matrices rotate by multiples of a quarter turn in practice (phones); other angles are
# rounded to the nearest quarter turn, as FFmpeg's own autorotation does.
QUARTER_TURN_DEG = 90
# FFmpeg's demuxers of still images (besides the *_pipe ones: png_pipe, jpeg_pipe, ...).
IMAGE_DEMUXERS = frozenset({"image2", "image2pipe"})
FULL_TURN_DEG = 360


class VideoError(ValueError):
    """A file that cannot be used as a video. ``str(error)`` is a sentence for the person who
    uploaded it; :attr:`code` is stable, for programs."""

    def __init__(self, code: VideoErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class VideoInfo(BaseModel):
    """What :func:`probe` reads from a video's headers and its first frame."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    width: int  # pixels, as displayed (after rotation)
    height: int
    fps: float  # average frames per second
    frame_count: int  # declared by the container, or its video packets counted
    duration: float  # seconds
    codec: str  # FFmpeg's decoder name: h264, hevc, vp9, mpeg4, …
    rotation: int  # 0, 90, 180 or 270: degrees counter-clockwise frames are turned for display


@dataclass(frozen=True)
class Frame:
    """One decoded frame, upright."""

    index: int  # 0-based, in presentation order
    time: float  # presentation time, seconds from the start of the stream
    image: np.ndarray  # (H, W, 3) uint8 BGR, rotated for display


def probe(path: str | Path, max_pixels: int | None = None) -> VideoInfo:
    """Read a video's size, frame rate, frame count, duration, codec and rotation.

    Decodes the first frame only (to be sure there is one, and to read its rotation), and not
    even that when the size its headers declare is over ``max_pixels``: a header may claim
    10,000 × 10,000 pixels to make a server allocate them.

    Raises:
        VideoError: the file is empty, not a video, has no video stream or no frame, or
            declares more than ``max_pixels`` pixels a frame (``resolution_too_high``).
    """
    with _open(path) as container:
        stream = _video_stream(container)
        declared = stream.codec_context.width * stream.codec_context.height
        if max_pixels is not None and declared > max_pixels:
            raise VideoError(
                "resolution_too_high",
                f"The video declares {stream.codec_context.width} × "
                f"{stream.codec_context.height} pixels a frame, more than {max_pixels:,}: "
                "scale it down.",
            )
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as error:
            raise VideoError(
                "truncated", f"The video's first frame is damaged ({error.strerror})."
            ) from error
        if first is None:
            raise VideoError("no_frames", "The video contains no frames.")
        rotation = _quarter_turns(first.rotation) * QUARTER_TURN_DEG
        width, height = first.width, first.height
        declared_count = stream.frames
        duration = _duration_s(container, stream)
        rate = stream.average_rate or stream.guessed_rate
        codec = stream.codec_context.name
    frame_count = declared_count if declared_count > 0 else _count_packets(path)
    fps = float(rate) if rate else None
    if duration is None and fps:
        duration = frame_count / fps
    if fps is None and duration:
        fps = frame_count / duration
    if not fps or not duration:
        raise VideoError("not_a_video", "The video's frame rate and duration are both unknown.")
    if rotation in (QUARTER_TURN_DEG, 3 * QUARTER_TURN_DEG):
        width, height = height, width
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frame_count=frame_count,
        duration=duration,
        codec=codec,
        rotation=rotation,
    )


def read_frames(path: str | Path) -> Iterator[Frame]:
    """Decode a video frame by frame, in presentation order; only one frame is held at a time.

    Raises:
        VideoError: the file is empty, not a video or has no video stream (on the first
            ``next``), it has no frame, or it is damaged or cut short (when decoding reaches
            the damage, after the frames before it were yielded).
    """
    with _open(path) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"  # FFmpeg's frame and slice threads
        index, damage, before = 0, None, None
        try:
            for packet in container.demux(stream):
                # A damaged packet (a file cut short ends in one) is not decoded: the frames
                # before it are flushed out of the decoder, then decoding stops.
                for decoded in stream.decode(None if packet.is_corrupt else packet):
                    frame = _frame(decoded, index, stream, before)
                    yield frame
                    index, before = index + 1, frame.time
                if packet.is_corrupt:
                    damage = "a damaged packet"
                    break
        except av.FFmpegError as error:
            damage = error.strerror
    if damage is not None:
        raise VideoError(
            "truncated",
            f"The video is damaged or cut short: decoding stopped after {index} frames ({damage}).",
        )
    if index == 0:
        raise VideoError("no_frames", "The video contains no frames.")


def _frame(
    decoded: av.VideoFrame, index: int, stream: av.video.stream.VideoStream, before: float | None
) -> Frame:
    """A decoded frame as a :class:`Frame`: BGR, upright, its time in seconds, after
    ``before`` (the time of the frame before; None for the first)."""
    rate = stream.average_rate or stream.guessed_rate
    if decoded.pts is not None and stream.time_base is not None:
        time = float((decoded.pts - (stream.start_time or 0)) * stream.time_base)
    elif rate:
        time = index / float(rate)  # raw elementary streams (.h264) carry no timestamps
    else:
        raise VideoError("not_a_video", "The video has neither timestamps nor a frame rate.")
    if before is not None and time <= before:
        if not rate:
            raise VideoError("not_a_video", "The video's timestamps repeat and it has no rate.")
        time = before + 1.0 / float(rate)
    image = decoded.to_ndarray(format="bgr24")  # (h, w, 3) as coded
    upright = np.rot90(image, k=_quarter_turns(decoded.rotation))  # (H, W, 3) as displayed
    return Frame(index, time, np.ascontiguousarray(upright))


def _open(path: str | Path) -> av.container.InputContainer:
    """Open a file as a container, with a sentence for each way it can fail."""
    if Path(path).stat().st_size == 0:
        raise VideoError("empty_file", "The file is empty.")
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as error:
        raise VideoError(
            "not_a_video",
            "The file is not a video FFmpeg can read, or it was cut short before its index"
            f" ({error.strerror}).",
        ) from error


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    """The container's first video stream (refused when the file is a still image: FFmpeg's
    image demuxers read a PNG or a JPEG as a video of one frame)."""
    if container.format.name in IMAGE_DEMUXERS or container.format.name.endswith("_pipe"):
        raise VideoError(
            "not_a_video",
            f"The file is a still image ({container.format.name}), not a video.",
        )
    if not container.streams.video:
        raise VideoError("no_video_stream", "The file holds no video stream (audio only?).")
    return container.streams.video[0]


def _duration_s(
    container: av.container.InputContainer, stream: av.video.stream.VideoStream
) -> float | None:
    """The stream's duration in seconds, else the container's, else None."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _count_packets(path: str | Path) -> int:
    """Video packets in the file: its frame count when the container declares none."""
    with _open(path) as container:
        stream = _video_stream(container)
        return sum(1 for packet in container.demux(stream) if packet.size > 0)


def _quarter_turns(rotation_deg: float) -> int:
    """A display rotation in degrees (counter-clockwise, any sign) as 0-3 quarter turns."""
    return round(rotation_deg / QUARTER_TURN_DEG) % (FULL_TURN_DEG // QUARTER_TURN_DEG)
