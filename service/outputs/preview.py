"""The preview video: every track's mesh drawn over the video's frames, one colour a person.

Frames are decoded, drawn on and encoded one at a time (never the whole video in memory), and
the people in each frame are posed by the body model when the frame comes, each alone, by the
pass of :mod:`.posed_frames` that ``write_outputs`` shares with every file that needs them.
Each person's mesh is placed where it stands in the camera frame (vertices + translation) and
projected with the pipeline's perspective camera (:func:`image_camera`). People are passed to
the painter renderer (:func:`service.render.render_meshes`) farthest first (by translation
z); it orders all their triangles together by depth, so a nearer person covers a farther one
wherever they overlap. Asked to, it also draws each person's keypoint landmarks over the
meshes, in the person's colour: the points the model saw (visibility at least
:data:`~service.pipeline.landmarks.VISIBLE`) and the bones of
:data:`~service.pipeline.landmarks.SKELETON` between two of them, nearer people's over
farther ones'.

Encoding: H.264 (``libx264``) in MP4, or MPEG-4 Part 2 (``mpeg4``) where PyAV's FFmpeg lacks
it, 4:2:0 chroma (what browsers and players decode; it needs even sizes, so an odd frame gets
one edge row or column repeated), at the video's average frame rate, with the index at the
front of the file so a browser plays it while it downloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np

from service.outputs.posed_frames import PosedPerson
from service.pipeline.landmarks import SKELETON, VISIBLE
from service.pipeline.result import VideoResult
from service.pipeline.video import read_frames
from service.render import Mesh, PinholeCamera, draw_skeleton, render_meshes
from service.render.mesh_renderer import NEAR_PLANE_M
from service.render.simplify import DetailLevels

PreviewCodec = Literal["libx264", "mpeg4"]
PREVIEW_CODECS: tuple[PreviewCodec, ...] = ("libx264", "mpeg4")  # the first one FFmpeg has
PIXEL_FORMAT = "yuv420p"
CHROMA_SUBSAMPLING = 2  # 4:2:0 halves both sizes of the chroma planes
# Frame rates as fractions: NTSC's are n · 1000/1001 (29.97 = 30000/1001).
RATE_DENOMINATOR_LIMIT = 1001
# Fast encoding at x264's default quality: a preview, not an archive.
CODEC_OPTIONS = {"libx264": {"preset": "veryfast", "crf": "23"}, "mpeg4": {"qscale": "4"}}
CONTAINER_OPTIONS = {"movflags": "+faststart"}
MESH_ALPHA = 0.85  # the meshes' opacity over the frame: the person shows through a little
# Tableau's 10 colours (RGB), distinct from one another: track i gets colour i mod 10; but for
# its brown and grey, which vanish on people in dark or grey clothes (a walker of vtest.avi in
# black looked as if she had no mesh), whose places take two of Tableau 20's light tints.
TRACK_COLORS_RGB: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (152, 223, 138),
    (227, 119, 194),
    (174, 199, 232),
    (188, 189, 34),
    (23, 190, 207),
)
DEPTH = 2  # index of z in a translation
# Keypoints: a visible landmark is drawn as a disc of this radius, and bones as lines this
# wide (pixels).
KEYPOINT_RADIUS_PX = 3.0
BONE_WIDTH_PX = 2
VISIBILITY = 2  # index of visibility in a landmark (x, y, visibility)
# Each person is drawn with the coarsest of these clusterings of the body's vertices (cells
# along its tallest extent, :mod:`service.render.simplify`) whose cells span at most
# MAX_CELL_PX pixels, the whole mesh when none does: a stand-in body 120 pixels across is drawn
# with the 64-cell level (2,510 of its 13,718 vertices), and filling triangles is the
# preview's cost. 3 pixels rather than 2 draws vtest.avi's people 1.8 times as fast, their
# outlines' intersection over union with the whole mesh's 0.948 against 0.978 (`meshcast bench
# preview … --max-cell-px 2|3`, docs/results.md).
DETAIL_CELLS = (16, 32, 64, 128)
MAX_CELL_PX = 3.0


def image_camera(width: int, height: int, focal_length: float) -> PinholeCamera:
    """The pipeline's perspective camera of a ``width × height`` frame.

    Square pixels of focal length ``focal_length`` (pixels), principal point at the frame's
    centre ``(W / 2, H / 2)``: a camera-frame point ``(x, y, z)`` lands on pixel
    ``(f x / z + W / 2, f y / z + H / 2)``, as :mod:`service.pipeline.camera` places bodies.
    """
    return PinholeCamera(fx=focal_length, fy=focal_length, cx=width / 2.0, cy=height / 2.0)


def track_color_bgr(track_id: int) -> tuple[int, int, int]:
    """A track's colour in OpenCV's channel order (the frames are BGR)."""
    red, green, blue = TRACK_COLORS_RGB[track_id % len(TRACK_COLORS_RGB)]
    return blue, green, red


def preview_codec() -> PreviewCodec:
    """The preview's encoder: H.264 when PyAV's FFmpeg has it."""
    for codec in PREVIEW_CODECS:
        if codec in av.codecs_available:
            return codec
    raise RuntimeError(f"PyAV's FFmpeg has none of the encoders {PREVIEW_CODECS}")


def write_preview(
    video: VideoResult,
    video_path: str | Path,
    path: str | Path,
    posed: Iterable[tuple[int, list[PosedPerson]]],
    *,
    focal_length: float,
    alpha: float = MESH_ALPHA,
    keypoints: bool = False,
) -> Path:
    """Write the preview of ``video`` (decoded from ``video_path``) to ``path`` (MP4).

    Args:
        video: the result to draw.
        video_path: the video it was made from.
        path: the MP4 to write.
        posed: the frames with someone in them, in order, each with its people posed
            (:func:`~.posed_frames.posed_frames`); taken one by one as the video's frames come.
        focal_length: the focal length in pixels the pipeline assumed.
        alpha: the meshes' opacity, 0–1.
        keypoints: draw each person's landmarks and skeleton over the meshes.

    Returns:
        ``path``, holding one frame per frame decoded from ``video_path``.

    Raises:
        ValueError: the video's frames are not the size the result was made for.
    """
    camera = image_camera(video.width, video.height, focal_length)
    detail = detail_levels(video)
    codec = preview_codec()
    rate = Fraction(video.fps).limit_denominator(RATE_DENOMINATOR_LIMIT)
    path = Path(path)
    coming = iter(posed)
    upcoming = next(coming, None)
    with av.open(str(path), mode="w", options=CONTAINER_OPTIONS) as container:
        stream = container.add_stream(codec, rate=rate, options=CODEC_OPTIONS[codec])
        stream.width = _even(video.width)
        stream.height = _even(video.height)
        stream.pix_fmt = PIXEL_FORMAT
        for frame in read_frames(video_path):
            if frame.image.shape[:2] != (video.height, video.width):
                raise ValueError(
                    f"{video_path}: frame {frame.index} is {frame.image.shape[1]}×"
                    f"{frame.image.shape[0]}, the result is for {video.width}×{video.height}"
                )
            people: list[PosedPerson] = []
            if upcoming is not None and upcoming[0] == frame.index:
                people = upcoming[1]
                upcoming = next(coming, None)
            image = draw_people(frame.image, people, camera, detail, alpha, keypoints)
            encoded = av.VideoFrame.from_ndarray(_pad_to_even(image), format="bgr24")
            encoded.pts = frame.index
            container.mux(stream.encode(encoded))
        container.mux(stream.encode(None))
    return path


def detail_levels(video: VideoResult, max_cell_px: float = MAX_CELL_PX) -> DetailLevels:
    """The levels of detail the preview draws ``video``'s people with (``max_cell_px`` 0:
    always the whole mesh)."""
    rest = video.tracks[0].rest_vertices if video.tracks else np.zeros((1, 3))
    return DetailLevels(rest, video.body.faces, DETAIL_CELLS, max_cell_px)


def draw_people(
    image: np.ndarray,
    people: Sequence[PosedPerson],
    camera: PinholeCamera,
    detail: DetailLevels,
    alpha: float = MESH_ALPHA,
    keypoints: bool = False,
) -> np.ndarray:
    """One preview frame: the meshes of ``people`` (a frame's, posed) over ``image``,
    farthest first, each at the detail its size needs, and their keypoints if asked."""
    ordered = sorted(people, key=lambda person: -float(person.translation[DEPTH]))
    meshes = [
        Mesh(
            vertices=person.vertices + person.translation,
            faces=detail.faces(_extent_px(detail.extent, person.translation, camera.fx)),
            color=track_color_bgr(person.track.track_id),
        )
        for person in ordered
    ]
    drawn = render_meshes(image, meshes, camera, alpha)
    return _draw_keypoints(drawn, ordered) if keypoints else drawn


def _extent_px(extent_m: float, translation: np.ndarray, focal_length: float) -> float:
    """How many pixels a length of ``extent_m`` spans at the depth of ``translation``."""
    return focal_length * extent_m / max(float(translation[DEPTH]), NEAR_PLANE_M)


def _draw_keypoints(image: np.ndarray, farthest_first: Sequence[PosedPerson]) -> np.ndarray:
    """The people's visible landmarks and the bones between them over ``image``, each in
    its track's colour, nearer people's over farther ones'."""
    for person in farthest_first:
        track = person.track
        landmarks = track.landmarks[person.row]  # (33, 3): x, y, visibility
        image = draw_skeleton(
            image,
            landmarks[:, :VISIBILITY],
            landmarks[:, VISIBILITY] >= VISIBLE,
            SKELETON,
            track_color_bgr(track.track_id),
            radius=KEYPOINT_RADIUS_PX,
            line_width=BONE_WIDTH_PX,
        )
    return image


def _even(size: int) -> int:
    """``size`` rounded up to what 4:2:0 chroma can halve."""
    return size + (-size % CHROMA_SUBSAMPLING)


def _pad_to_even(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` → even height and width, repeating the last row and column if needed."""
    height, width = image.shape[:2]
    extra_rows, extra_columns = _even(height) - height, _even(width) - width
    if not (extra_rows or extra_columns):
        return image
    return np.pad(image, ((0, extra_rows), (0, extra_columns), (0, 0)), mode="edge")
