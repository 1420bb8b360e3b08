"""The pretrained front-end every bundle carries: NanoDet (people) and BlazePose GHUM 3D (33
landmarks and metric 3D points), in ONNX.

``convert.py`` (``make frontend``, in a build-only environment with TensorFlow) converts them
once from the npm packages that publish them and checks them against their original runtimes;
the graphs, its ``record.json`` and the ``reference.npz`` of the original runtimes' outputs
are committed here. :func:`copy_frontend` puts them in a bundle and describes them in its
manifest (:class:`service.bundle.FrontendSpec`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from service.bundle import DetectorSpec, FrontendSpec, KeypointSpec, file_sha256
from service.pipeline.landmarks import LANDMARK_NAMES

FRONTEND_DIR = Path(__file__).resolve().parent
RECORD_FILE = "record.json"
DETECTOR_FILE, KEYPOINTS_FILE = "detector.onnx", "keypoints.onnx"
KEYPOINT_ROLES = ("landmarks", "pose_flag", "heatmaps", "world_landmarks")


def read_record(folder: Path = FRONTEND_DIR) -> dict[str, Any]:
    """The conversion's record in ``folder``.

    Raises:
        FileNotFoundError: no record there (run ``make frontend``).
    """
    path = folder / RECORD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: `make frontend` converts the front-end")
    record: dict[str, Any] = json.loads(path.read_text())
    return record


def frontend_spec(record: dict[str, Any]) -> FrontendSpec:
    """The manifest's description of the front-end, from the conversion's record."""
    detector, keypoints = record["detector"], record["keypoints"]
    strides = tuple(int(stride) for stride in detector["strides"])
    return FrontendSpec(
        detector=DetectorSpec(
            file=DETECTOR_FILE,
            model=detector["model"],
            input_name=detector["input"]["name"],
            input_size=detector["input"]["size"][0],
            channels_first=detector["input"]["layout"] == "NCHW",
            colour_order=detector["input"]["colour_order"].lower(),
            mean=tuple(detector["input"]["mean"]),
            std=tuple(detector["input"]["std"]),
            scores=tuple(detector["scores"][str(stride)]["output"] for stride in strides),
            distances=tuple(detector["distances"][str(stride)]["output"] for stride in strides),
            strides=strides,
            bins=detector["bins"],
            classes=tuple(detector["classes"]),
            person_class=detector["person_class"],
        ),
        keypoints=KeypointSpec(
            file=KEYPOINTS_FILE,
            model=keypoints["model"],
            input_name=keypoints["input"]["name"],
            input_size=keypoints["input"]["size"][0],
            colour_order=keypoints["input"]["colour_order"].lower(),
            scale=keypoints["input"]["scale"],
            outputs={role: role for role in KEYPOINT_ROLES},
            landmark_names=LANDMARK_NAMES,
        ),
        source={
            "versions": record["versions"],
            "opset": record["opset"],
            "detector": record["detector"]["source"],
            "keypoints": record["keypoints"]["source"],
            "parity": record["parity"],
        },
    )


def copy_frontend(out: Path, folder: Path = FRONTEND_DIR) -> FrontendSpec:
    """Copy the front-end's graphs from ``folder`` into the bundle folder ``out``, each checked
    against the sha256 its record holds.

    Raises:
        FileNotFoundError: a graph or the record is missing.
        ValueError: a graph differs from the one its record describes.
    """
    record = read_record(folder)
    for name, entry in ((DETECTOR_FILE, record["detector"]), (KEYPOINTS_FILE, record["keypoints"])):
        source = folder / name
        if not source.is_file():
            raise FileNotFoundError(f"{source} is missing: `make frontend` converts the front-end")
        if file_sha256(source) != entry["sha256"]:
            raise ValueError(f"{source} differs from its record ({folder / RECORD_FILE})")
        shutil.copyfile(source, out / name)
    return frontend_spec(record)
