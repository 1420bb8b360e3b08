"""One person's mesh in one frame (OBJ or PLY), made on download from the job's ``result.npz``.

Why not store every frame's file. Measured on the test result of
``tests/support/video_results.py`` (the stand-in body: 13,718 vertices, 27,420 faces; 7
person-frames), with ``write_outputs`` into a folder and the files' sizes summed::

    PYTHONPATH=. OMP_NUM_THREADS=1 .venv/bin/python -c "from pathlib import Path; \\
    from service.outputs import write_outputs; from training.body import load_body_model; \\
    from tests.support.video_results import *; b = load_body_model('standin'); \\
    r = make_video_result(b); o = Path('/tmp/sizes'); \\
    w = write_outputs(r, write_grey_video(Path('/tmp/in.avi')), o, torch_mesh_vertices(b), \\
    focal_length=FOCAL_LENGTH); \\
    print({f: sum(p.stat().st_size for p in ps) // 7 for f, ps in w.items()})"

per person-frame: OBJ 1,034,973 bytes, PLY 521,306 bytes, while ``result.npz`` grows by the
frame's float32 vertices alone, 13,718 × 3 × 4 = 164,616 bytes (its faces, 658 KB, once per
file). Storing both mesh formats would take 9.4 times the vertices' room in Redis (SMPL's
6,890 vertices halve every figure, not the ratio): 1.5 MB per person and frame, 54 GB for two
people through a ten-minute video at 30 fps, against ``max_result_bytes`` (256 MiB). So the
worker stores ``result.npz`` and no ``meshes/`` folder, and a mesh is made here when asked for.

How, without loading the NPZ. ``result.npz`` is an uncompressed zip of ``.npy`` entries
(:func:`~service.outputs.result_files.write_result_npz`): a frame's vertices are one
contiguous run of bytes at a known offset. :class:`StoredFileIO` reads the stored file as a
seekable file, a GETRANGE per read (through a buffer, as the zip's headers come in small
pieces); the zip's directory gives the entry, its local header and the ``.npy`` header the
offset, and one read fetches the row. With the faces and the track's frame ids, a download
reads about 0.9 MB of Redis for the stand-in, whatever the video's length, and takes 12 ms
(PLY) to 37 ms (OBJ: 120,000 numbers formatted as text) through the gateway on two busy
cores; its bytes are exactly those :func:`~service.outputs.meshes.write_meshes` writes (the
tests compare them).
"""

from __future__ import annotations

import io
import math
import struct
import zipfile
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from service.jobs import StoredFile
from service.outputs.meshes import MeshFormat, encode_mesh, mesh_comment
from service.outputs.result_files import NPY_SUFFIX, VERTICES_KEY, track_prefix

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Zip headers and the small arrays come in pieces of tens of bytes: read ahead this much.
READ_BUFFER_BYTES = 64 * 1024
# The zip format's local file header (APPNOTE.TXT 4.3.7): signature, versions and flags,
# times, CRC and sizes, then the lengths of the name and of the extra field that follow it.
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")
LOCAL_HEADER_SIGNATURE = b"PK\x03\x04"
FACES_KEY = "faces"
TRACK_IDS_KEY = "track_ids"
FRAME_IDS_KEY = "frame_ids"
TRANSLATION_KEY = "translation"
NPY_VERSION_1, NPY_VERSION_2 = (1, 0), (2, 0)


class TrackNotFoundError(LookupError):
    """The result has no such track."""


class FrameNotFoundError(LookupError):
    """The track was not seen in that frame."""


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
    npz: StoredFile, track_id: int, frame_id: int, fmt: MeshFormat, camera_frame: bool
) -> bytes:
    """The mesh file of track ``track_id`` in video frame ``frame_id``, from ``result.npz``.

    Args:
        npz: the job's stored ``result.npz``.
        track_id: the person.
        frame_id: the video's frame (0-based).
        fmt: ``obj`` or ``ply``.
        camera_frame: the body where it stands in the camera's frame (its translation added),
            rather than in the body frame.

    Raises:
        TrackNotFoundError: no such track.
        FrameNotFoundError: the track was not seen in that frame.
        ValueError: the file is not an NPZ that ``write_result_npz`` wrote.
    """
    prefix = track_prefix(track_id)
    raw = StoredFileIO(npz)
    with (
        io.BufferedReader(raw, buffer_size=READ_BUFFER_BYTES) as source,
        zipfile.ZipFile(source) as archive,
    ):
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
        vertices = _row(source, archive.getinfo(prefix + VERTICES_KEY + NPY_SUFFIX), row)
        if camera_frame:
            vertices = vertices + _array(archive, prefix + TRANSLATION_KEY)[row]
        faces = _array(archive, FACES_KEY)
    return encode_mesh(vertices, faces, fmt, mesh_comment(track_id, frame_id, camera_frame))


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
    return np.frombuffer(source.read(row_bytes), dtype=dtype).reshape(row_shape)


def _span(frame_ids: np.ndarray) -> str:
    return f"from {int(frame_ids.min())} to {int(frame_ids.max())}" if len(frame_ids) else "none"
