"""One person's mesh in one frame (OBJ or PLY), posed on download from the job's ``result.npz``.

Why here, from parameters. A frame's mesh file is large: 1,034,973 bytes as OBJ, 521,306 as PLY
for the stand-in body (13,718 vertices, 27,420 faces; SMPL's 6,890 vertices halve them), 54 GB
for two people through a ten-minute video at 30 fps, against the store's ``max_result_bytes``
(256 MiB). Its posed vertices alone, once stored in ``result.npz`` for this module to read,
took 164,616 bytes a person-frame: 6.0 GB for that video, so long videos failed with
``results_too_large``. The worker now stores ``result.npz`` with the parameters alone (1,753
bytes a person-frame: 63 MB for that video, plus the body's faces and skinning weights once,
2 MB), and the gateway poses a frame when it is asked: the frame's rotations and β through the
bundle's ``body.onnx`` (:class:`FrameBody`, loaded once per process at start-up, from the bundle
the workers run), then :func:`~service.outputs.meshes.encode_mesh` with the bundle's faces, as
``meshcast run`` writes its files. Both pose a frame alone (why:
:func:`~service.outputs.posed_frames.pose_frame`), so the bytes are the same
(``tests/meshcast/test_run.py`` compares them).

How, without loading the NPZ. ``result.npz`` is an uncompressed zip of ``.npy`` entries
(:func:`~service.outputs.result_files.write_result_npz`): a frame's row of each array is one
contiguous run of bytes at a known offset. :class:`StoredFileIO` reads the stored file as a
seekable file, a GETRANGE per read (through a buffer, as the zip's headers come in small
pieces); the zip's directory gives the entry, its local header and the ``.npy`` header the
offset, and one read fetches the row. A download reads a few buffers of Redis (134 KB in 6
reads for the tests' result), whatever the video's length.

When this was chosen, on two cores busy with a training, on a real Redis: the stored
``result.npz``'s growth per person-frame, and the median time of a download through the
gateway (the 7 person-frames of ``tests/support/video_results.py``, 30 times each, per format):

=======================================  ====================  =======  =======
                                         result.npz            PLY      OBJ
=======================================  ====================  =======  =======
before (vertices stored, read back)      166,369 B / person-f  12 ms    40 ms
after (parameters stored, frame posed)     1,753 B / person-f  16 ms    42 ms
=======================================  ====================  =======  =======

Posing takes about 5 ms of a download (one thread; a batch of one, see above); an OBJ's time
was then mostly formatting its numbers. "Before" was commit 4cda35b, whose
``write_result_npz`` took the body model. The downloads' times are measured now by ``meshcast
bench service --result RESULT`` (a ``meshcast run`` result: one job finished with it, its
meshes fetched through a gateway of the bench's own; docs/results.md).
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from service.bundle import CPU_PROVIDER, Precision, load_bundle
from service.jobs import StoredFile
from service.outputs.meshes import MeshFormat, frame_mesh_bytes
from service.outputs.posed_frames import pose_frame
from service.outputs.result_files import NPY_SUFFIX, track_prefix
from service.pipeline.body import BodyMeshes, MeshVertices

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Zip headers and the small arrays come in pieces of tens of bytes: read ahead this much.
READ_BUFFER_BYTES = 64 * 1024
# The zip format's local file header (APPNOTE.TXT 4.3.7): signature, versions and flags,
# times, CRC and sizes, then the lengths of the name and of the extra field that follow it.
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
BODY_NAME_KEY = "body_name"
TRACK_IDS_KEY = "track_ids"
FRAME_IDS_KEY = "frame_ids"
ROTMAT_KEY, BETAS_KEY, TRANSLATION_KEY = "rotmat", "betas", "translation"
NPY_VERSION_1, NPY_VERSION_2 = (1, 0), (2, 0)
# The body graph the gateway runs: float32, what `meshcast run` poses its files with by default
# (float16 variants are for a GPU's speed; the gateway poses one frame at a time on the CPU).
FRAME_BODY_PRECISION: Precision = "fp32"
# One thread per run: a frame is milliseconds of work, and requests run side by side on the
# thread pool's threads, each posing on its own instead of queueing for one shared pool.
FRAME_BODY_THREADS = 1


@dataclass(frozen=True)
class FrameBody:
    """The body model the gateway poses a frame's mesh with: the bundle's, as the workers'."""

    name: str  # the bundle's body, as result.npz's body_name: a result of another is refused
    vertices: MeshVertices  # body.onnx (tests may give another body model)
    faces: np.ndarray  # (F, 3) int64, the bundle's faces.npy


def load_frame_body(bundle: str | Path) -> FrameBody:
    """The body of the bundle in folder ``bundle``: its float32 ``body.onnx`` in one
    onnxruntime session on the CPU, and its faces.

    Raises:
        FileNotFoundError: the bundle, or a file it lists, is missing.
        ValueError: an invalid or corrupt bundle (see :func:`~service.bundle.load_bundle`).
    """
    loaded = load_bundle(bundle)
    session = loaded.session("body", FRAME_BODY_PRECISION, [CPU_PROVIDER], FRAME_BODY_THREADS)
    return FrameBody(loaded.manifest.body.name, BodyMeshes(session), loaded.faces)


class TrackNotFoundError(LookupError):
    """The result has no such track."""


class FrameNotFoundError(LookupError):
    """The track was not seen in that frame."""


class BodyMismatchError(ValueError):
    """The result was made with another body model than the gateway's bundle has."""


class StoredFileIO(io.RawIOBase):
    """A stored file as a read-only, seekable binary file: each read is a GETRANGE."""

    def __init__(self, stored: StoredFile) -> None:
        super().__init__()
        self._stored = stored
        self._position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._stored.size}
        position = origin[whence] + offset
        if position < 0:
            raise ValueError(f"seek to {position}, before the start of {self._stored.name}")
        self._position = position
        return position

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        stop = min(self._stored.size, self._position + len(view))
        if stop <= self._position:
            return 0
        data = b"".join(self._stored.chunks(self._position, stop))
        view[: len(data)] = data
        self._position += len(data)
        return len(data)


def frame_mesh(
    npz: StoredFile,
    track_id: int,
    frame_id: int,
    fmt: MeshFormat,
    camera_frame: bool,
    body: FrameBody,
) -> bytes:
    """The mesh file of track ``track_id`` in video frame ``frame_id``, posed by ``body`` from
    the frame's parameters in ``result.npz``.

    Args:
        npz: the job's stored ``result.npz``.
        track_id: the person.
        frame_id: the video's frame (0-based).
        fmt: ``obj`` or ``ply``.
        camera_frame: the body where it stands in the camera's frame (its translation added,
            OpenCV's axes), rather than in the body frame turned to y up.
        body: the bundle's body model.

    Raises:
        TrackNotFoundError: no such track.
        FrameNotFoundError: the track was not seen in that frame.
        BodyMismatchError: the result was made with another body.
        ValueError: the file is not an NPZ that ``write_result_npz`` wrote.
    """
    prefix = track_prefix(track_id)
    raw = StoredFileIO(npz)
    with (
        io.BufferedReader(raw, buffer_size=READ_BUFFER_BYTES) as source,
        zipfile.ZipFile(source) as archive,
    ):
        made_with = str(_array(archive, BODY_NAME_KEY))
        if made_with != body.name:
            raise BodyMismatchError(
                f"the result was made with the body '{made_with}', the gateway's bundle has "
                f"'{body.name}': the gateway and the workers must serve the same bundle"
            )
        track_ids = _array(archive, TRACK_IDS_KEY).tolist()
        if track_id not in track_ids:
            raise TrackNotFoundError(
                f"the result has no track {track_id}; its tracks: "
                + (", ".join(str(known) for known in track_ids) or "none")
            )
        frame_ids = _array(archive, prefix + FRAME_IDS_KEY)
        rows = np.flatnonzero(frame_ids == frame_id)
        if len(rows) == 0:
            raise FrameNotFoundError(
                f"track {track_id} was not seen in frame {frame_id}; it was in "
                f"{len(frame_ids)} frames, {_span(frame_ids)} (result.json lists them)"
            )
        row = int(rows[0])

        def frame_row(key: str) -> np.ndarray:
            return _row(source, archive.getinfo(prefix + key + NPY_SUFFIX), row)

        rotmat, betas = frame_row(ROTMAT_KEY), frame_row(BETAS_KEY)
        translation = frame_row(TRANSLATION_KEY) if camera_frame else None
    vertices = pose_frame(body.vertices, rotmat, betas, translation)
    return frame_mesh_bytes(vertices, body.faces, fmt, track_id, frame_id, camera_frame)


def _array(archive: zipfile.ZipFile, key: str) -> np.ndarray:
    """A whole (small) array of the archive."""
    with archive.open(key + NPY_SUFFIX) as entry:
        array: np.ndarray = np.lib.format.read_array(entry, allow_pickle=False)
        return array


def _row(source: BinaryIO, entry: zipfile.ZipInfo, row: int) -> np.ndarray:
    """Row ``row`` of an uncompressed ``.npy`` entry, read alone (its offset computed from the
    zip's local header and the array's header)."""
    if entry.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"{entry.filename} is compressed: it cannot be read a row at a time")
    source.seek(entry.header_offset)
    header = LOCAL_HEADER.unpack(source.read(LOCAL_HEADER.size))
    if header[0] != LOCAL_HEADER_SIGNATURE:
        raise ValueError(f"{entry.filename}: not a zip entry's header")
    *_, name_length, extra_length = header
    source.seek(entry.header_offset + LOCAL_HEADER.size + name_length + extra_length)
    version = np.lib.format.read_magic(source)
    if version == NPY_VERSION_1:
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(source)
    elif version == NPY_VERSION_2:
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(source)
    else:
        raise ValueError(f"{entry.filename}: .npy version {version} is not read here")
    if fortran_order or not 0 <= row < shape[0]:
        raise ValueError(f"{entry.filename}: no row {row} of {shape} (C order) to read")
    row_shape = tuple(shape[1:])
    row_bytes = math.prod(row_shape) * dtype.itemsize
    source.seek(row * row_bytes, io.SEEK_CUR)
    # A copy: an array over the bytes read would be read-only, which a body model may refuse.
    return np.frombuffer(source.read(row_bytes), dtype=dtype).reshape(row_shape).copy()


def _span(frame_ids: np.ndarray) -> str:
    return f"from {int(frame_ids.min())} to {int(frame_ids.max())}" if len(frame_ids) else "none"
