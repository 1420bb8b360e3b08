"""Video decoding: properties, frame order and times, rotation, and a clear error for each kind
of file that is not a usable video. Test videos are written with PyAV."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from service.pipeline.video import VideoError, probe, read_frames
from tests.support.huge_header import write_huge_header_video

WIDTH, HEIGHT = 96, 64
FPS = 25
MILLISECOND = Fraction(1, 1000)
VTEST = Path(__file__).parents[4] / "shared" / "data" / "vtest.avi"
# Lossy codecs blur block edges: images compare by mean absolute difference per pixel.
MAX_MEAN_ERROR = 6.0


def pattern(index: int) -> np.ndarray:
    """(HEIGHT, WIDTH, 3) BGR: a white top-left quadrant, a pure blue bottom-right one, and a
    grey level that tells frames apart."""
    image = np.full((HEIGHT, WIDTH, 3), 40 + 4 * index, dtype=np.uint8)
    image[: HEIGHT // 2, : WIDTH // 2] = 255
    image[HEIGHT // 2 :, WIDTH // 2 :] = (255, 0, 0)
    return image


def write_video(
    path: Path,
    images: Sequence[np.ndarray],
    times_ms: Sequence[int] | None = None,
    rotation: int | None = None,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
) -> Path:
    """Encode BGR images; times_ms gives each frame's presentation time (default FPS)."""
    with av.open(str(path), mode="w", options=options or {}) as container:
        stream = container.add_stream(codec, rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.codec_context.options = {"crf": "10"} if codec == "libx264" else {}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if times_ms is not None:
            stream.codec_context.time_base = MILLISECOND
        for k, image in enumerate(images):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[k], MILLISECOND
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if not images:
            container.start_encoding()
    return path


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def test_probe_and_frames_of_a_constant_rate_video(tmp_path: Path) -> None:
    images = [pattern(k) for k in range(30)]
    path = write_video(tmp_path / "clip.mp4", images)
    info = probe(path)
    assert (info.width, info.height, info.fps, info.frame_count) == (WIDTH, HEIGHT, FPS, 30)
    assert info.duration == pytest.approx(30 / FPS)
    assert (info.codec, info.rotation) == ("h264", 0)
    frames = list(read_frames(path))
    assert [frame.index for frame in frames] == list(range(30))
    assert [frame.time for frame in frames] == pytest.approx([k / FPS for k in range(30)])
    for frame, image in zip(frames, images, strict=True):
        assert frame.image.shape == (HEIGHT, WIDTH, 3)
        assert frame.image.dtype == np.uint8
        assert mean_error(frame.image, image) < MAX_MEAN_ERROR  # BGR order, frame order


def test_variable_frame_rate_gives_each_frame_its_time(tmp_path: Path) -> None:
    times_ms = [0, 33, 66, 200, 233, 500, 533, 566, 1000, 1033]
    path = write_video(tmp_path / "vfr.mp4", [pattern(k) for k in range(10)], times_ms)
    assert [frame.time for frame in read_frames(path)] == pytest.approx(
        [t / 1000 for t in times_ms]
    )
    info = probe(path)
    assert info.frame_count == len(times_ms)
    assert info.fps == pytest.approx(len(times_ms) / info.duration, rel=0.1)


def test_times_that_do_not_increase_are_repaired(tmp_path: Path) -> None:
    # Frames handed to the encoder without times (as meshcast.fault_drill.cut_video once did):
    # the file holds every frame at 0.
    source = write_video(tmp_path / "source.mp4", [pattern(k) for k in range(8)])
    path = tmp_path / "zero.mp4"
    with av.open(str(source)) as decoded, av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for frame in decoded.decode(video=0):
            frame.pts = None
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with av.open(str(path)) as written:
        assert {frame.pts for frame in written.decode(video=0)} == {0}
    times = [frame.time for frame in read_frames(path)]
    assert times[0] == 0.0
    assert np.all(np.diff(times) > 0)  # one frame at the stream's rate after the one before
    assert np.allclose(np.diff(times), 1.0 / probe(path).fps)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_video_is_decoded_upright(tmp_path: Path, rotation: int) -> None:
    path = write_video(tmp_path / "phone.mp4", [pattern(k) for k in range(3)], rotation=rotation)
    info = probe(path)
    assert info.rotation == rotation
    turned = rotation in (90, 270)
    assert (info.width, info.height) == ((HEIGHT, WIDTH) if turned else (WIDTH, HEIGHT))
    frames = list(read_frames(path))
    # The display matrix turns counter-clockwise, as np.rot90 does ...
    expected = np.rot90(pattern(0), k=rotation // 90)
    assert mean_error(frames[0].image, expected) < MAX_MEAN_ERROR
    # ... and OpenCV's own autorotation (CAP_PROP_ORIENTATION_AUTO) agrees.
    capture = cv2.VideoCapture(str(path))
    ok, opencv_image = capture.read()
    capture.release()
    assert ok
    assert mean_error(frames[0].image, opencv_image) < MAX_MEAN_ERROR


def test_frame_count_of_a_container_that_declares_none(tmp_path: Path) -> None:
    path = write_video(tmp_path / "clip.mkv", [pattern(k) for k in range(17)])
    with av.open(str(path)) as container:
        assert container.streams.video[0].frames == 0  # Matroska declares no count
    info = probe(path)
    assert info.frame_count == 17
    assert info.duration == pytest.approx(17 / FPS)
    assert sum(1 for _ in read_frames(path)) == 17


@pytest.mark.skipif(not VTEST.exists(), reason="shared/data/vtest.avi is not here")
def test_streams_the_street_video() -> None:
    info = probe(VTEST)
    assert (info.width, info.height, info.fps, info.frame_count) == (768, 576, 10, 795)
    assert info.duration == pytest.approx(79.5)
    frames = read_frames(VTEST)
    first = list(itertools.islice(frames, 3))
    frames.close()  # stops decoding: nothing past the third frame was read
    assert [frame.time for frame in first] == pytest.approx([0.0, 0.1, 0.2])
    assert first[0].image.shape == (576, 768, 3)


def noise_video(path: Path, options: dict[str, str] | None = None) -> Path:
    """Frames of random pixels: large packets, so a cut lands inside one."""
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8) for _ in range(40)]
    return write_video(path, images, options=options)


def make_empty(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def make_text(path: Path) -> Path:
    path.write_bytes(b"this is not a video\n" * 200)
    return path


def make_index_cut(path: Path) -> Path:
    """An mp4 with its index (moov) at the end, cut in half: the index is lost."""
    whole = noise_video(path.with_suffix(".whole.mp4")).read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return path


def make_no_frames(path: Path) -> Path:
    return write_video(path.with_suffix(".avi"), [], codec="mpeg4")


def make_audio_only(path: Path) -> Path:
    path = path.with_suffix(".wav")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def make_image(path: Path) -> Path:
    """A still PNG, which FFmpeg would read as a video of one frame."""
    path = path.with_suffix(".png")
    path.write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    return path


@pytest.mark.parametrize(
    ("make", "code", "words"),
    [
        (make_empty, "empty_file", "empty"),
        (make_image, "not_a_video", "still image"),
        (make_text, "not_a_video", "not a video"),
        (make_index_cut, "not_a_video", "cut short"),
        (make_no_frames, "no_frames", "no frames"),
        (make_audio_only, "no_video_stream", "no video stream"),
    ],
)
def test_unusable_files_raise_a_clear_error(
    tmp_path: Path, make: Callable[[Path], Path], code: str, words: str
) -> None:
    path = make(tmp_path / "upload.mp4")
    for read in (probe, lambda p: list(read_frames(p))):
        with pytest.raises(VideoError, match=words) as raised:
            read(path)
        assert raised.value.code == code
        assert isinstance(raised.value, ValueError)


def test_video_cut_short_after_its_index_raises_after_the_frames_before_the_cut(
    tmp_path: Path,
) -> None:
    # faststart puts the index first: the cut file opens and claims all 40 frames.
    whole = noise_video(tmp_path / "whole.mp4", options={"movflags": "faststart"}).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(whole[: len(whole) // 2])
    assert probe(path).frame_count == 40
    decoded = []
    with pytest.raises(VideoError, match="cut short") as raised:
        decoded.extend(read_frames(path))
    assert raised.value.code == "truncated"
    assert 0 < len(decoded) < 40


def test_probe_refuses_a_declared_size_over_its_limit_before_decoding(tmp_path: Path) -> None:
    path = write_huge_header_video(tmp_path / "huge.avi")
    with pytest.raises(VideoError) as refused:
        probe(path, max_pixels=3840 * 3840)
    assert refused.value.code == "resolution_too_high"
