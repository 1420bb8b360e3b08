"""A random scene of a synthetic video: people, their motions, a camera, occluders, a backdrop.

Everything is sampled from one ``numpy`` generator, so a seed fixes the scene. World frame:
SMPL's (Y up, ground at y = 0, metres). Camera frame: OpenCV's (x right, y down, z forward).

- People: 1–N bodies with shapes ``β ~ N(0, 1)`` clipped to ±:data:`BETA_CLIP`, each playing a
  built-in clip varied by :mod:`training.synth.motion_variety` (speed, mirroring, blending into
  a second clip, smooth joint noise, looping), turned to a random heading and placed within
  :data:`PLACEMENT_RADIUS_M` of the scene centre, so paths may cross and people may hide one
  another. Clothes and skin are coloured per body part.
- Camera: a pinhole with a random horizontal field of view, at a distance that makes a person
  a random fraction of the frame height, looking at the scene centre; static, panning (turning
  about the vertical) or dollying (moving along its axis).
- Occluders: flat boxes, ellipses and bars standing upright and facing the camera, some on the
  line of sight to a person.
- Backdrop: :mod:`training.synth.backgrounds`, wide enough for the pan; lighting flat or
  Lambert from a random direction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from training.body.model import NUM_BETAS, BodyModel
from training.body.skeleton import SMPL_JOINT_NAMES
from training.motion import MotionClip, list_builtin_clips, load_builtin_clip
from training.synth.backgrounds import sample_background
from training.synth.motion_variety import add_smooth_noise, blend, extend, mirror, resample

BETA_CLIP = 2.5  # standard deviations: beyond, the linear shape space makes odd bodies
SPEED_RANGE = (0.7, 1.4)  # playback speed of a clip
MIRROR_PROBABILITY = 0.5
BLEND_PROBABILITY = 0.3
BLEND_TRANSITION_S = (0.3, 0.8)  # cross-fade length, seconds
NOISE_MAX_RAD = 0.15  # per-joint perturbation bound (≈ 9°): varied but still the same action
NOISE_SMOOTHNESS_S = 0.3  # time constant of the noise: slow drifts, not jitter
PLACEMENT_RADIUS_M = 1.5  # people's path centres lie within this disc
PERSON_HEIGHT_M = 1.7  # nominal body height, to size people in the frame
PERSON_FRACTION = (0.4, 0.9)  # of the frame height a person at the scene centre spans
FOV_DEG = (40.0, 75.0)  # horizontal field of view: a long lens to a phone's wide angle
CAMERA_HEIGHT_M = (0.4, 2.2)  # from a low tripod to a raised arm
LOOK_AT_HEIGHT_M = (0.7, 1.1)  # around pelvis to chest height
CAMERA_MOTIONS = ("static", "pan", "dolly")
PAN_MAX_RAD = math.radians(25.0)  # total turn over a video
DOLLY_MAX_FRACTION = 0.3  # of the camera's distance, towards or away from the scene
OCCLUDERS_MAX = 3
IN_FRONT_PROBABILITY = 0.5  # an occluder stands between the camera and a person
IN_FRONT_FRACTION = (0.3, 0.8)  # where on that line of sight, from the camera
OCCLUDER_KINDS = ("box", "ellipse", "bar")
BOX_SIDE_M = (0.2, 0.9)
BAR_LENGTH_M = (1.5, 3.0)
BAR_WIDTH_M = (0.05, 0.15)
OCCLUDER_CENTRE_HEIGHT_M = (0.2, 1.6)
ELLIPSE_SEGMENTS = 24  # a 24-gon: round at the sizes occluders take in the frame
FLAT_SHADING_PROBABILITY = 0.3
# Light direction (camera frame, travelling): from above and behind the camera, sideways any.
LIGHT_SIDEWAYS = (-1.0, 1.0)
LIGHT_DOWNWARDS = (0.2, 1.0)
LIGHT_FORWARDS = (0.3, 1.0)
# Skin tones (BGR), light to dark; a person's skin is a random mix of the two.
SKIN_LIGHT = np.array([180.0, 200.0, 240.0])
SKIN_DARK = np.array([40.0, 60.0, 95.0])

# Body parts coloured alike, by the joint that moves a vertex most.
PARTS = ("skin", "shirt", "trousers", "shoes")
_PART_OF_JOINT = {
    **dict.fromkeys(("head", "neck", "left_wrist", "right_wrist", "left_hand", "right_hand"), 0),
    **dict.fromkeys(("spine1", "spine2", "spine3", "left_collar", "right_collar"), 1),
    **dict.fromkeys(("left_shoulder", "right_shoulder", "left_elbow", "right_elbow"), 1),
    **dict.fromkeys(("pelvis", "left_hip", "right_hip", "left_knee", "right_knee"), 2),
    **dict.fromkeys(("left_ankle", "right_ankle", "left_foot", "right_foot"), 3),
}
_UP = np.array([0.0, 1.0, 0.0])


@dataclass(frozen=True)
class Person:
    """One body and its motion over the video's F frames (world frame)."""

    motion: str  # how the motion was made, e.g. "walk×1.12 mirrored"
    pose: np.ndarray  # (F, 72) axis-angle, global orientation in the world frame
    transl: np.ndarray  # (F, 3) pelvis position, metres
    betas: np.ndarray  # (10,)
    part_colours: np.ndarray  # (len(PARTS), 3) BGR in [0, 255]


@dataclass(frozen=True)
class Camera:
    """A pinhole camera over F frames.

    ``intrinsics (3, 3)`` maps camera-frame points to pixels whose integers are pixel centres;
    ``rotation (F, 3, 3)`` and ``translation (F, 3)`` take world points to the camera frame,
    ``x_cam = R x_world + t``; ``pan (F,)`` is the turn about world +Y since frame 0 (radians).
    """

    motion: str
    intrinsics: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    pan: np.ndarray


@dataclass(frozen=True)
class Occluder:
    """A flat shape in the world: ``vertices (V, 3)`` metres, ``faces (F, 3)``, one colour."""

    kind: str
    vertices: np.ndarray
    faces: np.ndarray
    colour: np.ndarray  # (3,) BGR


@dataclass(frozen=True)
class Scene:
    """Everything a video shows. ``background`` is ``(H, W', 3)`` uint8 BGR with ``W' ≥ W``:
    the camera's pan slides a W-wide window over it. ``light`` is the camera-frame direction
    the light travels, or None for flat shading."""

    people: list[Person]
    camera: Camera
    occluders: list[Occluder]
    background: np.ndarray
    light: np.ndarray | None
    fps: float


def face_parts(body: BodyModel) -> np.ndarray:
    """Index into :data:`PARTS` of each face ``(F,)`` of ``body``, by the joint with the largest
    skinning weight at the face's first vertex."""
    joint_part = np.array([_PART_OF_JOINT[name] for name in SMPL_JOINT_NAMES])
    vertex_joint = body.lbs_weights.argmax(dim=1).cpu().numpy()
    return joint_part[vertex_joint[body.faces[:, 0].cpu().numpy()]]


def _turn_about_up(angle: float) -> Rotation:
    return Rotation.from_rotvec(_UP * angle)


def _sample_clip(rng: np.random.Generator, clips: Sequence[str], fps: float) -> MotionClip:
    """A built-in clip at a random speed, resampled to ``fps``, maybe mirrored."""
    clip = load_builtin_clip(clips[int(rng.integers(len(clips)))])
    speed = rng.uniform(*SPEED_RANGE)
    clip = resample(clip, speed=speed, fps=fps)
    name = f"{clip.name}×{speed:.2f}"
    if rng.random() < MIRROR_PROBABILITY:
        clip = mirror(clip)
        name += " mirrored"
    return MotionClip(name=name, fps=clip.fps, pose=clip.pose, transl=clip.transl, loop=clip.loop)


def _sample_motion(
    rng: np.random.Generator, num_frames: int, fps: float, clips: Sequence[str]
) -> MotionClip:
    """A varied motion of exactly ``num_frames`` frames from ``clips``, its path centred on
    the origin."""
    clip = _sample_clip(rng, clips, fps)
    if rng.random() < BLEND_PROBABILITY:
        second = _sample_clip(rng, clips, fps)
        transition = round(rng.uniform(*BLEND_TRANSITION_S) * fps)
        transition = min(transition, clip.num_frames, second.num_frames)
        clip = blend(clip, second, transition)
    clip = add_smooth_noise(clip, rng, max_angle=NOISE_MAX_RAD, smoothness=NOISE_SMOOTHNESS_S * fps)
    # start anywhere in a clip longer than the video, so that long clips show all their parts
    start = int(rng.integers(max(clip.num_frames - num_frames, 0) + 1))
    clip = extend(
        MotionClip(clip.name, clip.fps, clip.pose[start:], clip.transl[start:], clip.loop),
        num_frames,
    )
    centre = clip.transl.mean(axis=0) * (1.0 - _UP)
    return MotionClip(clip.name, clip.fps, clip.pose, clip.transl - centre, clip.loop)


def sample_person(
    rng: np.random.Generator, num_frames: int, fps: float, clips: Sequence[str]
) -> Person:
    """One body with a varied motion of ``num_frames`` frames from the built-in ``clips``."""
    clip = _sample_motion(rng, num_frames, fps, clips)
    turn = _turn_about_up(rng.uniform(-np.pi, np.pi))
    radius = PLACEMENT_RADIUS_M * math.sqrt(rng.random())  # uniform over the disc
    angle = rng.uniform(-np.pi, np.pi)
    place = np.array([radius * math.cos(angle), 0.0, radius * math.sin(angle)])
    pose = clip.pose.astype(np.float64).copy()
    pose[:, :3] = (turn * Rotation.from_rotvec(pose[:, :3])).as_rotvec()
    transl = turn.apply(clip.transl) + place
    betas = np.clip(rng.standard_normal(NUM_BETAS), -BETA_CLIP, BETA_CLIP)
    skin = SKIN_LIGHT + (SKIN_DARK - SKIN_LIGHT) * rng.random()
    clothes = rng.uniform(0.0, 255.0, (len(PARTS) - 1, 3))
    return Person(
        motion=clip.name,
        pose=pose.astype(np.float32),
        transl=transl.astype(np.float32),
        betas=betas.astype(np.float32),
        part_colours=np.concatenate([skin[None], clothes]),
    )


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World→camera rotation ``(3, 3)`` of a camera at ``position`` looking at ``target``
    with the world's +Y up in the image (rows: the camera's x right, y down, z forward)."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, _UP)
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def sample_camera(
    rng: np.random.Generator,
    num_frames: int,
    image_size: tuple[int, int],
    *,
    person_fraction: tuple[float, float] = PERSON_FRACTION,
    camera_height: tuple[float, float] = CAMERA_HEIGHT_M,
) -> Camera:
    """A camera over ``num_frames`` frames of ``image_size`` = (W, H) pixels, at a distance
    where a person at the scene centre spans ``person_fraction`` of the frame height and at
    ``camera_height`` metres above the ground."""
    width, height = image_size
    focal = (width / 2.0) / math.tan(math.radians(rng.uniform(*FOV_DEG)) / 2.0)
    intrinsics = np.array(
        [[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
    )
    distance = focal * PERSON_HEIGHT_M / (rng.uniform(*person_fraction) * height)
    azimuth = rng.uniform(-np.pi, np.pi)
    height_m = rng.uniform(*camera_height)
    target = np.array([0.0, rng.uniform(*LOOK_AT_HEIGHT_M), 0.0])
    ground = math.sqrt(max(distance**2 - (height_m - target[1]) ** 2, 1.0))
    position = np.array([ground * math.sin(azimuth), height_m, ground * math.cos(azimuth)])
    base = look_at(position, target)

    motion = CAMERA_MOTIONS[int(rng.integers(len(CAMERA_MOTIONS)))]
    progress = np.linspace(0.0, 1.0, num_frames)
    pan = np.zeros(num_frames)
    positions = np.repeat(position[None], num_frames, axis=0)
    if motion == "pan":
        pan = rng.uniform(-PAN_MAX_RAD, PAN_MAX_RAD) * progress
    elif motion == "dolly":
        travel = rng.uniform(-DOLLY_MAX_FRACTION, DOLLY_MAX_FRACTION) * distance
        positions = position + progress[:, None] * travel * base[2]
    # turning the camera by `pan` about world +Y: R(t) = R(0) · turn(pan)ᵀ
    rotation = np.stack([base @ _turn_about_up(angle).as_matrix().T for angle in pan])
    translation = -np.einsum("fij,fj->fi", rotation, positions)
    return Camera(motion, intrinsics, rotation, translation, pan)


def _occluder_shape(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """A flat shape in its own plane: ``points (V, 2)`` (right, up) in metres, ``faces``."""
    if kind == "ellipse":
        radii = rng.uniform(*BOX_SIDE_M, 2) / 2.0
        angles = np.linspace(0.0, 2.0 * np.pi, ELLIPSE_SEGMENTS, endpoint=False)
        rim = np.stack([np.cos(angles), np.sin(angles)], axis=1) * radii
        points = np.concatenate([np.zeros((1, 2)), rim])
        faces = np.stack(
            [np.zeros(ELLIPSE_SEGMENTS, int), np.arange(1, ELLIPSE_SEGMENTS + 1),
             np.roll(np.arange(1, ELLIPSE_SEGMENTS + 1), -1)],
            axis=1,
        )  # fmt: skip
        return points, faces
    if kind == "bar":
        long, thin = rng.uniform(*BAR_LENGTH_M), rng.uniform(*BAR_WIDTH_M)
        half = np.array([thin, long] if rng.random() < 0.5 else [long, thin]) / 2.0
    else:
        half = rng.uniform(*BOX_SIDE_M, 2) / 2.0
    points = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]) * half
    return points, np.array([[0, 1, 2], [0, 2, 3]])


def _sample_occluder(rng: np.random.Generator, camera: Camera, people: list[Person]) -> Occluder:
    kind = OCCLUDER_KINDS[int(rng.integers(len(OCCLUDER_KINDS)))]
    points, faces = _occluder_shape(rng, kind)
    camera_position = -camera.rotation[0].T @ camera.translation[0]
    if rng.random() < IN_FRONT_PROBABILITY:
        person = people[int(rng.integers(len(people)))]
        seen = person.transl[int(rng.integers(len(person.transl)))].astype(np.float64)
        centre = camera_position + rng.uniform(*IN_FRONT_FRACTION) * (seen - camera_position)
    else:
        radius = PLACEMENT_RADIUS_M * 2.0 * math.sqrt(rng.random())
        angle = rng.uniform(-np.pi, np.pi)
        centre = np.array([radius * math.cos(angle), 0.0, radius * math.sin(angle)])
        centre[1] = rng.uniform(*OCCLUDER_CENTRE_HEIGHT_M)
    right = camera.rotation[0, 0] * (1.0 - _UP)  # face the camera, stand upright
    right /= np.linalg.norm(right)
    vertices = centre + points[:, :1] * right + points[:, 1:] * _UP
    return Occluder(kind, vertices, faces, rng.uniform(0.0, 255.0, 3))


def sample_scene(
    rng: np.random.Generator,
    *,
    num_frames: int,
    image_size: tuple[int, int],
    num_people: int,
    fps: float,
    clips: Sequence[str] | None = None,
) -> Scene:
    """A random scene of ``num_people`` people over ``num_frames`` frames at ``fps``, seen by a
    camera making ``image_size`` = (W, H) pixel frames, moving with the built-in motion
    ``clips`` (default: all of them)."""
    if num_frames < 1 or num_people < 1:
        raise ValueError("a scene needs at least one frame and one person")
    clips = list(clips or list_builtin_clips())
    unknown = sorted(set(clips) - set(list_builtin_clips()))
    if unknown:
        raise ValueError(
            f"unknown motion clip(s) {', '.join(unknown)}; built-in: "
            + ", ".join(list_builtin_clips())
        )
    width, height = image_size
    people = [sample_person(rng, num_frames, fps, clips) for _ in range(num_people)]
    camera = sample_camera(rng, num_frames, image_size)
    occluders = [
        _sample_occluder(rng, camera, people)
        for _ in range(int(rng.integers(OCCLUDERS_MAX, endpoint=True)))
    ]
    pan_pixels = camera.intrinsics[0, 0] * float(np.abs(camera.pan).max())
    background = sample_background(rng, height, width + math.ceil(pan_pixels) + 1)
    light = None
    if rng.random() >= FLAT_SHADING_PROBABILITY:
        light = np.array(
            [rng.uniform(*LIGHT_SIDEWAYS), rng.uniform(*LIGHT_DOWNWARDS),
             rng.uniform(*LIGHT_FORWARDS)]
        )  # fmt: skip
    return Scene(people, camera, occluders, background, light, fps)


def background_shift(scene: Scene, frame: int) -> float:
    """Left edge (pixels) of frame ``frame``'s window on the background canvas: a backdrop at
    infinity slides by ``f · Δpan`` as the camera turns (turning towards +X, the camera's
    left when it faces +Z, slides the view left over the canvas)."""
    focal = float(scene.camera.intrinsics[0, 0])
    start = focal * max(float(scene.camera.pan[-1]), 0.0)
    return start - focal * float(scene.camera.pan[frame])
