"""The movement cue: a change where nobody is followed, as large as a person, calls a search."""

from __future__ import annotations

import cv2
import numpy as np

from service.pipeline.motion import MotionConfig, NewMotion

HEIGHT, WIDTH = 240, 320
NOBODY = np.zeros((0, 4))
PAN_PX = 3  # a camera panning right, pixels a frame
PAN_FRAMES = 10


def frame_with(*patches: tuple[int, int, int, int]) -> np.ndarray:
    """A grey frame with light noise and white rectangles at ``patches`` (x1, y1, x2, y2)."""
    rng = np.random.default_rng(len(patches))
    image = np.full((HEIGHT, WIDTH, 3), 100, np.uint8)
    image += rng.integers(0, 6, image.shape, dtype=np.uint8)  # below the threshold
    for x1, y1, x2, y2 in patches:
        image[y1:y2, x1:x2] = 255
    return image


def test_the_first_frame_and_a_still_scene_call_no_search() -> None:
    motion = NewMotion(MotionConfig())
    assert not motion.moves_outside(frame_with(), NOBODY)
    assert not motion.moves_outside(frame_with(), NOBODY)


def test_someone_appearing_where_nobody_is_followed_calls_a_search() -> None:
    motion = NewMotion(MotionConfig())
    motion.moves_outside(frame_with(), NOBODY)
    assert motion.moves_outside(frame_with((200, 60, 230, 140)), NOBODY)


def test_movement_inside_a_followed_persons_widened_box_is_theirs() -> None:
    motion = NewMotion(MotionConfig(margin=0.25))
    motion.moves_outside(frame_with((200, 60, 230, 140)), NOBODY)
    # they stepped 6 pixels right: inside their box grown by a quarter of its width
    followed = np.array([[200.0, 60.0, 230.0, 140.0]])
    assert not motion.moves_outside(frame_with((206, 60, 236, 140)), followed)
    # the same step with their box not grown is movement outside it
    motion = NewMotion(MotionConfig(margin=0.0))
    motion.moves_outside(frame_with((200, 60, 230, 140)), NOBODY)
    assert motion.moves_outside(frame_with((206, 60, 236, 140)), followed)


def test_a_change_smaller_than_a_person_calls_no_search() -> None:
    # min_area 0.002 of a 160 × 120 comparison is 38 pixels: a 10 × 10 patch of 320 × 240
    # becomes 5 × 5 there
    motion = NewMotion(MotionConfig(width=160, min_area=0.002))
    motion.moves_outside(frame_with(), NOBODY)
    assert not motion.moves_outside(frame_with((100, 100, 110, 110)), NOBODY)
    motion = NewMotion(MotionConfig(width=160, min_area=0.001))
    motion.moves_outside(frame_with(), NOBODY)
    assert motion.moves_outside(frame_with((100, 100, 110, 110)), NOBODY)


def test_a_frame_of_another_size_starts_the_comparison_again() -> None:
    motion = NewMotion(MotionConfig())
    motion.moves_outside(frame_with(), NOBODY)
    assert not motion.moves_outside(np.zeros((HEIGHT // 2, WIDTH, 3), np.uint8), NOBODY)


def scene() -> np.ndarray:
    """A background of random grey blocks (8 pixels a side) wider than a frame, for a camera
    to pan over."""
    rng = np.random.default_rng(0)
    width = WIDTH + PAN_PX * PAN_FRAMES
    blocks = rng.integers(0, 256, (HEIGHT // 8, width // 8 + 1), dtype=np.uint8)
    grey = np.kron(blocks, np.ones((8, 8), np.uint8))[:, :width]
    return cv2.GaussianBlur(np.repeat(grey[..., None], 3, axis=2), (3, 3), 0)


def panned(view: np.ndarray, frame: int) -> np.ndarray:
    """What the panning camera sees in ``frame``."""
    return np.ascontiguousarray(view[:, PAN_PX * frame : PAN_PX * frame + WIDTH])


def test_a_panning_camera_is_followed_and_calls_no_search() -> None:
    view = scene()
    followed, still = NewMotion(MotionConfig()), NewMotion(MotionConfig(camera_shift=None))
    searches = {"followed": 0, "still": 0}
    for frame in range(PAN_FRAMES):
        searches["followed"] += followed.moves_outside(panned(view, frame), NOBODY)
        searches["still"] += still.moves_outside(panned(view, frame), NOBODY)
    assert searches == {"followed": 0, "still": PAN_FRAMES - 1}


def test_someone_walking_in_while_the_camera_pans_calls_a_search() -> None:
    view = scene()
    motion = NewMotion(MotionConfig())
    for frame in range(PAN_FRAMES - 1):
        assert not motion.moves_outside(panned(view, frame), NOBODY)
    view[60:140, 200:230] = 255  # in the scene, where the camera looks at the last frame
    assert motion.moves_outside(panned(view, PAN_FRAMES - 1), NOBODY)
